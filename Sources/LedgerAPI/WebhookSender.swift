import AsyncHTTPClient
import Foundation
import LedgerCore
import LedgerStore
import Logging
import NIOCore
import ServiceLifecycle

/// One webhook request, built from a due delivery: its body comes from the event row only,
/// which never changes, so every attempt of a delivery sends the same bytes under the same
/// `webhook-id`; only the timestamp and the signature differ.
public struct WebhookMessage: Sendable, Equatable {
  public let deliveryID: Int64
  public let endpointID: Int64
  public let url: String
  public let type: String
  public let webhookID: String
  /// Attempts made before this one.
  public let attempts: Int
  public let body: [UInt8]
  /// The secret's key: the base64 part of `whsec_...`, decoded.
  let key: [UInt8]

  public init(_ due: DueWebhook) throws {
    guard due.secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(due.secret.dropFirst(6))), !key.isEmpty
    else {
      throw StateError(subject: "endpoint \(due.endpointID)", rule: "its secret is not whsec_ and base64")
    }
    deliveryID = due.id
    endpointID = due.endpointID
    url = due.url
    type = due.type
    webhookID = due.webhookID
    attempts = due.attempts
    body = try Self.body(type: due.type, event: due.event)
    self.key = Array(key)
  }

  /// `{"type", "timestamp", "data"}` with the keys sorted: `data` holds the event's own
  /// fields (`payment_id`, `total_minor`, ...) and, over any of the same name, `event_id`,
  /// `account_id`, `invoice_id`, `invoice_number`, `actor`, `kind` and `reason`.
  public static func body(type: String, event: WebhookEvent) throws -> [UInt8] {
    var data = (try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any]) ?? [:]
    data["event_id"] = event.id
    data["account_id"] = event.accountID.map { $0 as Any } ?? NSNull()
    data["invoice_id"] = event.invoiceID.map { $0 as Any } ?? NSNull()
    data["invoice_number"] = event.invoiceNumber.map { $0 as Any } ?? NSNull()
    data["actor"] = event.actor
    data["kind"] = event.kind
    data["reason"] = event.reason
    let payload: [String: Any] = ["type": type, "timestamp": event.at, "data": data]
    return Array(try JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys, .withoutEscapingSlashes]))
  }

  /// `v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{timestamp}.{body}` under the key
  /// (Standard Webhooks).
  public func signature(timestamp: Int64) -> String {
    let signed = Array("\(webhookID).\(timestamp).".utf8) + body
    return "v1," + Data(HMACSHA256.code(key: key, message: signed)).base64EncodedString()
  }

  /// The headers of an attempt sent at `timestamp` (seconds since 1970).
  public func headers(timestamp: Int64) -> [(name: String, value: String)] {
    [
      ("Content-Type", "application/json"), ("User-Agent", "ledgerd"), ("webhook-id", webhookID),
      ("webhook-timestamp", String(timestamp)), ("webhook-signature", signature(timestamp: timestamp)),
    ]
  }
}

/// `ledgerd serve`'s webhooks to the host: POSTs every due delivery, records each answer,
/// and sleeps until the next delivery falls due or another process commits (a change may
/// have written deliveries), until graceful shutdown.
///
/// A 2xx answer marks a delivery delivered, recorded only after the answer: a crash in
/// between sends it again, the same body under the same `webhook-id` (at least once, never
/// lost). Any other answer, or none within `timeout`, is a failed attempt, tried again
/// after `policy`'s back-off. When an endpoint is down (no answer, 5xx, 408 or 429), its
/// other deliveries of the pass wait with the failed one, without an attempt counted.
/// Endpoints are served side by side, each one's deliveries in order. Redirects are not
/// followed: a 3xx is a failed attempt (the URL was checked when it was added, its target
/// would not be).
public struct WebhookSender: Service {
  public let databasePath: String
  public let clock: LedgerClock
  public let discipline: WriteDiscipline
  public let logger: Logger
  /// The clock of the `webhook-timestamp` header: the machine's, even when the ledger's
  /// clock is pinned, since receivers refuse a timestamp minutes away from their own time.
  public var wallClock: LedgerClock = SystemClock()
  /// How long one request may take, connection included.
  public var timeout: Duration = .seconds(10)
  public var policy = RetryPolicy.webhooks
  /// Deliveries read per pass.
  public var batchSize = 100
  /// The longest sleep between two looks at the deliveries.
  public var maxSleep: Duration = .seconds(60)
  /// How often the sleeping loop polls `PRAGMA data_version` and the shutdown flag.
  public var pollInterval: Duration = .milliseconds(200)
  /// The longest the sender's connection waits for the write lock at a time. The wait blocks
  /// a thread of the shared pool, which has one per core; the daemon may be waiting on
  /// another, and SIGTERM needs one free to be heard. A busy ledger is tried again after a
  /// pause that blocks nothing.
  public var lockWait: Duration = .seconds(1)

