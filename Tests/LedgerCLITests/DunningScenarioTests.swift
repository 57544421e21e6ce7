import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The seeds' behaviours, each through the real binary and `ledgerd run-due`, with the
/// clock pinned by LEDGERD_NOW and moved by run-due.
@Suite(.serialized) struct DunningScenarioTests {
  /// Monday 2026-11-02 at 18:00 UTC, the default daily collection time: day 0 of every
  /// scenario (invoices issued then are charged at once).
  static let day0 = "2026-11-02T18:00:00Z"

  /// Day `n` at day 0's time; `hour` counts from 9 (`hour: 10` is an hour later).
  static func day(_ n: Int, hour: Int = 9) -> String {
    let base = ISO8601DateFormatter().date(from: day0)!.addingTimeInterval(TimeInterval(n * 86_400 + (hour - 9) * 3600))
    return ISO8601DateFormatter().string(from: base)
  }

  func setUp(_ w: Workspace, cards: [String], invoices: Int = 1) throws {
    w.now = Self.day0
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok([
      "account", "add", "--email", "marie@example.fr", "--name", "Marie", "--plan", "pro", "--billing", "manual",
    ])
    for (i, token) in cards.enumerated() {
      try w.ok([
        "card", "add", "1", "--token", token, "--brand", "visa", "--last4", String(format: "%04d", i + 1), "--expiry",
        "12/2028",
      ])
    }
    for i in 0..<invoices {
      try w.ok(["invoice", "issue", "1", "--line", invoices == 1 ? "Plan Pro=19.00" : "Domain example\(i).fr=12.00"])
    }
  }

