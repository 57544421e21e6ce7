import Foundation
import LedgerCore
import LedgerSQLite
import Testing

@testable import LedgerStore

/// Migration 0016 creates journal_entries, processor_report_rows and bank_statement_lines
/// again with wider checks: a ledger written before it keeps every row, its hash chain and
/// its running balances, and `check` stays clean; a payout can then be posted on it.
@Suite struct PayoutMigrationTests {
  @Test func aLedgerWrittenBeforeItKeepsEveryRowTheChainAndTheBalances() throws {
    let directory = NSTemporaryDirectory() + "ledgerd-0016-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let db = try Connection(path: directory + "/ledger.db")
    try db.enableWAL()
    let all = try LedgerSchema.migrations()
    try Migrator(migrations: all.filter { $0.version <= 14 }, applicationID: LedgerSchema.applicationID).migrate(
      db, now: "2026-11-23T10:00:00Z")

    // A book: invoices, charges (paid and declined), a processor report row with its fee,
    // a bank line matched to a transfer invoice.
    let store = LedgerStore(connection: db, clock: FixedClock(try Instant(iso8601: "2026-11-23T10:00:00Z")))
    try ChecksMigrationTests.writeChargedBook(
      store, accounts: 4, keyPrefix: "ldg_mig_", paid: { $0 < 3 }, reference: { "pi_\($0)/ch_\($0)" })
    let eur = Currency.eur
    try store.write {
      let fee = try store.postProcessorFee(
        Money(minorUnits: 55, currency: eur), balanceTransactionID: "txn_0", paymentID: store.paymentID(attempt: 1))
      let row = ProcessorReportRow(
        balanceTransactionID: "txn_0", created: "2026-11-23T10:00:00Z", gross: Money(minorUnits: 1900, currency: eur),
        fee: Money(minorUnits: 55, currency: eur), net: Money(minorUnits: 1845, currency: eur),
        reportingCategory: "charge", sourceID: "ch_0", paymentIntentID: "pi_0", chargeID: "ch_0",
        idempotencyKey: "ldg_mig_0", payoutID: nil, arrivalDate: nil)
      try store.insertProcessorRow(row, attemptID: 1, outcome: "matched", detail: nil, feeEntryID: fee)
      _ = try store.insertBankLine(
        BankLine(
          lineKey: "acct:FR76:ref:B1", source: "camt053", bookingDate: "2026-11-23", valueDate: nil,
          amount: Money(minorUnits: 1234, currency: eur), direction: .credit, remittance: "thanks"),
        matchStatus: "unmatched", note: "no valid invoice reference")
    }
    // 0015 (processor customers) adds a column to accounts: applied first, so that the
    // comparison below is about 0016 alone.
    _ = try Migrator(migrations: all.filter { $0.version <= 15 }, applicationID: LedgerSchema.applicationID).migrate(
      db, now: "2026-11-24T09:00:00Z")
    let before = try ChecksMigrationTests.contents(db)
    let chainBefore = try store.verifyJournalChain()
    #expect(chainBefore.firstBreak == nil)

    let outcome = try Migrator(migrations: all.filter { $0.version <= 16 }, applicationID: LedgerSchema.applicationID)
      .migrate(db, now: "2026-11-24T10:00:00Z")
    #expect(outcome.applied == ["0016_payouts.sql"])
    var after = try ChecksMigrationTests.contents(db)
    #expect(after.removeValue(forKey: "processor_payouts") == [])
    #expect(after == before)
    #expect(try db.query("PRAGMA foreign_key_check").isEmpty)
    #expect(try db.scalarText("PRAGMA integrity_check") == "ok")
    let report = try store.check()
    #expect(report.ok, "\(report.findings)")
    #expect(report.checksRun.contains("payout_posted_and_matched_once"))
    let chainAfter = try store.verifyJournalChain()
    #expect(chainAfter.firstBreak == nil)
    #expect(chainAfter.entries == chainBefore.entries)
    #expect(chainAfter.head?.hash == chainBefore.head?.hash)
    // The rebuilt tables keep their triggers and indexes; the new ones exist.
    let objects = try ChecksMigrationTests.objects(db)
    for name in [
      "trigger journal_entries_no_update on journal_entries", "trigger journal_entries_no_delete on journal_entries",
      "index journal_entries_invoice on journal_entries", "index processor_report_rows_key on processor_report_rows",
      "index processor_report_rows_attempt on processor_report_rows",
      "index bank_statement_lines_unmatched on bank_statement_lines",
      "index bank_statement_lines_amount on bank_statement_lines", "table processor_payouts on processor_payouts",
      "index charge_attempts_processor_ref on charge_attempts",
    ] {
      #expect(objects.contains(name), "\(name) is missing")
    }
    #expect(throws: SQLiteError.self) { try db.run("DELETE FROM journal_entries WHERE id = 1") }
    #expect(throws: SQLiteError.self) { try db.run("UPDATE journal_entries SET memo = 'x' WHERE id = 1") }
    #expect(throws: SQLiteError.self) {
      try db.run(
        "INSERT INTO journal_entries (at, kind, memo) VALUES ('2026-11-24T10:00:00Z', 'payout_to_the_moon', 'x')")
    }

    // A payout on the migrated ledger: posted, the chain and balances still agree.
    try store.write {
      let row = ProcessorReportRow(
        balanceTransactionID: "txn_po", created: "2026-11-24T10:00:00Z", gross: Money(minorUnits: -1845, currency: eur),
        fee: Money(minorUnits: 0, currency: eur), net: Money(minorUnits: -1845, currency: eur),
        reportingCategory: "payout", sourceID: "po_1", paymentIntentID: nil, chargeID: nil, idempotencyKey: nil,
        payoutID: "po_1", arrivalDate: "2026-11-26")
      try store.insertProcessorRow(row, attemptID: nil, outcome: "payout", detail: nil, feeEntryID: nil)
      _ = try store.postPayout(row, payoutID: "po_1", arrivalDate: "2026-11-26")
    }
    #expect(try db.scalarInt("SELECT count(*) FROM journal_entries WHERE kind = 'payout'") == 1)
    #expect(try store.check().ok)
  }
}
