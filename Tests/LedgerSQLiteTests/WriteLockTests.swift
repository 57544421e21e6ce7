import Foundation
import Testing

@testable import LedgerSQLite

#if canImport(Glibc)
  import Glibc
#endif

/// The write discipline against the WAL-reset bug: every write and checkpoint under one
/// `flock` on `<db>.lock`, SQLite's automatic checkpoints off.
@Suite struct WriteLockTests {
  func options(timeout: Duration = .milliseconds(300), readOnly: Bool = false) -> ConnectionOptions {
    var options = ConnectionOptions(readOnly: readOnly)
    options.discipline.lockTimeout = timeout
    return options
  }

  @Test func automaticCheckpointsAreOffOnEveryConnection() throws {
    let tmp = TempDatabase()
    let rw = try tmp.open()
    try rw.execute("CREATE TABLE t (x INTEGER)")
    let ro = try tmp.open(readOnly: true)
    #expect(try rw.scalarInt("PRAGMA wal_autocheckpoint") == 0)
    #expect(try ro.scalarInt("PRAGMA wal_autocheckpoint") == 0)
    #expect(rw.writeLock?.path != nil)
    #expect(rw.writeLock?.path == WriteLock.lockPath(forDatabase: tmp.path))
    #expect(ro.writeLock == nil)
  }

  /// A lock taken through another open file description (what another process does):
  /// writes, statements outside a transaction, and checkpoints all wait, then fail busy.
  @Test func anotherHolderBlocksWritesAndCheckpointsThenTheyFailBusy() throws {
    let tmp = TempDatabase()
    let db = try Connection(path: tmp.path, options: options())
    try db.enableWAL()
    try db.execute("CREATE TABLE t (x INTEGER)")
    let fd = open(tmp.path + ".lock", O_RDWR)
    #expect(fd >= 0)
    defer { close(fd) }
    #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)

    let started = ContinuousClock.now
    let busy = try #require(throws: WriteLockBusy.self) { try db.write { try $0.run("INSERT INTO t VALUES (1)") } }
    #expect(ContinuousClock.now - started >= .milliseconds(300))
    #expect(busy.description.hasPrefix("ledger busy: another ledgerd process has held the write lock for"))
    #expect(!busy.heldByThisProcess)
    #expect(throws: WriteLockBusy.self) { try db.run("INSERT INTO t VALUES (2)") }
    #expect(throws: WriteLockBusy.self) { try db.execute("INSERT INTO t VALUES (3)") }
    #expect(throws: WriteLockBusy.self) { try db.checkpoint(.passive) }
    // Reads need no lock.
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 0)

