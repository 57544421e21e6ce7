import Foundation
import LedgerCore
import LedgerSQLite
import LedgerSimulator
import LedgerStore
import Logging
import Testing

@testable import LedgerEngine

/// A ledger, a simulated processor and a scheduler in one temporary folder, on a clock that
/// only moves when told.
final class Bench {
  let directory: String
  let clock: ManualClock
  let store: LedgerStore
  let processor: SimulatedProcessor
  let scheduler: Scheduler
  let billing: Billing

  init() throws {
    directory = NSTemporaryDirectory() + "ledgerd-engine-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    clock = ManualClock(try Instant(iso8601: "2026-11-02T09:00:00Z"))
    store = try LedgerStore.open(path: directory + "/ledger.db", access: .readWrite, clock: clock)
    processor = try SimulatedProcessor(path: directory + "/processor.db", slowMilliseconds: 0, timeoutMilliseconds: 0)
    scheduler = Scheduler(
      store: store, processor: processor, config: DunningConfig.chargedWhenDue, logger: Logger(label: "test"))
    billing = Billing(store: store, config: DunningConfig.chargedWhenDue)
  }

  /// An account with one card carrying `token` and one card invoice due now.
  func accountWithInvoice(token: String) throws -> Invoice {
    let account = try store.addAccount(email: "a@example.fr", name: "A", locale: .fr, planCode: "free", actor: .staff)
    _ = try billing.addCard(
      account: account.id,
      NewCard(
        token: token, brand: .visa, last4: "4242", expiry: try CardExpiry(parsing: "12/2030"), postalCode: nil,
        country: nil),
      actor: .customer)
    let today = clock.now().date
    return try billing.issueInvoice(
      try InvoiceDraft(
        accountID: account.id, currency: .eur,
        lines: [InvoiceLineDraft(description: "Plan", unitAmount: Money(minorUnits: 1900, currency: .eur))],
        issueDate: today, dueDate: today, method: .card), actor: .staff)
  }

  func count(_ sql: String) throws -> Int64 { try store.db.scalarInt(sql) ?? -1 }
}

@Suite struct RecoveryTests {
  @Test func aLostAnswerIsRecoveredByItsKeyAndNeverChargedAgain() async throws {
    let b = try Bench()
    let invoice = try b.accountWithInvoice(token: "tok_lost")
    let report = try await b.scheduler.runDue()
    #expect(report.attempts == 1 && report.unresolved == 1)
    #expect(try b.count("SELECT count(*) FROM charge_attempts WHERE status = 'pending'") == 1)
    #expect(try b.store.invoice(id: invoice.id)?.status == .open)
    #expect(try await b.scheduler.recoverPending() == 1)
    #expect(try b.store.invoice(id: invoice.id)?.status == .paid)
    #expect(try await b.processor.succeededCharges().count == 1)
    // Nothing is due any more, and a second recovery finds nothing to do.
    #expect(try await b.scheduler.runDue().attempts == 0)
    #expect(try await b.scheduler.recoverPending() == 0)
    #expect(try b.store.check().ok)
  }

  /// The answers about pending attempts are recorded with the first batch due; when that
  /// batch fails, they are recorded on their own, and the batch's work is not.
  @Test func answersAreKeptWhenTheBatchTheyStartWithFails() async throws {
    let b = try Bench()
    let lost = try b.accountWithInvoice(token: "tok_lost")
    #expect(try await b.scheduler.runDue().unresolved == 1)
    let other = try b.accountWithInvoice(token: "tok_ok.other")
    // The next attempt cannot be written: the first batch fails.
    try b.store.db.execute(
      "CREATE TEMP TRIGGER no_attempts BEFORE INSERT ON charge_attempts BEGIN SELECT RAISE(ABORT, 'no attempts here'); END"
    )
    let answers = try await b.scheduler.pendingAnswers()
    #expect(answers.count == 1)
    await #expect(throws: (any Error).self) { try await b.scheduler.runDue(recording: answers) }
    #expect(try b.store.invoice(id: lost.id)?.status == .paid, "the lost answer's payment is recorded")
    #expect(try b.count("SELECT count(*) FROM charge_attempts WHERE status = 'pending'") == 0)
    #expect(try b.store.invoice(id: other.id)?.status == .open)
    #expect(try b.count("SELECT count(*) FROM charge_attempts") == 1, "nothing of the failed batch is written")
    try b.store.db.execute("DROP TRIGGER no_attempts")
    // With the answers recorded, the next run charges the other invoice only.
    #expect(try await b.scheduler.runDue(recording: try await b.scheduler.pendingAnswers()).attempts == 1)
    #expect(try b.store.invoice(id: other.id)?.status == .paid)
    #expect(try await b.processor.succeededCharges().count == 2)
    #expect(try b.store.check().ok)
  }

