import Foundation
import LedgerCore
import LedgerSQLite

/// Reads the system clock; `LEDGERD_NOW` (an ISO 8601 UTC time) pins it, for demos and
/// for tests that drive the binary on a chosen day.
public struct SystemClock: LedgerClock {
  public init() {}
  public func now() -> Instant {
    Instant(secondsSinceEpoch: Int64(Date().timeIntervalSince1970.rounded(.down)))
  }

  /// The clock a command should use: pinned by `LEDGERD_NOW` when set.
  public static func fromEnvironment() throws -> LedgerClock {
    guard let pinned = ProcessInfo.processInfo.environment["LEDGERD_NOW"], !pinned.isEmpty else {
      return SystemClock()
    }
    return FixedClock(try Instant(iso8601: pinned, field: "LEDGERD_NOW"))
  }
}

/// The database file does not exist and the command only reads.
public struct MissingLedger: Error, CustomStringConvertible {
  public let path: String
  public init(path: String) { self.path = path }
  public var description: String { "no ledger at \(path): create it with `ledgerd migrate --db \(path)`" }
}

/// The ledger's storage: every entity's SQL, behind methods in the ledger's own terms.
///
/// Each method that changes anything runs in one `BEGIN IMMEDIATE` transaction together
/// with its journal entry and event, so a refused or interrupted command leaves nothing.
public final class LedgerStore {
  /// The connection: the store's own. Package-wide only for the benchmark's statement
  /// figures and for tests that look at rows directly; the engine uses the repository
  /// protocols (`SchedulerRepository`) and the store's methods.
  package let db: Connection
  public let clock: LedgerClock
  private var nowCache: (instant: Instant, text: String)?
  private var ledgerIDCache: String?

  /// How a command uses the ledger.
  public enum Access: Sendable {
    /// Writes: creates the file if needed, switches it to WAL and applies pending migrations.
    case readWrite
    /// Reads only: the file must exist and be fully migrated; it is never written.
    case readOnly
  }

  /// Who, beyond the actor, makes the changes this connection writes now: the HTTP API sets
  /// it to the key a request came with, so that every event the request causes names the key
  /// in its reason and in its data (`api_key`).
  public var eventSource: (key: String, describing: String)?

  package init(connection: Connection, clock: LedgerClock) {
    self.db = connection
    self.clock = clock
  }

  /// Opens the ledger at `path`. Before anything is written, the file is checked to be
  /// a ledgerd database (or empty) whose migrations this binary knows. Every connection
  /// opened for writing follows `discipline`: its writes, migrations included, and its
  /// checkpoints run under the file's write lock.
  public static func open(
    path: String, access: Access, clock: LedgerClock, synchronous: ConnectionOptions.Synchronous = .full,
    discipline: WriteDiscipline = WriteDiscipline()
  ) throws -> LedgerStore {
    let migrator = try LedgerSchema.migrator()
    switch access {
    case .readOnly:
      guard FileManager.default.fileExists(atPath: path) else { throw MissingLedger(path: path) }
      let connection = try Connection(path: path, options: ConnectionOptions(readOnly: true))
      try migrator.requireCurrent(on: connection)
      return LedgerStore(connection: connection, clock: clock)
    case .readWrite:
      let connection = try openMigrated(
        path: path, migrator: migrator, clock: clock, synchronous: synchronous, discipline: discipline
      ).0
      return LedgerStore(connection: connection, clock: clock)
    }
  }

  /// Applies pending migrations; returns the names applied and those already there.
  public static func migrate(path: String, clock: LedgerClock, discipline: WriteDiscipline = WriteDiscipline()) throws
    -> Migrator.Outcome
  {
    try openMigrated(
      path: path, migrator: LedgerSchema.migrator(), clock: clock, synchronous: .full, discipline: discipline
    ).1
  }

