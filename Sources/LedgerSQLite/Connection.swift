import CSQLite

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// How a connection is opened.
public struct ConnectionOptions: Sendable {
  /// Opens the file read-only; such a connection can never write or checkpoint.
  public var readOnly: Bool = false
  /// Creates the file if it does not exist (ignored when read-only).
  public var create: Bool = true
  /// How long a statement waits for another connection's lock before failing with SQLITE_BUSY.
  public var busyTimeoutMilliseconds: Int32 = 5_000
  /// Pages kept in SQLite's own cache (negative: in KiB). 32 MiB keeps a large ledger's
  /// indexes in memory instead of re-reading them from the OS.
  public var cacheSizeKiB: Int = 32_768
  /// `FULL` by default: in WAL mode, `NORMAL` may lose the last commits on power loss,
  /// and a ledger must not forget a payment it has acknowledged. Lowered only by benchmarks
  /// that measure what durability costs.
  public var synchronous: Synchronous = .full
  /// The write lock and checkpoint policy of a writable connection (see `WriteDiscipline`).
  public var discipline = WriteDiscipline()
  /// Whether every write checks that the path still names the file opened
  /// (`Connection.checkFileIdentity`). Off only where a file is moved under its connection
  /// on purpose (a test of what a missing file does to checkpoints).
  public var checksFileIdentity = true

  public enum Synchronous: String, Sendable {
    case off = "OFF"
    case normal = "NORMAL"
    case full = "FULL"
  }

  public init(readOnly: Bool = false, create: Bool = true) {
    self.readOnly = readOnly
    self.create = create
  }
}

/// One SQLite connection. Not thread-safe: use it from one task or thread at a time.
///
/// Every connection enforces foreign keys, has a busy timeout, maps no memory and never
/// checkpoints on its own (`wal_autocheckpoint=0`); writers switch the file to WAL with
/// `enableWAL()`; write transactions are `BEGIN IMMEDIATE`, so SQLite's write lock is taken
/// before the first read and a transaction never fails half-way on a lock upgrade.
///
/// On a writable connection, every write (a `write {}` transaction, a statement that
/// writes outside one, a journal-mode change) and every checkpoint runs under the
/// database's `WriteLock`, taken before `BEGIN IMMEDIATE` and released after COMMIT or
/// ROLLBACK. This is the one place where that rule is kept.
public final class Connection {
  let handle: OpaquePointer
  /// The database file's path.
  public let path: String
  public let options: ConnectionOptions
  private var cache: [String: Statement] = [:]
  /// Statements last used from each SQL text address (see `statement(_:)`).
  private var recent = [Statement?](repeating: nil, count: 1 << Connection.recentSlotBits)
  /// The file's write lock; nil on read-only connections, in-memory databases, and when
  /// the discipline is switched off.
  public let writeLock: WriteLock?
  /// How long this connection's writes and checkpoints have waited for `writeLock` in all
  /// (another holder's transaction, or a checkpoint on the checkpointer's thread).
  public private(set) var writeLockWaited: Duration = .zero
  /// Whether this connection holds `writeLock` now.
  private var holdsWriteLock = false
  private let wal = WALCounter()
  /// Runs this connection's due checkpoints when `checkpointOnOwnThread` is set.
  private var checkpointer: Checkpointer?
  /// The file this writable connection opened (device and inode), compared with what
  /// `path` names at every write transaction (`checkFileIdentity`).
  private let openedFile: FileIdentity?
  /// The hook `trace(_:)` installed, kept alive while SQLite may call it.
  private var tracer: Tracer?

  /// The WAL's page count after this connection's last commit, reported by SQLite's WAL hook.
  final class WALCounter {
    var pages = 0
  }

  /// Opens (and, unless read-only, configures) the database at `path`.
  public init(path: String, options: ConnectionOptions = ConnectionOptions()) throws {
    Self.configureLibrary
    var flags = SQLITE_OPEN_NOMUTEX
    if options.readOnly {
      flags |= SQLITE_OPEN_READONLY
    } else {
      flags |= SQLITE_OPEN_READWRITE
      if options.create { flags |= SQLITE_OPEN_CREATE }
    }
    var db: OpaquePointer?
    let rc = sqlite3_open_v2(path, &db, flags, nil)
    guard rc == SQLITE_OK, let db else {
      let error = SQLiteError(connection: db, code: rc, sql: nil)
      sqlite3_close_v2(db)
      throw error
    }
    self.handle = db
    self.path = path
    self.options = options
    self.writeLock = options.readOnly || !options.discipline.lock ? nil : WriteLock.forDatabase(path)
    self.openedFile = options.readOnly || !options.checksFileIdentity ? nil : FileIdentity(path: path)
    sqlite3_extended_result_codes(db, 1)
    do {
      try configure()
    } catch {
      sqlite3_close_v2(db)
      throw error
    }
  }