  func q(_ w: Workspace, _ sql: String) throws -> String {
    let out = try w.sqlite(sql)
    guard out.status == 0 else { throw Failure("sqlite3: \(out.stderr)") }
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  func processorCharges(_ w: Workspace) throws -> String {
    try w.sqlite("SELECT count(*) FROM charges WHERE outcome = 'succeeded'", db: w.directory + "/ledger.processor.db")
      .stdout
      .trimmingCharacters(in: .whitespacesAndNewlines)
  }

  @Test func defaultCardDeclinesAndTheFallbackCardPays() throws {
    let w = try Workspace()
    try setUp(w, cards: ["tok_decline_insufficient_funds", "tok_visa_ok"])
    try w.ok(["run-due", "--until", Self.day(0, hour: 10)])
    #expect(
      try q(w, "SELECT card_id || ':' || status || ':' || coalesce(reason, '') FROM charge_attempts ORDER BY id")
        == "1:declined:insufficient_funds\n2:succeeded:")
    #expect(try q(w, "SELECT status FROM invoices") == "paid")
    #expect(try q(w, "SELECT status FROM accounts") == "active")
    #expect(try q(w, "SELECT group_concat(kind) FROM outbox") == "payment_received")
    #expect(try processorCharges(w) == "1")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  @Test func aSingleExpiredCardIsNeverRetriedAndTheAccountIsDowngradedOnDayNine() throws {
    let w = try Workspace()
    try setUp(w, cards: ["tok_decline_expired_card"])
    #expect(
      try w.sqlite(
        "INSERT INTO account_addons (account_id, code, description, price_minor, currency, added_at) VALUES (1, 'backup', 'Backups', 500, 'EUR', '\(Self.day0)')",
        readOnly: false
      ).status == 0)
    try w.ok(["run-due", "--until", Self.day(12)])
    #expect(try q(w, "SELECT count(*) FROM charge_attempts") == "1")
    #expect(try q(w, "SELECT status FROM cards") == "needs_update")
    #expect(
      try q(
        w,
        "SELECT group_concat(created_at, ' ') FROM (SELECT created_at FROM outbox WHERE kind = 'dunning_reminder' ORDER BY id)"
      )
        == "\(Self.day(3)) \(Self.day(7))")
    #expect(try q(w, "SELECT created_at FROM outbox WHERE kind = 'downgrade_notice'") == Self.day(9))
    #expect(
      try q(w, "SELECT a.status || ' ' || p.code FROM accounts a JOIN plans p ON p.id = a.plan_id") == "downgraded free"
    )
    #expect(try q(w, "SELECT status FROM invoices") == "uncollectible")
    #expect(try q(w, "SELECT removed_reason FROM account_addons") == "downgrade")
    #expect(
      try q(w, "SELECT json_extract(data, '$.reason') FROM outbox WHERE kind = 'charge_failed'") == "expired_card")
    #expect(try q(w, "SELECT at FROM events WHERE kind = 'account_downgraded'") == Self.day(9))
    // The write-off is in the journal; a later payment does not restore the plan.
    #expect(try q(w, "SELECT count(*) FROM journal_entries WHERE kind = 'write_off'") == "1")
    w.now = Self.day(13)
    try w.ok(["payment", "record", "INV-000001", "--amount", "19.00", "--reference", "late transfer"])
    #expect(
      try q(w, "SELECT a.status || ' ' || p.code FROM accounts a JOIN plans p ON p.id = a.plan_id") == "downgraded free"
    )
    #expect(try q(w, "SELECT status FROM invoices") == "paid")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  @Test func aCardAddedOnDayFourIsChargedAtOnceAndClearsTheDunning() throws {
    let w = try Workspace()
    try setUp(w, cards: ["tok_decline_insufficient_funds"])
    try w.ok(["run-due", "--until", Self.day(3, hour: 12)])
    #expect(try q(w, "SELECT status FROM accounts") == "past_due")
    w.now = Self.day(4)
    try w.ok([
      "card", "add", "1", "--token", "tok_new_ok", "--brand", "mastercard", "--last4", "9999", "--expiry", "01/2030",
    ])
    // Added but not default: the default still declines, then the new card pays.
    try w.ok(["run-due", "--until", Self.day(12)])
    #expect(try q(w, "SELECT status FROM invoices") == "paid")
    #expect(try q(w, "SELECT status FROM accounts") == "active")
    #expect(try q(w, "SELECT created_at FROM charge_attempts WHERE status = 'succeeded'") == Self.day(4))
    // Day 1 and day 3 retries happened before; nothing after the payment.
    #expect(try q(w, "SELECT count(*) FROM charge_attempts WHERE created_at > '\(Self.day(4))'") == "0")
    // The day-3 reminder went out in the day-3 failure's message (one decision, one message).
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE kind = 'dunning_reminder'") == "0")
    #expect(
      try q(
        w,
        "SELECT json_extract(data, '$.reminder_day') FROM outbox WHERE kind = 'charge_failed' AND created_at = '\(Self.day(3))'"
      ) == "3")
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE kind = 'downgrade_notice'") == "0")
    #expect(try processorCharges(w) == "1")
  }

  @Test func aDeclaredTransferSuppressesRemindersForThreeBusinessDaysThenReminds() throws {
    let w = try Workspace()
    try setUp(w, cards: ["tok_decline_do_not_honor"])
    try w.ok(["run-due", "--until", Self.day(2)])
    // Wednesday: the window runs to the end of Monday (3 business days from the send date).
    w.now = Self.day(2, hour: 10)
    let declared = try w.json([
      "transfer", "declare", "INV-000001", "--amount", "19.00", "--date", "2026-11-04", "--reference", "VIR 8812",
    ])
    let end = "2026-11-10T00:00:00Z"
    #expect(declared["window_ends_at"] as? String == end)
    try w.ok(["run-due", "--until", Self.day(20)])
    let during = "created_at > '\(Self.day(2, hour: 10))' AND created_at < '\(end)'"
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE \(during)") == "0")
    #expect(try q(w, "SELECT count(*) FROM charge_attempts WHERE \(during)") == "0")
    #expect(try q(w, "SELECT created_at FROM outbox WHERE kind = 'transfer_not_received'") == end)
    #expect(
      try q(w, "SELECT json_extract(data, '$.reference') FROM outbox WHERE kind = 'transfer_not_received'")
        == "VIR 8812")
    // The day-9 deadline fell inside the window's reach: it moved past it.
    #expect(try q(w, "SELECT at FROM events WHERE kind = 'account_downgraded'") == Self.day(9))
    // The reminders that fell due inside the window go out as one, in the window's end
    // message (not as a second message at that instant); the retry days that went by inside
    // it are skipped, not made up then.
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE kind = 'dunning_reminder'") == "0")
    #expect(
      try q(w, "SELECT json_extract(data, '$.reminder_day') FROM outbox WHERE kind = 'transfer_not_received'") == "7")
    #expect(try q(w, "SELECT count(*) FROM charge_attempts WHERE created_at >= '\(end)'") == "0")
    #expect(try q(w, "SELECT count(*) FROM (SELECT 1 FROM outbox GROUP BY created_at HAVING count(*) > 1)") == "0")
  }

  @Test func aPausedInvoiceIsNeverRemindedOrDowngradedAndItsDeadlineMovesByThePause() throws {
    let w = try Workspace()
    try setUp(w, cards: ["tok_decline_insufficient_funds"])
    try w.ok(["run-due", "--until", Self.day(2)])
    w.now = Self.day(2)
    let paused = try w.json(["invoice", "pause", "INV-000001", "--proof", "receipt 4471", "--actor", "customer"])
    #expect(paused["paused"] as? Bool == true)
    #expect(try q(w, "SELECT kind FROM outbox ORDER BY id DESC LIMIT 1") == "pause_confirmed")
    try w.ok(["run-due", "--until", Self.day(12)])
    #expect(
      try q(w, "SELECT count(*) FROM outbox WHERE created_at > '\(Self.day(2))' AND kind <> 'pause_confirmed'") == "0")
    #expect(try q(w, "SELECT count(*) FROM charge_attempts WHERE created_at > '\(Self.day(2))'") == "0")
    #expect(try q(w, "SELECT status FROM accounts") == "past_due")
    w.now = Self.day(12)  // paused for 10 days
    try w.ok(["invoice", "resume", "INV-000001"])
    try w.ok(["run-due", "--until", Self.day(30)])
    // The reminders, moved by the pause, go out with the retries of the same days.
    #expect(
      try q(
        w,
        "SELECT group_concat(created_at || ' ' || json_extract(data, '$.reminder_day'), ', ') FROM (SELECT * FROM outbox WHERE kind = 'charge_failed' AND json_extract(data, '$.reminder_day') <> '' ORDER BY id)"
      )
        == "\(Self.day(13)) 3, \(Self.day(17)) 7")
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE kind = 'dunning_reminder'") == "0")
    #expect(try q(w, "SELECT at FROM events WHERE kind = 'account_downgraded'") == Self.day(19))
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  @Test func fiveSameDayDomainInvoicesMakeOneCharge() throws {
    let w = try Workspace()
    try setUp(w, cards: ["tok_visa_ok"], invoices: 5)
    try w.ok(["run-due", "--until", Self.day(1)])
    #expect(try q(w, "SELECT count(*) FROM charge_attempts") == "1")
    #expect(
      try q(w, "SELECT amount_minor || ' ' || invoices FROM v_charge_attempts")
        == "6000 INV-000001,INV-000002,INV-000003,INV-000004,INV-000005")
    #expect(try q(w, "SELECT count(*) FROM invoices WHERE status = 'paid'") == "5")
    #expect(try q(w, "SELECT count(*) FROM payment_allocations") == "5")
    #expect(try processorCharges(w) == "1")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// `run-due` in a process of its own, stopped (and reported) if it runs longer than
  /// `seconds`: a schedule that does not advance must fail the test, not hang it.
  func runDue(_ w: Workspace, until: String, config: String, seconds: Double = 30) throws -> Outcome {
    let log = "run-due-\(UUID().uuidString).log"
    let process = try w.launch(["run-due", "--until", until, "--config", config], log: log)
    guard waitForExit(process, seconds: seconds) else {
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      let spins = try q(w, "SELECT coalesce(max(retries_done), 0) FROM invoices")
      return Outcome(
        status: -9, stdout: "", stderr: "run-due still running after \(Int(seconds)) s (retries_done up to \(spins))")
    }
    let output = (try? String(contentsOfFile: w.directory + "/" + log, encoding: .utf8)) ?? ""
    return Outcome(status: process.terminationStatus, stdout: output, stderr: output)
  }

  /// The card network limit (here one charge per card in 30 days) with two invoices on one
  /// account, falling due on different days: the first is charged on the only card; the
  /// second finds that card at its limit, so it has no usable card until the window frees
  /// up. Its dunning starts, then reminders and the downgrade follow; the card is not
  /// charged again and run-due ends.
  @Test func aSecondInvoiceWhoseOnlyCardIsAtTheNetworkLimitMovesOnWithoutACharge() throws {
    let w = try Workspace()
    w.now = Self.day0
    let config = try w.writeConfig(#"{"dunning": {"max_charges_per_card": 1}}"#)
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok([
      "account", "add", "--email", "marie@example.fr", "--name", "Marie", "--plan", "pro", "--billing", "manual",
      "--config", config,
    ])
    try w.ok([
      "card", "add", "1", "--token", "tok_visa_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028",
      "--config", config,
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Domain example.fr=12.00", "--config", config])
    try w.ok(["invoice", "issue", "1", "--line", "Domain example.com=12.00", "--due", "2026-11-03", "--config", config])
    let run = try runDue(w, until: Self.day(12), config: config)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(try q(w, "SELECT count(*) FROM charge_attempts") == "1")
    #expect(
      try q(w, "SELECT number || ' ' || status || ' ' || retries_done FROM invoices ORDER BY id")
        == "INV-000001 paid 0\nINV-000002 uncollectible 0")
    // The second invoice's dunning began at its due day's collection time.
    #expect(try q(w, "SELECT at FROM events WHERE kind = 'account_downgraded'") == "2026-11-12T18:00:00Z")
    #expect(
      try q(w, "SELECT json_extract(data, '$.reason') FROM outbox WHERE kind = 'charge_failed'") == "no_usable_card")
    #expect(try processorCharges(w) == "1")
    #expect(try w.ledgerd(["check"]).status == 0)
  }
}
