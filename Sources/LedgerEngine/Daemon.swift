import Foundation
import LedgerCore
import LedgerStore
import Logging
import ServiceLifecycle
import Synchronization

/// `ledgerd serve`: the scheduler's loop as a service. It resolves pending attempts, then
/// runs what is due, and sleeps until the next due action, until another process changes
/// the database (`PRAGMA data_version`), or until a graceful shutdown.
///
/// On SIGTERM (owned by the ServiceGroup) the loop finishes the batch in hand, whose every
/// transaction is all-or-nothing, and returns; a processor call cut short leaves a pending
/// attempt that the next start resolves.
public struct LedgerDaemon: Service {
  public let databasePath: String
  public let config: LedgerConfig
  public let clock: LedgerClock
  public let makeProcessor: @Sendable () throws -> PaymentProcessor
  public let notifier: SystemdNotifier
  public let logger: Logger
  /// The longest sleep between two looks at the schedule.
  public var maxSleep: Duration = .seconds(60)
  /// How often the sleeping loop polls `PRAGMA data_version` and the shutdown flag.
  public var pollInterval: Duration = .milliseconds(200)
  /// After a failed tick, how long the loop waits before running what is due again (a
  /// change by another process or shutdown still wakes it): an action that fails at once
  /// is not retried in a tight loop.
  public var failedTickPause: Duration = .seconds(5)
  /// The spool directory when the config names none: `<db>.outbox` beside the ledger.
  public var defaultSpool: String
  /// The write lock and checkpoint policy of the daemon's connection. Its commits that
  /// take the WAL past `checkpointAfterPages` have it checkpointed under the lock, on the
  /// checkpointer's thread (`checkpointOnOwnThread`).
  public var discipline = WriteDiscipline()
  /// Between ticks, the WAL left by anyone's commits is checkpointed (truncated) under the
  /// write lock at most this often.
  public var idleCheckpointInterval: Duration = .seconds(5)
  /// What `/readyz` reads: serving, and how the last tick ended.
  public var health = DaemonHealth()

  public init(
    databasePath: String, config: LedgerConfig, clock: LedgerClock, notifier: SystemdNotifier, logger: Logger,
    makeProcessor: @escaping @Sendable () throws -> PaymentProcessor
  ) {
    self.databasePath = databasePath
    self.config = config
    self.clock = clock
    self.notifier = notifier
    self.logger = logger
    self.makeProcessor = makeProcessor
    self.defaultSpool = MailConfig.defaultSpool(databasePath: databasePath)
  }

  public func run() async throws {
    do {
      try await serve()
    } catch let busy where LedgerStore.isStoppedWaiting(busy) {
      // Shut down while start-up waited for another process's write lock: nothing was
      // written, nothing is in flight; a graceful stop.
      notifier.stopping()
      logger.notice("stopped: \(busy)")
    }
  }

