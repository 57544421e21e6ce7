import Foundation
import Testing

/// Line keys name the bank movement (servicing account and the bank's reference), never
/// the file that brought it; batch bookings must add up; the processor report's duplicates
/// and adjustments and a charge that paid an invoice already paid are findings.
extension ReconciliationTests {
  /// Two overlapping statements of an account known by its bank number (`Othr/Id`, no
  /// IBAN), with different statement ids: the shared entry is recorded once.
  @Test func overlappingStatementsOfAnOthrAccountRecordOnce() throws {
    let w = try Workspace()
    let refs = try w.transferBook([("Marie Curie", "100.00"), ("Jo Bloggs", "50.00")])
    let shared = Camt.entry("BANKREF-1", "100.00", structured: refs[0])
    var first = Camt.Statement(id: "STMT-1120", entries: [shared])
    first.otherID = "12345678"
    var second = Camt.Statement(
      id: "STMT-1121", entries: [shared, Camt.entry("BANKREF-2", "50.00", structured: refs[1])])
    second.otherID = "1234 5678"
    let r1 = try report(w, try w.write("o1.xml", Camt.xml(version: 8, [first])), expect: 0)
    #expect(r1["payments_recorded"] as? Int == 1)
    let r2 = try report(w, try w.write("o2.xml", Camt.xml(version: 8, [second])), expect: 0)
    #expect(r2["new_lines"] as? Int == 1)
    #expect(r2["already_imported"] as? Int == 1)
    #expect(try w.scalar("SELECT count(*) FROM payments") == "2")
    #expect(try w.scalar("SELECT credit_minor FROM v_account_balances WHERE name = 'Marie Curie'") == "0")
    #expect(
      try w.scalar("SELECT line_key FROM bank_statement_lines WHERE account_servicer_ref = 'BANKREF-1'")
        == "acct:12345678:ref:BANKREF-1")
    try checkClean(w)
  }

  /// Two accounts' CSV exports may number their lines alike: both lines are recorded.
  @Test func twoAccountsCSVsWithTheSameIDBothRecord() throws {
    let w = try Workspace()
    let refs = try w.transferBook([("Marie Curie", "100.00"), ("Jo Bloggs", "50.00")])
    let a = try w.write(
      "a.csv",
      "id,booking_date,amount,currency,reference,account_iban\n1,2026-11-20,100.00,EUR,\(refs[0]),\(Self.ourIBAN)\n")
    let b = try w.write(
      "b.csv",
      "id,booking_date,amount,currency,reference,account\n1,2026-11-21,50.00,EUR,\(refs[1]),DE89370400440532013000\n")
    #expect(try report(w, a, expect: 0)["payments_recorded"] as? Int == 1)
    let rb = try report(w, b, expect: 0)
    #expect(rb["new_lines"] as? Int == 1)
    #expect(rb["payments_recorded"] as? Int == 1)
    #expect(try w.scalar("SELECT group_concat(status) FROM invoices ORDER BY id") == "paid,paid")
    try checkClean(w)
  }

  /// The same movement exported as CSV and then found in the camt.053 statement: one record.
  @Test func sameMovementAsCSVThenCamtRecordsOnce() throws {
    let w = try Workspace()
    let refs = try w.transferBook([("Marie Curie", "100.00")])
    let csv = try w.write(
      "same.csv",
      "id,booking_date,amount,currency,reference,account_iban\nBANKREF-1,2026-11-20,100.00,EUR,\(refs[0]),fr76 3000 6000 0112 3456 7890 189\n"
    )
    #expect(try report(w, csv, expect: 0)["payments_recorded"] as? Int == 1)
    let xml = try w.write(
      "same.xml",
      Camt.xml(
        version: 8, [Camt.Statement(id: "S1", entries: [Camt.entry("BANKREF-1", "100.00", structured: refs[0])])]))
    let again = try report(w, xml, expect: 0)
    #expect(again["new_lines"] as? Int == 0)
    #expect(again["already_imported"] as? Int == 1)
    #expect(try w.scalar("SELECT count(*) FROM payments") == "1")
    #expect(try w.scalar("SELECT credit_minor FROM v_account_balances WHERE name = 'Marie Curie'") == "0")
    try checkClean(w)
  }

  /// A CSV with the bank's id but no account is refused, naming the field and the rule.
  @Test func csvIDWithoutAccountIsRefused() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let noColumn = try w.write("n1.csv", "id,booking_date,amount,currency\nK1,2026-11-21,50.00,EUR\n")
    let r1 = try w.ledgerd(["reconcile", "bank", noColumn])
    #expect(r1.status == 65)
    #expect(r1.stderr.contains("header: the column 'id' needs 'account_iban' (or 'account')"), "\(r1.stderr)")
    let empty = try w.write(
      "n2.csv",
      "id,booking_date,amount,currency,account_iban\nK1,2026-11-21,50.00,EUR,\(Self.ourIBAN)\nK2,2026-11-21,5.00,EUR,\n"
    )
    let r2 = try w.ledgerd(["reconcile", "bank", empty])
    #expect(r2.status == 65)
    #expect(r2.stderr.contains("line 3 account_iban: is required when id is given"), "\(r2.stderr)")
    #expect(try w.scalar("SELECT count(*) FROM bank_statement_lines") == "0")
  }
}

