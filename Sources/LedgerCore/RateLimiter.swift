/// A processor's limit of calls per second, shared by every call it makes (charges,
/// lookups, each page of a listing): at most `perSecond` calls start in any second, each
/// waiting for its turn, spaced evenly.
public actor RateLimiter {
  private let interval: Duration
  private var nextStart = ContinuousClock.now
  /// Time calls spent waiting for their turn, in total.
  public private(set) var waited: Duration = .zero
  /// Calls that waited for their turn.
  public private(set) var waits = 0

  public init(perSecond: Int) { interval = .seconds(1) / max(perSecond, 1) }

  /// Waits for the next call's turn; returns how long it waited.
  @discardableResult
  public func acquire() async -> Duration {
    let now = ContinuousClock.now
    let start = max(now, nextStart)
    nextStart = start + interval
    guard start > now else { return .zero }
    waited += start - now
    waits += 1
    try? await Task.sleep(until: start, clock: .continuous)
    return start - now
  }

  /// The processor said "too many requests": no call starts for `pause`, whichever
  /// worker asks next.
  public func holdOff(_ pause: Duration) {
    nextStart = max(nextStart, ContinuousClock.now + pause)
  }
}