  func serve() async throws {
    var discipline = discipline
    // A write waiting for another process's lock gives up when shutdown begins, so that
    // SIGTERM is answered within seconds even then.
    discipline.stopWaiting = { Task.isShuttingDownGracefully || Task.isCancelled }
    let store = try LedgerStore.open(path: databasePath, access: .readWrite, clock: clock, discipline: discipline)
    let scheduler = Scheduler(store: store, processor: try makeProcessor(), config: config.dunning, logger: logger)
    config.configure(scheduler)
    try scheduler.checkConfiguration()
    // SIGTERM ends a backlog at the end of the batch in hand (systemd's stop timeout is 15 s).
    scheduler.shouldStop = { Task.isShuttingDownGracefully || Task.isCancelled }
    var lastEvent = try store.lastEventID()
    let heartbeat = Heartbeat()
    var lastCheckpoint = ContinuousClock.now - idleCheckpointInterval

    // Charges this file does not know (it was restored, or put in place of the file a
    // previous run had open) are taken in before anything is charged.
    // A processor that cannot be asked yet (Stripe down, the network not up) is asked
    // again, ever less often, while nothing is charged: charging before its record is
    // read could charge again what a replaced file lost.
    var wait = Duration.seconds(2)
    while true {
      do {
        let adopted = try await scheduler.adoptProcessorCharges()
        if adopted > 0 {
          logger.notice("took in \(adopted) charge(s) the processor made for this ledger that its file did not have")
        }
        break
      } catch let unreachable as ProcessorUnreachable {
        logger.warning(
          "cannot read the processor's record of this ledger's charges yet (\(unreachable.reason)); nothing is charged until it can; asking again in \(wait)"
        )
        // The ledger is open and locked (what READY=1 says); the watchdog sees it alive.
        notifier.ready(status: "waiting for the processor: \(unreachable.reason)")
        let until = ContinuousClock.now + wait
        while ContinuousClock.now < until {
          notifier.watchdog()
          if Task.isShuttingDownGracefully || Task.isCancelled {
            notifier.stopping()
            logger.notice("stopped before serving (the processor could not be asked)")
            return
          }
          try? await Task.sleep(for: .milliseconds(200))
        }
        wait = min(wait * 2, .seconds(60))
      } catch {
        throw stopping(error, store: store)
      }
    }
    do {
      let recovered = try await scheduler.recoverPending()
      if recovered > 0 { logger.notice("resolved \(recovered) pending charge attempt(s) left by a previous run") }
    } catch {
      throw stopping(error, store: store)
    }
    lastEvent = try logEvents(store, after: lastEvent)
    health.setServing(true)
    notifier.ready(status: "serving \(databasePath)")
    logger.notice("serving \(databasePath)")

    // The outbox is delivered beside the scheduler, on a connection of its own.
    let stop = StopFlag()
    let delivery = Task { await deliveryLoop(stop: stop) }

    // A fatal error (`LedgerStore.isFatal`) ends the loop; the daemon then stops like on
    // SIGTERM, and fails.
    var fatal: Error?
    do {
      try await loop(
        store: store, scheduler: scheduler, heartbeat: heartbeat, lastEvent: &lastEvent, lastCheckpoint: &lastCheckpoint
      )
    } catch  where LedgerStore.isFatal(error) {
      fatal = error
    }
    // The message in hand gets a few seconds to finish; then the hand-off is cut short (a
    // sendmail command is killed, an SMTP connection closed) and the message, not recorded
    // as delivered nor as an attempt, is sent again later with the same Message-ID.
    stop.set()
    let grace = ContinuousClock.now + .seconds(5)
    while !stop.isFinished && ContinuousClock.now < grace {
      do {
        try await Task.sleep(for: .milliseconds(20))
      } catch {
        break  // this task is cancelled: no more grace
      }
    }
    delivery.cancel()
    await delivery.value
    health.setServing(false)
    notifier.stopping()
    if let fatal { throw stopping(fatal, store: store) }
    logger.notice("stopped (checkpoints while serving: \(store.compactionSummary))")
  }

  /// The scheduler's loop: a tick, then a sleep until the next due action, until a
  /// graceful shutdown; a tick that fails is logged and the loop goes on, except on a
  /// fatal error (`LedgerStore.isFatal`), which ends it.
  func loop(
    store: LedgerStore, scheduler: Scheduler, heartbeat: Heartbeat, lastEvent: inout Int64,
    lastCheckpoint: inout ContinuousClock.Instant
  ) async throws {
    let beat = { heartbeat.beat() }
    try await withThrowingTaskGroup(of: Void.self) { group in
      if let interval = notifier.watchdogInterval {
        group.addTask { [notifier] in
          // Pings only while the loop shows progress within two intervals.
          while !Task.isCancelled {
            if heartbeat.age < interval * 2 { notifier.watchdog() }
            try await Task.sleep(for: interval)
          }
        }
      }

      while !Task.isShuttingDownGracefully && !Task.isCancelled {
        beat()
        var pauseUntil = ContinuousClock.now
        do {
          // Attempts left pending by a tick that failed after its processor calls (the
          // loop runs one tick at a time, so none is in flight here), resolved by their
          // keys and recorded with the first batch due.
          let tickStart = ContinuousClock.now
          let report = try await scheduler.runDue(recording: try await scheduler.pendingAnswers())
          LedgerMetrics.tick(report, after: ContinuousClock.now - tickStart)
          health.tickEnded(succeeded: true)
          if report.recoveredPending > 0 {
            logger.notice("resolved \(report.recoveredPending) pending charge attempt(s)")
          }
          if report.attempts > 0 || report.reminders > 0 || report.downgrades > 0 {
            logger.info(
              "tick: \(report.attempts) attempts, \(report.succeeded) paid, \(report.reminders) reminders, \(report.downgrades) downgrades"
            )
          }
          lastEvent = try logEvents(store, after: lastEvent)
          if report.unresolved > 0 { _ = try await scheduler.recoverPending() }
        } catch  where LedgerStore.isFatal(error) {
          throw error
        } catch {
          // A failed tick is logged and retried on the next wake (after `failedTickPause`,
          // or sooner when another process commits); the loop goes on. A tick can fail after
          // its processor calls (the write of their outcomes found the ledger busy): the
          // attempts it left pending are resolved by their keys at once, not at the next
          // start, so a charge the processor made is recorded now.
          logger.error("tick failed: \(String(describing: error))")
          LedgerMetrics.tick(nil, after: .zero)
          health.tickEnded(succeeded: false)
          pauseUntil = ContinuousClock.now + failedTickPause
          do {
            let resolved = try await scheduler.recoverPending()
            if resolved > 0 { logger.notice("resolved \(resolved) pending charge attempt(s) after the failed tick") }
          } catch  where LedgerStore.isFatal(error) {
            throw error
          } catch {
            logger.error("pending attempts not resolved yet: \(String(describing: error))")
          }
        }
        let next = try? scheduler.nextDueTime()
        notifier.status("serving; next action \(next?.iso8601 ?? "none scheduled")")
        try await sleep(until: next, notBefore: pauseUntil, store: store, beat: beat, lastCheckpoint: &lastCheckpoint)
      }
      group.cancelAll()
    }
  }

