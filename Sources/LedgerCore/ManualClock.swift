import Synchronization

/// A clock that only moves when told: `run-due` and `simulate` jump it from one due time
/// to the next, so a month of dunning runs in seconds through the production code.
public final class ManualClock: LedgerClock, Sendable {
  private let current: Mutex<Instant>

  public init(_ start: Instant) { current = Mutex(start) }

  public func now() -> Instant { current.withLock { $0 } }

  /// Moves the clock to `instant`; it never goes back.
  public func advance(to instant: Instant) {
    current.withLock { $0 = max($0, instant) }
  }
}