  public init(databasePath: String, clock: LedgerClock, discipline: WriteDiscipline, logger: Logger) {
    self.databasePath = databasePath
    self.clock = clock
    self.discipline = discipline
    self.logger = logger
  }

  /// What one pass did.
  public struct Report: Sendable, Equatable {
    public var delivered = 0
    public var retrying = 0
    public var heldBack = 0
    public var failed = 0
    public init() {}
  }

  public func run() async throws {
    let seconds = timeout.components.seconds
    var configuration = HTTPClient.Configuration(
      redirectConfiguration: .disallow, timeout: .init(connect: .seconds(seconds), read: .seconds(seconds)))
    // A refused connection is a failed attempt at once, retried on the policy's back-off,
    // rather than retried by the client until the timeout with the endpoint's queue held.
    configuration.connectionPool.retryConnectionEstablishment = false
    let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    await deliverUntilShutdown(client: client)
    do {
      try await client.shutdown()
    } catch {
      logger.warning("webhook client not shut down cleanly: \(String(describing: error))")
    }
  }

  func stopping() -> Bool { Task.isShuttingDownGracefully || Task.isCancelled }

  func deliverUntilShutdown(client: HTTPClient) async {
    var store: LedgerStore?
    while !stopping() {
      guard let open = store else {
        do {
          // The daemon's discipline: recording an answer waits for the write lock like any
          // write, and stops waiting when the daemon stops.
          var discipline = discipline
          discipline.stopWaiting = { Task.isShuttingDownGracefully || Task.isCancelled }
          discipline.lockTimeout = min(discipline.lockTimeout, lockWait)
          store = try LedgerStore.open(path: databasePath, access: .readWrite, clock: clock, discipline: discipline)
        } catch {
          if LedgerStore.isStoppedWaiting(error) { return }
          if LedgerStore.isBusy(error) {
            // Opening applies what migrations are pending under the write lock: wait for it.
            try? await Task.sleep(for: lockWait)
          } else {
            logger.error("webhook delivery not started: \(String(describing: error)); trying again in \(maxSleep)")
            await sleep(until: nil, version: nil, store: nil)
          }
        }
        continue
      }
      var failed = false
      do {
        let report = try await deliverDue(store: open, client: client)
        if report != Report() {
          logger.info(
            "webhooks: \(report.delivered) delivered, \(report.retrying) to retry, \(report.heldBack) held back, \(report.failed) failed"
          )
        }
      } catch {
        // A write cut short by shutdown: what it did not record is sent again later.
        if stopping() { break }
        if LedgerStore.isFatal(error) {
          // The file was replaced or damaged: nothing more is written; the daemon stops.
          logger.critical("webhook delivery stopped: \(String(describing: error))")
          while !stopping() { try? await Task.sleep(for: pollInterval) }
          return
        }
        // The ledger, not an endpoint, failed: the next pass waits `maxSleep` rather than
        // sending again at once what could not be recorded.
        failed = true
        logger.error("webhook delivery paused, the ledger is unavailable: \(String(describing: error))")
      }
      let next = failed ? nil : try? open.nextWebhookAttempt()
      let version = failed ? nil : try? open.changeCounter()
      await sleep(until: next, version: version, store: open)
    }
  }