  /// Process-wide settings, made once before the first connection opens: no memory
  /// statistics (ledgerd reads none, and keeping them serializes every allocation).
  private static let configureLibrary: Void = {
    _ = ledgerd_config_memstatus_off()
  }()

  deinit {
    if tracer != nil { sqlite3_trace_v2(handle, 0, nil, nil) }
    checkpointer?.stop()
    recent.removeAll()
    cache.removeAll()
    // The last connection to close checkpoints the WAL and deletes it: a checkpoint, so
    // it runs under the write lock, or, when that is busy, not at all.
    var locked = false
    if let writeLock, !holdsWriteLock {
      locked = (try? writeLock.tryAcquire()) ?? false
      if !locked { _ = ledgerd_db_config_no_checkpoint_on_close(handle) }
    }
    sqlite3_close_v2(handle)
    if locked { writeLock?.release() }
  }

  private func configure() throws {
    sqlite3_busy_timeout(handle, options.busyTimeoutMilliseconds)
    // Double-quoted strings are a classic SQL typo that SQLite silently accepts; refuse them.
    _ = ledgerd_db_config_dqs_off(handle)
    // Defensive mode stops SQL from corrupting the file (writable_schema and the like).
    _ = ledgerd_db_config_defensive(handle, 1)
    try execute("PRAGMA mmap_size = 0")
    // SQLite's automatic checkpoint runs after a commit without ledgerd's write lock;
    // checkpoints are made by `checkpoint(_:)` under the lock instead.
    try execute("PRAGMA wal_autocheckpoint = 0")
    sqlite3_wal_hook(
      handle,
      { context, _, _, pages in
        if let context { Unmanaged<WALCounter>.fromOpaque(context).takeUnretainedValue().pages = Int(pages) }
        return SQLITE_OK
      }, Unmanaged.passUnretained(wal).toOpaque())
    try execute("PRAGMA cache_size = -\(options.cacheSizeKiB)")
    if options.readOnly {
      try execute("PRAGMA query_only = ON")
    } else {
      try execute("PRAGMA synchronous = \(options.synchronous.rawValue)")
    }
    try execute("PRAGMA foreign_keys = ON")
    // The test hook (`WriteDiscipline.holdWriteMilliseconds`): SQLite calls it before each
    // commit, which runs under the write lock. Installed only when asked for.
    let hold = min(options.discipline.holdWriteMilliseconds, 600_000)
    if hold > 0, !options.readOnly {
      sqlite3_commit_hook(
        handle,
        { context in
          usleep(UInt32(Int(bitPattern: context)) * 1000)
          return 0
        }, UnsafeMutableRawPointer(bitPattern: hold))
    }
  }

  /// Switches the file to WAL mode (a no-op if it is already). Kept apart from opening so
  /// that a caller can first check that the file is its own: changing the journal mode
  /// writes to the file, and a database that is not ours must be left untouched.
  public func enableWAL() throws {
    if try scalarText("PRAGMA journal_mode")?.lowercased() == "wal" { return }
    let mode = try withWriteLock { try scalarText("PRAGMA journal_mode = WAL") }
    guard mode?.lowercased() == "wal" else {
      throw SQLiteError(
        extendedCode: SQLITE_ERROR, message: "could not switch the database to WAL mode (got \(mode ?? "nothing"))")
    }
  }

  // MARK: - Running SQL

