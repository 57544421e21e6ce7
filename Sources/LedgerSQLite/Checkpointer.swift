#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

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
  private var mutex = pthread_mutex_t()
  private var wake = pthread_cond_t()
  private var requested = false
  private var stopping = false
  private var running = false
  private var busy = false
  private var thread: pthread_t?

  init(path: String, options: ConnectionOptions) {
    self.path = path
    var own = options
    // The checkpointer's connection only checkpoints: no threshold of its own, no thread of
    // its own, and a small page cache (a checkpoint reads the WAL, not the cache).
    own.discipline.checkpointAfterPages = 0
    own.discipline.checkpointOnOwnThread = false
    own.cacheSizeKiB = 256
    self.options = own
    pthread_mutex_init(&mutex, nil)
    pthread_cond_init(&wake, nil)
  }

  deinit {
    pthread_cond_destroy(&wake)
    pthread_mutex_destroy(&mutex)
  }

  /// Asks for a passive checkpoint soon; requests made before it starts are one checkpoint.
  func request() {
    pthread_mutex_lock(&mutex)
    defer { pthread_mutex_unlock(&mutex) }
    guard !stopping else { return }
    requested = true
    if !running {
      running = true
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
        running = false
        requested = false
        return
      }
    }
    pthread_cond_broadcast(&wake)
  }

  /// Lets a checkpoint under way finish, then ends the thread. Requests not yet started are
  /// dropped (closing the last connection checkpoints anyway).
  func stop() {
    pthread_mutex_lock(&mutex)
    stopping = true
    pthread_cond_broadcast(&wake)
    let joining = thread
    thread = nil
    pthread_mutex_unlock(&mutex)
    if let joining { pthread_join(joining, nil) }
  }

  /// Waits until no checkpoint is asked for or running (for tests).
  func waitUntilIdle() {
    pthread_mutex_lock(&mutex)
    while requested || busy { pthread_cond_wait(&wake, &mutex) }
    pthread_mutex_unlock(&mutex)
  }

  private func loop() {
    var connection: Connection?
    while true {
      pthread_mutex_lock(&mutex)
      while !requested && !stopping { pthread_cond_wait(&wake, &mutex) }
      if stopping {
        requested = false
        running = false
        pthread_cond_broadcast(&wake)
        pthread_mutex_unlock(&mutex)
        return
      }
      requested = false
      busy = true
      pthread_mutex_unlock(&mutex)
      // A failed checkpoint (the lock busy for the whole wait, an I/O error) changes
      // nothing committed; the next commit past the threshold asks again.
      if connection == nil { connection = try? Connection(path: path, options: options) }
      _ = try? connection?.checkpoint(.passive)
      pthread_mutex_lock(&mutex)
      busy = false
      pthread_cond_broadcast(&wake)
      pthread_mutex_unlock(&mutex)
    }
  }
}