  /// Sleeps until `next` is due, another connection commits, shutdown begins, or
  /// `maxSleep` passes.
  func sleep(until next: Instant?, version: Int64?, store: LedgerStore?) async {
    let deadline = ContinuousClock.now + maxSleep
    while !stopping() && ContinuousClock.now < deadline {
      if let next, next <= clock.now() { return }
      if let version, let store, (try? store.changeCounter()) != version { return }
      do {
        try await Task.sleep(for: pollInterval)
      } catch {
        return
      }
    }
  }

  /// One endpoint's part of a pass: what each attempt got, and the deliveries held back.
  struct EndpointRun: Sendable {
    var attempts: [(message: WebhookMessage, outcome: Outcome)] = []
    var heldBack: [Int64] = []
  }

  /// What an attempt got.
  enum Outcome: Sendable, Equatable {
    case delivered(String)
    /// `endpointDown`: the endpoint's other deliveries wait with this one.
    case failed(String, endpointDown: Bool)
    /// Cut short by shutdown: not an attempt; the delivery, still due, is sent again
    /// (with the same `webhook-id`) by the next run.
    case interrupted
  }

  /// An endpoint's answer: its status and its first bytes.
  struct Answer: Sendable {
    let status: Int
    let excerpt: [UInt8]
  }

  /// Sends the deliveries due now (one batch), each endpoint's on a task of its own, and
  /// records each endpoint's outcomes as soon as it is done.
  public func deliverDue(store: LedgerStore, client: HTTPClient) async throws -> Report {
    let due = try store.dueWebhooks(until: clock.now(), limit: batchSize)
    guard !due.isEmpty else { return Report() }
    var report = Report()
    var order: [Int64] = []
    var byEndpoint: [Int64: [WebhookMessage]] = [:]
    for delivery in due {
      do {
        let message = try WebhookMessage(delivery)
        if byEndpoint[message.endpointID] == nil { order.append(message.endpointID) }
        byEndpoint[message.endpointID, default: []].append(message)
      } catch {
        try await recordFailure(
          id: delivery.id, attempts: delivery.attempts, result: String(describing: error), store: store,
          report: &report)
      }
    }
    try await withThrowingTaskGroup(of: EndpointRun.self) { group in
      for endpoint in order {
        let messages = byEndpoint[endpoint] ?? []
        group.addTask { await self.send(messages, client: client) }
      }
      for try await run in group {
        try await record(run, store: store, report: &report)
      }
    }
    return report
  }

  /// One endpoint's deliveries, in order, until one finds the endpoint down or shutdown
  /// begins (those not sent stay due, untouched).
  func send(_ messages: [WebhookMessage], client: HTTPClient) async -> EndpointRun {
    var run = EndpointRun()
    for (i, message) in messages.enumerated() {
      if stopping() { break }
      let outcome = await post(message, client: client)
      if outcome == .interrupted { break }
      run.attempts.append((message, outcome))
      if case .failed(_, endpointDown: true) = outcome {
        run.heldBack = messages[(i + 1)...].map(\.deliveryID)
        break
      }
    }
    return run
  }

  /// Runs a write of the sender's, trying again after a pause while another process holds
  /// the write lock, until shutdown (then what was not recorded is sent again later).
  func persisting<T>(_ body: () throws -> T) async throws -> T {
    while true {
      do {
        return try body()
      } catch let error where LedgerStore.isBusy(error) && !stopping() {
        logger.debug("webhook delivery waits for the write lock: \(String(describing: error))")
        try? await Task.sleep(for: pollInterval)
      }
    }
  }