  /// Runs one or more statements without parameters (schema scripts, pragmas). A statement
  /// that writes outside a transaction runs under the write lock.
  public func execute(_ sql: String) throws {
    try sql.withCString { start in
      var next: UnsafePointer<CChar>? = start
      while let current = next, current.pointee != 0 {
        var stmt: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let rc = sqlite3_prepare_v2(handle, current, -1, &stmt, &tail)
        guard rc == SQLITE_OK else { throw SQLiteError(connection: handle, code: rc, sql: sql) }
        next = tail
        guard let stmt else { continue }  // whitespace or a comment
        defer { sqlite3_finalize(stmt) }
        try guardWrite(readOnly: sqlite3_stmt_readonly(stmt) != 0, sql: sql) {
          var step = sqlite3_step(stmt)
          while step == SQLITE_ROW { step = sqlite3_step(stmt) }
          guard step == SQLITE_DONE else { throw SQLiteError(connection: handle, code: step, sql: sql) }
        }
      }
    }
  }

  /// Runs `body` under the write lock when `sql` writes outside a transaction (SQLite makes
  /// it a transaction of its own); refuses a write inside a transaction that does not hold
  /// the lock (a `read {}` or a hand-made BEGIN), which would commit unguarded.
  private func guardWrite<T>(readOnly: Bool, sql: String, _ body: () throws -> T) throws -> T {
    guard writeLock != nil, !readOnly, !holdsWriteLock else { return try body() }
    if isInTransaction {
      throw SQLiteError(
        extendedCode: SQLITE_MISUSE, message: "a write outside write {} would commit without the write lock", sql: sql)
    }
    return try withWriteLock {
      try checkFileIdentity()
      let result = try body()
      checkpointIfDue()
      return result
    }
  }

  /// Returns the cached prepared statement for `sql`, compiling it on first use.
  public func statement(_ sql: String) throws -> Statement {
    // Call sites pass string literals, whose text stays at one address for the life of
    // the process: a slot chosen by that address finds the statement without hashing the
    // SQL. The equality check (immediate for the very same string) keeps any other string
    // from being taken for it: text built at run time, whose memory may be reused, or a
    // short string held inline, whose bytes are read from a temporary copy.
    let slot = sql.utf8.withContiguousStorageIfAvailable { bytes in
      Connection.recentSlot(address: UInt(bitPattern: bytes.baseAddress), count: bytes.count)
    }
    if let slot, let recent = recent[slot], recent.sql == sql { return recent }
    let statement: Statement
    if let cached = cache[sql] {
      statement = cached
    } else {
      statement = try Statement(db: handle, sql: sql)
      cache[sql] = statement
    }
    if let slot { recent[slot] = statement }
    return statement
  }

  /// The slot of `recent` for SQL text at `address` with `count` bytes.
  @inline(__always)
  private static func recentSlot(address: UInt, count: Int) -> Int {
    let mixed = (address &+ UInt(bitPattern: count)) &* 0x9E37_79B9_7F4A_7C15
    return Int(truncatingIfNeeded: mixed >> (UInt.bitWidth - recentSlotBits))
  }

  private static let recentSlotBits = 8

  /// The number of statements held in this connection's cache.
  public var cachedStatementCount: Int { cache.count }

  /// Calls `hook` each time a statement of this connection ends a run (SQLite's profile
  /// trace), with what that run cost; nil removes it. For benchmarks and tests: it costs a
  /// clock reading and a string per statement. The cached statements' counters start
  /// from zero here, so that each run reports its own.
  public func trace(_ hook: ((StatementRun) -> Void)?) {
    guard let hook else {
      sqlite3_trace_v2(handle, 0, nil, nil)
      tracer = nil
      return
    }
    for statement in cache.values {
      for counter in StatementRun.counters { _ = sqlite3_stmt_status(statement.handle, counter, 1) }
    }
    let tracer = Tracer(hook)
    self.tracer = tracer
    sqlite3_trace_v2(
      handle, UInt32(SQLITE_TRACE_PROFILE),
      { _, context, statement, elapsed in
        guard let context, let statement, let elapsed, let text = sqlite3_sql(OpaquePointer(statement)) else {
          return 0
        }
        let counts = StatementRun.counters.map { Int(sqlite3_stmt_status(OpaquePointer(statement), $0, 1)) }
        Unmanaged<Tracer>.fromOpaque(context).takeUnretainedValue().hook(
          StatementRun(
            sql: String(cString: text), nanoseconds: elapsed.load(as: Int64.self), vmSteps: counts[0],
            fullScanSteps: counts[1], sorts: counts[2]))
        return 0
      }, Unmanaged.passUnretained(tracer).toOpaque())
  }

