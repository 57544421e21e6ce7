import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerSQLite
import LedgerSimulator
import LedgerStore

struct Simulate: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Build a demo book and run it through a month of dunning in seconds (the daemon's code, a jumping clock).",
    discussion: """
      Accounts get cards with a mix of the simulated processor's test tokens and behave like \
      customers: some add a card, report a payment as not registered, or pay by transfer. \
      Prints what happened: charged, recovered by retry, by a fallback card, downgraded, \
      paused, emails queued. --db names the ledger to create, which must not exist; without \
      --db (whatever $LEDGERD_DB says) the book lives in a new temporary folder.
      """)
  @Option(help: "How many accounts.") var accounts: Int = 200
  @Option(help: "How many days to run (31: every account's second period is invoiced, whatever the month).")
  var days: Int = 31
  @Flag(
    help: "Only build the book (accounts, cards, invoices, schedules) and stop: for `serve` or `run-due` to work on.")
  var buildOnly = false
  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  struct Summary: Encodable {
    var database = ""
    var accounts = 0
    var invoices = 0
    /// Invoices the scheduler issued for subscription periods.
    var periodInvoices = 0
    /// Plan changes (upgrades, re-taken plans) and the prorated invoices they issued.
    var planChanges = 0
    var proratedInvoices = 0
    var chargeAttempts = 0
    var chargedAtFirstAttempt = 0
    var recoveredByRetry = 0
    var recoveredByFallbackCard = 0
    var paidByTransfer = 0
    var downgradedAccounts = 0
    var pausedInvoices = 0
    var pendingRecovered = 0
    var processorCharges = 0
    var invoicesChargedTwice = 0
    var emailsQueued: [String: Int] = [:]
    /// The most messages any one account was sent over the run.
    var mostMessagesToOneAccount = 0
    /// Times an account was sent two messages or more at the same instant (one decision
    /// makes at most one message: never more than 0).
    var simultaneousMessages = 0
    var checkFindings = 0
  }

  func run() async throws {
    try await runGuardedAsync {
      guard (1...1_000_000).contains(accounts) else {
        throw InputError(field: "--accounts", rule: "must be from 1 to 1000000")
      }
      guard (1...366).contains(days) else { throw InputError(field: "--days", rule: "must be from 1 to 366") }
      let path: String
      if let db = database.db, !db.isEmpty {
        guard !FileManager.default.fileExists(atPath: db) else {
          throw InputError(
            field: "--db", rule: "\(db) exists; simulate builds a new ledger and never touches an existing one")
        }
        path = db
      } else {
        let dir = NSTemporaryDirectory() + "ledgerd-simulate-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        path = dir + "/ledger.db"
      }
      var options = database
      options.db = path
      let ledgerConfig = try options.loadConfig()
      let start = Instant(try SystemClock.fromEnvironment().now().date, hour: 9)
      let clock = ManualClock(start)
      let store = try options.open(.readWrite, clock: clock)
      let billing = Billing(store: store, config: ledgerConfig.dunning)
      let processor = try SimulatedProcessor(
        path: options.processorPath(ledgerConfig), slowMilliseconds: 0, timeoutMilliseconds: 0, clock: clock)
      let scheduler = Scheduler(
        store: store, processor: processor, config: ledgerConfig.dunning,
        logger: makeLogger("ledgerd.simulate", level: .error))
      ledgerConfig.configure(scheduler)
      try scheduler.checkConfiguration()

      var actions: [Int: [() throws -> Void]] = [:]
      try store.write {
        try buildDemoBook(billing, accounts: accounts, start: start, actions: &actions)
        try scheduler.issueDueRenewals()
      }
      if buildOnly {
        let invoices = try store.db.scalarInt("SELECT count(*) FROM invoices") ?? 0
        try output.emit(["database": path, "accounts": String(accounts), "invoices": String(invoices)]) {
          "built \(accounts) accounts and \(invoices) invoices in \(path), due from \(start)"
        }
        return
      }
      let pendingRecovered = try await runDemoMonth(scheduler, clock: clock, start: start, days: days, actions: actions)
        .recoveredPending
      var summary = try summarize(store)
      summary.processorCharges = try await processor.succeededCharges().count
      summary.database = path
      summary.pendingRecovered = pendingRecovered
      let s = summary
      try output.emit(s) {
        """
        simulated \(s.accounts) accounts over \(days) days from \(start.date) (ledger: \(s.database))
          invoices issued              \(s.invoices) (\(s.periodInvoices) for subscription periods, \(s.proratedInvoices) prorated)
          plan changes                 \(s.planChanges)
          charge attempts              \(s.chargeAttempts)
          charged at first attempt     \(s.chargedAtFirstAttempt)
          recovered by retry           \(s.recoveredByRetry)
          recovered by fallback card   \(s.recoveredByFallbackCard)
          paid by transfer             \(s.paidByTransfer)
          downgraded accounts          \(s.downgradedAccounts)
          paused invoices              \(s.pausedInvoices)
          unanswered charges resolved  \(s.pendingRecovered)
          real charges at processor    \(s.processorCharges)
          invoices charged twice       \(s.invoicesChargedTwice)
          emails queued                \(s.emailsQueued.values.reduce(0, +)) (\(s.emailsQueued.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
          most emails to one account   \(s.mostMessagesToOneAccount)
          two emails at one instant    \(s.simultaneousMessages)
          ledger check                 \(s.checkFindings == 0 ? "ok" : "\(s.checkFindings) finding(s)")
        """
      }
      if s.checkFindings > 0 || s.invoicesChargedTwice > 0 || s.simultaneousMessages > 0 {
        throw ExitCode(Exit.findings)
      }
    }
  }

  func summarize(_ store: LedgerStore) throws -> Summary {
    var s = Summary()
    let db = store.db
    func count(_ sql: String) throws -> Int { Int(try db.scalarInt(sql) ?? 0) }
    s.accounts = try count("SELECT count(*) FROM accounts")
    s.invoices = try count("SELECT count(*) FROM invoices")
    s.periodInvoices = try count("SELECT count(*) FROM invoices WHERE period_start IS NOT NULL")
    s.planChanges = try count("SELECT count(*) FROM events WHERE kind = 'plan_changed'")
    s.proratedInvoices = try count(
      "SELECT count(*) FROM invoices i WHERE period_start IS NULL AND EXISTS (SELECT 1 FROM invoice_lines l WHERE l.invoice_id = i.id AND l.kind IN ('plan', 'addon'))"
    )
    s.chargeAttempts = try count("SELECT count(*) FROM charge_attempts")
    let paidByCard = """
      SELECT ci.invoice_id, a.card_id, a.id AS attempt_id FROM charge_attempt_invoices ci
      JOIN charge_attempts a ON a.id = ci.attempt_id WHERE a.status = 'succeeded'
      """
    s.chargedAtFirstAttempt = try count(
      "SELECT count(*) FROM (\(paidByCard)) p WHERE NOT EXISTS (SELECT 1 FROM charge_attempt_invoices x JOIN charge_attempts y ON y.id = x.attempt_id WHERE x.invoice_id = p.invoice_id AND y.id < p.attempt_id)"
    )
    s.recoveredByRetry = try count(
      "SELECT count(*) FROM (\(paidByCard)) p JOIN invoices i ON i.id = p.invoice_id WHERE i.dunning_started_at IS NOT NULL"
    )
    s.recoveredByFallbackCard = try count(
      """
      SELECT count(*) FROM (\(paidByCard)) p JOIN invoices i ON i.id = p.invoice_id WHERE i.dunning_started_at IS NULL
        AND EXISTS (SELECT 1 FROM charge_attempt_invoices x JOIN charge_attempts y ON y.id = x.attempt_id
                    WHERE x.invoice_id = p.invoice_id AND y.id < p.attempt_id AND y.card_id <> p.card_id)
      """)
    s.paidByTransfer = try count(
      "SELECT count(DISTINCT a.invoice_id) FROM payment_allocations a JOIN payments p ON p.id = a.payment_id WHERE p.method = 'transfer'"
    )
    s.downgradedAccounts = try count("SELECT count(*) FROM accounts WHERE status = 'downgraded'")
    s.pausedInvoices = try count("SELECT count(DISTINCT invoice_id) FROM pauses")
    s.invoicesChargedTwice = try count(
      "SELECT count(*) FROM (SELECT ci.invoice_id FROM charge_attempt_invoices ci JOIN charge_attempts a ON a.id = ci.attempt_id WHERE a.status = 'succeeded' GROUP BY ci.invoice_id HAVING count(*) > 1)"
    )
    for row in try db.query("SELECT kind, count(*) AS n FROM outbox GROUP BY kind") {
      s.emailsQueued[try row.string("kind")] = Int(try row.int("n"))
    }
    s.mostMessagesToOneAccount = try count(
      "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM outbox GROUP BY account_id)")
    s.simultaneousMessages = try count(
      "SELECT count(*) FROM (SELECT 1 FROM outbox GROUP BY account_id, created_at HAVING count(*) > 1)")
    s.checkFindings = try store.check().findings.count
    return s
  }
}