  /// Opens for writing: the file is checked to be ours (or empty) and known to this binary
  /// before WAL is switched on or any migration is applied.
  private static func openMigrated(
    path: String, migrator: Migrator, clock: LedgerClock, synchronous: ConnectionOptions.Synchronous,
    discipline: WriteDiscipline
  ) throws -> (Connection, Migrator.Outcome) {
    var options = ConnectionOptions()
    options.synchronous = synchronous
    options.discipline = discipline
    let connection = try Connection(path: path, options: options)
    _ = try migrator.pending(on: connection)  // refuses foreign and newer files untouched
    // A new ledger gets 8 KiB pages: the scheduler's commits rewrite pages spread over the
    // accounts' indexes, and fewer, larger pages measured faster than SQLite's 4 KiB (see
    // the benchmark in docs/testing.md). A file that exists keeps the page size it was made with.
    if try connection.scalarInt("SELECT count(*) FROM sqlite_schema") == 0 {
      try connection.execute("PRAGMA page_size = \(LedgerSchema.pageSize)")
    }
    try connection.enableWAL()
    let outcome = try migrator.migrate(connection, now: clock.now().iso8601)
    // The entries posted before the journal had its hash chain (migration 0008) get their
    // hashes now, from the same code that posts.
    if outcome.applied.contains("0008_journal_hash_chain.sql") {
      let store = LedgerStore(connection: connection, clock: clock)
      _ = try store.write { try store.chainUnhashedEntries() }
    }
    return (connection, outcome)
  }

  /// The clock's time as stored text; formatted once per instant, as every statement of a
  /// batch writes the same one.
  var now: String {
    let instant = clock.now()
    if let cached = nowCache, cached.instant == instant { return cached.text }
    let text = instant.iso8601
    nowCache = (instant, text)
    return text
  }
  var today: CivilDate { clock.now().date }

  /// Runs `body` as one write transaction. Called inside another write, it joins it, so
  /// a command can combine several store operations into one all-or-nothing change.
  public func write<T>(_ body: () throws -> T) throws -> T {
    if db.isInTransaction { return try body() }
    return try db.write { _ in try body() }
  }

  /// Runs `body` in write transactions that `body` may commit and reopen at safe points
  /// (`commit()`), so a long import does not hold other writers off for its whole length.
  /// What was committed stays; the transaction in hand is rolled back if `body` throws.
  public func batchedWrite<T>(_ body: (_ commit: @escaping () throws -> Void) throws -> T) throws -> T {
    try db.batchedWrite(body)
  }

  /// Runs `body` inside a savepoint of the write transaction in hand: if it throws, what it
  /// wrote is undone and the error rethrown, and the transaction goes on without it. So
  /// one account's failing step does not take the rest of a batch down with it.
  public func isolated<T>(_ body: () throws -> T) throws -> T {
    precondition(db.isInTransaction, "isolated runs inside a write transaction")
    // `run`, not `execute`: the three statements are prepared once and kept in the cache.
    try db.run("SAVEPOINT isolated_step")
    do {
      let result = try body()
      try db.run("RELEASE isolated_step")
      return result
    } catch {
      try db.run("ROLLBACK TO isolated_step")
      try db.run("RELEASE isolated_step")
      throw error
    }
  }

  /// Whether an error belongs to the step that raised it (bad data or configuration for
  /// one invoice or account: a refused value, a missing row, a broken constraint) rather
  /// than to the ledger as a whole (an I/O error, a full disk, a busy or damaged file),
  /// which must stop the batch.
  public static func isOwnFailure(_ error: Error) -> Bool {
    switch error {
    case is InputError, is NotFoundError, is StateError: return true
    case let e as SQLiteError: return e.isConstraintViolation
    default: return false
    }
  }

  /// Whether an error means this process must stop writing the ledger at all: the file was
  /// replaced or removed under it, or SQLite finds it damaged or not a database (a file
  /// overwritten in place), or the disk fails to read or write it. Retrying would write
  /// into the wrong file, or fail forever; a daemon stops with a failure instead. A full
  /// disk or a busy lock is not fatal: they pass.
  public static func isFatal(_ error: Error) -> Bool {
    switch error {
    case is DatabaseFileReplaced: return true
    case let e as SQLiteError: return e.isDamage
    default: return false
    }
  }

  /// Runs `body` in one read snapshot.
  public func read<T>(_ body: () throws -> T) throws -> T {
    if db.isInTransaction { return try body() }
    return try db.read { _ in try body() }
  }

  // MARK: - Journal and events

