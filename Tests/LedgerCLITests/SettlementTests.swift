import Foundation
import Testing

/// The processor's settlement report as Stripe writes it (an itemized balance change report
/// with its real columns and reporting categories), its fees and payouts posted, and the
/// payouts found again on the bank statement.
@Suite(.serialized) struct SettlementTests {
  /// The columns of Stripe's `balance_change_from_activity.itemized.3`, as a report run with
  /// many optional columns and several metadata keys writes them.
  static let header = [
    "balance_transaction_id", "created_utc", "created", "available_on_utc", "available_on", "currency", "gross", "fee",
    "net", "reporting_category", "source_id", "description", "customer_facing_amount", "customer_facing_currency",
    "automatic_payout_id", "automatic_payout_effective_at_utc", "automatic_payout_effective_at", "customer_id",
    "customer_email", "customer_name", "customer_description", "charge_id", "payment_intent_id", "charge_created_utc",
    "charge_created", "invoice_id", "payment_method_type", "card_brand", "card_funding", "card_country",
    "statement_descriptor", "dispute_reason", "connected_account_id", "payment_metadata[idempotency_key]",
    "payment_metadata[ledger_attempt]", "payment_metadata[ledger_account]", "payment_metadata[ledger_id]",
    "refund_metadata[reason]", "transfer_metadata[order]",
  ]

  /// One row of that report; unnamed columns are empty, a few carry what Stripe puts there.
  static func row(
    _ id: String, _ category: String, gross: String, fee: String = "0.00", net: String? = nil, source: String = "",
    charge: String = "", intent: String = "", key: String = "", available: String = "2026-11-25 00:00:00",
    description: String = "", dispute: String = ""
  ) -> String {
    var values = [String: String]()
    values["balance_transaction_id"] = id
    values["created_utc"] = "2026-11-23 10:00:00"
    values["created"] = "2026-11-23 11:00:00"  // the report was run in Europe/Paris
    values["available_on_utc"] = available
    values["currency"] = "eur"
    values["gross"] = gross
    values["fee"] = fee
    values["net"] = net ?? gross
    values["reporting_category"] = category
    values["source_id"] = source
    values["description"] = description
    values["customer_facing_amount"] = gross.hasPrefix("-") ? String(gross.dropFirst()) : gross
    values["customer_facing_currency"] = "eur"
    values["charge_id"] = charge
    values["payment_intent_id"] = intent
    values["payment_method_type"] = charge.isEmpty ? "" : "card"
    values["card_brand"] = charge.isEmpty ? "" : "visa"
    values["card_funding"] = charge.isEmpty ? "" : "credit"
    values["card_country"] = charge.isEmpty ? "" : "FR"
    values["statement_descriptor"] = charge.isEmpty ? "" : "LEDGERD HOST"
    values["dispute_reason"] = dispute
    values["payment_metadata[idempotency_key]"] = key
    values["payment_metadata[ledger_attempt]"] = key.isEmpty ? "" : "1"
    values["payment_metadata[ledger_id]"] = key.isEmpty ? "" : "ledger-test"
    return header.map { name in
      let v = values[name] ?? ""
      return v.contains(",") ? "\"\(v)\"" : v
    }.joined(separator: ",")
  }

  static func report(_ rows: [String]) -> String {
    ([header.joined(separator: ",")] + rows).joined(separator: "\n") + "\n"
  }

  func processor(_ w: Workspace, _ file: String, expect status: Int32) throws -> [String: Any] {
    let outcome = try w.ledgerd(["reconcile", "processor", file, "--json"])
    #expect(outcome.status == status, "\(outcome.stdout)\(outcome.stderr)")
    return try #require(try outcome.json() as? [String: Any])
  }

  func bank(_ w: Workspace, _ file: String, expect status: Int32) throws -> [String: Any] {
    let outcome = try w.ledgerd(["reconcile", "bank", file, "--json"])
    #expect(outcome.status == status, "\(outcome.stdout)\(outcome.stderr)")
    return try #require(try outcome.json() as? [String: Any])
  }