  @Test func anAttemptThatNeverReachedTheProcessorIsClosedAndRetriedLater() async throws {
    let b = try Bench()
    let invoice = try b.accountWithInvoice(token: "tok_ok")
    // A crash right after the pending attempt was committed: the processor never heard of it.
    let card = try #require(
      try b.store.chargeableCards(account: invoice.accountID, config: DunningConfig.chargedWhenDue).first)
    _ = try b.store.write {
      try b.store.beginAttempt(
        account: invoice.accountID, card: card, amount: invoice.total,
        invoices: [(invoice.id, invoice.total.minorUnits)],
        key: "ldg_crashed", actor: .scheduler)
    }
    #expect(try b.store.nextActionTime() == nil)  // in flight: nothing else is scheduled
    #expect(try await b.scheduler.recoverPending() == 1)
    #expect(
      try b.store.db.scalarText("SELECT raw_code FROM charge_attempts WHERE idempotency_key = 'ldg_crashed'")
        == "not_received")
    let next = try #require(try b.store.nextActionTime())
    #expect(next == b.clock.now().adding(seconds: 4 * 3600))  // a processing error: retried within hours
    b.clock.advance(to: next)
    _ = try await b.scheduler.runDue()
    #expect(try b.store.invoice(id: invoice.id)?.status == .paid)
    #expect(try await b.processor.succeededCharges().map(\.key) != ["ldg_crashed"])
    #expect(try await b.processor.succeededCharges().count == 1)
  }

  @Test func anOperatorChangeWhileAChargeIsAtTheProcessorDoesNotStartASecondCharge() async throws {
    let b = try Bench()
    let invoice = try b.accountWithInvoice(token: "tok_timeout")
    // The charge gets no answer: its attempt stays pending, the invoice in flight.
    let report = try await b.scheduler.runDue()
    #expect(report.unresolved == 1)
    let inFlight = "SELECT count(*) FROM invoices WHERE next_action = 'in_flight'"
    #expect(try b.count(inFlight) == 1)
    // Meanwhile the customer adds a card: that may not schedule a charge beside the one at
    // the processor.
    _ = try b.billing.addCard(
      account: invoice.accountID,
      NewCard(
        token: "tok_ok.2", brand: .visa, last4: "1881", expiry: try CardExpiry(parsing: "12/2030"), postalCode: nil,
        country: nil),
      actor: .customer)
    #expect(try b.count(inFlight) == 1)
    #expect(try b.store.dueActions(until: b.clock.now().adding(days: 30), limit: 10).isEmpty)
    // Once the attempt is resolved (the processor never charged it), the invoice is
    // scheduled again by the policy, and nothing was charged.
    _ = try await b.scheduler.recoverPending()
    #expect(try b.count(inFlight) == 0)
    #expect(
      try b.count(
        "SELECT count(*) FROM invoices WHERE next_action = 'charge' AND next_action_at > '\(b.clock.now().iso8601)'")
        == 1)
    #expect(try await b.processor.succeededCharges().isEmpty)
    #expect(try b.store.check().ok)
  }

  @Test func theSimulatedProcessorIsIdempotentByKey() async throws {
    let b = try Bench()
    let amount = Money(minorUnits: 500, currency: .eur)
    let first = try await b.processor.charge(key: "k1", token: "tok_ok", amount: amount)
    let again = try await b.processor.charge(key: "k1", token: "tok_ok", amount: amount)
    #expect(first == again)
    #expect(try await b.processor.succeededCharges().count == 1)
    #expect(
      try await b.processor.charge(key: "k2", token: "tok_fail1_then_ok.7", amount: amount)
        == .declined(code: "insufficient_funds"))
    if case .succeeded = try await b.processor.charge(key: "k3", token: "tok_fail1_then_ok.7", amount: amount) {
    } else {
      Issue.record("the second charge of tok_fail1_then_ok should succeed")
    }
    #expect(try await b.processor.lookup(key: "unknown") == nil)
  }

  @Test func concurrentChargesAreRecordedTogetherAndAnsweredEach() async throws {
    let b = try Bench()
    let amount = Money(minorUnits: 700, currency: .eur)
    let processor = b.processor
    // Forty calls in flight at once, a repeated key among them, and a card that declines
    // twice then pays: each caller gets its own answer, each key is charged once.
    let outcomes = try await withThrowingTaskGroup(of: (Int, ChargeOutcome?).self) { group in
      for i in 0..<40 {
        group.addTask {
          let key = i == 39 ? "key-0" : "key-\(i)"
          let token =
            i % 10 == 3 ? "tok_decline_insufficient_funds.\(i)" : i % 10 == 5 ? "tok_lost.\(i)" : "tok_ok.\(i)"
          do {
            return (i, try await processor.charge(key: key, token: i == 39 ? "tok_ok.0" : token, amount: amount))
          } catch { return (i, nil) }
        }
      }
      var all: [Int: ChargeOutcome?] = [:]
      for try await (i, outcome) in group { all[i] = outcome }
      return all
    }
    #expect(outcomes.count == 40)
    for i in 0..<39 {
      switch i % 10 {
      case 3: #expect(outcomes[i]! == .declined(code: "insufficient_funds"))
      case 5: #expect(outcomes[i]! == nil, "tok_lost loses the answer")
      default: if case .succeeded = outcomes[i]! {} else { Issue.record("charge \(i) should succeed") }
      }
    }
    #expect(outcomes[39]! == outcomes[0]!, "a repeated key gets the first answer")
    let keys = try await processor.succeededCharges().map(\.key)
    #expect(keys.count == 35 && Set(keys).count == 35, "39 keys, 4 declined")
    let answers = try await ["key-5", "key-3", "nope"].asyncMap { try await processor.lookup(key: $0) }
    if case .succeeded = answers[0] {} else { Issue.record("the lost answer is found by its key") }
    #expect(answers[1] == .declined(code: "insufficient_funds"))
    #expect(answers[2] == nil)
    for n in 0..<3 {
      let outcome = try await processor.charge(key: "fail-\(n)", token: "tok_fail2_then_ok.1", amount: amount)
      #expect((n < 2) == (outcome == .declined(code: "insufficient_funds")))
    }
  }
}