  func record(_ run: EndpointRun, store: LedgerStore, report: inout Report) async throws {
    var retryAt: Instant?
    for (message, outcome) in run.attempts {
      switch outcome {
      case .delivered(let result):
        try await persisting { try store.markWebhookDelivered(id: message.deliveryID, result: result) }
        report.delivered += 1
        logger.debug("webhook \(message.webhookID) (\(message.type)) delivered to \(message.url): \(result)")
      case .failed(let result, _):
        retryAt = try await recordFailure(
          id: message.deliveryID, attempts: message.attempts, result: result, store: store, report: &report,
          describing: "webhook \(message.webhookID) (\(message.type)) to \(message.url)")
      case .interrupted: break
      }
    }
    let until = retryAt ?? clock.now().adding(seconds: Int64(policy.baseSeconds))
    report.heldBack += try await persisting { try store.postponeWebhooks(ids: run.heldBack, until: until) }
  }

  /// Records a failed attempt with the policy's next time, or as failed for good; returns
  /// the next time.
  @discardableResult
  func recordFailure(
    id: Int64, attempts: Int, result: String, store: LedgerStore, report: inout Report,
    describing subject: String? = nil
  ) async throws -> Instant? {
    let made = attempts + 1
    let retryAt = policy.nextAttempt(afterFailures: made, permanent: false, now: clock.now())
    try await persisting { try store.markWebhookAttemptFailed(id: id, result: result, retryAt: retryAt) }
    let subject = subject ?? "webhook delivery \(id)"
    if let retryAt {
      report.retrying += 1
      logger.warning("\(subject), attempt \(made): \(result); trying again at \(retryAt.iso8601)")
    } else {
      report.failed += 1
      logger.error(
        "\(subject), attempt \(made): \(result); given up (see `ledgerd webhook deliveries --status failed`)")
    }
    return retryAt
  }

  /// One POST: its outcome, never an error. Graceful shutdown cuts the request in hand
  /// short (a hanging endpoint does not hold the daemon's stop).
  func post(_ message: WebhookMessage, client: HTTPClient) async -> Outcome {
    var request = HTTPClientRequest(url: message.url)
    request.method = .POST
    for header in message.headers(timestamp: wallClock.now().secondsSinceEpoch) {
      request.headers.add(name: header.name, value: header.value)
    }
    request.body = .bytes(message.body)
    let components = timeout.components
    let timeout = TimeAmount.nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    let answer: Answer
    do {
      answer = try await cancelWhenGracefulShutdown { [request] in
        let response = try await client.execute(request, timeout: timeout)
        // The answer's first characters are kept for staff; the rest is read and dropped.
        var excerpt: [UInt8] = []
        for try await chunk in response.body where excerpt.count < 200 {
          excerpt += chunk.readableBytesView.prefix(200 - excerpt.count)
        }
        return Answer(status: Int(response.status.code), excerpt: excerpt)
      }
    } catch {
      if stopping() { return .interrupted }
      return .failed("no answer: \(Self.describe(error))", endpointDown: true)
    }
    let text = String(decoding: answer.excerpt.map { $0 >= 0x20 && $0 < 0x7F ? $0 : UInt8(ascii: " ") }, as: UTF8.self)
      .trimmingCharacters(in: .whitespaces)
    let result = "HTTP \(answer.status)" + (text.isEmpty ? "" : ": " + text)
    if (200..<300).contains(answer.status) { return .delivered(result) }
    return .failed(result, endpointDown: answer.status >= 500 || answer.status == 408 || answer.status == 429)
  }

  /// A transport error in a few words.
  static func describe(_ error: Error) -> String {
    if let error = error as? HTTPClientError {
      switch error {
      case .deadlineExceeded: return "none within the timeout"
      case .connectTimeout: return "the connection was not made within the timeout"
      case .remoteConnectionClosed: return "the connection was closed before the answer"
      default: return String(describing: error)
      }
    }
    if let error = error as? IOError {
      // NIO's own text repeats itself ("connection reset (error set): Connection refused)").
      return String(cString: strerror(error.errnoCode)).lowercased()
    }
    return String(String(describing: error).prefix(300))
  }
}