  func kinds(_ report: [String: Any]) -> [String] {
    (report["findings"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }.sorted()
  }

  func balance(_ w: Workspace, _ account: String) throws -> String {
    try w.scalar(
      "SELECT coalesce(sum(debits_minor - credits_minor), 0) FROM v_trial_balance WHERE ledger_account = '\(account)'")
  }

  /// A Stripe report against a ledger with four card payments: three matched by the
  /// idempotency key in `payment_metadata[idempotency_key]`, one without metadata by its
  /// `pi_…/ch_…` reference; a refund and a dispute on them are findings; Stripe's own fee is
  /// posted; a transfer and an other_adjustment are findings; the payout is posted (bank /
  /// processor clearing). The journal balances, `check` is clean, and the same report again
  /// records nothing.
  @Test func stripeReportPostsFeesAndThePayout() throws {
    let w = try Workspace()
    let (ok, _) = try ReconciliationTests().processorBook(w)
    // The fourth charge as the Stripe adapter records it: PaymentIntent and charge.
    _ = try w.sqlite(
      "UPDATE charge_attempts SET processor_ref = 'pi_3Q4/' || processor_ref WHERE idempotency_key = '\(ok[3][0])'",
      readOnly: false)
    var rows: [String] = []
    for (i, c) in ok.prefix(3).enumerated() {
      rows.append(
        Self.row(
          "txn_c\(i)", "charge", gross: "19.00", fee: "0.55", net: "18.45", source: c[3], charge: c[3],
          intent: "pi_\(i)", key: c[0], description: "Subscription"))
    }
    rows.append(
      Self.row(
        "txn_c3", "charge", gross: "19.00", fee: "0.55", net: "18.45", source: ok[3][3], charge: ok[3][3],
        intent: "pi_3Q4"))
    rows.append(Self.row("txn_r0", "refund", gross: "-19.00", source: "re_0", charge: ok[0][3], intent: "pi_0"))
    rows.append(
      Self.row(
        "txn_d1", "dispute", gross: "-19.00", fee: "15.00", net: "-34.00", source: "du_1", charge: ok[1][3],
        intent: "pi_1", dispute: "fraudulent"))
    rows.append(Self.row("txn_fee", "fee", gross: "-2.00", description: "Billing - Usage Fee (2026-11-22)"))
    rows.append(Self.row("txn_adj", "other_adjustment", gross: "-1.00", description: "Balance correction"))
    rows.append(Self.row("txn_tr", "transfer", gross: "-5.00", source: "tr_1"))
    rows.append(Self.row("txn_po", "payout", gross: "-50.00", source: "po_1TEST", description: "STRIPE PAYOUT"))
    let file = try w.write("balance_change_from_activity.itemized.3.csv", Self.report(rows))
    let r = try processor(w, file, expect: 1)
    #expect(r["rows_read"] as? Int == 10)
    #expect(r["matched"] as? Int == 4)
    #expect(r["adjustments"] as? Int == 2)
    #expect(r["fee_rows"] as? Int == 1)
    #expect(r["unposted"] as? Int == 2)
    #expect(r["payouts"] as? Int == 1)
    #expect(r["paid_out"] as? [String: String] == ["EUR": "50.00"])
    #expect(r["fees"] as? [String: String] == ["EUR": "4.20"])
    #expect(r["missing_from_report"] as? Int == 0)
    #expect(
      kinds(r) == ["charge_adjustment", "charge_adjustment", "unposted_balance_change", "unposted_balance_change"])
    // created_utc, not the report's local created.
    #expect(
      try w.scalar("SELECT created FROM processor_report_rows WHERE balance_transaction_id = 'txn_c0'")
        == "2026-11-23T10:00:00Z")
    #expect(
      try w.scalar("SELECT attempt_id IS NOT NULL FROM processor_report_rows WHERE balance_transaction_id = 'txn_c3'")
        == "1")

    // The journal: the payout is bank / processor clearing; five fees posted.
    let payoutLines = try w.scalar(
      """
      SELECT group_concat(ledger_account || ':' || debit_minor || ':' || credit_minor, ' ') FROM
        (SELECT l.* FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id WHERE e.kind = 'payout' ORDER BY l.id)
      """)
    #expect(payoutLines == "bank:5000:0 processor_clearing:0:5000")
    #expect(try w.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'processor_fee'") == "5")
    #expect(try balance(w, "processor_fees") == "420")
    #expect(try balance(w, "bank") == "5000")
    #expect(try balance(w, "processor_clearing") == "\(4 * 1900 - 420 - 5000)")
    #expect(try w.scalar("SELECT balance_minor FROM v_trial_balance WHERE ledger_account = '(total)'") == "0")
    #expect(
      try w.scalar("SELECT payout_id || ' ' || amount_minor || ' ' || arrival_date FROM processor_payouts")
        == "po_1TEST 5000 2026-11-25")
    #expect(try w.ledgerd(["check"]).status == 0)

    // Again: nothing twice, the same findings.
    let entries = try w.scalar("SELECT count(*) FROM journal_entries")
    let again = try processor(w, file, expect: 1)
    #expect(again["new_rows"] as? Int == 0)
    #expect(again["already_imported"] as? Int == 10)
    #expect(again["payouts"] as? Int == 0)
    #expect(again["findings_total"] as? Int == 4)
    #expect(try w.scalar("SELECT count(*) FROM journal_entries") == entries)
    #expect(try w.scalar("SELECT count(*) FROM processor_payouts") == "1")
    // The text report names the payouts.
    let text = try w.ledgerd(["reconcile", "processor", file])
    #expect(text.stdout.contains("payouts posted               0"), "\(text.stdout)")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// Report first: the payout's arrival on a camt.053 statement, from STRIPE without its
  /// id, is matched to it by amount and expected date; once only. Statement first (a bank
  /// CSV quoting the payout's id): a `payout_not_posted` finding, matched when the report
  /// posts the payout; a credit from the processor that no payout explains stays a finding.
  @Test func payoutArrivesOnTheBankStatement() throws {
    // camt.053, after the report.
    do {
      let w = try Workspace()
      try w.ok(["migrate"])
      let report = try w.write(
        "r.csv", Self.report([Self.row("txn_po", "payout", gross: "-50.00", source: "po_CAMT1")]))
      _ = try processor(w, report, expect: 0)
      var entry = Camt.entry("P1", "50.00", booked: "2026-11-25", ustrd: ["STRIPE"], name: "STRIPE PAYMENTS EUROPE LTD")
      entry.value = "2026-11-25"
      let other = Camt.entry("P2", "50.00", booked: "2026-11-25", ustrd: ["STRIPE"], name: "STRIPE PAYMENTS EUROPE LTD")
      let statement = try w.write(
        "s.xml", Camt.xml(version: 8, [Camt.Statement(id: "S-25", entries: [entry, other])]))
      let b = try bank(w, statement, expect: 1)
      #expect(b["matched_payouts"] as? Int == 1)
      #expect(b["payments_recorded"] as? Int == 0)
      // The second 50.00 from STRIPE: no payout left to explain it.
      #expect(kinds(b) == ["payout_not_posted"])
      #expect(
        try w.scalar(
          "SELECT match_status || ' ' || match_rule FROM bank_statement_lines WHERE account_servicer_ref = 'P1'")
          == "matched payout")
      #expect(
        try w.scalar(
          "SELECT b.account_servicer_ref FROM processor_payouts p JOIN bank_statement_lines b ON b.id = p.bank_line_id")
          == "P1")
      #expect(try w.scalar("SELECT count(*) FROM payments") == "0")
      #expect(try w.scalar("SELECT count(*) FROM events WHERE kind = 'payout_arrived'") == "1")
      #expect(try w.ledgerd(["check"]).status == 0)
      // The same statement again: nothing new.
      let again = try bank(w, statement, expect: 1)
      #expect(again["matched_payouts"] as? Int == 0)
      #expect(again["already_imported"] as? Int == 2)
      #expect(kinds(again) == ["payout_not_posted"])
    }

    // Bank CSV, before the report.
    do {
      let w = try Workspace()
      try w.ok(["migrate"])
      let csv = try w.write(
        "bank.csv",
        "id,account_iban,booking_date,amount,currency,remittance,counterparty_name\n"
          + "K1,\(ReconciliationTests.ourIBAN),2026-11-26,30.00,EUR,STRIPE po_CSV1,Stripe Technology Europe\n"
          + "K2,\(ReconciliationTests.ourIBAN),2026-11-26,12.34,EUR,STRIPE,Stripe Technology Europe\n")
      let first = try bank(w, csv, expect: 1)
      #expect(first["matched_payouts"] as? Int == 0)
      #expect(kinds(first) == ["payout_not_posted", "payout_not_posted"])
      let detail = (first["findings"] as? [[String: Any]])?.first?["detail"] as? String ?? ""
      #expect(detail.contains("po_CSV1") && detail.contains("not posted yet"), "\(detail)")
      #expect(try w.scalar("SELECT count(*) FROM bank_statement_lines WHERE match_status = 'unmatched'") == "2")

      // The report posts the payout and matches the waiting line.
      let report = try w.write(
        "r.csv",
        Self.report([
          Self.row("txn_po2", "payout", gross: "-30.00", source: "po_CSV1", available: "2026-11-26 00:00:00")
        ]))
      let r = try processor(w, report, expect: 0)
      #expect(r["payouts"] as? Int == 1)
      #expect(r["payouts_matched_on_statements"] as? Int == 1)
      #expect(
        try w.scalar(
          "SELECT match_status || ' ' || match_rule FROM bank_statement_lines WHERE account_servicer_ref = 'K1'")
          == "matched payout")
      // The line the processor's payouts do not explain stays for staff.
      let unmatched = try w.ledgerd(["reconcile", "unmatched", "--json"])
      #expect(unmatched.stdout.contains("12.34") && !unmatched.stdout.contains("po_CSV1"), "\(unmatched.stdout)")
      let again = try bank(w, csv, expect: 1)
      #expect(kinds(again) == ["payout_not_posted"])
      #expect(again["matched_payouts"] as? Int == 0)

      // The same payout quoted by another line: matched once only.
      let twice = try w.write(
        "bank2.csv",
        "id,account_iban,booking_date,amount,currency,remittance,counterparty_name\n"
          + "K3,\(ReconciliationTests.ourIBAN),2026-11-27,30.00,EUR,STRIPE po_CSV1,Stripe Technology Europe\n")
      let t = try bank(w, twice, expect: 1)
      #expect(kinds(t) == ["payout_mismatch"])
      #expect(try w.scalar("SELECT count(*) FROM bank_statement_lines WHERE match_rule = 'payout'") == "1")
      #expect(try balance(w, "bank") == "3000")
      #expect(try w.ledgerd(["check"]).status == 0)
    }
  }

  /// A payout that fails (`payout_reversal`, money back in the balance) reverses its entry
  /// and is never matched on a statement; a reversal naming no payout is a finding.
  @Test func aFailedPayoutIsReversed() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let report = try w.write(
      "r.csv",
      Self.report([
        Self.row("txn_po", "payout", gross: "-40.00", source: "po_FAIL"),
        Self.row("txn_pr", "payout_reversal", gross: "40.00", source: "po_FAIL"),
        Self.row("txn_px", "payout_reversal", gross: "10.00", source: "po_NONE"),
      ]))
    let r = try processor(w, report, expect: 1)
    #expect(r["payouts"] as? Int == 1)
    #expect(r["payout_reversals"] as? Int == 1)
    #expect(kinds(r) == ["payout_problem"])
    #expect(try balance(w, "bank") == "0")
    #expect(try balance(w, "processor_clearing") == "0")
    #expect(try w.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'reversal'") == "1")
    #expect(try w.scalar("SELECT reversal_entry_id IS NOT NULL FROM processor_payouts") == "1")
    let csv = try w.write(
      "bank.csv",
      "id,account_iban,booking_date,amount,currency,remittance,counterparty_name\n"
        + "F1,\(ReconciliationTests.ourIBAN),2026-11-25,40.00,EUR,po_FAIL,STRIPE\n")
    let b = try bank(w, csv, expect: 1)
    #expect(kinds(b) == ["payout_mismatch"])
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// Bad reports are refused (exit 65) naming the line, the field and the rule, with nothing
  /// written; a category the ledger does not know is a finding, not a refusal (the
  /// processor adds categories), and nothing is posted for it.
  @Test(arguments: [
    ("payout_positive", "line 2 gross", "gross must be negative"),
    ("reversal_negative", "line 2 gross", "gross must be positive"),
    ("missing_column", "header", "the column 'net' is missing"),
    ("too_many_decimals", "line 2 gross", "decimal"),
    ("net_wrong", "line 2 net", "is not gross"),
    ("no_time", "header", "a time column is missing"),
  ])
  func badReportsAreRefused(_ kind: String, _ field: String, _ rule: String) throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let text: String
    switch kind {
    case "payout_positive": text = Self.report([Self.row("txn_1", "payout", gross: "50.00", source: "po_1")])
    case "reversal_negative":
      text = Self.report([Self.row("txn_1", "payout_reversal", gross: "-50.00", source: "po_1")])
    case "missing_column":
      text = Self.report([Self.row("txn_1", "fee", gross: "-1.00")]).replacingOccurrences(of: ",net,", with: ",netto,")
    case "too_many_decimals": text = Self.report([Self.row("txn_1", "fee", gross: "-1.005")])
    case "net_wrong": text = Self.report([Self.row("txn_1", "fee", gross: "-1.00", net: "-1.50")])
    default:
      text = Self.report([Self.row("txn_1", "fee", gross: "-1.00")]).replacingOccurrences(
        of: "created_utc,created,", with: "a,b,")
    }
    // A good first row, so that a refusal on the second writes nothing that the first did.
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    let good = Self.row("txn_0", "fee", gross: "-3.00")
    let body =
      kind == "missing_column" || kind == "no_time"
      ? text : ([String(lines[0]), good] + lines.dropFirst().map(String.init)).joined(separator: "\n")
    let file = try w.write("bad.csv", body)
    let before = w.fingerprint()
    let outcome = try w.ledgerd(["reconcile", "processor", file])
    #expect(outcome.status == 65, "\(outcome.stdout)")
    let expectedField =
      kind == "missing_column" || kind == "no_time" ? field : field.replacingOccurrences(of: "line 2", with: "line 3")
    #expect(outcome.stderr.contains(expectedField), "\(outcome.stderr)")
    #expect(outcome.stderr.contains(rule), "\(outcome.stderr)")
    #expect(w.fingerprint() == before)
  }

  @Test func anUnknownCategoryIsAFinding() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let file = try w.write("r.csv", Self.report([Self.row("txn_1", "crypto_conversion", gross: "-7.00")]))
    let r = try processor(w, file, expect: 1)
    #expect(kinds(r) == ["unknown_category"])
    #expect(try w.scalar("SELECT count(*) FROM journal_entries") == "0")
    #expect(
      try w.scalar("SELECT outcome FROM processor_report_rows WHERE balance_transaction_id = 'txn_1'")
        == "unknown_category")
    let again = try processor(w, file, expect: 1)
    #expect(kinds(again) == ["unknown_category"])
  }
}
