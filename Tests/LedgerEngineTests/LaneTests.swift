import Foundation
import LedgerCore
import LedgerStore
import Testing

@testable import LedgerEngine

/// Many charge rounds run in two lanes (the processor answers one while the ledger records
/// the other); the outcome for every invoice must be what one lane gives.
@Suite struct ChargeLaneTests {
  /// The same book in a new bench: accounts whose cards carry a mix of the processor's
  /// behaviours, some with a fallback card, and a few with two invoices.
  static func book(accounts: Int) throws -> Bench {
    let b = try Bench()
    let kinds: [[String]] = [
      ["tok_ok"], ["tok_decline_insufficient_funds", "tok_ok"], ["tok_decline_expired_card"], ["tok_lost"], ["tok_timeout"],
      ["tok_fail2_then_ok"], ["tok_decline_do_not_honor", "tok_decline_insufficient_funds"], ["tok_error_processing_error", "tok_ok"],
    ]
    let today = b.clock.now().date
    for n in 0..<accounts {
      let account = try b.store.addAccount(email: "c\(n)@example.fr", name: "C \(n)", locale: .fr, planCode: "free", actor: .staff)
      for (i, token) in kinds[n % kinds.count].enumerated() {
        _ = try b.billing.addCard(
          account: account.id,
          NewCard(
            token: "\(token).\(n).\(i)", brand: .visa, last4: "4242", expiry: try CardExpiry(parsing: "12/2030"), postalCode: nil, country: nil),
          actor: .customer)
      }
      for k in 0..<(n % 5 == 0 ? 2 : 1) {
        _ = try b.billing.issueInvoice(
          try InvoiceDraft(
            accountID: account.id, currency: .eur,
            lines: [InvoiceLineDraft(description: "Plan", unitAmount: Money(minorUnits: 1900 + Int64(k) * 100, currency: .eur))],
            issueDate: today, dueDate: today, method: .card), actor: .staff)
      }
    }
    return b
  }

  /// Per invoice: its status, and its attempts' statuses in order.
  static func outcomes(_ b: Bench) throws -> [String: String] {
    var result: [String: String] = [:]
    for row in try b.store.db.query(
      """
      SELECT i.number, i.status,
        (SELECT group_concat(status, ',') FROM (SELECT a.status FROM charge_attempt_invoices ci JOIN charge_attempts a ON a.id = ci.attempt_id
                                                WHERE ci.invoice_id = i.id ORDER BY a.id)) AS attempts
      FROM invoices i
      """)
    {
      result[try row.string("number")] = try row.string("status") + " " + (try row.optionalString("attempts") ?? "-")
    }
    return result
  }

  @Test func twoLanesGiveEveryInvoiceTheOutcomeOfOne() async throws {
    let one = try Self.book(accounts: 320)
    let two = try Self.book(accounts: 320)
    one.scheduler.minimumRoundsForTwoLanes = .max
    one.scheduler.batchSize = 5000
    two.scheduler.batchSize = 5000
    let until = one.clock.now().adding(days: 12)
    let reportOne = try await one.scheduler.runUntil(until, clock: one.clock)
    let reportTwo = try await two.scheduler.runUntil(until, clock: two.clock)

    #expect(one.scheduler.twoLaneBatches == 0)
    #expect(two.scheduler.twoLaneBatches >= 1)
    #expect(reportOne.attempts == reportTwo.attempts && reportOne.succeeded == reportTwo.succeeded)
    #expect(reportTwo.attempts > 640)
    let a = try Self.outcomes(one)
    let b = try Self.outcomes(two)
    #expect(a.count == 384 && a == b)
    for bench in [one, two] {
      // Nothing charged twice, every charge the processor made is in the ledger, books clean.
      #expect(try bench.count("SELECT count(*) FROM (SELECT ci.invoice_id FROM charge_attempt_invoices ci JOIN charge_attempts a ON a.id = ci.attempt_id WHERE a.status = 'succeeded' GROUP BY ci.invoice_id HAVING count(*) > 1)") == 0)
      let processorKeys = Set(try await bench.processor.succeededCharges().map(\.key))
      let ledgerKeys = Set(try bench.store.db.query("SELECT idempotency_key FROM charge_attempts WHERE status = 'succeeded'").map { try $0.string("idempotency_key") })
      #expect(!processorKeys.isEmpty && processorKeys == ledgerKeys)
      #expect(try bench.store.check().ok)
    }
  }
}
