import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Subscriptions through the binary: the scheduler invoices each period once, month-end
/// anchors follow the calendar, plan and add-on changes are prorated to the cent, and the
/// seed's story from downgrade to re-taken plan.
@Suite(.serialized) struct SubscriptionTests {
  func q(_ w: Workspace, _ sql: String) throws -> String {
    let out = try w.sqlite(sql)
    guard out.status == 0 else { throw Failure("sqlite3: \(out.stderr)") }
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// A ledger with plans pro (19.00) and basic (9.00), and account 1 on `plan`.
  func book(_ w: Workspace, plan: String = "pro", anchor: String? = nil, extra: [String] = []) throws {
    try w.ok(["migrate"])
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok(["plan", "add", "basic", "--name", "Basic", "--price", "9.00"])
    try w.ok(
      ["account", "add", "--email", "ada@example.com", "--name", "Ada", "--plan", plan, "--locale", "en"]
        + (anchor.map { ["--anchor", $0] } ?? []) + extra)
  }

  func card(_ w: Workspace, _ account: Int = 1, token: String = "tok_visa_ok") throws {
    try w.ok([
      "card", "add", String(account), "--token", "\(token).\(account).\(UUID().uuidString.prefix(6))", "--brand",
      "visa",
      "--last4", "4242", "--expiry", "12/2030",
    ])
  }

  /// "period_start total" of each invoice the scheduler issued for the account, in order.
  func periods(_ w: Workspace, account: Int = 1) throws -> [String] {
    try q(
      w,
      "SELECT period_start || ' ' || total_minor FROM invoices WHERE account_id = \(account) AND period_start IS NOT NULL ORDER BY period_start"
    ).split(separator: "\n").map(String.init)
  }

  func checkClean(_ w: Workspace) throws {
    let check = try w.ledgerd(["check"])
    #expect(check.status == 0, "check: \(check.stdout) \(check.stderr)")
    #expect(try q(w, "SELECT balance_minor FROM v_trial_balance WHERE ledger_account = '(total)'") == "0")
  }

  /// Must-show 1: pro with one add-on, invoiced on each of three period starts, once each,
  /// however often `run-due` runs (at the same instant too); the invoice has one line for
  /// the plan and one for the add-on, and the ledger refuses a second invoice for a period.
  @Test func eachPeriodIsInvoicedOnceWithThePlanAndItsAddon() throws {
    let w = try Workspace()
    w.now = "2027-03-10T09:00:00Z"
    try book(w)
    try card(w)
    try w.ok(["account", "addon", "add", "1", "backups", "--name", "Extra backups", "--price", "5.00"])
    // The first period began today: its invoice comes with the add-on's, not a prorated one.
    #expect(try q(w, "SELECT count(*) FROM invoices") == "0")
    for day in ["2027-03-10", "2027-03-11", "2027-04-09", "2027-04-10", "2027-04-10", "2027-05-10", "2027-05-12"] {
      w.now = day + "T08:00:00Z"
      try w.ok(["run-due", "--until", day + "T20:00:00Z"])
      try w.ok(["run-due", "--until", day + "T20:00:00Z"])
    }
    #expect(try periods(w) == ["2027-03-10 2400", "2027-04-10 2400", "2027-05-10 2400"])
    #expect(
      try q(
        w,
        "SELECT group_concat(kind || ':' || amount_minor, ' ') FROM invoice_lines WHERE invoice_id = (SELECT max(id) FROM invoices)"
      ) == "plan:1900 addon:500")
    #expect(try q(w, "SELECT count(*) FROM invoices WHERE status = 'paid'") == "3")
    let duplicate = try w.sqlite(
      """
      INSERT INTO invoices (id, number, account_id, currency, total_minor, status, collection_method, issue_date, due_date,
        created_at, period_start, period_end)
      VALUES (99, 'INV-000099', 1, 'EUR', 100, 'open', 'card', '2027-04-10', '2027-04-10', '2027-04-10T00:00:00Z',
        '2027-04-10', '2027-05-10')
      """, readOnly: false)
    #expect(duplicate.status != 0 && duplicate.stderr.contains("UNIQUE"))
    try checkClean(w)
  }

