import CSQLite
import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Runs the checkpoints a writable connection's commits make due on a thread of its own,
/// with connections of its own to the same file.
///
/// A checkpoint copies the WAL's pages into the database file and syncs it; done by the
/// committing connection, it holds that connection up for as long. Here the committing
/// connection only asks for it and goes on. Nothing about durability changes: every commit
/// is already synced in the WAL before it returns, and a checkpoint cut short by a crash is
/// redone.
///
/// The copy runs beside other connections' commits without reopening SQLite's WAL-reset
/// bug, which needs a WAL restart during a checkpoint: under the write lock (so that no
/// commit, WAL restart or locked checkpoint of any ledgerd process is under way), a second
/// connection of this thread begins a read transaction, and the WAL index is read. If the
/// WAL then holds frames not yet in the database file, that reader took one of SQLite's
/// read marks 1 to 4 (a reader that needs no WAL frame takes mark 0). A writer restarts the
/// WAL only when it can lock marks 1 to 4 at once, so none can until the reader ends. The
/// lock is let go, the passive checkpoint copies everything up to the reader's snapshot
/// while writers go on, and the reader ends. If nothing is left to copy, nothing is run.
/// What was committed during the copy is copied the same way, and the last few frames under
/// the lock, so that the WAL ends fully copied and the next commit restarts it
/// (`checkpointBesideWriters`). Should the reader not begin or the WAL index not be read,
/// the checkpoint runs under the lock throughout.
final class Checkpointer: @unchecked Sendable {
  private let path: String
  private let options: ConnectionOptions
  // Heap-allocated: a pthread mutex and condition must not move.
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private var requested = false
  private var busy = false
  /// Checkpoints made (beside writers, or under the lock throughout), given up with the
  /// lock busy, or failed, so far.
  private var counts = CheckpointCounts()
  /// Frames left after a copy that are copied under the lock at once: a tenth of the
  /// threshold (1,000 frames, about 10 ms of copying, at the default).
  private let tailFrames: Int
  private var thread: pthread_t?
  /// Set by `stop()`; also ends a wait for the lock (held by another process) at once.
  private let stopping = Flag()

  private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
  }

  init(path: String, options: ConnectionOptions) {
    self.path = path
    var own = options
    // The checkpointer's connection only checkpoints: no threshold of its own, no thread of
    // its own, and a small page cache (a checkpoint reads the WAL, not the cache). It waits
    // for the lock as long as any writer would (a checkpoint asked for is made once the
    // holder lets go, however busy the machine), and stops waiting at once when the
    // connection closes (the caller's own `stopWaiting` reads task state, which a thread
    // of its own does not have).
    tailFrames = max(1, options.discipline.checkpointAfterPages / 10)
    own.discipline.checkpointAfterPages = 0
    own.discipline.checkpointOnOwnThread = false
    own.cacheSizeKiB = 256
    self.options = own
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(wake, nil)
  }

  deinit {
    pthread_cond_destroy(wake)
    pthread_mutex_destroy(mutex)
    wake.deallocate()
    mutex.deallocate()
  }

  /// Asks for a passive checkpoint soon; requests made before it starts are one checkpoint.
  func request() {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    guard !stopping.isSet else { return }
    requested = true
    if thread == nil {
      var created = pthread_t()
      let context = Unmanaged.passRetained(self).toOpaque()
      if pthread_create(
        &created, nil,
        { context in
          let checkpointer = Unmanaged<Checkpointer>.fromOpaque(context!).takeRetainedValue()
          checkpointer.loop()
          return nil
        }, context) == 0
      {
        thread = created
      } else {
        // No thread: the request is dropped, and the next commit asks again.
        Unmanaged<Checkpointer>.fromOpaque(context).release()
        requested = false
        return
      }
    }
    pthread_cond_broadcast(wake)
  }

  /// Lets a checkpoint under way finish, then ends the thread. Requests not yet started are
  /// dropped (closing the last connection checkpoints anyway).
  func stop() {
    pthread_mutex_lock(mutex)
    stopping.set()
    pthread_cond_broadcast(wake)
    let joining = thread
    thread = nil
    pthread_mutex_unlock(mutex)
    if let joining { pthread_join(joining, nil) }
  }

  /// The checkpoints this thread has made so far.
  var made: CheckpointCounts {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return counts
  }

  /// Waits until no checkpoint is asked for or running (for tests).
  func waitUntilIdle() {
    pthread_mutex_lock(mutex)
    while requested || busy { pthread_cond_wait(wake, mutex) }
    pthread_mutex_unlock(mutex)
  }

  private func loop() {
    var connection: Connection?
    var reader: Connection?
    while true {
      pthread_mutex_lock(mutex)
      while !requested && !stopping.isSet { pthread_cond_wait(wake, mutex) }
      if stopping.isSet {
        requested = false
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        return
      }
      requested = false
      busy = true
      pthread_mutex_unlock(mutex)
      // A failed checkpoint (the lock busy for the whole wait, an I/O error) changes
      // nothing committed; the next commit past the threshold asks again.
      if connection == nil {
        var options = self.options
        let stopping = self.stopping
        let callerStops = options.discipline.stopWaiting
        options.discipline.stopWaiting = { stopping.isSet || callerStops?() == true }
        connection = try? Connection(path: path, options: options)
        reader = try? Connection(path: path, options: options)
      }
      var made = CheckpointCounts()
      if let connection {
        // Should copying beside writers fail (the reader cannot begin, the WAL index cannot
        // be read, its last copy under the lock fails), the checkpoint runs under the lock
        // throughout; what fails then is counted, with its error, for the owner to report.
        do {
          guard let reader else { throw SQLiteError(extendedCode: SQLITE_CANTOPEN, message: "no second connection") }
          made.besideWriters = try connection.checkpointBesideWriters(pinning: reader, tailFrames: tailFrames)
        } catch is WriteLockBusy {
          // The lock stayed busy for the whole wait: the next commit past the threshold asks again.
          made.givenUpBusy = 1
        } catch {
          do {
            try connection.checkpoint(.passive)
            made.underLock = 1
          } catch is WriteLockBusy {
            made.givenUpBusy = 1
          } catch let fallback {
            made.failed = 1
            made.lastFailure = String(describing: fallback)
          }
        }
      } else {
        made.failed = 1
        made.lastFailure = "cannot open a connection to \(path) for checkpoints"
      }
      pthread_mutex_lock(mutex)
      counts.add(made)
      busy = false
      pthread_cond_broadcast(wake)
      pthread_mutex_unlock(mutex)
    }
  }
}

