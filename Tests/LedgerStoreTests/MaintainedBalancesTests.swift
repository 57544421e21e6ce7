import Foundation
import LedgerCore
import LedgerSQLite
import Testing

@testable import LedgerStore

/// The running balances (`0014_maintained_balances.sql`) are the journal's sums at every
/// moment: kept by each posting in its own transaction, made from the journal for a ledger
/// written before them, and checked against the journal by `check`.
@Suite struct MaintainedBalancesTests {
  /// The running balances as stored, and the journal's lines added up by the same key.
  static func kept(_ db: Connection) throws -> [String] {
    try db.query(
      """
      SELECT account_id || ' ' || currency || ' ' || ledger_account || ' ' || debits_minor || ' ' || credits_minor AS row
      FROM ledger_balances ORDER BY account_id, currency, ledger_account
      """
    ).map { try $0.string("row") }
  }

  static func summed(_ db: Connection) throws -> [String] {
    try db.query(
      """
      SELECT customer || ' ' || currency || ' ' || ledger_account || ' ' || sum(debit_minor) || ' '
             || sum(credit_minor) AS row
      FROM (
        SELECT CASE WHEN ledger_account IN ('receivable', 'customer_credit', 'bad_debt') THEN coalesce(account_id, 0)
                    ELSE 0 END AS customer, currency, ledger_account, debit_minor, credit_minor
        FROM journal_lines)
      GROUP BY customer, currency, ledger_account
      ORDER BY customer, currency, ledger_account
      """
    ).map { try $0.string("row") }
  }

  @Test func everyPostingKeepsTheBalancesInItsTransaction() throws {
    let ledger = try TestLedger()
    let store = ledger.store
    let config = DunningConfig()
    let marie = try ledger.account()
    let jo = try ledger.account()
    #expect(try Self.kept(ledger.db).isEmpty)

    let plan = try ledger.invoice(marie.id, [("Plan", "19.00")])
    // Revenue is kept per currency; what the customer owes, per customer.
    #expect(try Self.kept(ledger.db) == ["0 EUR revenue 0 1900", "\(marie.id) EUR receivable 1900 0"])
    // One transfer pays two invoices and leaves credit: the two receivable lines of one
    // customer make one key.
    let domain = try ledger.invoice(marie.id, [("Domain", "12.00")])
    _ = try store.write {
      try store.applyPayment(
        account: marie.id, amount: try ledger.eur("40.00"), method: "transfer", reference: "RF",
        receivedOn: try CivilDate(iso8601: "2026-11-23"), chargeAttemptID: nil, bankLineID: nil,
        invoices: [plan.id, domain.id], actor: .staff, config: config)
    }
    #expect(try Self.kept(ledger.db) == Self.summed(ledger.db))
    // The credit pays the next invoice; one is voided; one is written off.
    _ = try ledger.invoice(marie.id, [("Backup", "5.00")])
    let void = try ledger.invoice(jo.id, [("Setup", "20.50")])
    _ = try store.voidInvoice(void.number, reason: "issued twice", actor: .staff)
    let unpaid = try ledger.invoice(jo.id, [("Plan", "24.00")])
    _ = try store.write { try store.writeOffAndDowngrade(invoiceID: unpaid.id, toPlan: "free") }
    #expect(try Self.kept(ledger.db) == Self.summed(ledger.db))
    #expect(
      try ledger.db.scalarText(
        """
        SELECT group_concat(ledger_account || ' ' || (debits_minor - credits_minor), ', ') FROM ledger_balances
        WHERE account_id = ? AND ledger_account IN ('customer_credit', 'receivable')
        """, marie.id) == "customer_credit -400, receivable 0")

