import Foundation
import LedgerCore
import Logging
import Synchronization
import Testing

@testable import LedgerEngine

/// A processor in memory: `ok` pays, `decline_<code>` declines, `fail<N>_then_ok` declines
/// N times then pays (anything from a `.` on is the card's own suffix); each charge's key is
/// remembered, so a key charged twice is answered as the first time.
final class MemoryProcessor: PaymentProcessor {
  let record = Mutex<[String: (token: String, outcome: ChargeOutcome, at: Instant)]>([:])
  let clock: LedgerClock

  init(clock: LedgerClock) { self.clock = clock }

  func charge(_ request: ChargeRequest) async throws -> ChargeOutcome {
    record.withLock { record in
      if let known = record[request.key] { return known.outcome }
      let tries = record.values.filter { $0.token == request.token }.count
      let kind = request.token.prefix { $0 != "." }
      let outcome: ChargeOutcome
      if kind.hasPrefix("decline_") {
        outcome = .declined(code: String(kind.dropFirst("decline_".count)))
      } else if kind.hasPrefix("fail"), let n = Int(kind.dropFirst(4).prefix { $0.isNumber }), tries < n {
        outcome = .declined(code: "insufficient_funds")
      } else {
        outcome = .succeeded(reference: "mem_\(request.key)")
      }
      record[request.key] = (request.token, outcome, clock.now())
      return outcome
    }
  }

  func charges(ledgerID: String, since: Instant) async throws -> [ProcessorCharge] { [] }
  func lookup(_ charge: ChargeLookup, now: Instant) async throws -> ChargeOutcome? {
    record.withLock { $0[charge.key]?.outcome }
  }

  /// When each charge of `token` was made, in order.
  func times(token: String) -> [Instant] {
    record.withLock { $0.values.filter { $0.token == token }.map(\.at).sorted() }
  }
}

/// A month of dunning run by the production scheduler, policy and transitions (with the
/// default configuration) on the in-memory repositories: what the store protocols promise
/// is all the engine needs.
@Suite struct MemoryMonthTests {
  @Test func aMonthOfDunningRunsOnTheInMemoryRepositories() async throws {
    let start = try Instant(iso8601: "2026-03-02T09:00:00Z")
    let clock = ManualClock(start)
    let ledger = MemoryLedger(clock: clock)
    let processor = MemoryProcessor(clock: clock)
    let config = DunningConfig()
    let scheduler = Scheduler(store: ledger, processor: processor, config: config, logger: Logger(label: "test"))
    try scheduler.checkConfiguration()

    // 25 accounts of each kind, one card each, one invoice each, due now.
    let kinds = ["ok", "decline_insufficient_funds", "decline_expired_card", "fail2_then_ok"]
    var invoices: [String: [Int64]] = [:]
    var accounts: [String: [Int64]] = [:]
    for kind in kinds {
      for n in 0..<25 {
        let account = ledger.addAccount()
        _ = try ledger.addCard(account: account, token: "\(kind).\(n)")
        accounts[kind, default: []].append(account)
        invoices[kind, default: []].append(try ledger.issue(account: account, minor: 1900, config: config))
      }
    }

    // Run alone (`swift test --filter MemoryMonthTests`) it takes a few tens of
    // milliseconds; beside the other suites, its awaits wait for the busy thread pool, so
    // its time is not a test of anything.
    _ = try await scheduler.runUntil(start.adding(days: 31), clock: clock)

    // Issued at 09:00, collected at the daily collection time (18:00 by default): every
    // charge and retry of the month falls on that time of some day.
    func day(_ d: Int) -> Instant { Instant(start.date).adding(days: d).adding(seconds: 18 * 3600) }
    #expect(processor.record.withLock { $0.values.allSatisfy { $0.at.secondsSinceEpoch % 86_400 == 18 * 3600 } })
    // Paid at once.
    #expect(invoices["ok"]!.allSatisfy { ledger.book.invoices[$0]?.status == .paid })
    #expect(processor.times(token: "ok.0") == [day(0)])
    // Soft declines: retried on days 1, 3, 5 and 7, reminded on days 3 and 7, downgraded on day 9.
    #expect(processor.times(token: "decline_insufficient_funds.0") == [day(0), day(1), day(3), day(5), day(7)])
    for (account, invoice) in zip(accounts["decline_insufficient_funds"]!, invoices["decline_insufficient_funds"]!) {
      #expect(ledger.book.invoices[invoice]?.status == .uncollectible)
      #expect(ledger.book.accounts[account]?.status == .downgraded && ledger.book.accounts[account]?.plan == "free")
      let notices = ledger.book.notices.values.filter { $0.account == account }
      // One message per failed round (5), the day-3 and day-7 ones carrying the reminders
      // due then (one decision, one message), and the downgrade notice.
      #expect(
        notices.map(\.kind).sorted() == [
          "charge_failed", "charge_failed", "charge_failed", "charge_failed", "charge_failed", "downgrade_notice",
        ])
      #expect(notices.compactMap { $0.data["reminder_day"] }.filter { !$0.isEmpty }.sorted() == ["3", "7"])
    }
    // A hard decline is never retried on that card; the downgrade still comes on day 9.
    #expect(processor.times(token: "decline_expired_card.0") == [day(0)])
    #expect(invoices["decline_expired_card"]!.allSatisfy { ledger.book.invoices[$0]?.status == .uncollectible })
    // Two declines, then paid on the day-3 retry; the account is active again.
    #expect(processor.times(token: "fail2_then_ok.0") == [day(0), day(1), day(3)])
    #expect(invoices["fail2_then_ok"]!.allSatisfy { ledger.book.invoices[$0]?.status == .paid })
    #expect(accounts["fail2_then_ok"]!.allSatisfy { ledger.book.accounts[$0]?.status == .active })
    // Nothing charged twice: one attempt per key, and no invoice paid beyond its total.
    #expect(Set(ledger.book.attempts.values.map(\.key)).count == ledger.book.attempts.count)
    #expect(ledger.book.invoices.values.allSatisfy { $0.paid <= $0.total.minorUnits })
    #expect(try ledger.nextActionTime() == nil)
  }
}
