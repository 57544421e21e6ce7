import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The seeds as customers live them, day by day, through the binary: one card charge a day
/// per account, one message per decision, and messages that say what really happens.
@Suite(.serialized) struct SeedDayTests {
  func q(_ w: Workspace, _ sql: String) throws -> String {
    let out = try w.sqlite(sql)
    guard out.status == 0 else { throw Failure("sqlite3: \(out.stderr)") }
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  func processorCharges(_ w: Workspace) throws -> String {
    try w.sqlite(
      "SELECT count(*) || ' ' || coalesce(sum(amount_minor), 0) FROM charges WHERE outcome = 'succeeded'",
      db: w.directory + "/ledger.processor.db"
    )
    .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// A message as the customer reads it (`outbox show`, quoted-printable decoded).
  func message(_ w: Workspace, id: String) throws -> String {
    let raw = try w.ok(["outbox", "show", id]).stdout.replacingOccurrences(of: "=\r\n", with: "").replacingOccurrences(
      of: "=\n", with: "")
    var bytes: [UInt8] = []
    var i = raw.utf8.startIndex
    let utf8 = raw.utf8
    while i < utf8.endIndex {
      let b = utf8[i]
      if b == UInt8(ascii: "="), let j = utf8.index(i, offsetBy: 2, limitedBy: utf8.endIndex), j < utf8.endIndex,
        let v = UInt8(String(decoding: utf8[utf8.index(after: i)...j], as: UTF8.self), radix: 16)
      {
        bytes.append(v)
        i = utf8.index(after: j)
      } else {
        bytes.append(b)
        i = utf8.index(after: i)
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  func pro(_ w: Workspace, locale: String = "en", plan: String = "pro") throws {
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok([
      "account", "add", "--email", "ada@example.com", "--name", "Ada", "--plan", plan, "--billing", "manual",
      "--locale", locale,
    ])
  }

  /// Seed 000: five domains registered through one day (08:00 to 16:00) are charged as one
  /// charge at the day's collection time, not as five charges that trip the issuer's alert.
  @Test func fiveDomainsRegisteredThroughTheDayAreOneChargeAtTheCollectionTime() throws {
    let w = try Workspace()
    try pro(w)
    w.now = "2026-11-23T07:30:00Z"
    try w.ok([
      "card", "add", "1", "--token", "tok_visa_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2030",
    ])
    for (i, hour) in ["08", "10", "12", "14", "16"].enumerated() {
      w.now = "2026-11-23T\(hour):00:00Z"
      try w.ok(["invoice", "issue", "1", "--line", "Domain example\(i).fr=12.00"])
      // Run as the daemon would, at each moment of the day.
      try w.ok(["run-due", "--until", w.now])
    }
    #expect(try q(w, "SELECT count(*) FROM charge_attempts") == "0")
    w.now = "2026-11-23T16:30:00Z"
    try w.ok(["run-due", "--until", "2026-11-23T23:59:00Z"])
    #expect(try q(w, "SELECT created_at || ' ' || amount_minor FROM charge_attempts") == "2026-11-23T18:00:00Z 6000")
    #expect(try q(w, "SELECT count(*) FROM payment_allocations") == "5")
    #expect(try processorCharges(w) == "1 6000")
  }

  /// The same day with `ledgerd serve` running all along (real clock; the collection time
  /// set a few seconds ahead): one charge at the processor for the sum, allocated over the
  /// five invoices.
  @Test func fiveDomainsWithTheDaemonRunningAreOneCharge() throws {
    let w = try Workspace()
    w.now = ""
    try w.ok(["migrate"])
    try pro(w)
    try w.ok([
      "card", "add", "1", "--token", "tok_visa_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2030",
    ])
    // The collection time: 12 seconds from now (UTC), or later when that crosses midnight.
    var utc = Calendar(identifier: .gregorian)
    utc.timeZone = TimeZone(identifier: "UTC")!
    let at = Date().addingTimeInterval(12)
    let parts = utc.dateComponents([.hour, .minute, .second], from: at)
    try #require(parts.hour! < 23 || parts.minute! < 59, "too close to midnight UTC for this test")
    let time = String(format: "%02d:%02d:%02d", parts.hour!, parts.minute!, parts.second!)
    let config = try w.writeConfig(#"{"dunning": {"collection_time": "\#(time)"}}"#)
    w.environment["LEDGERD_CONFIG"] = config
    let serve = try w.launch(["serve"], environment: ["LEDGERD_NOW": ""])
    defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
    #expect(waitUntil(seconds: 10) { w.serveLog().contains("serving") })
    for i in 0..<5 {
      try w.ok(["invoice", "issue", "1", "--line", "Domain example\(i).fr=12.00"])
      usleep(300_000)  // the customer registers one domain after another
    }
    #expect(try q(w, "SELECT count(*) FROM charge_attempts") == "0")
    #expect(try waitUntil(seconds: 30) { try q(w, "SELECT count(*) FROM invoices WHERE status = 'paid'") == "5" })
    kill(serve.processIdentifier, SIGTERM)
    serve.waitUntilExit()
    #expect(try q(w, "SELECT count(*) || ' ' || sum(amount_minor) FROM charge_attempts") == "1 6000")
    #expect(try q(w, "SELECT count(*) FROM payment_allocations") == "5")
    #expect(try processorCharges(w) == "1 6000")
  }

  /// Retry days 3 and 7 are also reminder days: one message says the charge failed, why,
  /// and when the downgrade comes; no second message at that instant.
  @Test func aRetryOnAReminderDayIsOneMessage() throws {
    let w = try Workspace()
    try pro(w)
    w.now = "2026-11-02T18:00:00Z"
    try w.ok([
      "card", "add", "1", "--token", "tok_decline_insufficient_funds", "--brand", "visa", "--last4", "4242", "--expiry",
      "12/2030",
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=19.00"])
    try w.ok(["run-due", "--until", "2026-11-10T00:00:00Z"])
    #expect(
      try q(w, "SELECT count(*) FROM (SELECT 1 FROM outbox GROUP BY account_id, created_at HAVING count(*) > 1)") == "0"
    )
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE created_at = '2026-11-05T18:00:00Z'") == "1")
    let day3 = try q(w, "SELECT id FROM outbox WHERE created_at = '2026-11-05T18:00:00Z'")
    let text = try message(w, id: day3)
    #expect(text.contains("your bank declined the payment for insufficient funds"), "\(text)")
    #expect(text.contains("your account will move to the free plan"), "\(text)")
  }

  /// A transfer invoice that fell overdue while its declared transfer was awaited: when the
  /// window ends, one message says the transfer has not arrived, what to check, and when
  /// the downgrade comes.
  @Test func aTransferWindowEndingIsOneMessage() throws {
    let w = try Workspace()
    try pro(w)
    w.now = "2026-11-02T10:00:00Z"
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=19.00", "--method", "transfer", "--due", "2026-11-04"])
    w.now = "2026-11-04T10:00:00Z"
    try w.ok(["transfer", "declare", "INV-000001", "--amount", "19.00", "--date", "2026-11-04", "--reference", "VIR 1"])
    try w.ok(["run-due", "--until", "2026-11-20T00:00:00Z"])
    #expect(
      try q(w, "SELECT count(*) FROM (SELECT 1 FROM outbox GROUP BY account_id, created_at HAVING count(*) > 1)") == "0"
    )
    let id = try q(w, "SELECT id FROM outbox WHERE kind = 'transfer_not_received'")
    let text = try message(w, id: id)
    #expect(text.contains("that the beneficiary and the reference were right"), "\(text)")
    #expect(text.contains("your account will move to the free plan"), "\(text)")
    #expect(try q(w, "SELECT count(*) FROM events WHERE kind = 'invoice_overdue'") == "1")
  }

  /// The default card declines and the other card pays: the confirmation says the default
  /// was declined and why, and `explain` shows it.
  @Test func aPaymentByTheFallbackCardSaysTheDefaultWasDeclined() throws {
    let w = try Workspace()
    try pro(w)
    w.now = "2026-11-02T18:00:00Z"
    try w.ok([
      "card", "add", "1", "--token", "tok_decline_insufficient_funds", "--brand", "visa", "--last4", "4242", "--expiry",
      "12/2030",
    ])
    try w.ok([
      "card", "add", "1", "--token", "tok_ok", "--brand", "mastercard", "--last4", "4444", "--expiry", "12/2030",
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=19.00"])
    try w.ok(["run-due", "--until", w.now])
    #expect(try q(w, "SELECT group_concat(kind) FROM outbox") == "payment_received")
    let text = try message(w, id: try q(w, "SELECT id FROM outbox"))
    #expect(
      text.contains(
        "Your card visa •••• 4242 was declined first (your bank declined the payment for insufficient funds)"),
      "\(text)")
    let explain = try w.ok(["explain", "1"]).stdout
    #expect(explain.contains("after visa •••• 4242 was declined: insufficient_funds"), "\(explain)")
  }

  /// An account already on the plan a downgrade moves to is told what really happens at the
  /// deadline: its invoice is written off, it keeps its plan.
  @Test func anAccountOnTheDowngradePlanIsToldItsInvoiceWillBeWrittenOff() throws {
    let w = try Workspace()
    try pro(w, plan: "free")
    w.now = "2026-11-02T18:00:00Z"
    try w.ok([
      "card", "add", "1", "--token", "tok_decline_insufficient_funds", "--brand", "visa", "--last4", "4242", "--expiry",
      "12/2030",
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Domain example.fr=12.00"])
    try w.ok(["run-due", "--until", w.now])
    let failed = try message(w, id: try q(w, "SELECT id FROM outbox WHERE kind = 'charge_failed'"))
    #expect(!failed.contains("move to the free plan"), "\(failed)")
    #expect(failed.contains("it will be recorded as unpaid"), "\(failed)")
    let explain = try w.ok(["explain", "1"]).stdout
    #expect(!explain.contains("downgrade to free"), "\(explain)")
    #expect(explain.contains("written off as unpaid on 2026-11-11"), "\(explain)")
    try w.ok(["run-due", "--until", "2026-11-12T00:00:00Z"])
    let notice = try message(w, id: try q(w, "SELECT id FROM outbox WHERE kind = 'downgrade_notice'"))
    #expect(notice.contains("it is recorded as unpaid. Your account stays on the free plan"), "\(notice)")
    #expect(!notice.contains("choose the free plan again"), "\(notice)")
  }

  /// A part payment's confirmation names the invoice and what is still due on it.
  @Test func aPartPaymentConfirmationNamesTheInvoiceAndWhatIsStillDue() throws {
    let w = try Workspace()
    try pro(w)
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=19.00", "--method", "transfer"])
    try w.ok(["payment", "record", "INV-000001", "--amount", "10.00", "--reference", "VIR 2"])
    let text = try message(w, id: try q(w, "SELECT id FROM outbox WHERE kind = 'payment_received'"))
    #expect(text.contains("It was applied to invoice INV-000001, on which €9.00 is still due."), "\(text)")
  }

  /// Adding, updating or choosing a card says when its charge comes: the next `run-due`
  /// with no daemon, within seconds with one.
  @Test func aCardChangeSaysWhenTheChargeComes() throws {
    let w = try Workspace()
    try pro(w)
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=19.00"])
    let added = try w.ok([
      "card", "add", "1", "--token", "tok_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2030",
    ]).stdout
    #expect(
      added.contains(
        "1 due card invoice(s) (19.00 EUR) will be charged at the next `ledgerd run-due` (no daemon serves this ledger)"
      ), "\(added)")
    let serve = try w.launch(["serve"])
    defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
    #expect(waitUntil(seconds: 10) { w.serveLog().contains("serving") })
    let json = try w.json(["card", "default", "1"])
    let charge = json["charge"] as? [String: Any]
    #expect(charge?["by"] as? String == "daemon", "\(json)")
    #expect(json["last4"] as? String == "4242")
    kill(serve.processIdentifier, SIGTERM)
    serve.waitUntilExit()
  }

  /// Over the demo month no account gets two messages at one instant; the summary says the
  /// most any account got.
  @Test func theDemoMonthSendsOneMessageAtATime() throws {
    let w = try Workspace()
    w.now = "2026-11-02T09:00:00Z"
    let out = try w.ledgerd([
      "simulate", "--accounts", "100", "--days", "30", "--json", "--db", w.directory + "/demo.db",
    ])
    #expect(out.status == 0, "\(out.stderr)")
    let summary = try #require(try out.json() as? [String: Any])
    #expect(summary["simultaneous_messages"] as? Int == 0)
    #expect((summary["most_messages_to_one_account"] as? Int ?? 0) >= 3)
  }
}