extension ReconciliationTests {
  /// A batch booking whose details do not add up to the entry is refused whole (exit 65,
  /// the entry and the rule named, nothing written), in one transaction or batched: a
  /// credit of 10.00 split as 100.00 + 900.00, and a debit of 100.00 whose details are a
  /// credit of 100.00 and a debit of 0.01. Details that add up, signs mixed, are read.
  @Test func batchBookingDetailsMustAddUp() throws {
    let w = try Workspace()
    let refs = try w.transferBook([("Marie Curie", "100.00")])
    var inflated = Camt.Entry(ref: "B9", amount: "10.00")
    inflated.details = [Camt.Detail(amount: "100.00", structured: refs[0]), Camt.Detail(amount: "900.00")]
    var flipped = Camt.Entry(ref: "B10", amount: "100.00", credit: false)
    flipped.details = [
      Camt.Detail(amount: "100.00", structured: refs[0], creditDebit: "CRDT"), Camt.Detail(amount: "0.01"),
    ]
    let good = Camt.entry("G1", "5.00", ustrd: ["first, valid entry"])
    for (name, entry, message) in [
      (
        "split", inflated,
        "the 2 details net 1000.00 EUR CRDT (each signed by its CdtDbtInd, else the entry's); the entry is 10.00 EUR CRDT"
      ),
      (
        "split2", flipped,
        "the 2 details net 99.99 EUR CRDT (each signed by its CdtDbtInd, else the entry's); the entry is 100.00 EUR DBIT"
      ),
    ] {
      let file = try w.write("\(name).xml", Camt.xml(version: 8, [Camt.Statement(id: name, entries: [good, entry])]))
      let before = w.fingerprint()
      for extra in [[], ["--commit-every", "1"]] {
        let outcome = try w.ledgerd(["reconcile", "bank", file] + extra)
        #expect(outcome.status == 65, "\(outcome.stdout)")
        #expect(outcome.stderr.contains("AcctSvcrRef \(entry.ref!)) TxDtls: \(message)"), "\(outcome.stderr)")
        #expect(
          outcome.stderr.contains("a batch booking's details must add up to its entry; nothing was imported"),
          "\(outcome.stderr)")
        #expect(w.fingerprint() == before)
      }
    }
    #expect(try w.scalar("SELECT count(*) FROM bank_statement_lines") == "0")
    #expect(try w.scalar("SELECT count(*) FROM payments") == "0")
    // A debit of 100.00 made of a debit of 150.00 and a credit of 50.00 adds up.
    var mixed = Camt.Entry(ref: "B11", amount: "100.00", credit: false)
    mixed.details = [
      Camt.Detail(amount: "150.00", unstructured: ["out"]),
      Camt.Detail(amount: "50.00", unstructured: ["in"], creditDebit: "CRDT"),
    ]
    let lines = try #require(
      try parsed(w, try w.write("mixed.xml", Camt.xml(version: 8, [Camt.Statement(id: "M", entries: [mixed])])))[
        "lines"] as? [[String: Any]])
    #expect(lines.map { $0["direction"] as? String ?? "" } == ["debit", "credit"])
    #expect(lines.map { ($0["amount"] as? [String: Any])?["amount"] as? String ?? "" } == ["150.00", "50.00"])
  }
}