    // A posting rolled back takes its additions with it.
    let before = try Self.kept(ledger.db)
    struct Abandon: Error {}
    #expect(throws: Abandon.self) {
      try store.write {
        _ = try ledger.invoice(jo.id, [("Plan", "24.00")])
        throw Abandon()
      }
    }
    #expect(try Self.kept(ledger.db) == before)
    let report = try store.check()
    #expect(report.checksRun.contains("ledger_balances_match_journal"))
    #expect(report.ok, "\(report.findings)")
  }

  /// A ledger written before the balances existed gets them from its journal when it is
  /// migrated, and `check` finds them equal to it.
  @Test func aLedgerFromBeforeTheBalancesGetsThemFromItsJournal() throws {
    let ledger = try TestLedger()
    let path = ledger.directory + "/older.db"
    do {
      let old = try Connection(path: path)
      try old.enableWAL()
      try Migrator(
        migrations: try LedgerSchema.migrations().filter { $0.version <= 12 }, applicationID: LedgerSchema.applicationID
      )
      .migrate(old, now: "2026-11-23T10:00:00Z")
      // Written as that version's ledgerd wrote them: the journal alone. Hashes included,
      // from the chain's own code, so that `check` has only the balances to look at.
      let store = LedgerStore(connection: old, clock: FixedClock(try Instant(iso8601: "2026-11-23T10:00:00Z")))
      try old.write { db in
        try db.execute(
          """
          INSERT INTO accounts (id, email, name, locale, plan_id, created_at, updated_at) VALUES
            (1, 'a@example.fr', 'A', 'fr', 1, '2026-11-23T10:00:00Z', '2026-11-23T10:00:00Z'),
            (2, 'b@example.fr', 'B', 'en', 1, '2026-11-23T10:00:00Z', '2026-11-23T10:00:00Z');
          INSERT INTO journal_entries (id, at, kind, memo) VALUES
            (1, '2026-11-23T10:00:00Z', 'invoice_issued', 'one'), (2, '2026-11-23T10:00:00Z', 'transfer_payment', 'two'),
            (3, '2026-11-23T10:00:00Z', 'invoice_issued', 'three'), (4, '2026-11-23T10:00:00Z', 'invoice_issued', 'four');
          INSERT INTO journal_lines (entry_id, ledger_account, currency, debit_minor, credit_minor, account_id) VALUES
            (1, 'receivable', 'EUR', 1900, 0, 1), (1, 'revenue', 'EUR', 0, 1900, NULL),
            (2, 'bank', 'EUR', 2500, 0, NULL), (2, 'receivable', 'EUR', 0, 1900, 1), (2, 'customer_credit', 'EUR', 0, 600, 1),
            (3, 'receivable', 'JPY', 500, 0, 2), (3, 'revenue', 'JPY', 0, 500, NULL),
            (4, 'receivable', 'EUR', 700, 0, 2), (4, 'revenue', 'EUR', 0, 700, NULL);
          """)
        _ = try store.chainUnhashedEntries()
      }
    }
    let store = try LedgerStore.open(
      path: path, access: .readWrite, clock: FixedClock(try Instant(iso8601: "2026-11-24T10:00:00Z")))
    #expect(
      try Self.kept(store.db) == [
        "0 EUR bank 2500 0", "0 EUR revenue 0 2600", "0 JPY revenue 0 500", "1 EUR customer_credit 0 600",
        "1 EUR receivable 1900 1900", "2 EUR receivable 700 0", "2 JPY receivable 500 0",
      ])
    #expect(try Self.kept(store.db) == Self.summed(store.db))
    let report = try store.check()
    #expect(report.ok, "\(report.findings)")
  }

  /// A balance row changed, removed or added by hand is a finding that names its ledger
  /// account, currency and customer.
  @Test func checkNamesEveryBalanceThatDiffersFromTheJournal() throws {
    let ledger = try TestLedger()
    let account = try ledger.account()
    _ = try ledger.invoice(account.id, [("Plan", "19.00")])
    try ledger.db.execute(
      """
      UPDATE ledger_balances SET debits_minor = debits_minor + 100 WHERE account_id = \(account.id);
      DELETE FROM ledger_balances WHERE ledger_account = 'revenue';
      INSERT INTO ledger_balances VALUES (0, 'EUR', 'bank', 1, 0);
      INSERT INTO ledger_balances VALUES (42, 'EUR', 'bad_debt', 5, 0);
      """)
    let findings = try ledger.store.check().findings.filter { $0.check == "ledger_balances_match_journal" }
    #expect(
      findings.map(\.detail) == [
        "bank EUR (no customer): the running balance has debits 1, credits 0 but the journal's lines add up to nothing",
        "revenue EUR (no customer): the running balance has no row but the journal's lines add up to debits 0, credits 1900",
        "receivable EUR of account \(account.id): the running balance has debits 2000, credits 0 but the journal's lines add up to debits 1900, credits 0",
        "bad_debt EUR of account 42: the running balance has debits 5, credits 0 but the journal's lines add up to nothing",
      ])
  }
}