  private final class Tracer {
    let hook: (StatementRun) -> Void
    init(_ hook: @escaping (StatementRun) -> Void) { self.hook = hook }
  }

  /// Runs a statement that returns no rows; returns the number of rows it changed.
  @discardableResult
  public func run(_ sql: String, _ arguments: SQLBindable...) throws -> Int {
    try run(sql, arguments: arguments)
  }

  @discardableResult
  public func run(_ sql: String, arguments: [SQLBindable]) throws -> Int {
    try withPrepared(sql, arguments) { statement in
      while try statement.step() {}
      return Int(sqlite3_changes(handle))
    }
  }

  /// Runs a query and returns all its rows.
  public func query(_ sql: String, _ arguments: SQLBindable...) throws -> [Row] {
    try query(sql, arguments: arguments)
  }

  public func query(_ sql: String, arguments: [SQLBindable]) throws -> [Row] {
    try withPrepared(sql, arguments) { statement in
      var rows: [Row] = []
      while try statement.step() { rows.append(statement.currentRow()) }
      return rows
    }
  }

  /// Runs a query and hands its rows to `body` one at a time, as SQLite produces them:
  /// memory does not grow with the result (an export of a million journal entries).
  public func forEachRow(_ sql: String, _ arguments: SQLBindable..., body: (Row) throws -> Void) throws {
    try withPrepared(sql, arguments) { statement in
      while try statement.step() { try body(statement.currentRow()) }
    }
  }

  /// Runs a query and returns its first row, if any.
  public func queryOne(_ sql: String, _ arguments: SQLBindable...) throws -> Row? {
    try queryOne(sql, arguments: arguments)
  }

  public func queryOne(_ sql: String, arguments: [SQLBindable]) throws -> Row? {
    try withPrepared(sql, arguments) { statement in
      try statement.step() ? statement.currentRow() : nil
    }
  }

  /// The first column of the first row as an integer (nil for no row or NULL).
  public func scalarInt(_ sql: String, _ arguments: SQLBindable...) throws -> Int64? {
    guard case .integer(let v) = try firstValue(sql, arguments: arguments) else { return nil }
    return v
  }

  /// The first column of the first row as text (nil for no row or NULL).
  public func scalarText(_ sql: String, _ arguments: SQLBindable...) throws -> String? {
    switch try firstValue(sql, arguments: arguments) {
    case .text(let s): return s
    case .integer(let v): return String(v)
    default: return nil
    }
  }

  /// The first column of the first row (nil for no row or no column), read without
  /// building the row.
  private func firstValue(_ sql: String, arguments: [SQLBindable]) throws -> SQLValue? {
    try withPrepared(sql, arguments) { statement in
      guard try statement.step(), sqlite3_column_count(statement.handle) > 0 else { return nil }
      return statement.column(0)
    }
  }

  /// Runs `body` on the cached statement for `sql` with `arguments` bound, under the write
  /// lock when it writes outside a transaction, and resets the statement after.
  private func withPrepared<T>(_ sql: String, _ arguments: [SQLBindable], _ body: (Statement) throws -> T) throws -> T {
    let statement = try statement(sql)
    return try guardWrite(readOnly: statement.isReadOnly, sql: sql) {
      try statement.prepare(arguments)
      defer { statement.finish() }
      return try body(statement)
    }
  }

  /// `PRAGMA data_version`: changes when another connection commits to the file, so a
  /// sleeping daemon can notice operators' changes without polling tables.
  public func dataVersion() throws -> Int64 {
    try scalarInt("PRAGMA data_version") ?? 0
  }

  /// The rowid of the last row inserted on this connection.
  public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

  /// Whether a transaction is open on this connection.
  public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

  // MARK: - Transactions

  /// Runs `body` in a `BEGIN IMMEDIATE` transaction: committed if it returns, rolled back
  /// if it throws. Nothing a refused command tried to write survives. The write lock is
  /// taken before BEGIN and released after COMMIT or ROLLBACK (and after the checkpoint a
  /// commit that filled the WAL makes).
  ///
  /// The file must still be the one this connection opened, when the transaction begins
  /// and once it has committed (`checkFileIdentity`): a write never goes unnoticed into a
  /// file that was replaced under the process.
  public func write<T>(_ body: (Connection) throws -> T) throws -> T {
    try withWriteLock {
      let result = try transaction("BEGIN IMMEDIATE") { db in
        try checkFileIdentity(committed: false)
        return try body(db)
      }
      try checkFileIdentity(committed: true)
      checkpointIfDue()
      return result
    }
  }

