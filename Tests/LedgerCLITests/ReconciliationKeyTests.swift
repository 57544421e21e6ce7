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
    var second = Camt.Statement(id: "STMT-1121", entries: [shared, Camt.entry("BANKREF-2", "50.00", structured: refs[1])])
    second.otherID = "1234 5678"
    let r1 = try report(w, try w.write("o1.xml", Camt.xml(version: 8, [first])), expect: 0)
    #expect(r1["payments_recorded"] as? Int == 1)
    let r2 = try report(w, try w.write("o2.xml", Camt.xml(version: 8, [second])), expect: 0)
    #expect(r2["new_lines"] as? Int == 1)
    #expect(r2["already_imported"] as? Int == 1)
    #expect(try w.scalar("SELECT count(*) FROM payments") == "2")
    #expect(try w.scalar("SELECT credit_minor FROM v_account_balances WHERE name = 'Marie Curie'") == "0")
    #expect(try w.scalar("SELECT line_key FROM bank_statement_lines WHERE account_servicer_ref = 'BANKREF-1'") == "acct:12345678:ref:BANKREF-1")
    try checkClean(w)
  }

  /// Two accounts' CSV exports may number their lines alike: both lines are recorded.
  @Test func twoAccountsCSVsWithTheSameIDBothRecord() throws {
    let w = try Workspace()
    let refs = try w.transferBook([("Marie Curie", "100.00"), ("Jo Bloggs", "50.00")])
    let a = try w.write("a.csv", "id,booking_date,amount,currency,reference,account_iban\n1,2026-11-20,100.00,EUR,\(refs[0]),\(Self.ourIBAN)\n")
    let b = try w.write("b.csv", "id,booking_date,amount,currency,reference,account\n1,2026-11-21,50.00,EUR,\(refs[1]),DE89370400440532013000\n")
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
      "same.csv", "id,booking_date,amount,currency,reference,account_iban\nBANKREF-1,2026-11-20,100.00,EUR,\(refs[0]),fr76 3000 6000 0112 3456 7890 189\n")
    #expect(try report(w, csv, expect: 0)["payments_recorded"] as? Int == 1)
    let xml = try w.write("same.xml", Camt.xml(version: 8, [Camt.Statement(id: "S1", entries: [Camt.entry("BANKREF-1", "100.00", structured: refs[0])])]))
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
    let empty = try w.write("n2.csv", "id,booking_date,amount,currency,account_iban\nK1,2026-11-21,50.00,EUR,\(Self.ourIBAN)\nK2,2026-11-21,5.00,EUR,\n")
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
    flipped.details = [Camt.Detail(amount: "100.00", structured: refs[0], creditDebit: "CRDT"), Camt.Detail(amount: "0.01")]
    let good = Camt.entry("G1", "5.00", ustrd: ["first, valid entry"])
    for (name, entry, message) in [
      ("split", inflated, "the 2 details net 1000.00 EUR CRDT (each signed by its CdtDbtInd, else the entry's); the entry is 10.00 EUR CRDT"),
      ("split2", flipped, "the 2 details net 99.99 EUR CRDT (each signed by its CdtDbtInd, else the entry's); the entry is 100.00 EUR DBIT"),
    ] {
      let file = try w.write("\(name).xml", Camt.xml(version: 8, [Camt.Statement(id: name, entries: [good, entry])]))
      let before = w.fingerprint()
      for extra in [[], ["--commit-every", "1"]] {
        let outcome = try w.ledgerd(["reconcile", "bank", file] + extra)
        #expect(outcome.status == 65, "\(outcome.stdout)")
        #expect(outcome.stderr.contains("AcctSvcrRef \(entry.ref!)) TxDtls: \(message)"), "\(outcome.stderr)")
        #expect(outcome.stderr.contains("a batch booking's details must add up to its entry; nothing was imported"), "\(outcome.stderr)")
        #expect(w.fingerprint() == before)
      }
    }
    #expect(try w.scalar("SELECT count(*) FROM bank_statement_lines") == "0")
    #expect(try w.scalar("SELECT count(*) FROM payments") == "0")
    // A debit of 100.00 made of a debit of 150.00 and a credit of 50.00 adds up.
    var mixed = Camt.Entry(ref: "B11", amount: "100.00", credit: false)
    mixed.details = [Camt.Detail(amount: "150.00", unstructured: ["out"]), Camt.Detail(amount: "50.00", unstructured: ["in"], creditDebit: "CRDT")]
    let lines = try #require(try parsed(w, try w.write("mixed.xml", Camt.xml(version: 8, [Camt.Statement(id: "M", entries: [mixed])])))["lines"] as? [[String: Any]])
    #expect(lines.map { $0["direction"] as? String ?? "" } == ["debit", "credit"])
    #expect(lines.map { ($0["amount"] as? [String: Any])?["amount"] as? String ?? "" } == ["150.00", "50.00"])
  }
}