  /// What the daemon does with an error before it fails: a fatal one (`LedgerStore.isFatal`)
  /// is logged as the reason it stops, and when the file was replaced under it, the file it
  /// had open (which nobody can reach any more, and which holds whatever it recorded since
  /// the copy put in its place was made) is saved beside it as
  /// `<db>.replaced-<time>` with SQLite's backup API, so nothing it recorded is lost, and
  /// its WAL is emptied so that none of it is read into the file now at the path.
  func stopping(_ error: Error, store: LedgerStore) -> Error {
    guard LedgerStore.isFatal(error) else { return error }
    logger.critical("stopping: \(String(describing: error))")
    if LedgerStore.isReplacedFile(error) {
      let copy = databasePath + ".replaced-" + SystemClock().now().iso8601.replacingOccurrences(of: ":", with: "")
      do {
        _ = try store.backup(to: copy)
        logger.critical(
          "the file this daemon had open is saved as \(copy); compare it with the one now in place before going on")
      } catch {
        logger.critical("the file this daemon had open could not be saved: \(String(describing: error))")
      }
      // The WAL beside the path still holds the replaced file's last commits, and SQLite
      // would read them into the file now in place when it is next opened (the WAL names
      // no file). They are copied into the file this daemon has open, and the WAL emptied.
      do {
        if try !store.compactLog(lockTimeout: .seconds(2), readerWaitMilliseconds: 2_000).complete {
          logger.critical(
            "the WAL could not be emptied (readers hold it): move \(databasePath)-wal aside before starting again")
        }
      } catch {
        logger.critical(
          "the WAL could not be emptied: \(String(describing: error)); move \(databasePath)-wal aside before starting again"
        )
      }
    }
    notifier.stopping()
    return error
  }

  /// While the loop sleeps: when the WAL file holds anything and the last checkpoint is
  /// `idleCheckpointInterval` old, a truncating checkpoint under the write lock (it waits
  /// briefly for readers, then copies what it can). A failure is logged; the next idle
  /// moment tries again.
  func checkpointWhenIdle(_ store: LedgerStore, last: inout ContinuousClock.Instant) {
    guard ContinuousClock.now - last >= idleCheckpointInterval else { return }
    let size = (try? FileManager.default.attributesOfItem(atPath: databasePath + "-wal")[.size] as? Int) ?? 0
    guard size > 0 else { return }
    last = ContinuousClock.now
    do {
      let summary = try store.compactLog(lockTimeout: .seconds(1)).summary
      logger.debug("checkpoint: \(summary)")
    } catch {
      logger.warning("checkpoint skipped: \(String(describing: error))")
    }
  }

  /// Sleeps until `next` (at most `maxSleep`, and not before `notBefore`), returning early
  /// when another connection commits or shutdown begins; checkpoints when idle meanwhile.
  func sleep(
    until next: Instant?, notBefore: ContinuousClock.Instant, store: LedgerStore, beat: () -> Void,
    lastCheckpoint: inout ContinuousClock.Instant
  ) async throws {
    let version = try store.changeCounter()
    let deadline = ContinuousClock.now + maxSleep
    while ContinuousClock.now < deadline {
      if Task.isShuttingDownGracefully || Task.isCancelled { return }
      if let next, next <= clock.now(), ContinuousClock.now >= notBefore { return }
      if try store.changeCounter() != version { return }
      // A file put in place of the ledger while the daemon sleeps is noticed here, within
      // a poll, not at the next write.
      try store.verifyFileInPlace()
      checkpointWhenIdle(store, last: &lastCheckpoint)
      beat()
      do {
        try await Task.sleep(for: pollInterval)
      } catch {
        return
      }
    }
  }