/// The demo book: one account in twenty of each behaviour, in a fixed pattern. Every
/// account subscribes to a plan from `start`: the scheduler invoices each period (the first
/// at once, with `Scheduler.issueDueRenewals`). Some have an add-on, some pay by transfer,
/// two in twenty start on a smaller plan and upgrade mid-month, and the customers whose only
/// card expired pay what was written off and re-take their plan after the downgrade.
func buildDemoBook(_ billing: Billing, accounts: Int, start: Instant, actions: inout [Int: [() throws -> Void]]) throws
{
  let store = billing.store
  _ = try store.addPlan(code: "pro", name: "Pro", price: Money(minorUnits: 1900, currency: .eur), period: .month)
  _ = try store.addPlan(code: "basic", name: "Basic", price: Money(minorUnits: 900, currency: .eur), period: .month)
  let today = start.date
  let expiry = try CardExpiry(month: 12, year: today.year + 2)
  /// The account's invoice of its first period, once the scheduler has issued it.
  func firstPeriodInvoice(_ account: Int64) throws -> Invoice {
    guard let invoice = try store.invoice(account: account, periodStart: today) else {
      throw StateError(subject: "account \(account)", rule: "has no invoice for its first period")
    }
    return invoice
  }
  for i in 0..<accounts {
    let kind = i % 20
    let account = try billing.addAccount(
      email: "customer\(i)@example.com", name: "Customer \(i)", locale: i % 2 == 0 ? .fr : .en,
      planCode: kind == 4 || kind == 5 ? "basic" : "pro", billing: .subscription,
      method: kind == 17 || kind == 18 ? .transfer : .card, anchor: today, actor: .system)
    func card(_ token: String, _ n: Int) throws {
      _ = try billing.addCard(
        account: account.id,
        NewCard(
          token: "\(token).\(i).\(n)",
          brand: .visa, last4: String(format: "%04d", (i * 7 + n) % 10_000), expiry: expiry, postalCode: nil,
          country: "FR"),
        actor: .customer)
    }
    if kind < 4 || kind == 14 {
      _ = try store.addAddon(
        account: account.id, code: "backups", name: "Extra backups", price: Money(minorUnits: 500, currency: .eur),
        reason: nil, actor: .customer, config: billing.config)
    }
    switch kind {
    case 4, 5:  // on the smaller plan, upgraded on day 15: the rest of the month is invoiced
      try card("tok_ok", 1)
      actions[15, default: []].append {
        _ = try billing.changePlan(account: account.id, to: "pro", immediately: false, reason: nil, actor: .customer)
      }
    case 10, 11:  // the default card is short of funds; the second card pays
      try card("tok_decline_insufficient_funds", 1)
      try card("tok_ok", 2)
    case 12, 13:  // declined twice, then the retry on day 3 goes through
      try card("tok_fail2_then_ok", 1)
    case 14:  // a single expired card: never retried, downgraded on day 9; on day 12 the
      // customer pays what was written off, adds a card and re-takes pro and the add-on
      try card("tok_decline_expired_card", 1)
      actions[12, default: []].append {
        let invoice = try firstPeriodInvoice(account.id)
        _ = try billing.recordPayment(
          invoice.number, amount: invoice.due, method: "transfer", bankReference: "payment \(i)",
          receivedOn: today.adding(days: 12), actor: .reconciliation)
        _ = try billing.addCard(
          account: account.id,
          NewCard(
            token: "tok_ok.retake.\(i)", brand: .mastercard, last4: "5454", expiry: expiry, postalCode: nil,
            country: "FR"),
          actor: .customer)
        _ = try billing.changePlan(account: account.id, to: "pro", immediately: false, reason: nil, actor: .customer)
        _ = try billing.addAddon(
          account: account.id, code: "backups", name: "Extra backups", price: Money(minorUnits: 500, currency: .eur),
          reason: nil, actor: .customer)
      }
    case 15:  // blocked by the bank; the customer adds a new card on day 4
      try card("tok_decline_do_not_honor", 1)
      actions[4, default: []].append {
        _ = try billing.addCard(
          account: account.id,
          NewCard(
            token: "tok_ok.new.\(i)", brand: .mastercard, last4: "5454", expiry: expiry, postalCode: nil, country: "FR"),
          actor: .customer)
      }
    case 16:  // "payment not registered" on day 2; staff record the payment on day 5
      try card("tok_decline_insufficient_funds", 1)
      actions[2, default: []].append {
        _ = try billing.pause(try firstPeriodInvoice(account.id).number, proof: "receipt \(i)", actor: .customer)
      }
      actions[5, default: []].append {
        let invoice = try firstPeriodInvoice(account.id)
        _ = try billing.recordPayment(
          invoice.number, amount: invoice.total, method: "transfer", bankReference: "receipt \(i)",
          receivedOn: today.adding(days: 5), actor: .staff)
      }
    case 17, 18:  // paid by transfer; one transfer arrives, the other never does
      actions[8, default: []].append {
        let invoice = try firstPeriodInvoice(account.id)
        _ = try billing.declareTransfer(
          invoice.number, amount: invoice.total, sentOn: today.adding(days: 8),
          bankReference: invoice.paymentReference ?? "", actor: .customer)
      }
      if kind == 17 {
        actions[10, default: []].append {
          let invoice = try firstPeriodInvoice(account.id)
          _ = try billing.recordPayment(
            invoice.number, amount: invoice.total, method: "transfer", bankReference: invoice.paymentReference,
            receivedOn: today.adding(days: 10), actor: .reconciliation)
        }
      }
    case 19:  // five same-day domains beside the plan; the processor's answer is lost and recovered
      try card("tok_lost", 1)
      for d in 1...5 {
        _ = try billing.issueInvoice(
          try InvoiceDraft(
            accountID: account.id, currency: .eur,
            lines: [
              InvoiceLineDraft(
                description: "Domain site\(d)-\(i).fr", unitAmount: Money(minorUnits: 1200, currency: .eur))
            ], issueDate: today, dueDate: today, method: .card),
          actor: .system)
      }
    case 8:  // a processor slow to answer
      try card("tok_slow", 1)
    case 9:  // a processor that never answers: the charge stays pending, then is retried
      try card("tok_timeout", 1)
    default:
      try card("tok_ok", 1)
    }
  }
}

/// Runs the demo book day after day: what falls due up to each day's 10:00, then that
/// day's customer and staff actions.
func runDemoMonth(
  _ scheduler: Scheduler, clock: ManualClock, start: Instant, days: Int, actions: [Int: [() throws -> Void]]
) async throws
  -> TickReport
{
  var report = TickReport()
  for day in 0...days {
    report.add(try await scheduler.runUntil(start.adding(days: day).adding(seconds: 3600), clock: clock))
    // The day's customer and staff actions, committed together (they happen at one instant
    // of the jumping clock; one by one they would time the fsync of each, not the scheduler).
    try scheduler.store.write { for action in actions[day] ?? [] { try action() } }
  }
  report.add(try await scheduler.runUntil(start.adding(days: days), clock: clock))
  return report
}
