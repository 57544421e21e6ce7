import Foundation
import LedgerCore
import LedgerSQLite
import LedgerStore

/// The built-in processor, and the default: it behaves by test token, and records every
/// charge by idempotency key in its own SQLite file, so a test can count what was really
/// charged (and prove nothing was charged twice).
///
/// Tokens:
/// - `tok_decline_<code>`: declined with that raw code (`tok_decline_insufficient_funds`,
///   `tok_decline_do_not_honor`, `tok_decline_expired_card`, `tok_decline_incorrect_cvc`,
///   `tok_decline_stolen_card`, `tok_decline_card_velocity_exceeded`,
///   `tok_decline_authentication_required`, …).
/// - `tok_error_<code>`: the processor fails with that code (`tok_error_processing_error`).
/// - `tok_fail<N>_then_ok`: declined `insufficient_funds` N times, then succeeds.
/// - `tok_slow`: succeeds after `slowMilliseconds`.
/// - `tok_timeout`: no answer: the charge is not made, and the caller never hears back.
/// - `tok_lost`: the charge is made but the answer is lost on the way back.
/// - anything else (`tok_ok`, `tok_visa_ok`, …): succeeds.
///
/// Anything from the first `.` on is ignored (`tok_lost.42`), so that every card can have a
/// token of its own (tokens are unique in the ledger) and still behave as its kind.
/// How long the simulated processor takes to answer every charge, and how many of its
/// answers never come: what a real processor's network does, for the benchmark.
public struct SimulatedNetwork: Sendable, Equatable {
  /// Each call's time, spread evenly over `latency ± jitter`.
  public var latency: Duration = .zero
  public var jitter: Duration = .zero
  /// Calls in ten thousand whose answer never comes (the charge is made): they wait
  /// `timeout` and fail with no answer, and are resolved by their keys later.
  public var timeoutsPerTenThousand = 0
  public var timeout: Duration = .seconds(5)

  public init() {}

  /// Whether the call of `key` times out: a stable pick, the same for the same key.
  func timesOut(_ key: String) -> Bool {
    guard timeoutsPerTenThousand > 0 else { return false }
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return hash % 10_000 < UInt64(timeoutsPerTenThousand)
  }

  /// This call's time.
  func delay() -> Duration {
    guard jitter > .zero else { return latency }
    let spread = Int64(jitter.components.seconds * 1_000_000 + jitter.components.attoseconds / 1_000_000_000_000)
    return max(.zero, latency + .microseconds(Int64.random(in: -spread...spread)))
  }
}

