import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// How a writable connection keeps SQLite's WAL-reset bug (3.7.0 through 3.51.2) from
/// ever being hit: every write transaction and every checkpoint runs under one exclusive
/// `flock` on `<database>.lock`, so no checkpoint can overlap another connection's commit
/// (or the WAL restart that commit makes), whichever process either runs in.
public struct WriteDiscipline: Sendable {
  /// Takes the write lock. Off only for the benchmark that measures what the lock costs.
  public var lock = true
  /// How long a write or checkpoint waits for another holder before it fails with
  /// `WriteLockBusy`, never hanging.
  public var lockTimeout: Duration = .seconds(30)
  /// A commit that leaves at least this many pages in the WAL checkpoints it (passive,
  /// under the lock) before the lock is released; 0 never does. SQLite's own automatic
  /// checkpoint (`wal_autocheckpoint`) is off on every connection: it would run unlocked.
  /// 10,000 pages (80 MB of WAL at a ledger's 8 KiB pages): a page the scheduler's batches
  /// rewrite commit after commit is copied into the database once per checkpoint, not once
  /// per commit, and the checkpoint holding writers off comes ten times less often than at
  /// SQLite's own 1,000.
  public var checkpointAfterPages = 10_000
  /// The checkpoint a commit makes due runs on a thread of its own (`Checkpointer`), which
  /// copies the WAL beside the writers, instead of holding up the committing connection.
  public var checkpointOnOwnThread = true
  /// A test hook: each commit sleeps this long first, holding the lock, so that a test can
  /// watch another process wait for it. Installed as SQLite's commit hook only when set.
  public var holdWriteMilliseconds = 0
  /// Asked while waiting for the lock: true gives up at once with `WriteLockBusy` (the
  /// daemon stops waiting when it is asked to shut down).
  public var stopWaiting: (@Sendable () -> Bool)?

  public init() {}
}

/// Why a write or checkpoint did not start: another process (or another connection of this
/// one) held the write lock for the whole bounded wait. Nothing was written.
public struct WriteLockBusy: Error, CustomStringConvertible, Sendable {
  /// The lock file.
  public let lockPath: String
  /// How long this process waited.
  public let waited: Duration
  /// The wait was cut short (the process is shutting down), not timed out.
  public var stoppedWaiting = false
  /// The holder, when the wait ended, was another connection of this process (its
  /// checkpoint thread, or a write of its own on another connection), not another process.
  public var heldByThisProcess = false

  public init(lockPath: String, waited: Duration, stoppedWaiting: Bool = false, heldByThisProcess: Bool = false) {
    self.lockPath = lockPath
    self.waited = waited
    self.stoppedWaiting = stoppedWaiting
    self.heldByThisProcess = heldByThisProcess
  }

  public var description: String {
    let seconds = Double(waited.components.seconds) + Double(waited.components.attoseconds) / 1e18
    let shown = seconds >= 10 ? String(Int(seconds.rounded())) : String(Double(Int(seconds * 10)) / 10)
    if stoppedWaiting {
      return
        "ledger busy: stopped waiting for the write lock (\(lockPath)) after \(shown) s to shut down; nothing was written"
    }
    if heldByThisProcess {
      return
        "ledger busy: another connection of this process (its checkpoint or one of its own writes) has held the write lock for \(shown) s (\(lockPath)); nothing was written, try again"
    }
    return
      "ledger busy: another ledgerd process has held the write lock for \(shown) s (\(lockPath)); nothing was written, try again"
  }
}

/// The lock file could not be opened, so nothing may be written.
public struct WriteLockUnavailable: Error, CustomStringConvertible, Sendable {
  public let lockPath: String
  public let reason: String
  public var description: String { "cannot open the write lock \(lockPath): \(reason); refusing to write without it" }
}

/// The exclusive write lock of one database file: a `flock` on `<database>.lock`.
///
/// A `flock` belongs to an open file description, not to a connection or a thread, so a
/// process keeps one `WriteLock` per database file (`forDatabase(_:)`) whose single
/// descriptor carries the lock for every connection of the process, and a flag under a
/// mutex excludes those connections from each other. Waiting polls with short sleeps up to
/// the timeout (a blocking `flock` could not be bounded).
public final class WriteLock: Sendable {
  /// The lock file, beside the database.
  public let path: String
  /// The database file it guards.
  public let databasePath: String
  private let state = Mutex(State())

  private struct State {
    var fd: Int32 = -1
    var held = false
    var everHeld = false
  }

  private static let registry = Mutex<[String: WriteLock]>([:])

  private init(databasePath: String) {
    self.databasePath = databasePath
    self.path = databasePath + ".lock"
  }

