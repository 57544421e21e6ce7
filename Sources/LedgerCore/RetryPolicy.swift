/// How often and how long something that failed is tried again (a customer message, a
/// webhook delivery): exponential back-off from `baseSeconds`, doubling after each failure up
/// to `maxSeconds`, for at most `maxAttempts` attempts in all. Past the last attempt it is
/// marked failed, never dropped.
public struct RetryPolicy: Sendable, Equatable {
  public var maxAttempts: Int
  public var baseSeconds: Int
  public var maxSeconds: Int

  /// Defaults (customer messages): 10 attempts, 1 minute doubling to at most 6 hours
  /// (about 17 hours in all).
  public init(maxAttempts: Int = 10, baseSeconds: Int = 60, maxSeconds: Int = 21_600) {
    self.maxAttempts = maxAttempts
    self.baseSeconds = baseSeconds
    self.maxSeconds = maxSeconds
  }

  /// The wait after the `failures`-th failed attempt (1-based): base, 2×base, 4×base, … capped.
  public func delay(afterFailures failures: Int) -> Int64 {
    let doublings = max(0, min(failures - 1, 40))
    let (product, overflow) = Int64(baseSeconds).multipliedReportingOverflow(by: Int64(1) << Int64(doublings))
    return overflow ? Int64(maxSeconds) : min(product, Int64(maxSeconds))
  }

  /// What to do after an attempt failed: the time of the next attempt, or nil when it
  /// must be marked failed (a permanent refusal, or no attempt left).
  public func nextAttempt(afterFailures failures: Int, permanent: Bool, now: Instant) -> Instant? {
    guard !permanent, failures < maxAttempts else { return nil }
    return now.adding(seconds: delay(afterFailures: failures))
  }

  /// Webhook deliveries: 30 seconds doubling to 6 hours; the 22nd failed attempt, a little
  /// over 3 days after the first, marks it failed. An endpoint down for a weekend's
  /// maintenance still gets everything.
  public static let webhooks = RetryPolicy(maxAttempts: 22, baseSeconds: 30, maxSeconds: 21_600)
}
