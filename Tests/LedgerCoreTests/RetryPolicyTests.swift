import Testing

@testable import LedgerCore

@Suite struct RetryPolicyTests {
  @Test func backOffDoublesUpToTheCapThenGivesUp() throws {
    let policy = RetryPolicy(maxAttempts: 6, baseSeconds: 60, maxSeconds: 600)
    #expect((1...6).map { policy.delay(afterFailures: $0) } == [60, 120, 240, 480, 600, 600])
    let now = try Instant(iso8601: "2026-11-23T10:00:00Z")
    #expect(policy.nextAttempt(afterFailures: 1, permanent: false, now: now) == now.adding(seconds: 60))
    #expect(policy.nextAttempt(afterFailures: 5, permanent: false, now: now) == now.adding(seconds: 600))
    #expect(policy.nextAttempt(afterFailures: 6, permanent: false, now: now) == nil)
    #expect(policy.nextAttempt(afterFailures: 1, permanent: true, now: now) == nil)
    #expect(RetryPolicy(maxAttempts: 100, baseSeconds: 86_400, maxSeconds: 604_800).delay(afterFailures: 90) == 604_800)
  }
}