extension ReconciliationTests {
  /// Five Pro accounts with a card each, charged on their due date: four succeed, the
  /// fifth is declined. Returns the processor's charges as [key, amount, outcome, charge id].
  func processorBook(_ w: Workspace) throws -> (succeeded: [[String]], declined: [String]) {
    try w.chargeWhenDue()  // charged on the workspace's hour: the report's times are the workspace's
    try w.ok(["migrate"])
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    for (i, token) in ["tok_ok.1", "tok_ok.2", "tok_ok.3", "tok_ok.4", "tok_decline_insufficient_funds.5"].enumerated()
    {
      let id =
        try w.json([
          "account", "add", "--email", "c\(i)@example.com", "--name", "Customer \(i)", "--plan", "pro", "--billing",
          "manual",
        ])["id"]
        as? Int ?? 0
      try w.ok([
        "card", "add", "\(id)", "--token", token, "--brand", "visa", "--last4", "424\(i)", "--expiry", "12/2030",
      ])
      try w.ok(["invoice", "issue", "\(id)", "--plan-line"])
    }
    try w.ok(["run-due", "--until", "2026-11-23T10:00:00Z"])
    let charges = try w.sqlite(
      "SELECT key, amount_minor, outcome, coalesce(reference, '') FROM charges ORDER BY rowid",
      db: w.directory + "/ledger.processor.db"
    )
    .stdout.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    let succeeded = charges.filter { $0[2] == "succeeded" }
    let declined = try #require(charges.first { $0[2] == "declined" })
    #expect(succeeded.count == 4)
    return (succeeded, declined)
  }

  static let reportHeader =
    "balance_transaction_id,created,currency,gross,fee,net,reporting_category,source_id,payment_intent_id,payment_metadata[idempotency_key]\n"

  static func reportRow(
    _ id: String, _ gross: String, _ fee: String, _ net: String, _ category: String, source: String, intent: String,
    key: String
  ) -> String {
    "\(id),2026-11-23 10:00:00,eur,\(gross),\(fee),\(net),\(category),\(source),\(intent),\(key)\n"
  }

