import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The stop signal that arrived while `serve` was starting, before its service group
/// listened for signals itself (0: none).
private let earlyStop = Atomic<Int32>(0)

/// A SIGTERM or SIGINT sent while `serve` opens the ledger and its API, before the service
/// group listens for them, would end the process by the signal's default action (status
/// 143, nothing said). The handler installed first thing keeps it; `EarlySignals`, the
/// group's first service, sees it and ends the group gracefully, so the daemon stops as it
/// would after a later SIGTERM: exit 0.
enum EarlySignals {
  /// Installs the handler; called before anything else `serve` does.
  static func catchStops() {
    for signal in [SIGTERM, SIGINT] {
      _ = Foundation.signal(signal) { number in earlyStop.store(number, ordering: .relaxed) }
    }
  }

  /// The service that stops the group when a stop signal came early. It looks every 50 ms
  /// while the group runs (once the group's own handlers are in place, nothing sets it).
  struct Watch: Service {
    let logger: Logger

    func run() async throws {
      let stopped = await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
          if earlyStop.load(ordering: .relaxed) != 0 { return true }
          try? await Task.sleep(for: .milliseconds(50))
        }
        return false
      }
      if stopped {
        logger.notice("signal \(earlyStop.load(ordering: .relaxed)) received while starting: stopping")
      }
    }
  }
}