extension RecoveryTests {
  /// The simulated processor makes the charges it answers without waiting with no call of
  /// their own: each answered as its own call would be, each key charged once, and the
  /// tokens that wait (slow, timing out) left for calls of their own.
  @Test func concurrentChargesAreAnsweredAsTheirTokensSayAndRecordedOnceByKey() async throws {
    let directory = NSTemporaryDirectory() + "ledgerd-concurrent-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let waiting = try SimulatedProcessor(path: directory + "/waiting.db", slowMilliseconds: 50, timeoutMilliseconds: 50)
    let amount = Money(minorUnits: 900, currency: .eur)
    let tokens = [
      "tok_ok.1", "tok_decline_insufficient_funds.2", "tok_lost.3", "tok_slow.4", "tok_timeout.5",
      "tok_fail1_then_ok.6", "tok_error_processing_error.7",
    ]
    let requests = tokens.enumerated().map { ChargeRequest(key: "k\($0.offset)", token: $0.element, amount: amount) }
    // All at once, as the pipeline's workers send them: recorded together, answered each.
    let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
      for (i, request) in requests.enumerated() {
        group.addTask {
          do {
            return (i, String(describing: try await waiting.charge(request)))
          } catch {
            return (i, "no answer: \(error)")
          }
        }
      }
      var answers = [String](repeating: "", count: requests.count)
      for try await (i, answer) in group { answers[i] = answer }
      return answers
    }
    #expect(answers[0].hasPrefix("succeeded"))
    #expect(answers[1] == "declined(code: \"insufficient_funds\")")
    #expect(answers[2] == "no answer: processor unreachable: the connection dropped before the answer arrived")
    #expect(answers[3].hasPrefix("succeeded"), "a slow token answers after its wait")
    #expect(answers[4] == "no answer: processor unreachable: no answer within 50 ms")
    #expect(answers[5] == "declined(code: \"insufficient_funds\")")
    #expect(answers[6] == "failed(code: \"processing_error\")")
    // A repeated key gets the first answer; tok_fail1_then_ok pays the second time.
    #expect(String(describing: try await waiting.charge(requests[0])) == answers[0])
    let again = try await waiting.charge(ChargeRequest(key: "k8", token: "tok_fail1_then_ok.6", amount: amount))
    if case .succeeded = again {} else { Issue.record("tok_fail1_then_ok pays the second time: \(again)") }
    // What the processor holds: the lost answer's charge was made; the timed-out one was not.
    let lookups = try await ["k2", "k4"].asyncMap { try await waiting.lookup(key: $0) }
    if case .succeeded? = lookups[0] {} else { Issue.record("the lost answer's charge is made") }
    #expect(lookups[1] == .failed(code: "timeout"))
    #expect(try await waiting.succeededCharges().map(\.key).sorted() == ["k0", "k2", "k3", "k8"])
  }

  /// The simulated network: every call takes its latency, and the share of calls picked to
  /// time out make the charge but never answer.
  @Test func theSimulatedNetworkDelaysAndLosesAnswers() async throws {
    let b = try Bench()
    var network = SimulatedNetwork()
    network.latency = .milliseconds(30)
    network.timeoutsPerTenThousand = 10_000
    network.timeout = .milliseconds(20)
    await b.processor.setNetwork(network)
    let start = ContinuousClock.now
    await #expect(throws: ProcessorUnreachable.self) {
      try await b.processor.charge(
        ChargeRequest(key: "net", token: "tok_ok", amount: Money(minorUnits: 100, currency: .eur)))
    }
    #expect(ContinuousClock.now - start >= .milliseconds(50))
    if case .succeeded? = try await b.processor.lookup(key: "net") {} else { Issue.record("the charge was made") }
  }

  /// A processor whose answer is lost after it took the money: the attempt stays pending,
  /// and asked by key, the payment is recorded once.
  @Test func aChargeWhoseAnswerIsLostStaysPendingUntilAskedByKey() async throws {
    struct Losing: PaymentProcessor {
      let inner: SimulatedProcessor
      func charge(_ request: ChargeRequest) async throws -> ChargeOutcome {
        _ = try await inner.charge(request)
        throw ProcessorUnreachable("the answer was lost")
      }
      func charges(ledgerID: String, since: Instant) async throws -> [ProcessorCharge] {
        try await inner.charges(ledgerID: ledgerID, since: since)
      }
      func lookup(_ charge: ChargeLookup, now: Instant) async throws -> ChargeOutcome? {
        try await inner.lookup(key: charge.key)
      }
    }
    let b = try Bench()
    let invoice = try b.accountWithInvoice(token: "tok_ok")
    let scheduler = Scheduler(
      store: b.store, processor: Losing(inner: b.processor), config: DunningConfig.chargedWhenDue,
      logger: Logger(label: "test"))
    let report = try await scheduler.runDue()
    #expect(report.attempts == 1 && report.unresolved == 1 && report.succeeded == 0)
    #expect(try b.count("SELECT count(*) FROM charge_attempts WHERE status = 'pending'") == 1)
    // The processor did take the money: asked by key, the payment is recorded, once.
    #expect(try await scheduler.recoverPending() == 1)
    #expect(try b.store.invoice(id: invoice.id)?.status == .paid)
    #expect(try await b.processor.succeededCharges().count == 1)
    #expect(try b.store.check().ok)
  }
}

@Suite struct ConfigTests {
  @Test func everyKeyIsOptionalAndDefaultsAreTheSeeds() throws {
    let config = try LedgerConfig.parse(Data("{}".utf8))
    #expect(config.dunning.graceDays == 9)
    #expect(config.dunning.retryDays == [1, 3, 5, 7])
    #expect(config.dunning.reminderDays == [3, 7])
    #expect(config.dunning.downgradePlan == "free")
    #expect(!config.dunning.restorePlanOnPayment)
  }

  @Test func aFullConfigIsRead() throws {
    let json = """
      {"dunning": {"grace_days": 14, "retry_days": [2, 4], "reminder_days": [5], "restore_plan_on_payment": true},
       "transfers": {"window_business_days": 5}, "processor": {"kind": "simulated", "max_in_flight": 4},
       "daemon": {"batch_size": 50}}
      """
    let config = try LedgerConfig.parse(Data(json.utf8))
    #expect(config.dunning.graceDays == 14 && config.dunning.retryDays == [2, 4] && config.dunning.reminderDays == [5])
    #expect(config.dunning.restorePlanOnPayment && config.dunning.transferWindowBusinessDays == 5)
    #expect(config.maxInFlight == 4 && config.batchSize == 50)
  }

