import Foundation
import Testing

@testable import LedgerSQLite

/// A unique database file in its own directory under the system's temporary folder.
/// Files are left for the system to clean: a connection may outlive this value.
final class TempDatabase {
  let directory: String
  let path: String

  init() {
    directory = NSTemporaryDirectory() + "ledgerd-sqlite-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    path = directory + "/test.db"
  }

  func open(readOnly: Bool = false) throws -> Connection {
    let c = try Connection(path: path, options: ConnectionOptions(readOnly: readOnly))
    if !readOnly { try c.enableWAL() }
    return c
  }
}

@Suite struct ConnectionTests {
  @Test func opensInWALWithForeignKeysAndFullSync() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    #expect(try db.scalarText("PRAGMA journal_mode") == "wal")
    #expect(try db.scalarInt("PRAGMA foreign_keys") == 1)
    #expect(try db.scalarInt("PRAGMA synchronous") == 2)  // FULL
    #expect(try db.scalarInt("PRAGMA mmap_size") == 0)
    #expect(try db.scalarInt("PRAGMA busy_timeout") == 5000)
  }

  @Test func bindsAndReadsEveryValueKind() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (i INTEGER, s TEXT, b BLOB, n ANY) STRICT")
    try db.run("INSERT INTO t VALUES (?, ?, ?, ?)", Int64.max, "héllo €", SQLValue.blob([0, 1, 255]), SQLValue.null)
    let row = try #require(try db.queryOne("SELECT * FROM t"))
    #expect(try row.int("i") == Int64.max)
    #expect(try row.string("s") == "héllo €")
    #expect(row["b"] == .blob([0, 1, 255]))
    #expect(row["n"] == .null)
    #expect(try row.optionalInt("n") == nil)
  }

  @Test func statementsAreCachedPerConnection() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (x INTEGER)")
    let before = db.cachedStatementCount
    for i in 0..<100 { try db.run("INSERT INTO t VALUES (?)", i) }
    #expect(db.cachedStatementCount == before + 1)
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 100)
  }

  /// `trace(_:)` (for `benchmark --statements`) reports every statement run from then on,
  /// the cached ones and COMMIT alike, each with its own cost, and none run before it.
  @Test func theTraceReportsEachRunSinceItWasInstalled() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL) STRICT")
    try db.write { db in for i in 0..<50 { try db.run("INSERT INTO t (v) VALUES (?)", "old \(i)") } }
    for _ in 0..<3 { _ = try db.scalarInt("SELECT count(*) FROM t WHERE v <> ''") }
    var runs: [StatementRun] = []
    db.trace { runs.append($0) }
    try db.write { db in
      for i in 0..<50 { try db.run("INSERT INTO t (v) VALUES (?)", "row \(i)") }
    }
    #expect(try db.scalarInt("SELECT count(*) FROM t WHERE v <> ''") == 100)
    db.trace(nil)
    _ = try db.scalarInt("SELECT count(*) FROM t")
    #expect(runs.filter { $0.sql == "INSERT INTO t (v) VALUES (?)" }.count == 50)
    #expect(runs.contains { $0.sql.uppercased().hasPrefix("COMMIT") })
    #expect(!runs.contains { $0.sql.hasPrefix("CREATE TABLE") || $0.sql == "SELECT count(*) FROM t" })
    // The scan's one run since the trace began, alone: a step from each of 100 rows to the
    // next (not the 3 runs of 50 rows before it).
    let scans = runs.filter { $0.sql.hasPrefix("SELECT count(*) FROM t WHERE") }
    #expect(scans.count == 1 && scans.first?.fullScanSteps == 99)
    #expect(runs.allSatisfy { $0.nanoseconds >= 0 && $0.vmSteps >= 0 })
  }

  @Test func errorsCarryExtendedCodeMessageAndSQLButNotValues() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (x TEXT UNIQUE)")
    try db.run("INSERT INTO t VALUES (?)", "secret-value")
    let error = try #require(throws: SQLiteError.self) { try db.run("INSERT INTO t VALUES (?)", "secret-value") }
    #expect(error.extendedCode == 2067)  // SQLITE_CONSTRAINT_UNIQUE
    #expect(error.isUniqueViolation)
    #expect(error.message.contains("UNIQUE constraint failed"))
    #expect(error.sql == "INSERT INTO t VALUES (?)")
    #expect(!error.description.contains("secret-value"))
  }

  @Test func syntaxErrorsNameTheSQL() throws {
    let db = try TempDatabase().open()
    let error = try #require(throws: SQLiteError.self) { try db.query("SELEC 1") }
    #expect(error.primaryCode == 1)
    #expect(error.description.contains("SELEC 1"))
  }

  @Test func writeCommitsOnReturnAndRollsBackOnThrow() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (x INTEGER)")
    _ = try db.write { try $0.run("INSERT INTO t VALUES (1)") }
    struct Boom: Error {}
    #expect(throws: Boom.self) {
      try db.write { db in
        try db.run("INSERT INTO t VALUES (2)")
        throw Boom()
      }
    }
    #expect(try db.scalarText("SELECT group_concat(x) FROM t") == "1")
    #expect(!db.isInTransaction)
  }

  @Test func aFailingStatementRollsBackTheWholeTransaction() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (x INTEGER CHECK (x > 0))")
    #expect(throws: SQLiteError.self) {
      try db.write { db in
        try db.run("INSERT INTO t VALUES (1)")
        try db.run("INSERT INTO t VALUES (-1)")
      }
    }
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 0)
  }

  @Test func writeTakesTheWriteLockAtBegin() throws {
    let tmp = TempDatabase()
    let a = try tmp.open()
    var options = ConnectionOptions()
    options.busyTimeoutMilliseconds = 50
    options.discipline.lock = false  // SQLite's own lock is under test here, not ledgerd's
    let b = try Connection(path: tmp.path, options: options)
    try a.execute("CREATE TABLE t (x INTEGER)")
    try a.write { _ in
      // BEGIN IMMEDIATE on the second connection must fail at once with SQLITE_BUSY,
      // not later on its first write.
      let error = try #require(throws: SQLiteError.self) { try b.write { _ in } }
      #expect(error.isBusy)
    }
  }

  @Test func nestedTransactionsAreRefused() throws {
    let db = try TempDatabase().open()
    #expect(throws: SQLiteError.self) { try db.write { db in try db.write { _ in } } }
    #expect(!db.isInTransaction)
  }

  @Test func readOnlyConnectionsCannotWrite() throws {
    let tmp = TempDatabase()
    let rw = try tmp.open()
    try rw.execute("CREATE TABLE t (x INTEGER)")
    let ro = try tmp.open(readOnly: true)
    #expect(try ro.scalarInt("SELECT count(*) FROM t") == 0)
    let error = try #require(throws: SQLiteError.self) { try ro.run("INSERT INTO t VALUES (1)") }
    #expect(error.primaryCode == 8)  // SQLITE_READONLY
  }

  @Test func readSeesOneSnapshot() throws {
    let tmp = TempDatabase()
    let writer = try tmp.open()
    try writer.execute("CREATE TABLE t (x INTEGER)")
    let reader = try tmp.open(readOnly: true)
    try reader.read { r in
      #expect(try r.scalarInt("SELECT count(*) FROM t") == 0)
      try writer.run("INSERT INTO t VALUES (1)")
      #expect(try r.scalarInt("SELECT count(*) FROM t") == 0)
    }
    #expect(try reader.scalarInt("SELECT count(*) FROM t") == 1)
  }

  @Test func doubleQuotedStringLiteralsAreRefused() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (x TEXT)")
    #expect(throws: SQLiteError.self) { try db.query("SELECT * FROM t WHERE x = \"nope\"") }
  }

  @Test func backupCopiesAConsistentSelfContainedFile() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    try db.execute("CREATE TABLE t (x INTEGER)")
    try db.write { db in for i in 0..<1000 { try db.run("INSERT INTO t VALUES (?)", i) } }
    let copyPath = tmp.directory + "/copy.db"
    try db.backup(to: copyPath)
    let copy = try Connection(path: copyPath, options: ConnectionOptions(readOnly: true))
    #expect(try copy.scalarInt("SELECT sum(x) FROM t") == 499_500)
    #expect(try copy.scalarText("PRAGMA integrity_check") == "ok")
  }

  @Test func notADatabaseIsReported() throws {
    let tmp = TempDatabase()
    try Data("this is not a database, just text long enough to fill a header.......".utf8).write(
      to: URL(fileURLWithPath: tmp.path))
    let error = try #require(throws: SQLiteError.self) {
      let c = try Connection(path: tmp.path)
      _ = try c.applicationID()
    }
    #expect(error.isNotADatabase)
  }
}
