import Foundation
import LedgerCore
import LedgerSQLite
import Testing

@testable import LedgerStore

/// Migration 0005 creates the tables again with their value lists written as OR-ed
/// comparisons; a ledger written before it must come out with every row and every rule.
@Suite struct ChecksMigrationTests {
  /// Every row of every table, in storage order, as text.
  static func contents(_ db: Connection) throws -> [String: [String]] {
    var tables: [String: [String]] = [:]
    for name in try db.query(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'"
    )
    .map({ try $0.string("name") }) {
      tables[name] = try db.query("SELECT * FROM \(name) ORDER BY 1, 2").map { row in
        row.values.map { "\($0)" }.joined(separator: "|")
      }
    }
    return tables
  }

  static func objects(_ db: Connection) throws -> [String] {
    try db.query(
      "SELECT type || ' ' || name || ' on ' || tbl_name AS o FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY o"
    )
    .map { try $0.string("o") }
  }

  /// Accounts with one card and one 19.00 EUR invoice each, written by the store as the
  /// scheduler writes them: a card invoice's charge succeeds when `paid(n)` (with the
  /// processor reference `reference(n)`) and is declined otherwise; an account for which
  /// `transfer(n)` holds gets a transfer invoice and no charge.
  static func writeChargedBook(
    _ store: LedgerStore, accounts: Int, keyPrefix: String, transfer: (Int) -> Bool = { _ in false },
    paid: (Int) -> Bool, reference: (Int) -> String
  ) throws {
    let config = DunningConfig.chargedWhenDue
    let date = try CivilDate(iso8601: "2026-11-23")
    for n in 0..<accounts {
      let account = try store.addAccount(
        email: "c\(n)@example.fr", name: "C \(n)", locale: .fr, planCode: "free", actor: .staff)
      let card = try store.addCard(
        account: account.id,
        NewCard(
          token: "tok_ok.\(n)", brand: .mastercard, last4: "4444", expiry: try CardExpiry(parsing: "12/2028"),
          postalCode: nil, country: "FR"),
        actor: .customer)
      let invoice = try store.issueInvoice(
        try InvoiceDraft(
          accountID: account.id, currency: .eur,
          lines: [InvoiceLineDraft(description: "Plan", unitAmount: Money(minorUnits: 1900, currency: .eur))],
          issueDate: date, dueDate: date, method: transfer(n) ? .transfer : .card), actor: .staff)
      guard !transfer(n) else { continue }
      let charge = try #require(
        try store.chargeableCards(account: account.id, config: config).first { $0.id == card.id })
      try store.write {
        let key = keyPrefix + String(n)
        let id = try store.beginAttempt(
          account: account.id, card: charge, amount: invoice.total, invoices: [(invoice.id, invoice.total.minorUnits)],
          key: key, actor: .scheduler)
        let attempt = PendingAttempt(
          id: id, key: key, accountID: account.id, cardID: card.id, token: charge.token,
          cardLabel: PendingAttempt.cardLabel(brand: charge.brand.rawValue, last4: charge.last4), amount: invoice.total,
          invoiceIDs: [invoice.id], sentAt: store.clock.now())
        if paid(n) {
          _ = try store.recordChargeSucceeded(attempt, processorRef: reference(n), actor: .scheduler, config: config)
        } else {
          try store.recordChargeFailed(
            attempt, status: .declined, rawCode: "insufficient_funds", reason: .insufficientFunds, actor: .scheduler)
        }
      }
    }
  }

  @Test func aLedgerWrittenBeforeItKeepsEveryRowAndEveryRule() throws {
    let directory = NSTemporaryDirectory() + "ledgerd-0005-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let db = try Connection(path: directory + "/ledger.db")
    try db.enableWAL()
    let all = try LedgerSchema.migrations()
    try Migrator(migrations: all.filter { $0.version <= 4 }, applicationID: LedgerSchema.applicationID).migrate(
      db, now: "2026-11-23T10:00:00Z")
    // Today's store chains every journal entry it posts (0008): its table is made here, ahead
    // of its turn, and 0005 must keep it like the rest.
    try db.write { db in try db.execute(try #require(all.first { $0.version == 8 }).sql) }
    // Its accounts have a subscription row (0013): that table too (0013's other changes,
    // to invoices, only concern invoices of a subscription period, not written here).
    let migration13 = try #require(all.first { $0.version == 13 })
    let table = try #require(migration13.sql.range(of: "CREATE TABLE subscriptions"))
    let end = try #require(migration13.sql.range(of: ") STRICT;", range: table.upperBound..<migration13.sql.endIndex))
    let subscriptions = String(migration13.sql[table.lowerBound..<end.upperBound])
    try db.write { db in try db.execute(subscriptions) }
    // So are its running balances (0014), which it keeps as it posts: the table only.
    let balances = try #require(all.first { $0.version == 14 }).sql
    let balancesTable = try #require(balances.range(of: "CREATE TABLE ledger_balances"))
    let balancesEnd = try #require(
      balances.range(of: "WITHOUT ROWID;", range: balancesTable.upperBound..<balances.endIndex))
    try db.write { db in try db.execute(String(balances[balancesTable.lowerBound..<balancesEnd.upperBound])) }
    // And `check` reads its payouts (0016): that table too, empty.
    let payouts = try #require(all.first { $0.version == 16 }).sql
    let payoutsTable = try #require(payouts.range(of: "CREATE TABLE processor_payouts"))
    let payoutsEnd = try #require(payouts.range(of: ") STRICT;", range: payoutsTable.upperBound..<payouts.endIndex))
    try db.write { db in try db.execute(String(payouts[payoutsTable.lowerBound..<payoutsEnd.upperBound])) }

    // A little of everything, written by the store as it writes a real ledger.
    let store = LedgerStore(connection: db, clock: FixedClock(try Instant(iso8601: "2026-11-23T10:00:00Z")))
    try Self.writeChargedBook(
      store, accounts: 6, keyPrefix: "ldg_test_", transfer: { $0 == 5 }, paid: { $0 % 2 == 0 },
      reference: { "ch_\($0)" })
    let before = try Self.contents(db)
    let objectsBefore = try Self.objects(db)
    #expect(
      (before["journal_lines"]?.count ?? 0) > 0 && (before["events"]?.count ?? 0) > 0
        && (before["outbox"]?.count ?? 0) > 0)

    // 0005 on its own (later migrations change indexes, which this compares).
    let upTo0005 = try Migrator(
      migrations: LedgerSchema.migrations().filter { $0.version <= 5 }, applicationID: LedgerSchema.applicationID)
    let outcome = try upTo0005.migrate(db, now: "2026-11-24T10:00:00Z")
    #expect(outcome.applied == ["0005_checks_without_in_lists.sql"])
    #expect(try Self.contents(db) == before)
    #expect(try Self.objects(db) == objectsBefore)
    #expect(try db.query("PRAGMA foreign_key_check").isEmpty)
    #expect(try db.scalarText("PRAGMA integrity_check") == "ok")
    #expect(try store.check().ok)
    // Every view still reads the tables under their names.
    for view in try db.query("SELECT name FROM sqlite_schema WHERE type = 'view'").map({ try $0.string("name") }) {
      #expect(throws: Never.self) { _ = try db.query("SELECT * FROM \(view)") }
    }
    #expect(try db.scalarInt("SELECT count(*) FROM v_charge_attempts") == 5)

    // The rules hold as before: values outside the lists, broken references, journal edits.
    #expect(throws: SQLiteError.self) {
      try db.run(
        "INSERT INTO events (at, account_id, actor, kind, reason) VALUES ('2026-11-24T10:00:00Z', 1, 'robot', 'x', 'y')"
      )
    }
    #expect(throws: SQLiteError.self) {
      try db.run(
        "INSERT INTO events (at, account_id, actor, kind, reason) VALUES ('2026-11-24T10:00:00Z', 999, 'staff', 'x', 'y')"
      )
    }
    #expect(throws: SQLiteError.self) { try db.run("UPDATE cards SET brand = 'maestro' WHERE id = 1") }
    #expect(throws: SQLiteError.self) { try db.run("UPDATE invoices SET next_action = 'wait' WHERE id = 1") }
    #expect(throws: SQLiteError.self) { try db.run("UPDATE accounts SET status = 'gone' WHERE id = 1") }
    #expect(throws: SQLiteError.self) { try db.run("UPDATE journal_lines SET debit_minor = debit_minor WHERE id = 1") }
    #expect(throws: SQLiteError.self) { try db.run("DELETE FROM journal_entries WHERE id = 1") }
    try db.run("UPDATE invoices SET next_action = NULL, last_failure = NULL WHERE id = 1")  // NULL still allowed
  }

  @Test func noCheckListsThreeOrMoreValues() throws {
    let ledger = try TestLedger()
    let list = try NSRegularExpression(pattern: #"\bIN\s*\(\s*'[^)]*,[^)]*,"#, options: [.caseInsensitive])
    for row in try ledger.db.query("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql IS NOT NULL") {
      let sql = try row.string("sql")
      let name = try row.string("name")
      let found = list.firstMatch(in: sql, range: NSRange(sql.startIndex..., in: sql))
      #expect(found == nil, "table \(name) still checks a list of values with IN")
    }
  }
}