  @Test func theDailyCollectionTimeIsRead() throws {
    #expect(try LedgerConfig.parse(Data("{}".utf8)).dunning.collectionTime == 18 * 3600)
    let set = try LedgerConfig.parse(
      Data(#"{"dunning": {"collection_time": "06:30", "collection_utc_offset": "-05:00"}}"#.utf8))
    #expect(set.dunning.collectionTime == 6 * 3600 + 30 * 60 && set.dunning.collectionUTCOffsetSeconds == -5 * 3600)
    // 06:30 at UTC-05:00 is 11:30 UTC.
    #expect(
      DunningPolicy.collectionTime(atOrAfter: try Instant(iso8601: "2026-11-23T12:00:00Z"), config: set.dunning)
        == (try Instant(iso8601: "2026-11-24T11:30:00Z")))
    #expect(
      try LedgerConfig.parse(Data(#"{"dunning": {"collection_time": "when_due"}}"#.utf8)).dunning.collectionTime == nil)
  }

  @Test func theSubscriptionRulesAreRead() throws {
    let defaults = try LedgerConfig.parse(Data("{}".utf8)).dunning.subscriptions
    #expect(defaults.renewalLeadDays == 0 && defaults.transferTermsDays == 14 && defaults.proration == .byDay)
    let set = try LedgerConfig.parse(
      Data(#"{"subscriptions": {"renewal_lead_days": 5, "transfer_terms_days": 30, "proration": "none"}}"#.utf8)
    ).dunning.subscriptions
    #expect(set.renewalLeadDays == 5 && set.transferTermsDays == 30 && set.proration == ProrationRule.none)
  }

  @Test(arguments: [
    (#"{"subscriptions": {"renewal_lead_days": -1}}"#, "subscriptions.renewal_lead_days"),
    (#"{"subscriptions": {"transfer_terms_days": 500}}"#, "subscriptions.transfer_terms_days"),
    (#"{"subscriptions": {"proration": "by_hour"}}"#, "subscriptions.proration"),
    (#"{"subscriptions": {"lead": 1}}"#, "subscriptions.lead"),
    (#"{"dunning": {"grace_dayz": 9}}"#, "dunning.grace_dayz"),
    (#"{"dunning": {"retry_days": [1, 12]}}"#, "dunning.retry_days"),
    (#"{"dunning": {"retry_days": [3, 1]}}"#, "dunning.retry_days"),
    (#"{"dunning": {"grace_days": "nine"}}"#, "dunning.grace_days"),
    (#"{"dunning": {"restore_plan_on_payment": 1}}"#, "dunning.restore_plan_on_payment"),
    (#"{"dunning": {"collection_time": "24:00"}}"#, "dunning.collection_time"),
    (#"{"dunning": {"collection_time": "6pm"}}"#, "dunning.collection_time"),
    (#"{"dunning": {"collection_time": 18}}"#, "dunning.collection_time"),
    (#"{"dunning": {"collection_utc_offset": "01:00"}}"#, "dunning.collection_utc_offset"),
    (#"{"dunning": {"collection_utc_offset": "+15:00"}}"#, "dunning.collection_utc_offset"),
    (#"{"processor": {"kind": "paypal"}}"#, "processor.kind"),
    (#"{"processor": {"kind": "stripe", "api_base": "http://api.stripe.com"}}"#, "processor.api_base"),
    (#"{"processor": {"kind": "stripe", "api_base": "https://api.stripe.com/v1"}}"#, "processor.api_base"),
    (#"{"processor": {"secret_key_file": "/etc/ledgerd/stripe-key"}}"#, "processor.secret_key_file"),
    (#"{"processor": {"kind": "stripe", "timeout_seconds": 0}}"#, "processor.timeout_seconds"),
    (#"{"daemon": {"batch_size": 0}}"#, "daemon.batch_size"),
    (#"{"extra": {}}"#, "extra"),
    (#"[1, 2]"#, "config"),
  ])
  func badSettingsNameTheirKey(json: String, field: String) {
    #expect(throws: InputError.self) { try LedgerConfig.parse(Data(json.utf8)) }
    do {
      _ = try LedgerConfig.parse(Data(json.utf8))
    } catch let error as InputError {
      #expect(error.field == field)
    } catch {
      Issue.record("unexpected \(error)")
    }
  }
}

@Suite struct DunningStateTests {
  @Test func voidingTheInvoiceInDunningBringsTheAccountBack() async throws {
    let b = try Bench()
    let invoice = try b.accountWithInvoice(token: "tok_decline_insufficient_funds")
    _ = try await b.scheduler.runDue()
    #expect(try b.store.account(id: invoice.accountID)?.status == .pastDue)
    _ = try b.billing.voidInvoice(invoice.number, reason: "billed in error", actor: .staff)
    #expect(try b.store.account(id: invoice.accountID)?.status == .active)
    #expect(try b.store.nextActionTime() == nil)
    #expect(try b.store.check().ok)
  }

  @Test func aCardAddedBeforeTheDueDateDoesNotChargeEarly() async throws {
    let b = try Bench()
    let account = try b.store.addAccount(email: "a@example.fr", name: "A", locale: .en, planCode: "free", actor: .staff)
    let today = b.clock.now().date
    let invoice = try b.billing.issueInvoice(
      try InvoiceDraft(
        accountID: account.id, currency: .eur,
        lines: [InvoiceLineDraft(description: "Plan", unitAmount: Money(minorUnits: 900, currency: .eur))],
        issueDate: today, dueDate: today.adding(days: 5), method: .card), actor: .staff)
    _ = try b.billing.addCard(
      account: account.id,
      NewCard(
        token: "tok_ok", brand: .visa, last4: "4242", expiry: try CardExpiry(parsing: "12/2030"), postalCode: nil,
        country: nil),
      actor: .customer)
    #expect(try b.store.nextActionTime() == Instant(today.adding(days: 5)))
    #expect(try await b.scheduler.runDue().attempts == 0)
    #expect(try b.store.invoice(id: invoice.id)?.status == .open)
  }
}

@Suite struct CardLimitTests {
  @Test func noCardIsChargedMoreThanTheNetworkLimitInTheWindow() async throws {
    let b = try Bench()
    var config = DunningConfig.chargedWhenDue
    config.maxChargesPerCard = 2
    let scheduler = Scheduler(store: b.store, processor: b.processor, config: config, logger: Logger(label: "test"))
    let invoice = try b.accountWithInvoice(token: "tok_decline_insufficient_funds")
    _ = try await scheduler.runUntil(b.clock.now().adding(days: 12), clock: b.clock)
    // Day 0 and the day-1 retry; the day-3, -5 and -7 retries find the card at its limit.
    #expect(try b.count("SELECT count(*) FROM charge_attempts") == 2)
    #expect(try b.store.invoice(id: invoice.id)?.status == .uncollectible)
    #expect(try b.store.check().ok)
  }

  @Test func aCardAtItsLimitIsNotUsableSoTheScheduleMovesOn() async throws {
    let b = try Bench()
    var config = DunningConfig.chargedWhenDue
    config.maxChargesPerCard = 1
    let scheduler = Scheduler(store: b.store, processor: b.processor, config: config, logger: Logger(label: "test"))
    let invoice = try b.accountWithInvoice(token: "tok_decline_insufficient_funds")
    // The first charge uses the card's one allowed attempt; every retry day then finds no
    // usable card and the invoice goes on to its reminders and the downgrade.
    _ = try await scheduler.runUntil(b.clock.now().adding(days: 12), clock: b.clock)
    #expect(try b.count("SELECT count(*) FROM charge_attempts") == 1)
    #expect(try b.count("SELECT retries_done FROM invoices") <= Int64(config.retryDays.count))
    #expect(try b.store.invoice(id: invoice.id)?.status == .uncollectible)
    #expect(try b.store.check().ok)
  }
}

/// The card network's limit with more than one invoice on the account: the card is used
/// up by one invoice while the next falls due.
@Suite struct CardLimitAcrossInvoicesTests {
  /// One charge per card in `windowDays`; one card that pays; an invoice due now and a
  /// second due tomorrow.
  func twoInvoices(token: String, windowDays: Int) throws -> (
    Bench, Scheduler, DunningConfig, first: Invoice, second: Invoice
  ) {
    let b = try Bench()
    var config = DunningConfig.chargedWhenDue
    config.maxChargesPerCard = 1
    config.cardChargeWindowDays = windowDays
    let scheduler = Scheduler(store: b.store, processor: b.processor, config: config, logger: Logger(label: "test"))
    let billing = Billing(store: b.store, config: config)
    let account = try b.store.addAccount(email: "a@example.fr", name: "A", locale: .fr, planCode: "free", actor: .staff)
    _ = try billing.addCard(
      account: account.id,
      NewCard(
        token: token, brand: .visa, last4: "4242", expiry: try CardExpiry(parsing: "12/2030"), postalCode: nil,
        country: nil),
      actor: .customer)
    let today = b.clock.now().date
    func issue(due: CivilDate) throws -> Invoice {
      try billing.issueInvoice(
        try InvoiceDraft(
          accountID: account.id, currency: .eur,
          lines: [InvoiceLineDraft(description: "Domain", unitAmount: Money(minorUnits: 1200, currency: .eur))],
          issueDate: today, dueDate: due, method: .card), actor: .staff)
    }
    return (b, scheduler, config, try issue(due: today), try issue(due: today.adding(days: 1)))
  }

  @Test func anInvoiceDueWhileItsOnlyCardIsAtTheLimitIsChargedWhenTheWindowFreesUp() async throws {
    let (b, scheduler, _, first, second) = try twoInvoices(token: "tok_ok", windowDays: 3)
    let day0 = b.clock.now()  // 09:00, the first invoice's charge
    // Day 1: the second invoice falls due, its card is at the limit until day 3 at 09:00.
    _ = try await scheduler.runUntil(day0.adding(days: 1).adding(seconds: 3600), clock: b.clock)
    #expect(try b.store.invoice(id: first.id)?.status == .paid)
    #expect(try b.store.invoice(id: second.id)?.status == .open)
    #expect(try b.count("SELECT count(*) FROM charge_attempts") == 1)
    #expect(try b.store.account(id: second.accountID)?.status == .pastDue)
    #expect(
      try b.store.db.scalarText("SELECT next_action || ' ' || next_action_at FROM invoices WHERE id = \(second.id)")
        == "charge \(day0.adding(days: 3).iso8601)")
    // Then it is charged at that moment and paid; the account is active again.
    _ = try await scheduler.runUntil(day0.adding(days: 12), clock: b.clock)
    #expect(try b.store.invoice(id: second.id)?.status == .paid)
    #expect(
      try b.store.db.scalarText("SELECT group_concat(created_at, ' ') FROM charge_attempts")
        == "\(day0.iso8601) \(day0.adding(days: 3).iso8601)")
    #expect(try b.store.account(id: second.accountID)?.status == .active)
    #expect(try b.count("SELECT max(retries_done) FROM invoices") == 0)
    #expect(try await b.processor.succeededCharges().count == 2)
    #expect(try b.store.check().ok)
  }

  @Test func aWindowThatFreesUpAfterTheDeadlineLeavesTheDowngrade() async throws {
    let (b, scheduler, _, first, second) = try twoInvoices(token: "tok_ok", windowDays: 30)
    _ = try await scheduler.runUntil(b.clock.now().adding(days: 12), clock: b.clock)
    #expect(try b.store.invoice(id: first.id)?.status == .paid)
    #expect(try b.store.invoice(id: second.id)?.status == .uncollectible)
    #expect(try b.count("SELECT count(*) FROM charge_attempts") == 1)
    #expect(try b.count("SELECT count(*) FROM outbox WHERE kind = 'dunning_reminder'") == 2)
    #expect(try b.count("SELECT count(*) FROM outbox WHERE kind = 'charge_failed'") == 1)
    #expect(try b.store.check().ok)
  }

  @Test func aCardChangeWhileTheOnlyCardIsAtItsLimitWaitsForTheWindowAndRetriesKeepTheirPace() async throws {
    // The first invoice's charge is declined (declines count toward the limit); the
    // second's first round, the next day, ends with no usable card. Updating the card asks
    // for a charge at once, which has to wait for the window too; every later charge does.
    let (b, scheduler, config, _, second) = try twoInvoices(token: "tok_decline_insufficient_funds", windowDays: 2)
    let day0 = b.clock.now()
    _ = try await scheduler.runUntil(day0.adding(days: 1).adding(seconds: 60), clock: b.clock)
    #expect(try b.count("SELECT count(*) FROM charge_attempts") == 1)
    _ = try Billing(store: b.store, config: config).updateCard(
      try #require(try b.store.cards(account: second.accountID).first).id, expiry: try CardExpiry(parsing: "11/2031"),
      token: nil,
      actor: .customer)
    #expect(try b.store.nextActionTime() == day0.adding(days: 2))
    _ = try await scheduler.runUntil(day0.adding(days: 12), clock: b.clock)
    let times = try b.store.db.query("SELECT created_at FROM charge_attempts ORDER BY id").map {
      try Instant(iso8601: try $0.string("created_at"))
    }
    #expect(times == [0, 2, 4, 6, 8].map { day0.adding(days: $0) })
    #expect(try b.count("SELECT max(retries_done) FROM invoices") <= Int64(config.retryDays.count))
    #expect(try b.count("SELECT count(*) FROM invoices WHERE status = 'uncollectible'") == 2)
    #expect(try b.store.check().ok)
  }

  @Test func aPendingAttemptClosedAsAnErrorFreesItsSlotForTheAccountsOtherInvoices() async throws {
    let (b, scheduler, config, first, second) = try twoInvoices(token: "tok_ok", windowDays: 30)
    // A crash right after the first invoice's pending attempt was committed: it counts
    // toward the card's limit until it is resolved.
    let card = try #require(try b.store.chargeableCards(account: first.accountID, config: config).first)
    _ = try b.store.write {
      try b.store.beginAttempt(
        account: first.accountID, card: card, amount: first.total, invoices: [(first.id, first.total.minorUnits)],
        key: "ldg_crashed",
        actor: .scheduler)
    }
    b.clock.advance(to: b.clock.now().adding(days: 1))
    _ = try await scheduler.runDue()
    #expect(try b.count("SELECT count(*) FROM charge_attempts") == 1)
    // No charge before the window frees up (in 29 days): the day-3 reminder comes first.
    #expect(try b.store.db.scalarText("SELECT next_action FROM invoices WHERE id = \(second.id)") == "remind")
    // The processor never got it: closed as an error, the card is free again at once.
    #expect(try await scheduler.recoverPending() == 1)
    #expect(
      try b.store.db.scalarText("SELECT next_action || ' ' || next_action_at FROM invoices WHERE id = \(second.id)")
        == "charge \(b.clock.now().iso8601)")
    _ = try await scheduler.runDue()
    #expect(try b.store.invoice(id: second.id)?.status == .paid)
    #expect(try b.store.invoice(id: first.id)?.status == .paid)
    #expect(try b.store.check().ok)
  }

  @Test func aBatchThatComesBackUnchangedStopsRunDueWithAnErrorNamingTheInvoice() async throws {
    let b = try Bench()
    let invoice = try b.accountWithInvoice(token: "tok_ok")
    // An inconsistent ledger: the invoice is open with nothing left to pay, so its charge
    // round has nothing to charge and the policy asks for the same charge again.
    try b.store.db.run(
      "INSERT INTO payments (account_id, method, amount_minor, currency, received_on, actor, created_at) VALUES (?, 'transfer', 1900, 'EUR', '2026-11-02', 'staff', '2026-11-02T09:00:00Z')",
      invoice.accountID)
    try b.store.db.run(
      "INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor) VALUES (1, ?, 1900)", invoice.id)
    do {
      _ = try await b.scheduler.runDue()
      Issue.record("runDue should stop")
    } catch let error as StateError {
      #expect(error.subject == "invoice \(invoice.number)")
      #expect(error.rule.contains("the schedule does not advance"))
    }
    #expect(try b.count("SELECT count(*) FROM charge_attempts") == 0)
  }
}

@Suite struct CreditTests {
  @Test func anOverpaymentBecomesCreditThatTheNextInvoicesConsume() throws {
    let b = try Bench()
    let account = try b.store.addAccount(email: "a@example.fr", name: "A", locale: .fr, planCode: "free", actor: .staff)
    let today = b.clock.now().date
    func issue(_ minor: Int64) throws -> Invoice {
      try b.billing.issueInvoice(
        try InvoiceDraft(
          accountID: account.id, currency: .eur,
          lines: [InvoiceLineDraft(description: "Item", unitAmount: Money(minorUnits: minor, currency: .eur))],
          issueDate: today, dueDate: today.adding(days: 14), method: .transfer), actor: .staff)
    }
    let first = try issue(1900)
    let record = try b.billing.recordPayment(
      first.number, amount: Money(minorUnits: 3000, currency: .eur), method: "transfer", bankReference: "VIR 1",
      receivedOn: today, actor: .staff)
    #expect(record.paidInvoices == [first.number] && record.credit.minorUnits == 1100)
    #expect(try b.store.balances(account: account.id).first?.credit.minorUnits == 1100)

    let second = try issue(500)  // covered by credit
    #expect(second.status == .paid && second.due.minorUnits == 0)
    let third = try issue(1000)  // 600 of credit left
    #expect(third.status == .open && third.paid.minorUnits == 600 && third.due.minorUnits == 400)
    #expect(try b.store.balances(account: account.id).first?.credit.minorUnits == 0)
    #expect(try b.store.balances(account: account.id).first?.receivable.minorUnits == 400)
    #expect(try b.store.check().ok)
  }
}

@Suite struct IdempotencyKeyTests {
  /// `ldg_` + 16 hex digits of a microsecond stamp + `_` + 16 random hex digits: keys made
  /// one after another sort in that order, and the stamp is the wall clock's.
  @Test func keysCarryAStampAndSortInTheOrderMade() throws {
    let before = UInt64(Date().timeIntervalSince1970 * 1_000_000)
    let keys = (0..<1_000).map { _ in IdempotencyKey.make() }
    let after = UInt64(Date().timeIntervalSince1970 * 1_000_000)
    let hex = Set("0123456789abcdef")
    for key in keys {
      let parts = key.split(separator: "_", omittingEmptySubsequences: false)
      #expect(parts.count == 3 && parts[0] == "ldg" && parts[1].count == 16 && parts[2].count == 16, "\(key)")
      #expect(parts[1].allSatisfy(hex.contains) && parts[2].allSatisfy(hex.contains), "\(key)")
    }
    #expect(keys == keys.sorted() && Set(keys).count == keys.count)
    let first = try #require(UInt64(keys[0].dropFirst(4).prefix(16), radix: 16))
    #expect(first >= before && first <= after + 1_000)
    #expect(Set(keys.map { $0.suffix(16) }).count > 990, "the random half differs from key to key")
  }
}

@Suite struct QuietPassTests {
  /// A pass that finds nothing due takes no write lock: it returns at once while another
  /// holder (a checkpoint, another process) has the lock, where it used to wait for it.
  @Test func aPassWithNothingDueDoesNotWaitForTheWriteLock() async throws {
    let b = try Bench()
    var discipline = WriteDiscipline()
    discipline.lockTimeout = .milliseconds(300)
    let store = try LedgerStore.open(
      path: b.directory + "/ledger.db", access: .readWrite, clock: b.clock, discipline: discipline)
    let scheduler = Scheduler(
      store: store, processor: b.processor, config: DunningConfig.chargedWhenDue, logger: Logger(label: "test"))
    let invoice = try b.accountWithInvoice(token: "tok_ok")
    #expect(try await scheduler.runDue().succeeded == 1)  // also the hourly look for expiring cards
    #expect(try b.store.invoice(id: invoice.id)?.status == .paid)
    let lock = try #require(b.store.db.writeLock)
    b.clock.advance(to: b.clock.now().adding(seconds: 60))
    #expect(try lock.tryAcquire())
    #expect(try await scheduler.runDue() == TickReport())
    lock.release()
    // Something due needs the lock: the pass waits for it, and fails busy here.
    _ = try b.accountWithInvoice(token: "tok_ok.2")
    #expect(try lock.tryAcquire())
    await #expect(throws: WriteLockBusy.self) { try await scheduler.runDue() }
    lock.release()
    #expect(try await scheduler.runDue().succeeded == 1)
  }
}

@Suite struct InvoiceBalanceTests {
  /// An invoice read by the store says what the audit view `v_invoice_balances` says of it,
  /// in every state: open (unpaid, part paid), paid, written off (then part paid), void.
  @Test func anInvoiceOwesWhatTheBalancesViewSays() async throws {
    let b = try Bench()
    let unpaid = try b.accountWithInvoice(token: "tok_timeout.1")
    let partPaid = try b.accountWithInvoice(token: "tok_timeout.2")
    let paid = try b.accountWithInvoice(token: "tok_ok")
    let writtenOff = try b.accountWithInvoice(token: "tok_decline_expired_card")
    let voided = try b.accountWithInvoice(token: "tok_timeout.3")
    let today = b.clock.now().date
    _ = try b.billing.recordPayment(
      partPaid.number, amount: Money(minorUnits: 700, currency: .eur), method: "transfer", bankReference: "part",
      receivedOn: today,
      actor: .staff)
    _ = try b.billing.voidInvoice(voided.number, reason: "issued twice", actor: .staff)
    _ = try await b.scheduler.runUntil(b.clock.now().adding(days: 10), clock: b.clock)
    _ = try b.billing.recordPayment(
      writtenOff.number, amount: Money(minorUnits: 500, currency: .eur), method: "transfer", bankReference: "late",
      receivedOn: today,
      actor: .staff)
    var seen: Set<InvoiceStatus> = []
    for invoice in [unpaid, partPaid, paid, writtenOff, voided] {
      let read = try #require(try b.store.invoice(id: invoice.id))
      let row = try #require(
        try b.store.db.queryOne("SELECT paid_minor, due_minor FROM v_invoice_balances WHERE invoice_id = ?", invoice.id)
      )
      #expect(read.paid.minorUnits == (try row.int("paid_minor")), "\(read.number) (\(read.status))")
      #expect(read.due.minorUnits == (try row.int("due_minor")), "\(read.number) (\(read.status))")
      seen.insert(read.status)
    }
    #expect(seen == [.open, .paid, .uncollectible, .void])
    #expect(try b.store.invoice(id: partPaid.id)?.due.minorUnits == 1200)
    #expect(try b.store.invoice(id: writtenOff.id)?.due.minorUnits == 1400)
  }
}

extension SimulatedProcessor {
  /// A charge with test metadata (no ledger behind it).
  func charge(key: String, token: String, amount: Money) async throws -> ChargeOutcome {
    try await charge(ChargeRequest(key: key, token: token, amount: amount))
  }
}

extension ChargeRequest {
  /// A request with test metadata (no ledger behind it).
  init(key: String, token: String, amount: Money) {
    self.init(
      key: key, token: token, amount: amount,
      metadata: ChargeMetadata(ledgerID: "test", attemptID: 0, accountID: 0, cardID: 0, invoiceIDs: []))
  }
}

/// The charging pipeline: no call waits for another.
@Suite struct PipelineTests {
  /// Holds the charge of `tok_hold` until the charge of `tok_after` has been asked for (or
  /// two minutes have passed: a pipeline that waits for B never asks, and a loaded machine
  /// asks well before); every other token is the simulated processor's. Release comes
  /// when the call starts, not when the simulated processor has recorded it, so a slow
  /// disk under the other tests cannot hold the answer past the deadline. The `since` of
  /// every listing of charges is kept.
  actor Gate: PaymentProcessor {
    let inner: SimulatedProcessor
    var released = false
    var order: [String] = []
    var listings: [Instant] = []
    init(inner: SimulatedProcessor) { self.inner = inner }

    func charge(_ request: ChargeRequest) async throws -> ChargeOutcome {
      order.append(request.token)
      if request.token.hasPrefix("tok_hold") {
        let deadline = ContinuousClock.now + .seconds(120)
        while !released && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        order.append(released ? "released" : "timed out")
        return .succeeded(reference: "ch_hold")
      }
      if request.token.hasPrefix("tok_after") { released = true }
      return try await inner.charge(request)
    }
    func charges(ledgerID: String, since: Instant) async throws -> [ProcessorCharge] {
      listings.append(since)
      return try await inner.charges(ledgerID: ledgerID, since: since)
    }
    func lookup(_ charge: ChargeLookup, now: Instant) async throws -> ChargeOutcome? {
      try await inner.lookup(key: charge.key)
    }
  }

  /// Account A's default card declines and its second card pays; account B's call is held
  /// until A's second card has been charged. A pipeline that waited for every first call
  /// before any second card would hold B until the gate gives up; this one charges A's
  /// second card while B's call is still out, and records each outcome as it arrives.
  @Test func aFallbackCardIsChargedWhileAnotherCallIsStillOut() async throws {
    let b = try Bench()
    let gate = Gate(inner: b.processor)
    let scheduler = Scheduler(
      store: b.store, processor: gate, config: DunningConfig.chargedWhenDue, logger: Logger(label: "test"))
    scheduler.maxInFlight = 2
    let a = try b.accountWithInvoice(token: "tok_decline_insufficient_funds.a")
    _ = try b.billing.addCard(
      account: a.accountID,
      NewCard(
        token: "tok_after.a", brand: .visa, last4: "4444", expiry: try CardExpiry(parsing: "12/2030"), postalCode: nil,
        country: nil),
      actor: .customer)
    let holder = try b.store.addAccount(
      email: "b@example.fr", name: "B", locale: .fr, planCode: "free", actor: .staff)
    _ = try b.billing.addCard(
      account: holder.id,
      NewCard(
        token: "tok_hold.b", brand: .visa, last4: "1111", expiry: try CardExpiry(parsing: "12/2030"), postalCode: nil,
        country: nil),
      actor: .customer)
    let today = b.clock.now().date
    let held = try b.billing.issueInvoice(
      try InvoiceDraft(
        accountID: holder.id, currency: .eur,
        lines: [InvoiceLineDraft(description: "Plan", unitAmount: Money(minorUnits: 900, currency: .eur))],
        issueDate: today, dueDate: today, method: .card), actor: .staff)
    let report = try await scheduler.runDue()
    let order = await gate.order
    #expect(order.contains("released"), "B's call was held until the gate gave up: \(order)")
    #expect(report.attempts == 3 && report.succeeded == 2 && report.declined == 1)
    #expect(try b.store.invoice(id: a.id)?.status == .paid)
    #expect(try b.store.invoice(id: held.id)?.status == .paid)
    #expect(try b.store.check().ok)
  }
}

extension PipelineTests {
  /// With the processor's rate configured, the pipeline's calls start no faster than it:
  /// eleven calls at 50 per second span at least 200 ms, whatever the workers.
  @Test func theRateLimitSpacesTheCalls() async throws {
    let config = try LedgerConfig.parse(Data(#"{"processor": {"max_requests_per_second": 50}}"#.utf8))
    #expect(config.maxRequestsPerSecond == 50)
    let limiter = RateLimiter(perSecond: try #require(config.maxRequestsPerSecond))
    let start = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
      for _ in 0..<11 { group.addTask { await limiter.acquire() } }
    }
    #expect(ContinuousClock.now - start >= .milliseconds(195))
    #expect(await limiter.waited > .zero)
    #expect(throws: InputError.self) {
      try LedgerConfig.parse(Data(#"{"processor": {"max_requests_per_second": 0}}"#.utf8))
    }
  }
}

extension Array {
  /// `map` with an async transform, one element after the other.
  func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
    var out: [T] = []
    for element in self { out.append(try await transform(element)) }
    return out
  }
}

/// Taking in the charges a restored file lost: what the processor is asked for.
@Suite struct AdoptionTests {
  /// A ledger without an attempt asks from an hour before its identity was made (here the
  /// clock, which stands before the wall clock's creation time), not from 1970: a
  /// processor account that served another system is not listed from its first day.
  /// With attempts, from an hour before the newest.
  @Test func theListingStartsAtTheLedgersIdentityOrItsNewestAttempt() async throws {
    let b = try Bench()
    let observed = PipelineTests.Gate(inner: b.processor)
    let scheduler = Scheduler(
      store: b.store, processor: observed, config: DunningConfig.chargedWhenDue, logger: Logger(label: "test"))
    #expect(try await scheduler.adoptProcessorCharges() == 0)
    let created = try b.store.identityCreatedAt()
    #expect(await observed.listings == [min(created, b.clock.now()).adding(seconds: -3600)])
    _ = try b.accountWithInvoice(token: "tok_ok")
    b.clock.advance(to: b.clock.now().adding(days: 2))
    #expect(try await scheduler.runDue().attempts == 1)
    let newest = try #require(try b.store.newestAttemptTime())
    #expect(try await scheduler.adoptProcessorCharges() == 0)
    #expect(await observed.listings.last == newest.adding(seconds: -3600))
  }
}