  /// Delivers the outbox until `stop`: every due message, then a sleep until the next one
  /// is due, another process commits (a new row may be waiting), or `maxSleep` passes.
  func deliveryLoop(stop: StopFlag) async {
    defer { stop.finish() }
    let store: LedgerStore
    do {
      // The daemon's discipline: marking a message delivered waits for the write lock like
      // any write, and stops waiting when the daemon stops.
      var discipline = discipline
      discipline.stopWaiting = { stop.isSet || Task.isShuttingDownGracefully || Task.isCancelled }
      store = try LedgerStore.open(path: databasePath, access: .readWrite, clock: clock, discipline: discipline)
    } catch {
      logger.error("outbox delivery not started: \(String(describing: error))")
      return
    }
    let mailer = Mailer(store: store, config: config.mail, defaultSpool: defaultSpool, logger: logger)
    func stopping() -> Bool { stop.isSet || Task.isCancelled || Task.isShuttingDownGracefully }
    while !stopping() {
      var storeFailed = false
      do {
        let report = try await mailer.deliverDue(shouldStop: stopping)
        if report.delivered + report.deferred + report.failed > 0 {
          logger.info(
            "outbox: \(report.delivered) delivered, \(report.deferred) to retry, \(report.postponed) held back, \(report.failed) failed"
          )
        }
      } catch {
        // The ledger, not the transport, failed: the pass stopped; the next one waits
        // `maxSleep` rather than resending at once what could not be recorded.
        storeFailed = true
        logger.error("outbox delivery stopped, the ledger is unavailable: \(String(describing: error))")
      }
      let next = storeFailed ? nil : try? store.nextOutboxAttempt()
      let version = storeFailed ? nil : try? store.changeCounter()
      let deadline = ContinuousClock.now + maxSleep
      while !stopping() && ContinuousClock.now < deadline {
        if let next, next <= clock.now() { break }
        if let version, (try? store.changeCounter()) != version { break }
        do {
          try await Task.sleep(for: pollInterval)
        } catch {
          break
        }
      }
    }
  }

  /// Tells the delivery task to stop, and tells the daemon when it has.
  final class StopFlag: Sendable {
    private let requested = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    func set() { requested.store(true, ordering: .sequentiallyConsistent) }
    var isSet: Bool { requested.load(ordering: .sequentiallyConsistent) }
    func finish() { finished.store(true, ordering: .sequentiallyConsistent) }
    var isFinished: Bool { finished.load(ordering: .sequentiallyConsistent) }
  }

  /// When the loop last showed it was alive; read by the watchdog task.
  final class Heartbeat: Sendable {
    private let origin = ContinuousClock.now
    private let lastMilliseconds = Atomic<Int64>(0)

    func beat() { lastMilliseconds.store(Self.milliseconds(ContinuousClock.now - origin), ordering: .relaxed) }

    var age: Duration {
      .milliseconds(Self.milliseconds(ContinuousClock.now - origin) - lastMilliseconds.load(ordering: .relaxed))
    }

    static func milliseconds(_ d: Duration) -> Int64 {
      d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }
  }

  /// Writes every event committed since `id` to the log, one line each, for journald.
  func logEvents(_ store: LedgerStore, after id: Int64) throws -> Int64 {
    var last = id
    for event in try store.events(after: id) {
      logger.notice(
        "\(event.kind) account=\(event.accountID.map(String.init) ?? "-") actor=\(event.actor.rawValue): \(event.reason)"
      )
      last = event.id
    }
    return last
  }
}

/// The daemon's state as the HTTP API's `/readyz` reports it: the ledger open and serving,
/// and the last tick succeeded.
public final class DaemonHealth: Sendable {
  private let serving = Atomic<Bool>(false)
  private let lastTickFailed = Atomic<Bool>(false)
  private let ticks = Atomic<Int>(0)

  public init() {}

  func setServing(_ value: Bool) { serving.store(value, ordering: .sequentiallyConsistent) }

  func tickEnded(succeeded: Bool) {
    lastTickFailed.store(!succeeded, ordering: .sequentiallyConsistent)
    ticks.add(1, ordering: .sequentiallyConsistent)
  }

  /// Nil when ready; else why not.
  public var notReadyReason: String? {
    if !serving.load(ordering: .sequentiallyConsistent) {
      return "the daemon is not serving yet (starting, waiting for the processor, or stopping)"
    }
    if lastTickFailed.load(ordering: .sequentiallyConsistent) { return "the last tick failed" }
    return nil
  }

  /// Ticks run since the start.
  public var tickCount: Int { ticks.load(ordering: .sequentiallyConsistent) }
}
