import Testing

@testable import LedgerCore

/// The back-off of webhook deliveries: 30 s doubling to 6 h, given up at the 22nd failed
/// attempt, a little over 3 days after the first; and the `webhook-id` of a delivery.
@Suite struct WebhookOutPolicyTests {
  let policy = RetryPolicy.webhooks
  let t0 = Instant(secondsSinceEpoch: 1_795_000_000)

  @Test(arguments: [(1, 30), (2, 60), (3, 120), (10, 15_360), (11, 21_600), (21, 21_600)])
  func theWaitDoublesUpToSixHours(attempt: Int, seconds: Int64) {
    #expect(policy.delay(afterFailures: attempt) == seconds)
    #expect(policy.nextAttempt(afterFailures: attempt, permanent: false, now: t0) == t0.adding(seconds: seconds))
  }

  @Test func theTwentySecondFailureGivesUpALittleOverThreeDaysAfterTheFirst() {
    #expect(policy.nextAttempt(afterFailures: 22, permanent: false, now: t0) == nil)
    #expect(policy.nextAttempt(afterFailures: 30, permanent: false, now: t0) == nil)
    // Failing at once each time, the 22nd attempt comes this long after the first.
    let span = (1...21).reduce(Int64(0)) { $0 + policy.delay(afterFailures: $1) }
    #expect(span > 3 * 86_400 && span < 4 * 86_400)
  }

  @Test func theWebhookIDIsStablePerDeliveryAndDiffersOtherwise() {
    let ledger = String(repeating: "ab", count: 16)
    let id = WebhookDelivery.webhookID(ledgerID: ledger, deliveryID: 7, eventID: 3, eventAt: "2026-11-23T10:00:00Z")
    #expect(id.hasPrefix("msg_") && id.count == 36)
    #expect(
      id == WebhookDelivery.webhookID(ledgerID: ledger, deliveryID: 7, eventID: 3, eventAt: "2026-11-23T10:00:00Z"))
    // Another ledger, or an event that took the same ids after a restore: another id.
    #expect(
      id
        != WebhookDelivery.webhookID(
          ledgerID: String(repeating: "cd", count: 16), deliveryID: 7, eventID: 3, eventAt: "2026-11-23T10:00:00Z"))
    #expect(
      id != WebhookDelivery.webhookID(ledgerID: ledger, deliveryID: 7, eventID: 3, eventAt: "2026-11-24T10:00:00Z"))
  }
}