  /// Throws `DatabaseFileReplaced` when `path` no longer names the file this connection
  /// opened (it was renamed over, removed, or moved away): SQLite would go on writing the
  /// file it holds open, which nobody else will ever read. One `stat` call.
  public func checkFileIdentity(committed: Bool = false) throws {
    guard let openedFile else { return }
    let now = FileIdentity(path: path)
    guard now != openedFile else { return }
    throw DatabaseFileReplaced(path: path, opened: openedFile, now: now, afterCommit: committed)
  }

  /// Write transactions that `body` commits part-way: `commit()` ends the one open and
  /// begins the next, and the write lock is let go in between, so that other processes'
  /// writes get their turn (a long import does not hold the daemon off). A throw rolls back
  /// the transaction open at that moment; what `commit()` committed stays.
  public func batchedWrite<T>(_ body: (_ commit: @escaping () throws -> Void) throws -> T) throws -> T {
    precondition(!isInTransaction, "a batched write cannot join another transaction")
    // Inside `withWriteLock` the lock is the caller's to let go.
    let lockedByCaller = holdsWriteLock
    func release() {
      guard !lockedByCaller, let writeLock, holdsWriteLock else { return }
      holdsWriteLock = false
      writeLock.release()
    }
    func begin() throws {
      if let writeLock, !holdsWriteLock {
        writeLockWaited += try writeLock.acquire(
          timeout: options.discipline.lockTimeout, stopWaiting: options.discipline.stopWaiting)
        holdsWriteLock = true
      }
      do {
        try execute("BEGIN IMMEDIATE")
        try checkFileIdentity(committed: false)
      } catch {
        if isInTransaction { try? execute("ROLLBACK") }
        release()
        throw error
      }
    }
    func commit() throws {
      try execute("COMMIT")
      try checkFileIdentity(committed: true)
      checkpointIfDue()
      release()
    }
    try begin()
    do {
      let result = try body {
        try commit()
        try begin()
      }
      try commit()
      return result
    } catch {
      if isInTransaction { try? execute("ROLLBACK") }
      release()
      throw error
    }
  }

  /// Runs `body` holding this file's write lock (at once if this connection already holds
  /// it; nothing to take on a read-only or undisciplined connection).
  public func withWriteLock<T>(timeout: Duration? = nil, _ body: () throws -> T) throws -> T {
    guard let writeLock, !holdsWriteLock else { return try body() }
    writeLockWaited += try writeLock.acquire(
      timeout: timeout ?? options.discipline.lockTimeout, stopWaiting: options.discipline.stopWaiting)
    holdsWriteLock = true
    defer {
      holdsWriteLock = false
      writeLock.release()
    }
    return try body()
  }

  // MARK: - Checkpoints

  /// How a checkpoint treats readers and the WAL file.
  public enum CheckpointMode: String, Sendable {
    /// Copies what no reader still needs; never waits.
    case passive
    /// Copies everything, waits briefly for readers, then truncates the WAL file to zero bytes.
    case truncate

    var code: Int32 { self == .passive ? SQLITE_CHECKPOINT_PASSIVE : SQLITE_CHECKPOINT_TRUNCATE }
  }

  /// What a checkpoint did.
  public struct CheckpointResult: Sendable, Encodable {
    public let mode: String
    /// Frames in the WAL when it ran (after a truncating checkpoint that completed, 0).
    public let walFrames: Int
    /// Frames of those now in the database file.
    public let checkpointedFrames: Int
    /// False when readers kept it from copying everything (it copied what it could).
    public let complete: Bool
    /// How long it waited for the write lock, in milliseconds.
    public let lockWaitMilliseconds: Int
  }

