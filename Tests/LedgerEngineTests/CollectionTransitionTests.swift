import Foundation
import LedgerCore
import LedgerStore
import Logging
import Testing

@testable import LedgerEngine

/// Dunning through the store and the scheduler, on the core's transitions.
@Suite struct CollectionTransitionTests {
  /// Answers the first charge with a processing error and every later one with a soft
  /// decline.
  final class ErrorThenDeclines: PaymentProcessor, @unchecked Sendable {
    let lock = NSLock()
    var calls = 0
    func charge(_ request: ChargeRequest) async throws -> ChargeOutcome {
      let n = lock.withLock {
        calls += 1
        return calls
      }
      return n == 1 ? .failed(code: "processing_error") : .declined(code: "insufficient_funds")
    }
    func charges(ledgerID: String, since: Instant) async throws -> [ProcessorCharge] { [] }
    func lookup(_ charge: ChargeLookup, now: Instant) async throws -> ChargeOutcome? { nil }
  }

  /// A retry a few hours after a processing error is not the scheduled day-1 retry: day 1
  /// still comes, then day 3.
  @Test func aRetryHoursAfterAProcessingErrorDoesNotUseUpDayOne() async throws {
    let b = try Bench()
    let invoice = try b.accountWithInvoice(token: "tok_card")
    let scheduler = Scheduler(
      store: b.store, processor: ErrorThenDeclines(), config: DunningConfig.chargedWhenDue,
      logger: Logger(label: "test"))
    _ = try await scheduler.runUntil(try Instant(iso8601: "2026-11-05T12:00:00Z"), clock: b.clock)
    let times = try b.store.db.query("SELECT created_at FROM charge_attempts ORDER BY id").map {
      try $0.string("created_at")
    }
    #expect(
      times == ["2026-11-02T09:00:00Z", "2026-11-02T13:00:00Z", "2026-11-03T09:00:00Z", "2026-11-05T09:00:00Z"],
      "charges: \(times)")
    let state = try #require(try b.store.collection(invoiceID: invoice.id)).state
    // Day 1 and day 3 are used; the error's retry is not counted.
    #expect(state.retriesDone == 2)
    #expect(state.lastFailure == .insufficientFunds)
  }
}