  /// A second charge row for an attempt another row already settled (in the same report
  /// or a later one) posts no fee and records nothing: a `duplicate_settlement` finding.
  /// A dispute, refund or chargeback naming a known charge (by key, charge id or payment
  /// intent) is a `charge_adjustment` finding; a payout is posted.
  @Test func processorDuplicatesAndAdjustmentsAreFindings() throws {
    let w = try Workspace()
    let (ok, _) = try processorBook(w)
    var csv = Self.reportHeader
    for (i, c) in ok.enumerated() {
      csv += Self.reportRow("txn_\(i)", "19.00", "0.55", "18.45", "charge", source: c[3], intent: "pi_\(i)", key: c[0])
    }
    csv += Self.reportRow("txn_0b", "19.00", "0.55", "18.45", "charge", source: ok[0][3], intent: "pi_0", key: ok[0][0])
    csv += Self.reportRow("txn_1d", "-19.00", "15.00", "-34.00", "dispute", source: "dp_1", intent: "", key: ok[1][0])
    csv += Self.reportRow("txn_2r", "-19.00", "0.00", "-19.00", "refund", source: "re_2", intent: "pi_2", key: "")
    csv += Self.reportRow("txn_3c", "-19.00", "0.00", "-19.00", "chargeback", source: ok[3][3], intent: "", key: "")
    csv += Self.reportRow("txn_po", "-50.00", "0.00", "-50.00", "payout", source: "po_1", intent: "", key: "")
    let file = try w.write("report.csv", csv)
    let outcome = try w.ledgerd(["reconcile", "processor", file, "--json"])
    #expect(outcome.status == 1, "\(outcome.stderr)")
    let r = try #require(try outcome.json() as? [String: Any])
    #expect(r["matched"] as? Int == 4)
    #expect(r["duplicates"] as? Int == 1)
    #expect(r["adjustments"] as? Int == 3)
    #expect(r["other"] as? Int == 0)
    #expect(r["payouts"] as? Int == 1)
    #expect(r["missing_from_report"] as? Int == 0)
    #expect(r["fees"] as? [String: String] == ["EUR": "2.20"])
    let kinds = (r["findings"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }.sorted()
    #expect(kinds == ["charge_adjustment", "charge_adjustment", "charge_adjustment", "duplicate_settlement"])
    #expect(try w.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'processor_fee'") == "4")
    #expect(try w.scalar("SELECT count(*) FROM payments WHERE method = 'card'") == "4")
    #expect(
      try w.scalar(
        "SELECT group_concat(outcome, ',') FROM (SELECT outcome FROM processor_report_rows ORDER BY balance_transaction_id)"
      )
        == "matched,duplicate,matched,adjustment,matched,adjustment,matched,adjustment,payout")
    // Again: nothing new, the same findings, still a non-zero exit.
    let again = try #require(try w.ledgerd(["reconcile", "processor", file, "--json"]).json() as? [String: Any])
    #expect(again["new_rows"] as? Int == 0)
    #expect(again["findings_total"] as? Int == 4)
    // A later report settling the same charge again: a duplicate, no fee posted.
    let later = try w.write(
      "later.csv",
      Self.reportHeader
        + Self.reportRow("txn_9", "19.00", "0.55", "18.45", "charge", source: ok[2][3], intent: "pi_9", key: ok[2][0]))
    let l = try w.ledgerd(["reconcile", "processor", later, "--json"])
    #expect(l.status == 1)
    #expect(
      ((try l.json() as? [String: Any])?["findings"] as? [[String: Any]])?.first?["kind"] as? String
        == "duplicate_settlement")
    #expect(try w.scalar("SELECT count(*) FROM journal_entries WHERE kind = 'processor_fee'") == "4")
    #expect(try w.ledgerd(["reconcile", "processor", later]).stdout.contains("duplicate_settlement  txn_9"))
    try checkClean(w)
  }

  /// The processor settled a charge the ledger had as declined, after the invoice was paid
  /// by a transfer: the money is recorded (as account credit) and it is `charged_twice`.
  @Test func settledChargeOnAnInvoicePaidByTransferIsChargedTwice() throws {
    let w = try Workspace()
    let (ok, declined) = try processorBook(w)
    let invoice = try w.scalar(
      "SELECT i.number FROM invoices i JOIN charge_attempt_invoices ci ON ci.invoice_id = i.id JOIN charge_attempts a ON a.id = ci.attempt_id WHERE a.idempotency_key = '\(declined[0])'"
    )
    try w.ok(["payment", "record", invoice, "--amount", "19.00", "--reference", "transfer instead"])
    var csv = Self.reportHeader
    for (i, c) in ok.enumerated() {
      csv += Self.reportRow("txn_\(i)", "19.00", "0.55", "18.45", "charge", source: c[3], intent: "pi_\(i)", key: c[0])
    }
    csv += Self.reportRow(
      "txn_d", "19.00", "0.55", "18.45", "charge", source: "ch_settled", intent: "pi_d", key: declined[0])
    let outcome = try w.ledgerd(["reconcile", "processor", try w.write("r.csv", csv), "--json"])
    #expect(outcome.status == 1, "\(outcome.stderr)")
    let r = try #require(try outcome.json() as? [String: Any])
    #expect(r["recorded"] as? Int == 1)
    let findings = r["findings"] as? [[String: Any]] ?? []
    #expect(findings.compactMap { $0["kind"] as? String } == ["charged_twice"])
    let detail = findings.first?["detail"] as? String ?? ""
    #expect(detail.contains("\(invoice) had already been paid by another payment"), "\(detail)")
    #expect(try w.scalar("SELECT status FROM charge_attempts WHERE idempotency_key = '\(declined[0])'") == "succeeded")
    #expect(try w.scalar("SELECT credit_minor FROM v_account_balances WHERE name = 'Customer 4'") == "1900")
    #expect(
      try w.scalar(
        "SELECT debits_minor - credits_minor FROM v_trial_balance WHERE ledger_account = 'processor_clearing'")
        == "\(5 * 1900 - 5 * 55)")
    try checkClean(w)
  }
}