  /// Checkpoints the WAL under the write lock, so that it can never overlap a commit of
  /// another connection. It waits for the lock up to `lockTimeout` (default: the
  /// connection's). A truncating checkpoint waits at most `readerWaitMilliseconds` for
  /// readers; then it copies what it can, like a passive one, and says so.
  @discardableResult
  public func checkpoint(
    _ mode: CheckpointMode = .passive, lockTimeout: Duration? = nil, readerWaitMilliseconds: Int32 = 200
  ) throws -> CheckpointResult {
    guard !options.readOnly else {
      throw SQLiteError(extendedCode: SQLITE_READONLY, message: "a read-only connection never checkpoints")
    }
    let start = ContinuousClock.now
    return try withWriteLock(timeout: lockTimeout) {
      let waited = ContinuousClock.now - start
      // A checkpointer thread copying beside writers (this process's or another's) holds
      // SQLite's checkpoint lock until its copy ends, and SQLite then answers busy at once
      // (no frame counted): this one waits for that copy, up to 10 s.
      let deadline = ContinuousClock.now + .seconds(10)
      while true {
        let (result, otherRunning) = try walCheckpointReportingOther(
          mode, readerWaitMilliseconds: readerWaitMilliseconds, waited: waited)
        if !otherRunning || ContinuousClock.now >= deadline { return result }
        usleep(5_000)
      }
    }
  }

  /// Runs SQLite's checkpoint now. Callers hold the write lock, or (`checkpointBesideWriters`)
  /// keep the WAL from restarting while it runs.
  @discardableResult
  func walCheckpoint(_ mode: CheckpointMode, readerWaitMilliseconds: Int32 = 0, waited: Duration = .zero) throws
    -> CheckpointResult
  {
    try walCheckpointReportingOther(mode, readerWaitMilliseconds: readerWaitMilliseconds, waited: waited).result
  }

  /// The same, saying whether it did not run because another connection's checkpoint was
  /// running (SQLite's answer then: busy, with no frame count).
  private func walCheckpointReportingOther(
    _ mode: CheckpointMode, readerWaitMilliseconds: Int32, waited: Duration
  ) throws -> (result: CheckpointResult, otherRunning: Bool) {
    var log: Int32 = 0
    var done: Int32 = 0
    if mode != .passive { sqlite3_busy_timeout(handle, readerWaitMilliseconds) }
    let rc = sqlite3_wal_checkpoint_v2(handle, nil, mode.code, &log, &done)
    if mode != .passive { sqlite3_busy_timeout(handle, options.busyTimeoutMilliseconds) }
    guard rc == SQLITE_OK || rc == SQLITE_BUSY else {
      throw SQLiteError(connection: handle, code: rc, sql: "checkpoint")
    }
    let complete = rc == SQLITE_OK && log == done
    if complete { wal.pages = 0 }
    let ms = waited.components.seconds * 1000 + waited.components.attoseconds / 1_000_000_000_000_000
    let result = CheckpointResult(
      mode: mode.rawValue, walFrames: Int(max(log, 0)), checkpointedFrames: Int(max(done, 0)), complete: complete,
      lockWaitMilliseconds: Int(ms))
    return (result, rc == SQLITE_BUSY && log < 0)
  }

  /// After a commit, still holding the lock: a passive checkpoint once the WAL has reached
  /// the threshold, here or on the checkpointer's thread (which takes the lock once this
  /// connection lets it go). Its failure does not undo the commit; the next commit tries again.
  private func checkpointIfDue() {
    let threshold = options.discipline.checkpointAfterPages
    guard threshold > 0, wal.pages >= threshold, !isInTransaction else { return }
    if options.discipline.checkpointOnOwnThread, writeLock != nil {
      if checkpointer == nil { checkpointer = Checkpointer(path: path, options: options) }
      checkpointer?.request()
      return
    }
    _ = try? walCheckpoint(.passive)
  }

  /// The checkpoints this connection's commits have had made on the checkpointer's thread.
  public var checkpointsMade: CheckpointCounts { checkpointer?.made ?? CheckpointCounts() }

  /// Waits until the checkpoints asked of the checkpointer's thread are done.
  public func waitForCheckpoints() {
    checkpointer?.waitUntilIdle()
  }

  /// The WAL's page count after this connection's last commit (0 after a complete checkpoint).
  public var walPagesAfterLastCommit: Int { wal.pages }

  /// Runs `body` in a read transaction, so every query in it sees the same snapshot.
  public func read<T>(_ body: (Connection) throws -> T) throws -> T {
    try transaction("BEGIN DEFERRED", body)
  }