  /// The process's one lock object for the database at `path` (symbolic links resolved, so
  /// every spelling of the file shares it); nil for in-memory and temporary databases.
  public static func forDatabase(_ path: String) -> WriteLock? {
    guard let canonical = canonicalPath(path) else { return nil }
    return registry.withLock { locks in
      if let known = locks[canonical] { return known }
      let lock = WriteLock(databasePath: canonical)
      locks[canonical] = lock
      return lock
    }
  }

  /// The lock file that guards the database at `path`.
  public static func lockPath(forDatabase path: String) -> String? { canonicalPath(path).map { $0 + ".lock" } }

  /// The databases this process has taken the write lock of (those it wrote or checkpointed).
  public static func databasesWritten() -> [String] {
    registry.withLock { locks in locks.values.filter { $0.state.withLock { $0.everHeld } }.map(\.databasePath).sorted()
    }
  }

  static func canonicalPath(_ path: String) -> String? {
    if path.isEmpty || path == ":memory:" || path.hasPrefix("file:") { return nil }
    if let resolved = realpath(path, nil) {
      defer { free(resolved) }
      return String(cString: resolved)
    }
    // Not created yet: resolve the folder, keep the name.
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard let resolved = realpath(folder.isEmpty ? "/" : folder, nil) else { return path }
    defer { free(resolved) }
    let base = String(cString: resolved)
    return (base == "/" ? "" : base) + "/" + name
  }

  /// Takes the lock once, without waiting; true when it is now held by the caller.
  public func tryAcquire() throws -> Bool {
    try state.withLock { s -> Bool in
      if s.held { return false }
      if s.fd < 0 { s.fd = try openFile() }
      while true {
        if flock(s.fd, LOCK_EX | LOCK_NB) == 0 {
          s.held = true
          s.everHeld = true
          return true
        }
        let code = errno
        if code == EINTR { continue }
        if code == EWOULDBLOCK { return false }
        throw WriteLockUnavailable(lockPath: path, reason: String(cString: strerror(code)))
      }
    }
  }

  /// Waits for the lock up to `timeout` (or until `stopWaiting` says so); returns how long
  /// it waited, or throws `WriteLockBusy`.
  @discardableResult
  public func acquire(timeout: Duration, stopWaiting: (@Sendable () -> Bool)? = nil) throws -> Duration {
    let start = ContinuousClock.now
    var pauseMicroseconds: UInt32 = 200
    while true {
      if try tryAcquire() { return ContinuousClock.now - start }
      let waited = ContinuousClock.now - start
      if waited >= timeout {
        throw WriteLockBusy(lockPath: path, waited: waited, heldByThisProcess: state.withLock { $0.held })
      }
      if stopWaiting?() == true {
        throw WriteLockBusy(
          lockPath: path, waited: waited, stoppedWaiting: true, heldByThisProcess: state.withLock { $0.held })
      }
      // A holder in this process (the checkpointer's thread, another connection) lets go
      // within milliseconds: it is polled more often.
      usleep(state.withLock { $0.held } ? min(pauseMicroseconds, 500) : pauseMicroseconds)
      pauseMicroseconds = min(pauseMicroseconds * 2, 10_000)
    }
  }

  /// Releases the lock taken by `acquire` or `tryAcquire`.
  public func release() {
    state.withLock { s in
      guard s.held else { return }
      _ = flock(s.fd, LOCK_UN)
      s.held = false
    }
  }

  private func openFile() throws -> Int32 {
    var fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o660)
    if fd < 0 { fd = open(path, O_RDONLY | O_CLOEXEC) }  // someone else's file: a flock needs no write access
    guard fd >= 0 else { throw WriteLockUnavailable(lockPath: path, reason: String(cString: strerror(errno))) }
    return fd
  }

  /// Whether some process holds the lock right now (a probe that takes and drops it).
  public static func isHeldElsewhere(lockPath: String) -> Bool {
    let fd = open(lockPath, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    if flock(fd, LOCK_EX | LOCK_NB) == 0 {
      _ = flock(fd, LOCK_UN)
      return false
    }
    return errno == EWOULDBLOCK
  }
}

/// The linked SQLite's version, and whether it carries the WAL-reset bug.
public enum SQLiteVersion {
  /// Versions 3.7.0 through 3.51.2 can corrupt a WAL database when checkpoints and commits
  /// of different connections interleave (sqlite.org/wal.html#walresetbug).
  public static func hasWALResetBug(_ version: String) -> Bool {
    let parts = version.split(separator: ".").map { Int($0) ?? 0 } + [0, 0, 0]
    let (major, minor, patch) = (parts[0], parts[1], parts[2])
    if major != 3 { return false }
    if minor < 7 { return false }
    return minor < 51 || (minor == 51 && patch < 3)
  }
}
