import Foundation
import Testing

/// What the customer owes, said one way everywhere, and money staff recorded by hand that
/// the bank statement brings again: through the binary.
@Suite(.serialized) struct OwedAndRecordedTests {
  func minor(_ value: Any?) -> Int? { (value as? [String: Any])?["minor"] as? Int }

  /// After `payment record … --reference C77`, the statement's line for the same money
  /// (same reference, amount and currency, booked a day later) is matched to that payment:
  /// no second payment, journal entry or email, and nothing for staff.
  @Test func aTransferRecordedByHandIsMatchedNotBookedAgainByTheStatement() throws {
    let w = try Workspace()
    let refs = try w.transferBook([("Marie Curie", "40.00")])
    try w.ok(["payment", "record", "INV-000001", "--amount", "40.00", "--reference", "C77", "--date", "2026-11-23"])
    let entries = try w.scalar("SELECT count(*) FROM journal_entries")
    let csv = """
      id,account_iban,booking_date,amount,currency,reference,remittance,counterparty_name
      C77,FR7630006000011234567890189,2026-11-24,40.00,EUR,,Facture \(refs[0]),Marie Curie
      C78,FR7630006000011234567890189,2026-11-24,41.00,EUR,,C77,Marie Curie

      """
    let outcome = try w.ledgerd(["reconcile", "bank", try w.write("s.csv", csv), "--json"])
    let report = try #require(try outcome.json() as? [String: Any])
    #expect(report["matched_recorded_payments"] as? Int == 1, "\(report)")
    #expect(report["payments_recorded"] as? Int == 0, "\(report)")
    #expect(try w.scalar("SELECT count(*) FROM payments") == "1")
    #expect(
      try w.scalar("SELECT b.line_key FROM payments p JOIN bank_statement_lines b ON b.id = p.bank_line_id")
        == "acct:FR7630006000011234567890189:ref:C77")
    #expect(
      try w.scalar(
        "SELECT match_status || ' ' || coalesce(invoice_id, '-') FROM bank_statement_lines WHERE line_key LIKE '%C77'")
        == "matched 1")
    #expect(
      try w.scalar("SELECT note FROM bank_statement_lines WHERE line_key LIKE '%C77'").contains("recorded by hand"))
    #expect(try w.scalar("SELECT count(*) FROM journal_entries") == entries)
    #expect(try w.scalar("SELECT count(*) FROM outbox WHERE kind = 'payment_received'") == "1")
    #expect(try w.scalar("SELECT credit_minor FROM v_account_balances") == "0")
    // A line of another amount quoting the same reference is not that payment: left for staff.
    #expect(outcome.status == 1)
    #expect(try w.scalar("SELECT match_status FROM bank_statement_lines WHERE line_key LIKE '%C78'") == "unmatched")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// A written-off invoice is still owed: `account show` says the account owes what its
  /// invoices have due, in text and JSON, and `v_account_balances` agrees with
  /// `v_invoice_balances`.
  @Test func aWrittenOffInvoiceIsStillOwedByTheAccountEverywhere() throws {
    let w = try Workspace()
    w.now = DunningScenarioTests.day0
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "24.00"])
    try w.ok(["account", "add", "--email", "jo@example.com", "--name", "Jo", "--plan", "pro", "--billing", "manual"])
    try w.ok([
      "card", "add", "1", "--token", "tok_decline_expired_card", "--brand", "visa", "--last4", "1881", "--expiry",
      "12/2028",
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=24.00"])
    try w.ok(["run-due", "--until", DunningScenarioTests.day(10)])
    #expect(try w.scalar("SELECT status FROM invoices") == "uncollectible")
    let text = try w.ok(["account", "show", "1"]).stdout
    #expect(text.contains("owes 24.00"), "\(text)")
    #expect(text.contains("due 24.00"), "\(text)")
    let shown = try w.json(["account", "show", "1"])
    let balance = try #require((shown["balances"] as? [[String: Any]])?.first)
    let invoice = try #require((shown["invoices"] as? [[String: Any]])?.first)
    #expect(minor(balance["owed"]) == 2400, "\(balance)")
    #expect(minor(balance["written_off"]) == 2400, "\(balance)")
    #expect(minor(invoice["due"]) == 2400, "\(invoice)")
    #expect(try w.scalar("SELECT owed_minor || ' ' || balance_minor FROM v_account_balances") == "2400 2400")
    #expect(try w.scalar("SELECT sum(due_minor) FROM v_invoice_balances") == "2400")
    // Paid later: nothing owed anywhere.
    try w.ok(["payment", "record", "INV-000001", "--amount", "24.00"])
    #expect(minor((try w.json(["account", "show", "1"])["balances"] as? [[String: Any]])?.first?["owed"]) == 0)
    #expect(try w.scalar("SELECT owed_minor || ' ' || written_off_minor FROM v_account_balances") == "0 0")
  }

  /// `--json` keys are snake case without mangled acronyms: `paid_invoice_ids`.
  @Test func paymentRecordJSONNamesThePaidInvoiceIDsPaidInvoiceIds() throws {
    let w = try Workspace()
    _ = try w.transferBook([("Marie Curie", "40.00")])
    let out = try w.ok(["payment", "record", "INV-000001", "--amount", "40.00", "--json"])
    let record = try #require(try out.json() as? [String: Any])
    #expect(record["paid_invoice_ids"] as? [Int] == [1], "\(out.stdout)")
    #expect(!out.stdout.contains("i_ds"), "\(out.stdout)")
  }
}