  /// Writes a balanced entry. `JournalEntry` cannot be built unbalanced, so an entry that
  /// does not sum to zero per currency is refused before this is reached.
  @discardableResult
  func post(_ entry: JournalEntry) throws -> Int64 {
    let at = now
    try db.run(
      "INSERT INTO journal_entries (at, kind, memo, invoice_id, payment_id) VALUES (?, ?, ?, ?, ?)",
      at, entry.kind.rawValue, entry.memo, entry.invoiceID, entry.paymentID)
    let entryID = db.lastInsertRowID
    for line in entry.lines {
      try db.run(
        """
        INSERT INTO journal_lines (entry_id, ledger_account, currency, debit_minor, credit_minor, account_id, invoice_id)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        entryID, line.ledgerAccount.rawValue, line.signedAmount.currency.code, line.debitMinor, line.creditMinor,
        line.customerAccountID, line.invoiceID)
    }
    try keepBalances(of: entry)
    try chain(entryID: entryID, at: at, entry: entry)
    return entryID
  }

  /// Adds an entry's lines to the running balances (`0014_maintained_balances.sql`), one
  /// UPSERT per ledger account, currency and customer of the entry (a customer only on the
  /// accounts kept per customer: receivable, customer credit, bad debt): the lines of a combined
  /// charge that credit one customer's receivable make one update. Called by `post` only,
  /// which writes every journal line; `check` adds the journal up again to prove it.
  private func keepBalances(of entry: JournalEntry) throws {
    var keys: [(account: Int64, currency: String, ledgerAccount: String, debits: Int64, credits: Int64)] = []
    for line in entry.lines {
      let account = line.ledgerAccount.isCustomerSubLedger ? line.customerAccountID ?? 0 : 0
      let currency = line.signedAmount.currency.code
      let ledgerAccount = line.ledgerAccount.rawValue
      if let i = keys.firstIndex(where: {
        $0.account == account && $0.currency == currency && $0.ledgerAccount == ledgerAccount
      }) {
        keys[i].debits += line.debitMinor
        keys[i].credits += line.creditMinor
      } else {
        keys.append((account, currency, ledgerAccount, line.debitMinor, line.creditMinor))
      }
    }
    for key in keys {
      try db.run(
        """
        INSERT INTO ledger_balances (account_id, currency, ledger_account, debits_minor, credits_minor)
        VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (ledger_account, currency, account_id) DO UPDATE
        SET debits_minor = debits_minor + excluded.debits_minor, credits_minor = credits_minor + excluded.credits_minor
        """,
        key.account, key.currency, key.ledgerAccount, key.debits, key.credits)
    }
  }

  /// Records a change of state with who made it and why.
  public func recordEvent(
    account: Int64?, invoice: Int64? = nil, actor: Actor, kind: String, reason: String, data: [String: String] = [:]
  ) throws {
    var reason = reason
    var data = data
    if let source = eventSource {
      reason += " (\(source.describing))"
      data["api_key"] = source.key
    }
    try db.run(
      "INSERT INTO events (at, account_id, invoice_id, actor, kind, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
      now, account, invoice, actor.rawValue, kind, reason, try jsonText(data))
  }

  /// A flat JSON object of strings, keys sorted (what events and outbox rows carry). Built
  /// by hand: it is written for every event, and JSONEncoder costs more than the insert.
  func jsonText(_ data: [String: String]) throws -> String {
    if data.isEmpty { return "{}" }
    // Sorted pairs rather than sorted keys and a lookup per key: one hash less per entry.
    let entries = data.sorted { $0.key < $1.key }
    var out: [UInt8] = []
    out.reserveCapacity(2 + entries.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 6 })
    out.append(UInt8(ascii: "{"))
    for (i, entry) in entries.enumerated() {
      if i > 0 { out.append(UInt8(ascii: ",")) }
      Self.appendJSONString(entry.key, to: &out)
      out.append(UInt8(ascii: ":"))
      Self.appendJSONString(entry.value, to: &out)
    }
    out.append(UInt8(ascii: "}"))
    return String(decoding: out, as: UTF8.self)
  }

  /// Appends `s` as a JSON string: `"`, `\\`, and the control characters below U+0020 escaped
  /// (`\n`, `\r`, `\t`, otherwise `\u00xx`), everything else as its own UTF-8 bytes.
  /// Every byte of a multi-byte UTF-8 sequence is 0x80 or above, so escaping byte by byte
  /// gives the same text as escaping scalar by scalar.
  static func appendJSONString(_ s: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    var s = s
    s.withUTF8 { bytes in
      var clean = bytes.startIndex
      for (i, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
      {
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[clean..<i]))
        clean = i + 1
        out.append(UInt8(ascii: "\\"))
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(byte)
        case UInt8(ascii: "\n"): out.append(UInt8(ascii: "n"))
        case UInt8(ascii: "\r"): out.append(UInt8(ascii: "r"))
        case UInt8(ascii: "\t"): out.append(UInt8(ascii: "t"))
        default:
          let hex: [UInt8] = Array("0123456789abcdef".utf8)
          out.append(contentsOf: [
            UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
          ])
        }
      }
      out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[clean...]))
    }
    out.append(UInt8(ascii: "\""))
  }

  /// The id of the newest event (0 when there is none).
  /// The ledger's identity (`0007_ledger_identity.sql`), named in every charge's metadata
  /// at the processor; read once.
  public func ledgerID() throws -> String {
    if let cached = ledgerIDCache { return cached }
    guard let id = try db.scalarText("SELECT id FROM ledger_identity") else {
      throw StateError(subject: "ledger_identity", rule: "the ledger has no identity row; it was edited by hand")
    }
    ledgerIDCache = id
    return id
  }

  /// When the ledger got its identity: no charge can name it before then.
  public func identityCreatedAt() throws -> Instant {
    guard let text = try db.scalarText("SELECT created_at FROM ledger_identity") else {
      throw StateError(subject: "ledger_identity", rule: "the ledger has no identity row; it was edited by hand")
    }
    return try Instant(iso8601: text)
  }

  /// When this ledger's newest charge attempt was made (nil: none yet): what it knows of
  /// its charges goes up to there, so only charges at the processor after it can be
  /// unknown to it.
  public func newestAttemptTime() throws -> Instant? {
    try db.scalarText("SELECT max(created_at) FROM charge_attempts").map { try Instant(iso8601: $0) }
  }

  /// Whether this ledger has an attempt with this idempotency key.
  public func hasAttempt(key: String) throws -> Bool {
    try db.scalarInt("SELECT 1 FROM charge_attempts WHERE idempotency_key = ?", key) != nil
  }

  public func lastEventID() throws -> Int64 { try db.scalarInt("SELECT coalesce(max(id), 0) FROM events") ?? 0 }

  /// Events written after `id`, oldest first (at most `limit`).
  public func events(after id: Int64, limit: Int = 10_000) throws -> [Event] {
    try db.query(
      """
      SELECT e.id, e.at, e.account_id, i.number AS invoice, e.actor, e.kind, e.reason
      FROM events e LEFT JOIN invoices i ON i.id = e.invoice_id WHERE e.id > ? ORDER BY e.id LIMIT ?
      """, id, limit
    ).map(event(from:))
  }

  func event(from row: Row) throws -> Event {
    Event(
      id: try row.int("id"), at: try row.string("at"), accountID: try row.optionalInt("account_id"),
      invoice: try row.optionalString("invoice"), actor: Actor(rawValue: try row.string("actor")) ?? .system,
      kind: try row.string("kind"), reason: try row.string("reason"))
  }

  /// The events of one account (or all), oldest first.
  public func events(account: Int64?) throws -> [Event] {
    let select = """
      SELECT e.id, e.at, e.account_id, i.number AS invoice, e.actor, e.kind, e.reason
      FROM events e LEFT JOIN invoices i ON i.id = e.invoice_id
      """
    // One account's events through its index (a filter testing the parameter for null read
    // every event).
    let rows =
      try account.map { try db.query(select + " WHERE e.account_id = ?1 ORDER BY e.id", $0) }
      ?? db.query(select + " ORDER BY e.id")
    return try rows.map(event(from:))
  }
}

/// The SQLite store is the ledger's repository.
extension LedgerStore: SchedulerRepository {
  public func isOwnFailure(_ error: Error) -> Bool { Self.isOwnFailure(error) }
  public func isFatal(_ error: Error) -> Bool { Self.isFatal(error) }
}
