import AsyncHTTPClient
import Foundation
import LedgerCore
import LedgerEngine
import Logging
import NIOCore
import NIOHTTP1

/// Stripe's secret key. It is sent in the `Authorization` header and nowhere else: printing
/// one (a log line, an error, a dump) shows only that it is hidden.
public struct StripeSecretKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
  fileprivate let value: String

  /// A key as read from its file: surrounding whitespace dropped; it must look like a
  /// secret or restricted key (`sk_…`, `rk_…`), printable ASCII only. The error never
  /// quotes it.
  public init(reading text: String, source: String) throws {
    let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard key.hasPrefix("sk_") || key.hasPrefix("rk_"), (8...512).contains(key.utf8.count),
      key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
    else {
      throw InputError(
        field: "processor.secret_key_file",
        rule: "\(source) must hold one Stripe secret or restricted key (sk_… or rk_…), printable, on one line")
    }
    value = key
  }

  /// Reads the key: `$CREDENTIALS_DIRECTORY/stripe-key` when systemd passes it that way
  /// (`LoadCredential=stripe-key:…`), else `settings.secretKeyFile`. A file others may
  /// read is refused.
  public static func load(_ settings: StripeSettings, environment: [String: String]) throws -> StripeSecretKey {
    guard
      let file = try SecretFile.read(
        credential: "stripe-key", path: settings.secretKeyFile, field: "processor.secret_key_file",
        environment: environment)
    else {
      throw InputError(
        field: "processor.secret_key_file",
        rule: "is required with the Stripe processor (or a credential named stripe-key under systemd)")
    }
    return try StripeSecretKey(reading: file.text, source: file.source)
  }

  public var description: String { "sk_…(hidden)" }
  public var debugDescription: String { description }
  public var customMirror: Mirror { Mirror(self, children: []) }
}

/// The Stripe adapter: every charge an off-session PaymentIntent created and confirmed in
/// one call under the attempt's idempotency key (see `StripeAPI`), every call (charges,
/// lookups, each page of a listing) through one rate limiter.
public final class StripeProcessor: PaymentProcessor {
  let base: String
  let key: StripeSecretKey
  let timeout: TimeAmount
  /// The processor's one token bucket: charges and lookups alike.
  public let limiter: RateLimiter
  let logger: Logger
  let client: HTTPClient
  /// How many 429 answers one call waits out before it is left for lookup.
  let maxRateLimitedTries: Int
  /// Stripe keeps an idempotency key's answer for 24 hours; a lookup sends the request
  /// again only well inside that (an hour's margin for the two clocks).
  let replayWindowSeconds: Int64 = 23 * 3600

  public init(
    settings: StripeSettings, key: StripeSecretKey, maxRequestsPerSecond: Int, logger: Logger,
    client: HTTPClient = .shared, maxRateLimitedTries: Int = 8
  ) {
    base = settings.apiBase
    self.key = key
    timeout = .seconds(Int64(settings.timeoutSeconds))
    limiter = RateLimiter(perSecond: maxRequestsPerSecond)
    self.logger = logger
    self.client = client
    self.maxRateLimitedTries = maxRateLimitedTries
  }

  // MARK: - Charges

  public func charge(_ request: ChargeRequest) async throws -> ChargeOutcome {
    let answer = try await send(
      .POST, "/v1/payment_intents", body: StripeAPI.chargeBody(request), idempotencyKey: request.key)
    switch answer {
    case .outcome(let outcome): return outcome
    case .defect(let why): throw ProcessorDefect("charge \(request.key): \(why)")
    case .unknown(let why): throw ProcessorUnreachable(why)
    case .notFound: throw ProcessorUnreachable("HTTP 404 on creating a PaymentIntent")
    case .rateLimited: throw ProcessorUnreachable("still rate limited after \(maxRateLimitedTries) tries")
    }
  }

  // MARK: - Lookups

