import Foundation
import Testing

/// The running balances the audit views read are checked against the journal, through the
/// binary as an operator runs it.
@Suite struct MaintainedBalancesCLITests {
  /// A balance row changed with sqlite3 (the journal untouched) makes `ledgerd check` exit 1
  /// with a finding that names the ledger account, the currency and the customer, while the
  /// view that reads the row shows the changed figure: the journal is the source of truth.
  @Test func checkFailsOnABalanceRowChangedBehindItsBack() throws {
    let w = try Workspace()
    try w.ok(["account", "add", "--email", "marie@example.fr", "--name", "Marie Curie"])
    try w.ok(["account", "add", "--email", "jo@example.com", "--name", "Jo Bloggs"])
    try w.ok(["invoice", "issue", "1", "--line", "Plan=19.00"])
    try w.ok(["invoice", "issue", "2", "--line", "Plan=24.00", "--method", "transfer"])
    try w.ok(["payment", "record", "INV-000002", "--amount", "30.00"])
    #expect(try w.ledgerd(["check"]).status == 0)
    #expect(
      try w.sqlite("SELECT receivable_minor, credit_minor FROM v_account_balances WHERE account_id = 2").stdout
        == "0|600\n")

    let tamper = try w.sqlite(
      "UPDATE ledger_balances SET credits_minor = credits_minor + 100 WHERE account_id = 2 AND ledger_account = 'customer_credit'",
      readOnly: false)
    #expect(tamper.status == 0, "\(tamper.stderr)")
    #expect(
      try w.sqlite("SELECT credit_minor FROM v_account_balances WHERE account_id = 2").stdout == "700\n")

    let text = try w.ledgerd(["check"])
    #expect(text.status == 1, "\(text.stdout)\(text.stderr)")
    #expect(
      text.stdout.contains(
        "FINDING ledger_balances_match_journal: customer_credit EUR of account 2: the running balance has debits 0, credits 700 but the journal's lines add up to debits 0, credits 600"
      ), "\(text.stdout)")
    let outcome = try w.ledgerd(["check", "--json"])
    #expect(outcome.status == 1)
    let report = try #require(try outcome.json() as? [String: Any])
    let findings = try #require(report["findings"] as? [[String: Any]])
    #expect(findings.map { $0["check"] as? String } == ["ledger_balances_match_journal"], "\(findings)")
  }
}
