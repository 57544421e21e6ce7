import Foundation
import Testing

/// What a declared transfer holds, through the binary: one clearing window per invoice,
/// counted from the send date, only for the whole amount due, never on a written-off
/// invoice, unless staff accept or extend it. Day 0 is Monday 2026-11-02, 18:00 UTC (the daily
/// collection time): a
/// 30.00 card invoice whose card declines, so the deadline is day 9.
@Suite(.serialized) struct TransferDeclarationTests {
  static func day(_ n: Int, hour: Int = 9) -> String { DunningScenarioTests.day(n, hour: hour) }

  func setUp(_ w: Workspace) throws {
    w.now = Self.day(0)
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "30.00"])
    try w.ok([
      "account", "add", "--email", "marie@example.fr", "--name", "Marie", "--plan", "pro", "--billing", "manual",
    ])
    try w.ok([
      "card", "add", "1", "--token", "tok_decline_insufficient_funds", "--brand", "visa", "--last4", "0001", "--expiry",
      "12/2028",
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=30.00"])
    try w.ok(["run-due", "--until", Self.day(0, hour: 10)])
  }

  func q(_ w: Workspace, _ sql: String) throws -> String {
    let out = try w.sqlite(sql)
    guard out.status == 0 else { throw Failure("sqlite3: \(out.stderr)") }
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  func declare(_ w: Workspace, _ amount: String, sent: String) throws -> [String: Any] {
    try w.json(["transfer", "declare", "INV-000001", "--amount", amount, "--date", sent, "--reference", "VIR 1"])
  }

  @Test func aDeclarationAfterTheInvoicesWindowEndedHoldsNothing() throws {
    let w = try Workspace()
    try setUp(w)
    w.now = Self.day(1)
    let first = try declare(w, "30.00", sent: "2026-11-03")
    #expect(first["hold"] as? String == "window")
    #expect(first["window_ends_at"] as? String == "2026-11-07T00:00:00Z")  // the end of Friday
    try w.ok(["run-due", "--until", Self.day(5)])
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE kind = 'transfer_not_received'") == "1")
    // A new declaration after the window does not open another one.
    w.now = Self.day(5)
    let again = try declare(w, "30.00", sent: "2026-11-07")
    #expect(again["hold"] as? String == "window_used")
    #expect(again["holds"] as? Bool == false)
    #expect(again["window_ends_at"] == nil)
    #expect(try q(w, "SELECT outcome FROM transfer_declarations ORDER BY id DESC LIMIT 1") == "no_window")
    try w.ok(["run-due", "--until", Self.day(12)])
    #expect(try q(w, "SELECT at FROM events WHERE kind = 'account_downgraded'") == Self.day(9))
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  @Test func theWindowCountsFromTheSendDateNotFromTheDeclaration() throws {
    let w = try Workspace()
    try setUp(w)
    w.now = Self.day(1, hour: 8)
    // Sent two weeks ago: its three business days are long over.
    let out = try w.ok([
      "transfer", "declare", "INV-000001", "--amount", "30.00", "--date", "2026-10-20", "--reference", "VIR 1",
    ])
    #expect(out.stdout.contains("no clearing window opens"), "\(out.stdout)")
    #expect(out.stdout.contains("ended on 2026-10-24"), "\(out.stdout)")
    #expect(
      try q(w, "SELECT outcome || ' ' || coalesce(window_ends_at, '-') FROM transfer_declarations") == "no_window -")
    try w.ok(["run-due", "--until", Self.day(4)])
    // The day-1 and day-3 retries and the day-3 reminder kept their dates.
    #expect(try q(w, "SELECT count(*) FROM charge_attempts WHERE created_at > '\(Self.day(1, hour: 8))'") == "2")
    // (The day-3 reminder goes out in the day-3 failure's message.)
    #expect(
      try q(
        w, "SELECT created_at FROM outbox WHERE kind = 'charge_failed' AND json_extract(data, '$.reminder_day') = '3'")
        == Self.day(3))
  }

  @Test func aShortDeclarationHoldsNothingUntilStaffAcceptIt() throws {
    let w = try Workspace()
    try setUp(w)
    w.now = Self.day(0, hour: 12)
    let short = try declare(w, "3.00", sent: "2026-11-02")
    #expect(short["hold"] as? String == "awaiting_acceptance")
    #expect(short["holds"] as? Bool == false)
    #expect(try q(w, "SELECT closed_at IS NULL AND window_ends_at IS NULL FROM transfer_declarations") == "1")
    try w.ok(["run-due", "--until", Self.day(1, hour: 12)])
    // Day 1's retry.
    #expect(try q(w, "SELECT count(*) FROM charge_attempts WHERE created_at > '\(Self.day(0, hour: 12))'") == "1")
    // Staff accept it: the window opens from the send date (Monday → the end of Thursday).
    w.now = Self.day(1, hour: 12)
    let accepted = try w.json(["transfer", "accept", "INV-000001"])
    #expect(accepted["window_ends_at"] as? String == "2026-11-06T00:00:00Z")
    #expect(try q(w, "SELECT actor FROM events WHERE kind = 'transfer_accepted'") == "staff")
    try w.ok(["run-due", "--until", Self.day(3, hour: 23)])
    let during = "created_at > '\(Self.day(1, hour: 12))' AND created_at < '2026-11-06T00:00:00Z'"
    #expect(try q(w, "SELECT count(*) FROM charge_attempts WHERE \(during)") == "0")
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE \(during)") == "0")
    // Nothing left to accept.
    let twice = try w.ledgerd(["transfer", "accept", "INV-000001"])
    #expect(twice.status != 0)
    #expect(twice.stderr.contains("no declared transfer waiting to be accepted"), "\(twice.stderr)")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  @Test func aWrittenOffInvoiceCanBePaidButNotHeldByADeclaredTransfer() throws {
    let w = try Workspace()
    try setUp(w)
    try w.ok(["run-due", "--until", Self.day(10)])
    #expect(try q(w, "SELECT status FROM invoices") == "uncollectible")
    w.now = Self.day(10)
    let before = w.fingerprint()
    let refused = try w.ledgerd([
      "transfer", "declare", "INV-000001", "--amount", "30.00", "--date", "2026-11-12", "--reference", "VIR 1",
    ])
    #expect(refused.status != 0)
    #expect(refused.stderr.contains("uncollectible"), "\(refused.stderr)")
    #expect(refused.stderr.contains("can still be paid"), "\(refused.stderr)")
    #expect(w.fingerprint() == before)
    #expect(try q(w, "SELECT count(*) FROM transfer_declarations") == "0")
    try w.ok(["payment", "record", "INV-000001", "--amount", "30.00", "--reference", "VIR 1"])
    #expect(try q(w, "SELECT status FROM invoices") == "paid")
  }

  @Test func staffExtendATransferWindowWithAReasonRecordedAsTheirEvent() throws {
    let w = try Workspace()
    try setUp(w)
    w.now = Self.day(1)
    _ = try declare(w, "30.00", sent: "2026-11-03")
    w.now = Self.day(4, hour: 12)  // Friday, the window's last day
    let bad = try w.ledgerd(["transfer", "extend", "INV-000001", "--days", "0", "--reason", "x"])
    #expect(bad.status != 0)
    #expect(bad.stderr.contains("--days"), "\(bad.stderr)")
    let extended = try w.json([
      "transfer", "extend", "INV-000001", "--days", "2", "--reason", "the bank confirms it is on its way",
    ])
    #expect(extended["window_ends_at"] as? String == "2026-11-11T00:00:00Z")  // Monday and Tuesday more
    #expect(
      try q(w, "SELECT actor || ': ' || reason FROM events WHERE kind = 'transfer_window_extended'")
        == "staff: transfer window of INV-000001 extended by 2 business days, until 2026-11-11T00:00:00Z: the bank confirms it is on its way"
    )
    // The day-9 deadline fell less than a day after the longer window: pushed a day past it.
    #expect(try q(w, "SELECT grace_deadline FROM invoices") == "2026-11-12T00:00:00Z")
    try w.ok(["run-due", "--until", Self.day(8, hour: 23)])
    let during = "created_at > '\(Self.day(1))' AND created_at < '2026-11-11T00:00:00Z'"
    #expect(try q(w, "SELECT count(*) FROM charge_attempts WHERE \(during)") == "0")
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE \(during)") == "0")
    #expect(try w.ledgerd(["check"]).status == 0)
  }
}