  /// Within Stripe's idempotency window the very request is sent again under its key:
  /// Stripe answers with the first outcome, or makes the charge if it never got it. After
  /// it, the PaymentIntent is read by its id if the ledger has one, else the customer's
  /// PaymentIntents around the attempt's time are listed and matched on the metadata's key.
  public func lookup(_ charge: ChargeLookup, now: Instant) async throws -> ChargeOutcome? {
    let age = now.secondsSinceEpoch - charge.sentAt.secondsSinceEpoch
    if age < replayWindowSeconds, charge.reference == nil {
      return try await self.charge(charge.request)
    }
    if let reference = charge.reference {
      let intent = String(reference.prefix { $0 != "/" })
      switch try await send(.GET, "/v1/payment_intents/" + StripeAPI.escape(intent), body: nil, idempotencyKey: nil) {
      case .outcome(let outcome): return outcome
      case .notFound: break
      case .defect(let why): throw ProcessorDefect("lookup of \(intent): \(why)")
      case .unknown(let why): throw ProcessorUnreachable(why)
      case .rateLimited: throw ProcessorUnreachable("still rate limited after \(maxRateLimitedTries) tries")
      }
    }
    // Listed around the attempt's time: two days either side with the customer (who has
    // few PaymentIntents), an hour without.
    let margin: Int64 = charge.request.customer == nil ? 3600 : 2 * 86_400
    var query: [(String, String)] = [
      ("created[gte]", String(charge.sentAt.secondsSinceEpoch - margin)),
      ("created[lte]", String(charge.sentAt.secondsSinceEpoch + margin)),
    ]
    if let customer = charge.request.customer { query.append(("customer", customer)) }
    for intent in try await listIntents(query) where StripeAPI.key(ofIntent: intent) == charge.key {
      return StripeAPI.outcome(ofIntent: intent)
    }
    return nil
  }

  public func charges(ledgerID: String, since: Instant) async throws -> [ProcessorCharge] {
    try await listIntents([("created[gte]", String(since.secondsSinceEpoch))]).compactMap {
      guard let charge = StripeAPI.charge(ofIntent: $0), charge.metadata.ledgerID == ledgerID else { return nil }
      return charge
    }.reversed()
  }

  /// Every PaymentIntent a listing query matches, page after page (Stripe lists newest
  /// first, 100 a page at most).
  func listIntents(_ query: [(String, String)]) async throws -> [[String: Any]] {
    var intents: [[String: Any]] = []
    var after: String?
    while true {
      var q = query + [("limit", "100")]
      if let after { q.append(("starting_after", after)) }
      let (status, body) = try await exchange(.GET, "/v1/payment_intents?" + StripeAPI.form(q), body: nil, key: nil)
      guard status == 200, let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
        let data = object["data"] as? [[String: Any]]
      else {
        switch StripeAPI.answer(status: status, body: body) {
        case .defect(let why): throw ProcessorDefect("listing PaymentIntents: \(why)")
        default: throw ProcessorUnreachable("listing PaymentIntents: HTTP \(status)")
        }
      }
      intents += data
      guard object["has_more"] as? Bool == true, let last = data.last?["id"] as? String else { return intents }
      after = last
    }
  }

  // MARK: - HTTP

  /// One call and what its answer means; a 429 waits (every worker holds off too) and
  /// goes again under the same key, up to `maxRateLimitedTries` times.
  func send(_ method: HTTPMethod, _ path: String, body: String?, idempotencyKey: String?) async throws
    -> StripeAPI.Answer
  {
    var pause = Duration.milliseconds(500)
    for _ in 0..<max(1, maxRateLimitedTries) {
      let (status, bytes) = try await exchange(method, path, body: body, key: idempotencyKey)
      let answer = StripeAPI.answer(status: status, body: bytes)
      guard answer == .rateLimited else { return answer }
      logger.notice("Stripe answered 429 (too many requests); waiting \(pause) before sending \(path) again")
      await limiter.holdOff(pause + .milliseconds(Int64.random(in: 0...250)))
      pause = min(pause * 2, .seconds(8))
    }
    return .rateLimited
  }

  /// One HTTP exchange through the rate limiter: the status and body, or
  /// `ProcessorUnreachable` when no answer came (refused, lost, past the timeout).
  func exchange(_ method: HTTPMethod, _ path: String, body: String?, key: String?) async throws -> (Int, [UInt8]) {
    LedgerMetrics.rateLimitWait(await limiter.acquire())
    var request = HTTPClientRequest(url: base + path)
    request.method = method
    request.headers.add(name: "Authorization", value: "Bearer " + self.key.value)
    request.headers.add(name: "Stripe-Version", value: StripeAPI.version)
    request.headers.add(name: "User-Agent", value: "ledgerd")
    if let key { request.headers.add(name: "Idempotency-Key", value: key) }
    if let body {
      request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
      request.body = .bytes(ByteBuffer(string: body))
    }
    do {
      let response = try await client.execute(request, timeout: timeout)
      let buffer = try await response.body.collect(upTo: 4 << 20)
      return (Int(response.status.code), Array(buffer.readableBytesView))
    } catch {
      throw ProcessorUnreachable("\(method.rawValue) \(path.prefix { $0 != "?" }): \(Self.describe(error))")
    }
  }

  /// A transport error in a few words (the client's own descriptions can be long).
  static func describe(_ error: Error) -> String {
    if let error = error as? HTTPClientError {
      switch error {
      case .deadlineExceeded: return "no answer within the timeout"
      case .remoteConnectionClosed: return "the connection was closed before the answer"
      default: return String(describing: error)
      }
    }
    return String(describing: error)
  }
}
