#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif
import Synchronization

/// Runs the checkpoints a writable connection's commits make due on a thread of its own,
/// with a connection of its own to the same file, under the same write lock.
///
/// A checkpoint copies the WAL's pages into the database file and syncs it; done by the
/// committing connection, it holds that connection up for as long. Here the committing
/// connection only asks for it and goes on with what needs no lock (the processor's calls,
/// reads) while the copy runs on another core. Its next write waits for the lock as it
/// would for any other writer. Nothing about durability changes: every commit is already
/// synced in the WAL before it returns, and a checkpoint cut short by a crash is redone.
final class Checkpointer: @unchecked Sendable {
  private let path: String
  private let options: ConnectionOptions
  // Heap-allocated: a pthread mutex and condition must not move.
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private var requested = false
  private var busy = false
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
      if pthread_create(&created, nil, { context in
        let checkpointer = Unmanaged<Checkpointer>.fromOpaque(context!).takeRetainedValue()
        checkpointer.loop()
        return nil
      }, context) == 0 {
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

  /// Waits until no checkpoint is asked for or running (for tests).
  func waitUntilIdle() {
    pthread_mutex_lock(mutex)
    while requested || busy { pthread_cond_wait(wake, mutex) }
    pthread_mutex_unlock(mutex)
  }

  private func loop() {
    var connection: Connection?
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
      }
      _ = try? connection?.checkpoint(.passive)
      pthread_mutex_lock(mutex)
      busy = false
      pthread_cond_broadcast(wake)
      pthread_mutex_unlock(mutex)
    }
  }
}
