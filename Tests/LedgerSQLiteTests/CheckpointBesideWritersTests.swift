import Foundation
import Testing

@testable import LedgerSQLite

#if canImport(Glibc)
  import Glibc
#endif

/// Checkpoints that copy while writers go on (`checkpointBesideWriters`), and the SQLite
/// behaviour they rest on: a reader holding a snapshot that needs WAL frames keeps every
/// writer from restarting the WAL, which is what the WAL-reset bug needs.
@Suite struct CheckpointBesideWritersTests {
  /// A connection that checkpoints only when told (no threshold, no thread).
  func open(_ tmp: TempDatabase) throws -> Connection {
    var options = ConnectionOptions()
    options.discipline.lockTimeout = .seconds(30)
    options.discipline.checkpointAfterPages = 0
    let db = try Connection(path: tmp.path, options: options)
    try db.enableWAL()
    return db
  }

  /// A writer on a new file whose table `t` got `rows` rows in one commit (all in the WAL).
  func writerWithRows(_ tmp: TempDatabase, rows: Int) throws -> Connection {
    let writer = try open(tmp)
    try writer.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, x TEXT)")
    try fill(writer, rows: rows)
    return writer
  }

  /// A second connection in a read transaction begun now.
  func reading(_ tmp: TempDatabase) throws -> Connection {
    let reader = try open(tmp)
    try reader.execute("BEGIN DEFERRED")
    _ = try reader.scalarInt("SELECT count(*) FROM t")
    return reader
  }

  func fill(_ db: Connection, rows: Int, from: Int = 0) throws {
    try db.write { db in
      for i in from..<(from + rows) {
        try db.run("INSERT INTO t VALUES (?, ?)", i, String(repeating: "x", count: 1000))
      }
    }
  }

  @Test func theWALIndexGivesTheFramesAndHowManyAreCopied() throws {
    let tmp = TempDatabase()
    let writer = try writerWithRows(tmp, rows: 200)
    let frames = writer.walPagesAfterLastCommit
    #expect(frames > 20)
    let reader = try reading(tmp)
    #expect(try reader.walIndexFrames() == (frames: frames, backfilled: 0))
    let checkpoint = try writer.checkpoint(.passive)
    #expect(checkpoint.complete && checkpoint.walFrames == frames)
    #expect(try reader.walIndexFrames() == (frames: frames, backfilled: frames))
    try reader.execute("ROLLBACK")
  }

  /// The property the copy beside writers relies on, checked on the linked SQLite: with no
  /// reader, the first commit after a complete checkpoint restarts the WAL; with a reader
  /// that began while frames were left to copy, no commit does until that reader ends.
  @Test func aReaderThatNeedsTheWALKeepsWritersFromRestartingIt() throws {
    let tmp = TempDatabase()
    let writer = try writerWithRows(tmp, rows: 200)
    let frames = writer.walPagesAfterLastCommit

    // No reader: the WAL restarts (the commit's few frames are all it holds).
    #expect(try writer.checkpoint(.passive).complete)
    try fill(writer, rows: 1, from: 1000)
    #expect(writer.walPagesAfterLastCommit < 10)

    // A reader begun while frames are left to copy: the WAL grows on, though fully copied.
    try fill(writer, rows: 200, from: 2000)
    let reader = try reading(tmp)
    let index = try reader.walIndexFrames()
    #expect(index.backfilled < index.frames)
    #expect(try writer.checkpoint(.passive).complete)
    #expect(try reader.walIndexFrames().backfilled == index.frames)
    try fill(writer, rows: 1, from: 3000)
    #expect(writer.walPagesAfterLastCommit > index.frames, "the WAL restarted under a reader that needs it")
    // The reader still sees its snapshot, and once it ends the WAL restarts again.
    #expect(try reader.scalarInt("SELECT count(*) FROM t") == 401)
    try reader.execute("ROLLBACK")
    #expect(try writer.checkpoint(.passive).complete)
    try fill(writer, rows: 1, from: 4000)
    #expect(writer.walPagesAfterLastCommit < 10)
    #expect(frames > 20)
  }

  /// A checkpoint beside writers copies everything, ends with the WAL fully copied (the next
  /// commit restarts it), and holds nothing: with nothing to copy it runs no copy at all.
  @Test func aCheckpointBesideWritersCopiesEverythingAndLetsTheWALRestart() throws {
    let tmp = TempDatabase()
    let writer = try open(tmp)
    try writer.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, x TEXT)")
    _ = try writer.checkpoint(.truncate)
    func fileSize() throws -> Int { (try FileManager.default.attributesOfItem(atPath: tmp.path)[.size] as? Int) ?? -1 }
    let before = try fileSize()
    try fill(writer, rows: 2000)
    let frames = writer.walPagesAfterLastCommit
    #expect(frames > 200)
    let checkpointer = try open(tmp)
    let reader = try open(tmp)
    #expect(try checkpointer.checkpointBesideWriters(pinning: reader, tailFrames: 10) == 1)
    #expect(!reader.isInTransaction)
    #expect(try fileSize() > before + 1_000_000)
    let copied = try reader.read { try $0.walIndexFrames() }
    #expect(copied == (frames: frames, backfilled: frames))
    // Nothing left: no copy (and the lock is not kept).
    #expect(try checkpointer.checkpointBesideWriters(pinning: reader, tailFrames: 10) == 0)
    #expect(try writer.writeLock?.tryAcquire() == true)
    writer.writeLock?.release()
    try fill(writer, rows: 1, from: 5000)
    #expect(writer.walPagesAfterLastCommit < 10)
    #expect(try writer.scalarText("PRAGMA integrity_check") == "ok")
    // A tail smaller than `tailFrames` is copied under the lock at once.
    try fill(writer, rows: 5, from: 6000)
    #expect(try checkpointer.checkpointBesideWriters(pinning: reader, tailFrames: 1_000) == 0)
    try fill(writer, rows: 1, from: 7000)
    #expect(writer.walPagesAfterLastCommit < 10)
  }

  /// While one thread commits, with the short pauses a scheduler makes between its
  /// transactions, the checkpointer's thread copies beside it; once it is idle, fewer frames
  /// than the threshold are left to copy, and every committed row is in the database, whole.
  /// (How many checkpoints run during the loop depends on the machine's load.)
  @Test func aWriterCommittingAndTheCheckpointerThread() throws {
    let tmp = TempDatabase()
    var options = ConnectionOptions()
    options.discipline.lockTimeout = .seconds(30)
    options.discipline.checkpointAfterPages = 100
    #expect(options.discipline.checkpointOnOwnThread)
    let writer = try Connection(path: tmp.path, options: options)
    try writer.enableWAL()
    try writer.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, x TEXT)")
    for batch in 0..<150 {
      try fill(writer, rows: 40, from: batch * 40)
      usleep(500)
    }
    writer.waitForCheckpoints()
    let made = writer.checkpointsMade
    #expect(made.besideWriters > 0)
    #expect(made.underLock == 0)
    // Idle, the checkpointer has left fewer frames to copy than the threshold: each of its
    // checkpoints ended with the WAL all copied, and later commits did not reach it again.
    let reader = try reading(tmp)
    let index = try reader.walIndexFrames()
    try reader.execute("ROLLBACK")
    #expect(index.frames - index.backfilled < 100, "\(index)")
    #expect(try writer.scalarInt("SELECT count(*) FROM t") == 6000)
    #expect(try writer.scalarText("PRAGMA integrity_check") == "ok")
    // What a new connection reads from the database file alone (after the WAL is copied and
    // removed) is the same.
    _ = try writer.checkpoint(.truncate)
    let fresh = try Connection(path: tmp.path, options: ConnectionOptions(readOnly: true))
    #expect(try fresh.scalarInt("SELECT count(*) FROM t") == 6000)
    #expect(try fresh.scalarInt("SELECT sum(length(x)) FROM t") == 6_000_000)
  }

  /// A checkpoint that cannot be made is counted with its error (the daemon logs it when it
  /// stops), and a later one succeeds once the file can be reached again.
  @Test func aCheckpointThatFailsIsCountedWithItsError() throws {
    let tmp = TempDatabase()
    var options = ConnectionOptions()
    options.discipline.lockTimeout = .seconds(30)
    options.discipline.checkpointAfterPages = 50
    // The file is moved aside on purpose below, under a writer that goes on writing it.
    options.checksFileIdentity = false
    let writer = try Connection(path: tmp.path, options: options)
    try writer.enableWAL()
    try writer.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, x TEXT)")
    // The checkpointer opens its own connections at its first checkpoint: with a folder
    // where the database file was, it cannot.
    try FileManager.default.moveItem(atPath: tmp.path, toPath: tmp.path + ".aside")
    try FileManager.default.createDirectory(atPath: tmp.path, withIntermediateDirectories: false)
    try fill(writer, rows: 200)
    writer.waitForCheckpoints()
    let failed = writer.checkpointsMade
    #expect(failed.failed >= 1)
    #expect(failed.besideWriters == 0 && failed.underLock == 0)
    #expect(failed.lastFailure?.contains("cannot open a connection to \(tmp.path)") == true, "\(failed)")
    #expect(failed.summary.contains("failed (last: cannot open a connection"))
    try FileManager.default.removeItem(atPath: tmp.path)
    try FileManager.default.moveItem(atPath: tmp.path + ".aside", toPath: tmp.path)
    try fill(writer, rows: 200, from: 200)
    writer.waitForCheckpoints()
    #expect(writer.checkpointsMade.besideWriters > 0)
    #expect(
      writer.checkpointsMade.summary.hasPrefix(
        "\(writer.checkpointsMade.besideWriters) copies beside writers, 0 under the write lock throughout"))
    #expect(try writer.scalarInt("SELECT count(*) FROM t") == 400)
  }
}