    flock(fd, LOCK_UN)
    _ = try db.write { try $0.run("INSERT INTO t VALUES (1)") }
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 1)
  }

  /// A holder in this process (the checkpoint thread, another connection) is named as
  /// such when a write gives up waiting, not as another process.
  @Test func aHolderInThisProcessIsNamedAsSuch() throws {
    let tmp = TempDatabase()
    let db = try Connection(path: tmp.path, options: options())
    try db.enableWAL()
    try db.execute("CREATE TABLE t (x INTEGER)")
    let lock = try #require(db.writeLock)
    #expect(try lock.tryAcquire())
    let busy = try #require(throws: WriteLockBusy.self) { try db.write { try $0.run("INSERT INTO t VALUES (1)") } }
    #expect(busy.heldByThisProcess)
    #expect(
      busy.description.hasPrefix(
        "ledger busy: another connection of this process (its checkpoint or one of its own writes) has held"))
    lock.release()
    _ = try db.write { try $0.run("INSERT INTO t VALUES (1)") }
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 1)
  }

  /// A batched write (a long import) holds the lock in each batch, keeps what it committed
  /// when a later batch fails, and leaves the lock free.
  @Test func batchedWritesHoldTheLockPerBatchAndKeepWhatTheyCommitted() throws {
    let tmp = TempDatabase()
    let db = try Connection(path: tmp.path, options: options())
    try db.enableWAL()
    try db.execute("CREATE TABLE t (x INTEGER)")
    let fd = open(tmp.path + ".lock", O_RDWR)
    #expect(fd >= 0)
    defer { close(fd) }
    struct Stop: Error {}
    #expect(throws: Stop.self) {
      try db.batchedWrite { commit in
        for i in 1...10 {
          try db.run("INSERT INTO t VALUES (?)", i)
          #expect(flock(fd, LOCK_EX | LOCK_NB) != 0, "another process cannot take the lock mid-batch")
          if i % 4 == 0 { try commit() }
        }
        throw Stop()
      }
    }
    // Batches 1-4 and 5-8 were committed; 9 and 10 were rolled back with the failure.
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 8)
    #expect(!db.isInTransaction)
    #expect(flock(fd, LOCK_EX | LOCK_NB) == 0, "the lock is free afterwards")
    flock(fd, LOCK_UN)
  }

  /// Two connections of one process share one lock object: the second waits for the
  /// first's transaction (no self-deadlock, no overlap).
  @Test func connectionsOfOneProcessExcludeEachOther() throws {
    let tmp = TempDatabase()
    let a = try Connection(path: tmp.path, options: options())
    try a.enableWAL()
    try a.execute("CREATE TABLE t (x INTEGER)")
    let b = try Connection(path: tmp.path, options: options())
    #expect(a.writeLock === b.writeLock)
    try a.write { db in
      try db.run("INSERT INTO t VALUES (1)")
      #expect(throws: WriteLockBusy.self) { try b.write { _ in } }
      #expect(throws: WriteLockBusy.self) { try b.checkpoint(.truncate) }
    }
    _ = try b.write { try $0.run("INSERT INTO t VALUES (2)") }
    #expect(try a.scalarInt("SELECT count(*) FROM t") == 2)
  }

  @Test func aWriteInsideAReadTransactionIsRefused() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    try db.execute("CREATE TABLE t (x INTEGER)")
    let error = try #require(throws: SQLiteError.self) {
      try db.read { try $0.run("INSERT INTO t VALUES (1)") }
    }
    #expect(error.primaryCode == 21)  // SQLITE_MISUSE
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 0)
  }

  /// A commit that takes the WAL past the threshold checkpoints it before the lock is
  /// released (when checkpoints are made on the committing connection).
  @Test func aCommitPastTheThresholdCheckpoints() throws {
    let tmp = TempDatabase()
    var o = options()
    o.discipline.checkpointAfterPages = 50
    o.discipline.checkpointOnOwnThread = false
    let db = try Connection(path: tmp.path, options: o)
    try db.enableWAL()
    try db.execute("CREATE TABLE t (x TEXT)")
    try db.write { db in for _ in 0..<10 { try db.run("INSERT INTO t VALUES (?)", String(repeating: "x", count: 100)) }
    }
    #expect(db.walPagesAfterLastCommit > 0 && db.walPagesAfterLastCommit < 50)
    try db.write { db in
      for _ in 0..<400 { try db.run("INSERT INTO t VALUES (?)", String(repeating: "y", count: 1000)) }
    }
    #expect(db.walPagesAfterLastCommit == 0)
    let after = try db.checkpoint(.passive)
    #expect(after.complete)
    #expect(after.walFrames == after.checkpointedFrames)
  }

  /// By default the checkpoint a commit makes due runs on the checkpointer's thread, which
  /// waits for the write lock: nothing reaches the database file while another holder has
  /// the lock, and everything does once it is let go.
  @Test func aDueCheckpointOnItsOwnThreadWaitsForTheLock() throws {
    let tmp = TempDatabase()
    // The checkpointer waits as long as a writer of this connection would (30 s here).
    var o = options(timeout: .seconds(30))
    o.discipline.checkpointAfterPages = 50
    #expect(o.discipline.checkpointOnOwnThread)
    let db = try Connection(path: tmp.path, options: o)
    try db.enableWAL()
    try db.execute("CREATE TABLE t (x TEXT)")
    _ = try db.checkpoint(.passive)
    func fileSize() throws -> Int { (try FileManager.default.attributesOfItem(atPath: tmp.path)[.size] as? Int) ?? -1 }
    let before = try fileSize()
    try db.withWriteLock {
      try db.write { db in
        for _ in 0..<400 { try db.run("INSERT INTO t VALUES (?)", String(repeating: "y", count: 1000)) }
      }
      #expect(db.walPagesAfterLastCommit >= 50)
      // The checkpointer has been asked, and waits: the lock is still held here, for longer
      // than a second (a busy machine can hold it up that long; the checkpoint is still made).
      usleep(1_500_000)
      #expect(try fileSize() == before)
    }
    db.waitForCheckpoints()
    #expect(try fileSize() > before)
    // All of the WAL is in the database: the next commit starts it over.
    _ = try db.write { db in try db.run("INSERT INTO t VALUES ('z')") }
    #expect(db.walPagesAfterLastCommit > 0 && db.walPagesAfterLastCommit < 10)
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 401)
  }

  /// The test hook that holds write transactions open: installed only when asked, it makes
  /// each commit wait with the lock held, and leaves reads alone.
  @Test func theHoldHookDelaysCommitsUnderTheLock() throws {
    let tmp = TempDatabase()
    var o = options()
    o.discipline.holdWriteMilliseconds = 300
    let db = try Connection(path: tmp.path, options: o)
    try db.enableWAL()
    try db.execute("CREATE TABLE t (x INTEGER)")
    let fd = open(tmp.path + ".lock", O_RDWR)
    defer { close(fd) }
    final class Probe: @unchecked Sendable {
      var lockWasFree = true
      let done = DispatchSemaphore(value: 0)
    }
    let probe = Probe()
    let prober = Thread {
      usleep(150_000)
      probe.lockWasFree = flock(fd, LOCK_EX | LOCK_NB) == 0
      probe.done.signal()
    }
    var started = ContinuousClock.now
    prober.start()
    _ = try db.write { try $0.run("INSERT INTO t VALUES (1)") }
    #expect(ContinuousClock.now - started >= .milliseconds(300))
    probe.done.wait()
    #expect(!probe.lockWasFree, "the lock is held while the commit waits")
    started = ContinuousClock.now
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 1)
    #expect(ContinuousClock.now - started < .milliseconds(200))
    let plain = try tmp.open()
    started = ContinuousClock.now
    _ = try plain.write { try $0.run("INSERT INTO t VALUES (2)") }
    #expect(ContinuousClock.now - started < .milliseconds(200))
  }

  /// A connection adds up how long its writes waited for the lock (what the benchmark
  /// reports as the writes held off by checkpoints).
  @Test func aConnectionCountsItsWaitsForTheLock() throws {
    let tmp = TempDatabase()
    let db = try Connection(path: tmp.path, options: options(timeout: .seconds(5)))
    try db.enableWAL()
    try db.execute("CREATE TABLE t (x INTEGER)")
    _ = try db.write { try $0.run("INSERT INTO t VALUES (1)") }
    #expect(db.writeLockWaited < .milliseconds(100))
    let lock = try #require(db.writeLock)
    #expect(try lock.tryAcquire())
    let releaser = Thread {
      usleep(300_000)
      lock.release()
    }
    releaser.start()
    _ = try db.write { try $0.run("INSERT INTO t VALUES (2)") }
    #expect(db.writeLockWaited >= .milliseconds(250))
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 2)
  }

  @Test func aTruncatingCheckpointEmptiesTheWAL() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    try db.execute("CREATE TABLE t (x INTEGER)")
    try db.write { db in for i in 0..<100 { try db.run("INSERT INTO t VALUES (?)", i) } }
    let size = { (try? FileManager.default.attributesOfItem(atPath: tmp.path + "-wal")[.size] as? Int) ?? -1 }
    #expect(size() > 0)
    let result = try db.checkpoint(.truncate)
    #expect(result.complete)
    #expect(size() == 0)
  }

  @Test(arguments: [
    ("3.40.1", true), ("3.7.0", true), ("3.51.2", true), ("3.51.3", false), ("3.52.0", false), ("3.6.23", false),
    ("4.0.0", false),
  ])
  func walResetBugVersions(version: String, affected: Bool) {
    #expect(SQLiteVersion.hasWALResetBug(version) == affected)
  }
}