public actor SimulatedProcessor: PaymentProcessor {
  private let db: Connection
  private let slowMilliseconds: Int
  private let timeoutMilliseconds: Int
  /// The processor's time for each charge it records (the ledger's clock in simulations).
  private let clock: LedgerClock
  /// Every call's latency and lost answers (none by default).
  public var network = SimulatedNetwork()

  public func setNetwork(_ network: SimulatedNetwork) { self.network = network }

  /// The processor's limit of calls per second (none by default): each charge and each
  /// lookup waits for its turn, as at a real processor.
  public private(set) var limiter: RateLimiter?

  public func setRateLimit(perSecond: Int?) { limiter = perSecond.map { RateLimiter(perSecond: $0) } }

  /// Opens (or creates) the processor's own record at `path`; its writes and checkpoints
  /// follow `discipline` on that file's own lock (`<path>.lock`).
  public init(
    path: String, slowMilliseconds: Int = 1_500, timeoutMilliseconds: Int = 200, clock: LedgerClock = SystemClock(),
    discipline: WriteDiscipline = WriteDiscipline(), maxRequestsPerSecond: Int? = nil
  ) throws {
    limiter = maxRequestsPerSecond.map { RateLimiter(perSecond: $0) }
    var options = ConnectionOptions()
    options.discipline = discipline
    // The processor's file stands for a remote system; a process kill (what the crash
    // tests do) never loses its commits, and it does not need to survive power loss.
    options.synchronous = .off
    let db = try Connection(path: path, options: options)
    try db.enableWAL()
    try db.execute(
      """
      CREATE TABLE IF NOT EXISTS charges (
        key          TEXT PRIMARY KEY,
        token        TEXT NOT NULL,
        amount_minor INTEGER NOT NULL,
        currency     TEXT NOT NULL,
        outcome      TEXT NOT NULL CHECK (outcome = 'succeeded' OR outcome = 'declined' OR outcome = 'failed'),
        code         TEXT,
        reference    TEXT,
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
      ) STRICT;
      DROP INDEX IF EXISTS charges_token;
      CREATE INDEX IF NOT EXISTS charges_fail_token ON charges (token) WHERE token GLOB 'tok_fail*';
      """)
    // The charge's metadata, as a real processor keeps it; added to a record made before.
    // Not indexed: it is read only when a ledger lists its charges at start-up (one scan),
    // and an index would cost every charge an entry.
    let columns = Set(try db.query("PRAGMA table_info(charges)").map { try $0.string("name") })
    if !columns.contains("metadata") {
      try db.write { db in try db.execute("ALTER TABLE charges ADD COLUMN metadata TEXT") }
    }
    self.db = db
    self.clock = clock
    self.slowMilliseconds = slowMilliseconds
    self.timeoutMilliseconds = timeoutMilliseconds
  }

  /// A charge to decide and record; `kind` is its token's behaviour.
  private struct Charge {
    let key: String
    let token: String
    let kind: String
    let amount: Money
    let metadata: ChargeMetadata
  }

  /// One charge request waiting for the next group commit.
  private struct Request {
    let charge: Charge
    let answer: CheckedContinuation<(outcome: ChargeOutcome, fresh: Bool), Error>
  }

  /// Requests that arrived while others were being recorded: they are decided and recorded
  /// together, in one transaction, and every caller hears back only after its commit.
  private var queued: [Request] = []
  private var flushScheduled = false

  public func charge(_ request: ChargeRequest) async throws -> ChargeOutcome {
    await limiter?.acquire()
    let token = Self.kind(of: request.token)
    let network = self.network
    let delay = network.delay()
    if delay > .zero { try await Task.sleep(for: delay) }
    if token == "tok_slow" { try await Task.sleep(for: .milliseconds(slowMilliseconds)) }
    let (outcome, fresh) = try await withCheckedThrowingContinuation {
      (answer: CheckedContinuation<(outcome: ChargeOutcome, fresh: Bool), Error>) in
      queued.append(
        Request(
          charge: Charge(
            key: request.key, token: request.token, kind: token, amount: request.amount, metadata: request.metadata),
          answer: answer))
      if !flushScheduled {
        flushScheduled = true
        // The calls sent at the same moment are let in before the batch is recorded.
        Task {
          await Task.yield()
          self.flush()
        }
      }
    }
    // A repeated key gets the first answer: the timeout and the lost answer apply only to
    // the request that made the charge.
    guard fresh else { return outcome }
    if network.timesOut(request.key) {
      try await Task.sleep(for: network.timeout)
      throw ProcessorUnreachable("no answer within \(network.timeout)")
    }
    if token == "tok_timeout" { try await Task.sleep(for: .milliseconds(timeoutMilliseconds)) }
    return try Self.answer(kind: token, outcome, timeoutMilliseconds: timeoutMilliseconds)
  }

  /// Decides and records every queued request in one transaction, then answers each caller.
  private func flush() {
    flushScheduled = false
    let batch = queued
    queued = []
    guard !batch.isEmpty else { return }
    do {
      let outcomes = try record(batch.map(\.charge))
      for (request, outcome) in zip(batch, outcomes) { request.answer.resume(returning: outcome) }
    } catch {
      for request in batch { request.answer.resume(throwing: error) }
    }
  }

  /// The behaviour a token asks for: the part before its first `.`.
  private static func kind(of token: String) -> String { String(token.prefix { $0 != "." }) }

  /// What the caller of a charge just made hears: a timeout and a lost answer are none.
  private static func answer(kind: String, _ outcome: ChargeOutcome, timeoutMilliseconds: Int) throws -> ChargeOutcome {
    if kind == "tok_timeout" { throw ProcessorUnreachable("no answer within \(timeoutMilliseconds) ms") }
    if kind == "tok_lost" { throw ProcessorUnreachable("the connection dropped before the answer arrived") }
    return outcome
  }

  /// Decides and records `charges` in one transaction; a key already recorded keeps its
  /// first outcome (its insert is ignored) and comes back with `fresh` false.
  private func record(_ charges: [Charge]) throws -> [(outcome: ChargeOutcome, fresh: Bool)] {
    let at = clock.now().iso8601
    return try db.write { _ in
      try charges.map { charge -> (outcome: ChargeOutcome, fresh: Bool) in
        let outcome =
          charge.kind == "tok_timeout"
          ? .failed(code: "timeout") : try decide(token: charge.kind, fullToken: charge.token)
        if try record(charge, outcome: outcome, at: at) { return (outcome, true) }
        guard let known = try recorded(charge.key) else {
          throw StateError(subject: "simulated processor", rule: "charge \(charge.key) was neither recorded nor found")
        }
        return (known, false)
      }
    }
  }

  /// What the charge made with the lookup's key came to, or nil: the simulated processor
  /// answers from its record and never charges on a lookup.
  public func lookup(_ charge: ChargeLookup, now: Instant) async throws -> ChargeOutcome? {
    await limiter?.acquire()
    return try recorded(charge.key)
  }

  /// Looks up many keys in one read transaction (one call).
  public func lookup(_ charges: [ChargeLookup], now: Instant) async -> [Result<ChargeOutcome?, any Error>] {
    await limiter?.acquire()
    do {
      return try db.read { _ in try charges.map { .success(try recorded($0.key)) } }
    } catch {
      return charges.map { _ in .failure(error) }
    }
  }

  /// What the charge made with `key` came to, or nil if none was (a test's question).
  public func lookup(key: String) throws -> ChargeOutcome? { try recorded(key) }

  /// Charges that took money, per idempotency key (a test's ground truth).
  public func succeededCharges() throws -> [(key: String, amountMinor: Int64)] {
    try db.query("SELECT key, amount_minor FROM charges WHERE outcome = 'succeeded' ORDER BY rowid").map {
      (try $0.string("key"), try $0.int("amount_minor"))
    }
  }

  private func decide(token: String, fullToken: String) throws -> ChargeOutcome {
    if token.hasPrefix("tok_decline_") { return .declined(code: String(token.dropFirst("tok_decline_".count))) }
    if token.hasPrefix("tok_error_") { return .failed(code: String(token.dropFirst("tok_error_".count))) }
    if token.hasPrefix("tok_fail"), token.hasSuffix("_then_ok"),
      let n = Int(token.dropFirst("tok_fail".count).dropLast("_then_ok".count))
    {
      // The condition on the prefix lets SQLite use the partial index of these tokens.
      let tries =
        try db.scalarInt("SELECT count(*) FROM charges WHERE token = ? AND token GLOB 'tok_fail*'", fullToken) ?? 0
      if tries < n { return .declined(code: "insufficient_funds") }
    }
    return .succeeded(reference: "ch_" + String(UInt64.random(in: 1...UInt64.max), radix: 36))
  }

  private func recorded(_ key: String) throws -> ChargeOutcome? {
    guard let row = try db.queryOne("SELECT outcome, code, reference FROM charges WHERE key = ?", key) else {
      return nil
    }
    switch try row.string("outcome") {
    case "succeeded": return .succeeded(reference: try row.string("reference"))
    case "declined": return .declined(code: try row.string("code"))
    default: return .failed(code: try row.string("code"))
    }
  }

  /// This ledger's charges recorded at or after `since`, in the order they were made.
  public func charges(ledgerID: String, since: Instant) async throws -> [ProcessorCharge] {
    let decoder = JSONDecoder()
    return try db.query(
      """
      SELECT key, amount_minor, currency, outcome, code, reference, metadata FROM charges
      WHERE created_at >= ?2 AND metadata ->> '$.ledgerID' = ?1 ORDER BY created_at, rowid
      """, ledgerID, since.iso8601
    ).map { row in
      let outcome: ChargeOutcome
      switch try row.string("outcome") {
      case "succeeded": outcome = .succeeded(reference: try row.string("reference"))
      case "declined": outcome = .declined(code: try row.string("code"))
      default: outcome = .failed(code: try row.string("code"))
      }
      return ProcessorCharge(
        key: try row.string("key"),
        amount: Money(
          minorUnits: try row.int("amount_minor"), currency: try Currency(code: try row.string("currency"))),
        metadata: try decoder.decode(ChargeMetadata.self, from: Data(try row.string("metadata").utf8)), outcome: outcome
      )
    }
  }

  /// Records a charge; false when its key was already recorded (nothing written).
  private func record(_ charge: Charge, outcome: ChargeOutcome, at: String) throws -> Bool {
    let (name, code, reference): (String, String?, String?)
    switch outcome {
    case .succeeded(let ref): (name, code, reference) = ("succeeded", nil, ref)
    case .declined(let c): (name, code, reference) = ("declined", c, nil)
    case .failed(let c): (name, code, reference) = ("failed", c, nil)
    case .inProgress(let ref): (name, code, reference) = ("failed", "in_progress", ref)
    }
    // Written by hand: a charge is recorded for every attempt, and the fields are numbers
    // and the ledger's hex identity (JSONDecoder reads it back in `charges`).
    let m = charge.metadata
    let metadata =
      "{\"accountID\":\(m.accountID),\"attemptID\":\(m.attemptID),\"cardID\":\(m.cardID),\"invoiceIDs\":["
      + m.invoiceIDs.map(String.init).joined(separator: ",") + "],\"ledgerID\":\"\(m.ledgerID)\"}"
    return try db.run(
      """
      INSERT INTO charges (key, token, amount_minor, currency, outcome, code, reference, created_at, metadata)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
      """,
      charge.key, charge.token, charge.amount.minorUnits, charge.amount.currency.code, name, code, reference, at,
      metadata) > 0
  }
}