  /// Must-show 1: an account anchored on the 31st is invoiced on Jan 31, Feb 28 (29 in a
  /// leap year) and Mar 31: each period computed from the anchor, not from the last one.
  @Test(arguments: [("2027", "2027-02-28"), ("2028", "2028-02-29")])
  func monthEndAnchorsFollowTheCalendar(year: String, february: String) throws {
    let w = try Workspace()
    w.now = "\(year)-01-20T09:00:00Z"
    try book(w, anchor: "\(year)-01-31")
    try card(w)
    w.now = "\(year)-01-20T09:00:00Z"
    try w.ok(["run-due", "--until", "\(year)-04-15T00:00:00Z"])
    #expect(
      try periods(w) == ["\(year)-01-31 1900", "\(february) 1900", "\(year)-03-31 1900"])
    #expect(
      try q(w, "SELECT period_end FROM invoices WHERE period_start = '\(february)'") == "\(year)-03-31")
    #expect(
      try q(w, "SELECT renew_at FROM subscriptions WHERE account_id = 1") == "\(year)-04-30T00:00:00Z")
    try checkClean(w)
  }

  /// Must-show 1: `serve` SIGKILLed again and again while it renews a book of accounts
  /// (every write held a little, so kills land inside renewals), for three period starts:
  /// each account ends with exactly one invoice per period.
  @Test func serveKilledAroundRenewalsInvoicesEachPeriodOnce() throws {
    let w = try Workspace()
    w.now = "2027-06-01T09:00:00Z"
    try w.ok(["migrate"])
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    let accounts = 40
    for i in 1...accounts {
      try w.ok([
        "account", "add", "--email", "c\(i)@example.com", "--name", "C \(i)", "--plan", "pro", "--anchor", "2027-06-02",
        "--method", i % 4 == 0 ? "transfer" : "card",
      ])
      if i % 4 != 0 { try card(w, i) }
    }
    // Renewals in batches of five, each write held a little: kills land between and inside them.
    let config = try w.writeConfig(#"{"dunning": {"collection_time": "18:00"}, "daemon": {"batch_size": 5}}"#)
    var kills = 0
    var cutMidway = 0
    for (n, day) in ["2027-06-02", "2027-07-02", "2027-08-02"].enumerated() {
      w.now = day + "T00:30:00Z"
      for round in 0..<4 {
        let serve = try w.launch(
          ["serve", "--config", config], environment: ["LEDGERD_TEST_HOLD_WRITE_MS": "40"], log: "serve-\(n).log")
        usleep(UInt32(150_000 + (round * 137_000) % 400_000))
        if serve.isRunning {
          kill(serve.processIdentifier, SIGKILL)
          kills += 1
        }
        serve.waitUntilExit()
        let renewed = Int(try q(w, "SELECT count(*) FROM invoices WHERE period_start = '\(day)'")) ?? -1
        if renewed > 0 && renewed < accounts { cutMidway += 1 }
      }
      // The last start runs until nothing is due (it is up once it says it serves: a SIGTERM
      // before that would find no handler yet).
      let serve = try w.launch(["serve", "--config", config], log: "final-\(n).log")
      let done = waitUntil(seconds: 60) {
        w.serveLog("final-\(n).log").contains("serving")
          && (try? q(w, "SELECT count(*) FROM subscriptions WHERE renew_at <= '\(w.now)'")) == "0"
      }
      kill(serve.processIdentifier, SIGTERM)
      #expect(waitForExit(serve, seconds: 10) && serve.terminationStatus == 0, "\(w.serveLog("final-\(n).log"))")
      #expect(done)
      #expect(
        try q(w, "SELECT count(*) || ' ' || count(DISTINCT account_id) FROM invoices WHERE period_start = '\(day)'")
          == "\(accounts) \(accounts)")
    }
    #expect(kills > 0)
    #expect(cutMidway > 0, "no kill landed while a period's renewals were under way")
    #expect(
      try q(w, "SELECT count(*) FROM (SELECT account_id, period_start FROM invoices GROUP BY 1, 2 HAVING count(*) > 1)")
        == "0")
    #expect(try q(w, "SELECT count(*) FROM invoices") == "\(accounts * 3)")
    // Transfer accounts' invoices carry a payment reference and fall due after the terms.
    #expect(
      try q(
        w,
        "SELECT count(*) FROM invoices WHERE collection_method = 'transfer' AND payment_reference LIKE 'RF%' AND due_date = date(period_start, '+14 days')"
      ) == "\(accounts / 4 * 3)")
    try checkClean(w)
  }

  /// With a lead time, a period's invoice is issued that many days before it starts and
  /// falls due on its first day; an upgrade inside the lead window pays the days left of
  /// the period running and the whole difference for the period already invoiced. An
  /// account invoiced by hand is switched on from its next period start.
  @Test func aLeadTimeIssuesAheadAndManualAccountsSwitchOn() throws {
    let w = try Workspace()
    w.now = "2027-04-01T09:00:00Z"
    w.environment["LEDGERD_CONFIG"] = try w.writeConfig(#"{"subscriptions": {"renewal_lead_days": 5}}"#)
    try book(w, plan: "basic", anchor: "2027-04-10")
    try card(w)
    try w.ok(["account", "add", "--email", "bo@example.com", "--name", "Bo", "--plan", "pro", "--billing", "manual"])
    try w.ok(["run-due", "--until", "2027-05-06T12:00:00Z"])
    #expect(
      try q(w, "SELECT issue_date || ' ' || due_date || ' ' || period_start FROM invoices ORDER BY id")
        == "2027-04-05 2027-04-10 2027-04-10\n2027-05-05 2027-05-10 2027-05-10")
    #expect(try q(w, "SELECT count(*) FROM invoices WHERE account_id = 2") == "0")
    // On May 6 (April's period runs to May 9, May's is invoiced): 10.00 × 4/30 + 10.00.
    w.now = "2027-05-06T12:00:00Z"
    let up = try w.json(["account", "plan", "1", "pro"])
    #expect(((up["invoice"] as? [String: Any])?["total"] as? [String: Any])?["minor"] as? Int == 133 + 1000)
    let bo = try w.json(["account", "update", "2", "--billing", "subscription"])
    #expect(bo["id"] as? Int == 2)
    #expect(
      try q(w, "SELECT billed_until || ' ' || renew_at FROM subscriptions WHERE account_id = 2")
        == "2027-06-01 2027-05-27T00:00:00Z")
    try checkClean(w)
  }

  /// A downgrade to free waits for the period's end and takes the add-ons with it; asking
  /// for the plan the account is on cancels it, add-ons included.
  @Test func aScheduledDowngradeCanBeCancelled() throws {
    let w = try Workspace()
    w.now = "2027-04-01T09:00:00Z"
    try book(w)
    try card(w)
    try w.ok(["account", "addon", "add", "1", "backups", "--name", "Extra backups", "--price", "5.00"])
    try w.ok(["run-due", "--until", "2027-04-01T20:00:00Z"])
    w.now = "2027-04-10T09:00:00Z"
    let scheduled = try w.json(["account", "plan", "1", "free", "--actor", "customer"])
    #expect(scheduled["effective"] as? String == "2027-05-01")
    #expect(try q(w, "SELECT removed_at FROM account_addons") == "2027-05-01T00:00:00Z")
    #expect(try w.ok(["explain", "1"]).stdout.contains("plan pro → free when the period invoiced ends (2027-05-01)"))
    try w.ok(["account", "plan", "1", "pro", "--actor", "customer"])
    #expect(try q(w, "SELECT removed_at IS NULL FROM account_addons") == "1")
    try w.ok(["run-due", "--until", "2027-05-01T20:00:00Z"])
    #expect(try periods(w) == ["2027-04-01 2400", "2027-05-01 2400"])
    try checkClean(w)
  }

  /// Must-show 3: upgrades and downgrades mid-period, prorated by the days left: what the
  /// customer pays is rounded down, what they are credited is rounded up, and the credit
  /// pays the next invoice. `check` is clean and the trial balance zero after each step.
  @Test func midPeriodChangesAreProratedToTheCent() throws {
    let w = try Workspace()
    w.now = "2027-04-01T09:00:00Z"
    try book(w, plan: "basic")
    try card(w)
    try w.ok(["run-due", "--until", "2027-04-01T20:00:00Z"])  // April (30 days) on basic, paid
    // (day, command, expected invoice or credit in cents, the rule)
    let table: [(String, [String], String)] = [
      // 10.00 × 20/30 = 6.666… → 6.66 invoiced (down)
      ("2027-04-11", ["account", "plan", "1", "pro"], "invoice 666"),
      // 5.00 × 20/30 = 3.333… → 3.33 invoiced (down)
      (
        "2027-04-11", ["account", "addon", "add", "1", "backups", "--name", "Extra backups", "--price", "5.00"],
        "invoice 333"
      ),
      // 5.00 × 13/30 = 2.1666… → 2.17 credited (up)
      ("2027-04-18", ["account", "addon", "remove", "1", "backups", "--now"], "credit 217"),
      // 10.00 × 9/30 = 3.00 credited (exact)
      ("2027-04-22", ["account", "plan", "1", "basic", "--now"], "credit 300"),
      // 10.00 × 1/30 = 0.333… → 0.33 invoiced, paid from the 5.17 of credit
      ("2027-04-30", ["account", "plan", "1", "pro"], "invoice 33"),
    ]
    for (day, command, expected) in table {
      w.now = day + "T10:00:00Z"
      let out = try w.json(command)
      if expected.hasPrefix("invoice") {
        let invoice = try #require(out["invoice"] as? [String: Any])
        let total = try #require(invoice["total"] as? [String: Any])
        #expect("invoice \(total["minor"] ?? "?")" == expected, "\(command)")
      } else {
        let note = try #require(out["credit_note"] as? [String: Any], "\(out)")
        let amount = try #require(note["amount"] as? [String: Any])
        #expect("credit \(amount["minor"] ?? "?")" == expected, "\(command)")
      }
      try checkClean(w)
    }
    // Credit notes post revenue back to the customer's credit; invoices consumed it.
    #expect(
      try q(
        w,
        "SELECT group_concat(l.ledger_account || ' ' || l.debit_minor || '/' || l.credit_minor, ', ') FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id WHERE e.memo LIKE 'credit note CN-000001%'"
      ) == "revenue 217/0, customer_credit 0/217")
    #expect(try q(w, "SELECT sum(amount_minor) FROM payments WHERE method = 'credit'") == "33")
    #expect(try q(w, "SELECT credit_minor FROM v_account_balances WHERE account_id = 1") == "484")
    // The scheduled-change side: a downgrade without --now waits for the period's end.
    w.now = "2027-04-30T12:00:00Z"
    let scheduled = try w.json(["account", "plan", "1", "basic"])
    #expect(scheduled["effective"] as? String == "2027-05-01")
    try w.ok(["run-due", "--until", "2027-05-01T20:00:00Z"])
    // May on basic (9.00) less the 4.84 of credit left: 4.16 charged.
    #expect(try periods(w).last == "2027-05-01 900")
    #expect(try q(w, "SELECT p.code FROM accounts a JOIN plans p ON p.id = a.plan_id") == "basic")
    #expect(try q(w, "SELECT coalesce(sum(amount_minor), 0) FROM payments WHERE method = 'credit'") == "517")
    try checkClean(w)
  }

  /// Must-show 2: the seed's story. A card that keeps declining → downgrade on day 9, the
  /// add-on ended and named in the notice → the customer pays the written-off invoice → the
  /// plan is not restored → they re-take pro and its add-on → the prorated invoices are
  /// issued and charged → the next renewal bills pro and the add-on.
  @Test func downgradedCustomerPaysThenRetakesTheirPlan() throws {
    let w = try Workspace()
    w.now = "2027-03-01T09:00:00Z"
    try book(w)
    try card(w, token: "tok_decline_insufficient_funds")
    try w.ok(["account", "addon", "add", "1", "backups", "--name", "Extra backups", "--price", "5.00"])
    try w.ok(["run-due", "--until", "2027-03-11T12:00:00Z"])
    #expect(try q(w, "SELECT status FROM accounts") == "downgraded")
    #expect(try q(w, "SELECT p.code FROM accounts a JOIN plans p ON p.id = a.plan_id") == "free")
    #expect(try q(w, "SELECT count(*) FROM account_addons WHERE removed_reason = 'downgrade'") == "1")
    #expect(try q(w, "SELECT substr(at, 1, 10) FROM events WHERE kind = 'account_downgraded'") == "2027-03-10")
    let notice = try q(w, "SELECT id FROM outbox WHERE kind = 'downgrade_notice'")
    let text = try w.ok(["outbox", "show", notice]).stdout.replacingOccurrences(of: "=\n", with: "")
    #expect(text.contains("Extra backups"), "\(text)")
    // Nothing renews on the free plan.
    #expect(try q(w, "SELECT renew_at IS NULL FROM subscriptions") == "1")

    w.now = "2027-03-12T10:00:00Z"
    try w.ok([
      "payment", "record", "INV-000001", "--amount", "24.00", "--method", "transfer", "--date", "2027-03-12",
    ])
    #expect(try q(w, "SELECT status FROM invoices WHERE number = 'INV-000001'") == "paid")
    #expect(try q(w, "SELECT p.code FROM accounts a JOIN plans p ON p.id = a.plan_id") == "free")

    try card(w)
    try w.ok(["card", "default", "2"])
    // March has 31 days; from the 12th, 20 are left: 19.00 × 20/31 = 12.258… → 12.25.
    let plan = try w.json(["account", "plan", "1", "pro", "--actor", "customer"])
    let invoice = try #require(plan["invoice"] as? [String: Any])
    #expect((invoice["total"] as? [String: Any])?["minor"] as? Int == 1225)
    // 5.00 × 20/31 = 3.225… → 3.22.
    let addon = try w.json(["account", "addon", "add", "1", "backups", "--name", "Extra backups", "--price", "5.00"])
    #expect(((addon["invoice"] as? [String: Any])?["total"] as? [String: Any])?["minor"] as? Int == 322)
    #expect(try q(w, "SELECT status FROM accounts") == "active")
    try w.ok(["run-due", "--until", "2027-04-01T20:00:00Z"])
    #expect(try q(w, "SELECT count(*) FROM invoices WHERE total_minor IN (1225, 322) AND status = 'paid'") == "2")
    #expect(try periods(w) == ["2027-03-01 2400", "2027-04-01 2400"])
    #expect(try q(w, "SELECT status FROM invoices WHERE period_start = '2027-04-01'") == "paid")
    let story = try w.ok(["explain", "1"]).stdout
    for fragment in [
      "plan pro → free", "add-ons removed: Extra backups", "plan free → pro now", "add-on backups",
      "period 2027-04-01 to 2027-04-30 of plan pro invoiced",
    ] {
      #expect(story.contains(fragment), "explain lacks '\(fragment)':\n\(story)")
    }
    try checkClean(w)
  }

  /// A past-due account keeps being invoiced, each invoice with its own dunning; when the
  /// downgrade plan is a paid one, the account is invoiced on it from the next period.
  @Test func pastDueAndDowngradedAccountsAreInvoicedOnTheirPlan() throws {
    let w = try Workspace()
    w.now = "2027-03-01T09:00:00Z"
    w.environment["LEDGERD_CONFIG"] = try w.writeConfig(
      #"{"dunning": {"downgrade_plan": "basic", "grace_days": 40, "retry_days": [1], "reminder_days": [3]}}"#)
    try book(w)
    try card(w, token: "tok_decline_insufficient_funds")
    try w.ok(["run-due", "--until", "2027-04-01T20:00:00Z"])
    // Past due since March 1st and still on pro: April is invoiced on pro.
    #expect(try q(w, "SELECT status FROM accounts") == "past_due")
    #expect(try periods(w) == ["2027-03-01 1900", "2027-04-01 1900"])
    #expect(try q(w, "SELECT count(*) FROM invoices WHERE dunning_started_at IS NOT NULL") == "2")
    // Day 40 of March's dunning: downgraded to basic; May is invoiced on basic.
    try w.ok(["run-due", "--until", "2027-05-01T20:00:00Z"])
    #expect(
      try q(w, "SELECT a.status || ' ' || p.code FROM accounts a JOIN plans p ON p.id = a.plan_id")
        == "downgraded basic")
    #expect(try periods(w) == ["2027-03-01 1900", "2027-04-01 1900", "2027-05-01 900"])
    try checkClean(w)
  }

  /// Must-show 2, the other setting: with `restore_plan_on_payment`, paying the written-off
  /// invoice restores the plan and its add-on together, and the next renewal bills both.
  @Test func restorePlanOnPaymentRestoresPlanAndAddons() throws {
    let w = try Workspace()
    w.now = "2027-03-01T09:00:00Z"
    let config = try w.writeConfig(#"{"dunning": {"restore_plan_on_payment": true}}"#)
    w.environment["LEDGERD_CONFIG"] = config
    try book(w)
    try card(w, token: "tok_decline_insufficient_funds")
    try w.ok(["account", "addon", "add", "1", "backups", "--name", "Extra backups", "--price", "5.00"])
    try w.ok(["run-due", "--until", "2027-03-11T12:00:00Z"])
    #expect(try q(w, "SELECT status FROM accounts") == "downgraded")
    w.now = "2027-03-12T10:00:00Z"
    try w.ok([
      "payment", "record", "INV-000001", "--amount", "24.00", "--method", "transfer", "--date", "2027-03-12",
    ])
    #expect(
      try q(w, "SELECT a.status || ' ' || p.code FROM accounts a JOIN plans p ON p.id = a.plan_id") == "active pro")
    #expect(try q(w, "SELECT count(*) FROM account_addons WHERE removed_at IS NULL AND code = 'backups'") == "1")
    // The paid invoice was March's: nothing more for it; April bills both.
    #expect(try q(w, "SELECT count(*) FROM invoices") == "1")
    try card(w)
    try w.ok(["card", "default", "2"])
    try w.ok(["run-due", "--until", "2027-04-01T20:00:00Z"])
    #expect(try periods(w) == ["2027-03-01 2400", "2027-04-01 2400"])
    #expect(try q(w, "SELECT status FROM invoices WHERE period_start = '2027-04-01'") == "paid")
    try checkClean(w)
  }

  /// Must-show 4: bad input is refused with the field and the rule, a non-zero exit, and
  /// nothing written.
  @Test func badChangesAreRefusedWithNothingWritten() throws {
    let w = try Workspace()
    w.now = "2027-03-01T09:00:00Z"
    try book(w)
    try w.ok(["plan", "add", "pro-usd", "--name", "Pro USD", "--price", "21.00", "--currency", "USD"])
    try w.ok(["account", "addon", "add", "1", "backups", "--name", "Extra backups", "--price", "5.00"])
    try w.ok(["run-due", "--until", w.now])  // March is invoiced
    try w.ok(["account", "addon", "remove", "1", "backups"])
    try w.ok(["account", "addon", "add", "1", "dns", "--name", "DNS", "--price", "2.00"])
    try w.ok(["account", "addon", "remove", "1", "dns", "--now"])
    try w.ok(["account", "add", "--email", "bo@example.com", "--name", "Bo", "--plan", "free"])
    try w.ok(["account", "close", "2", "--reason", "customer left"])
    let cases: [([String], String)] = [
      (["account", "plan", "1", "gold"], "plan: no plan 'gold'"),
      (["account", "addon", "add", "1", "dns", "--name", "DNS", "--price", "2.00", "--currency", "USD"], "--currency"),
      (["account", "plan", "2", "pro"], "account 2: is closed"),
      (["account", "addon", "remove", "1", "backups"], "add-on backups: is already removed: it ends on 2027-04-01"),
      (["account", "addon", "remove", "1", "dns"], "add-on dns: is already removed: it ended on 2027-03-01"),
      (["account", "addon", "remove", "1", "vpn"], "addon: no addon 'vpn'"),
      (["account", "addon", "add", "1", "x", "--name", "X", "--price", "-1.00"], "--price"),
      (["account", "plan", "1", "pro-usd", "--now"], "--now"),
      (["account", "add", "--email", "c@example.com", "--name", "C", "--anchor", "2027-02-01"], "--anchor"),
      (["account", "add", "--email", "c@example.com", "--name", "C", "--billing", "weekly"], "--billing"),
      (["account", "plan", "1", "pro"], "already on plan pro"),
    ]
    for (args, expected) in cases {
      let before = w.fingerprint()
      let out = try w.ledgerd(args)
      #expect(out.status != 0, "\(args) should be refused")
      #expect(out.stderr.contains(expected), "\(args): \(out.stderr)")
      #expect(w.fingerprint() == before, "\(args) wrote to the ledger")
    }
  }
}