  private func transaction<T>(_ begin: String, _ body: (Connection) throws -> T) throws -> T {
    guard !isInTransaction else {
      throw SQLiteError(
        extendedCode: SQLITE_MISUSE, message: "a transaction is already open on this connection", sql: begin)
    }
    try execute(begin)
    let result: T
    do {
      result = try body(self)
    } catch {
      if isInTransaction { try? execute("ROLLBACK") }
      throw error
    }
    do {
      try execute("COMMIT")
    } catch {
      if isInTransaction { try? execute("ROLLBACK") }
      throw error
    }
    return result
  }

  // MARK: - File-level facts

  /// The version of the SQLite library this binary is linked against.
  public static var libraryVersion: String { String(cString: sqlite3_libversion()) }

  /// `PRAGMA application_id`, the 32-bit tag in the file header that names its owner.
  public func applicationID() throws -> Int32 {
    Int32(truncatingIfNeeded: try scalarInt("PRAGMA application_id") ?? 0)
  }

  public func setApplicationID(_ id: Int32) throws {
    try execute("PRAGMA application_id = \(id)")
  }

  /// Copies the whole database into a new file at `destination` with SQLite's online
  /// backup API. The copy is made within one read snapshot, so writers on other
  /// connections go on, and the copy is a consistent database as of one commit.
  public func backup(to destination: String) throws {
    var target: OpaquePointer?
    var rc = sqlite3_open_v2(destination, &target, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil)
    guard rc == SQLITE_OK, let target else {
      let error = SQLiteError(connection: target, code: rc, sql: nil)
      sqlite3_close_v2(target)
      throw error
    }
    defer { sqlite3_close_v2(target) }
    guard let backup = sqlite3_backup_init(target, "main", handle, "main") else {
      throw SQLiteError(connection: target, code: sqlite3_errcode(target), sql: nil)
    }
    // One step of -1 pages copies everything while holding a single read snapshot;
    // a busy source is retried briefly rather than failed.
    var tries = 0
    repeat {
      rc = sqlite3_backup_step(backup, -1)
      if rc == SQLITE_BUSY || rc == SQLITE_LOCKED {
        tries += 1
        sqlite3_sleep(50)
      }
    } while (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) && tries < 200
    let finish = sqlite3_backup_finish(backup)
    guard rc == SQLITE_DONE, finish == SQLITE_OK else {
      throw SQLiteError(connection: target, code: rc == SQLITE_DONE ? finish : rc, sql: nil)
    }
  }
}

/// A file's device and inode: what tells a file apart from another put at its path.
public struct FileIdentity: Equatable, Sendable, CustomStringConvertible {
  public let device: UInt64
  public let inode: UInt64

  /// The file at `path` now; nil when there is none (or it is not a file on disk, as for
  /// an in-memory database).
  public init?(path: String) {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    device = UInt64(info.st_dev)
    inode = UInt64(info.st_ino)
  }

  public var description: String { "device \(device) inode \(inode)" }
}

/// The database file was replaced or removed under a connection that writes it (a restore
/// done with `mv` or `cp` while ledgerd ran). Nothing more may be written: what this
/// process writes would go into a file nobody reads.
public struct DatabaseFileReplaced: Error, CustomStringConvertible, Sendable {
  public let path: String
  public let opened: FileIdentity
  public let now: FileIdentity?
  /// True when it was found after a commit: that commit went into the file opened, not
  /// into the one `path` names now.
  public let afterCommit: Bool

  public var description: String {
    "the ledger file \(path) is no longer the file this process opened (\(opened)); "
      + (now.map { "another file (\($0)) was put in its place" } ?? "it was removed or moved away")
      + (afterCommit ? "; the last transaction was committed into the replaced file" : "; nothing was written")
      + "; stop ledgerd before restoring or moving the ledger (docs/operations.md, Backup and restore)"
  }
}

/// One run of a statement, as `Connection.trace(_:)` reports it.
public struct StatementRun: Sendable {
  /// The statement's SQL text.
  public let sql: String
  /// Time spent in SQLite on this run.
  public let nanoseconds: Int64
  /// SQLite virtual-machine steps, steps of full table scans, and sorts.
  public let vmSteps: Int
  public let fullScanSteps: Int
  public let sorts: Int

  static let counters = [SQLITE_STMTSTATUS_VM_STEP, SQLITE_STMTSTATUS_FULLSCAN_STEP, SQLITE_STMTSTATUS_SORT]
}