extension Connection {
  /// The WAL's frames and how many of them are in the database file, from the WAL index
  /// this connection has mapped (it must be in a read transaction).
  func walIndexFrames() throws -> (frames: Int, backfilled: Int) {
    var frames: UInt32 = 0
    var backfilled: UInt32 = 0
    let rc = ledgerd_wal_index_frames(handle, &frames, &backfilled)
    guard rc == SQLITE_OK else { throw SQLiteError(extendedCode: rc, message: "cannot read the WAL index") }
    return (Int(frames), Int(backfilled))
  }

  /// A passive checkpoint that copies while other connections write (see `Checkpointer`).
  /// Each copy runs with `reader`, a second connection to the same file, holding a snapshot
  /// taken under the write lock while the WAL had frames to copy, so that no WAL restart can
  /// happen until the copy is over. The frames committed during a copy are copied the same
  /// way (a few rounds at most) until few are left; those are copied under the lock, with
  /// the database file synced outside it first. Ending under the lock with every frame
  /// copied lets the next commit restart the WAL: a busy writer begins its next transaction
  /// before a copy made beside it ends, and a transaction restarts the WAL only if it began
  /// with every frame copied. Returns how many copies ran beside writers (0 when the WAL
  /// had nothing left to copy, or so little that it was copied under the lock at once).
  @discardableResult
  func checkpointBesideWriters(pinning reader: Connection, tailFrames: Int, rounds: Int = 4) throws -> Int {
    var copies = 0
    for _ in 0..<rounds {
      // The reader's snapshot ends with this round, before any copy under the lock.
      defer { if reader.isInTransaction { try? reader.execute("ROLLBACK") } }
      // Frames left to copy once the reader holds its snapshot.
      let left = try withWriteLock { () throws -> Int in
        try reader.execute("BEGIN DEFERRED")
        // The first read begins the read transaction and takes its read mark.
        _ = try reader.scalarInt("SELECT count(*) FROM sqlite_schema")
        // Under the lock nothing can add frames or restart the WAL, and backfilling only
        // grows: frames left to copy now were there when the reader began, so it did not
        // take mark 0 (the mark of a reader that needs no WAL frame).
        let index = try reader.walIndexFrames()
        return index.frames - index.backfilled
      }
      if left <= 0 { return copies }
      if left < tailFrames { break }
      try walCheckpoint(.passive)
      copies += 1
    }
    // SQLite syncs the database file only when a copy reaches the WAL's end.
    let rc = ledgerd_sync_database_file(handle)
    guard rc == SQLITE_OK else { throw SQLiteError(extendedCode: rc, message: "cannot sync the database file") }
    _ = try withWriteLock { try walCheckpoint(.passive) }
    return copies
  }
}

/// How many checkpoints a connection's checkpointer thread has made, and how.
public struct CheckpointCounts: Sendable, Equatable {
  /// Copies made while writers went on (each checkpoint ends with a short copy under the lock).
  public var besideWriters = 0
  /// Checkpoints made under the write lock throughout, when copying beside writers failed.
  public var underLock = 0
  /// Checkpoints given up because the write lock stayed busy for the whole wait (the next
  /// commit past the threshold asks again).
  public var givenUpBusy = 0
  /// Checkpoints that failed both ways (an I/O error, the file unreachable); nothing
  /// committed is lost, but the WAL keeps growing until one succeeds.
  public var failed = 0
  /// The last failure's error.
  public var lastFailure: String?

  public init() {}

  mutating func add(_ other: CheckpointCounts) {
    besideWriters += other.besideWriters
    underLock += other.underLock
    givenUpBusy += other.givenUpBusy
    failed += other.failed
    if let failure = other.lastFailure { lastFailure = failure }
  }

  /// The counts in words, for a log line ("12 copies beside writers, 0 under the write lock
  /// throughout"), with the checkpoints given up or failed when there were any.
  public var summary: String {
    var text = "\(besideWriters) copies beside writers, \(underLock) under the write lock throughout"
    if givenUpBusy > 0 { text += ", \(givenUpBusy) given up with the lock busy" }
    if failed > 0 { text += ", \(failed) failed (last: \(lastFailure ?? "?"))" }
    return text
  }
}
