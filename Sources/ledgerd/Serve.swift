import ArgumentParser
import Foundation
import LedgerAPI
import LedgerCore
import LedgerEngine
import LedgerStore
import Logging
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the daemon: charges, retries, reminders and downgrades as they fall due.",
    discussion: """
      Applies pending migrations, takes the single-instance lock (a second serve on the same \
      database exits at once), takes in the charges the processor made for this ledger that its \
      file lacks (a restored file), resolves charge attempts a crash left pending, then loops. \
      SIGTERM or SIGINT, even while it starts: the batch in hand finishes and the process exits 0. The ledger file \
      replaced or damaged under it: it writes nothing more and exits 74 (66 when damaged), \
      having saved a replaced file as <db>.replaced-<time>. Speaks systemd's notify protocol \
      when $NOTIFY_SOCKET is set (READY=1, STATUS=, WATCHDOG=1, STOPPING=1). Logs one line per \
      event on stderr. Serves the HTTP API on a Unix socket ($RUNTIME_DIRECTORY/api.sock, else \
      <db>.api.sock; a TCP address too when the config's api.listen names one): see docs/api.md.
      """)
  @OptionGroup var database: DatabaseOptions

  func run() async throws {
    EarlySignals.catchStops()
    try await runGuardedAsync {
      let config = try database.loadConfig()
      let lock = try InstanceLock(databasePath: database.path)
      let logger = makeLogger("ledgerd")
      let maker = ProcessorMaker(config: config, simulatedPath: database.processorPath(config))
      let clock = try SystemClock.fromEnvironment()
      var daemon = LedgerDaemon(
        databasePath: database.path, config: config, clock: clock, notifier: SystemdNotifier(),
        logger: logger,
        makeProcessor: { try maker.make(clock: clock) })
      daemon.discipline = try database.discipline()
      // Webhooks to the host leave beside the scheduler, on a connection of their own; the
      // API's listeners come last, so that a graceful shutdown (in reverse order) closes
      // them first.
      var services: [any Service] = [
        daemon,
        WebhookSender(databasePath: database.path, clock: clock, discipline: daemon.discipline, logger: logger),
      ]
      if config.api.enabled {
        APIMetrics.bootstrap(version: Ledgerd.configuration.version)
        let api = try LedgerAPI(
          databasePath: database.path, config: config, clock: clock, discipline: daemon.discipline,
          health: daemon.health, logger: logger)
        services += api.applications(databasePath: database.path)
      }
      // The watch ends the group gracefully when its run returns (a stop signal came early).
      let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
          services: [
            .init(service: EarlySignals.Watch(logger: logger), successTerminationBehavior: .gracefullyShutdownGroup)
          ] + services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
      if let delay = ProcessInfo.processInfo.environment["LEDGERD_TEST_START_DELAY_MS"].flatMap(Int.init), delay > 0 {
        // A test hook: a start as slow as a loaded machine's, for a stop signal to fall into.
        usleep(useconds_t(delay) * 1000)
      }
      try await group.run()
      withExtendedLifetime(lock) {}
    }
  }
}
