import Foundation
import LedgerCore
import LedgerSQLite
import Testing

@testable import LedgerStore

/// A fresh ledger in its own temporary directory, on a fixed day.
final class TestLedger {
  let directory: String
  let path: String
  let store: LedgerStore

  init(now: String = "2026-11-23T10:00:00Z") throws {
    directory = NSTemporaryDirectory() + "ledgerd-store-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    path = directory + "/ledger.db"
    store = try LedgerStore.open(path: path, access: .readWrite, clock: FixedClock(try Instant(iso8601: now)))
  }

  deinit { try? FileManager.default.removeItem(atPath: directory) }

  var db: Connection { store.db }

  func count(_ table: String) throws -> Int64 { try db.scalarInt("SELECT count(*) FROM \(table)") ?? -1 }

  /// Row counts of every table: a refused operation must leave all of them as they were.
  func snapshot() throws -> [String: Int64] {
    var counts: [String: Int64] = [:]
    for row in try db.query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'") {
      let name = try row.string("name")
      counts[name] = try count(name)
    }
    return counts
  }

  func eur(_ text: String) throws -> Money { try Money.parse(text, currency: .eur) }

  @discardableResult
  func account(plan: String = "free") throws -> Account {
    try store.addAccount(email: "marie@example.fr", name: "Marie", locale: .fr, planCode: plan, actor: .staff)
  }

  func card(_ account: Int64, _ token: String, expiry: String = "12/2028") throws -> Card {
    try store.addCard(
      account: account,
      NewCard(
        token: token, brand: .visa, last4: "4242", expiry: try CardExpiry(parsing: expiry), postalCode: "75001",
        country: "FR"),
      actor: .customer)
  }

  func invoice(_ account: Int64, _ lines: [(String, String)], method: CollectionMethod = .card) throws -> Invoice {
    let drafts = try lines.map { InvoiceLineDraft(description: $0.0, unitAmount: try eur($0.1)) }
    let date = try CivilDate(iso8601: "2026-11-23")
    return try store.issueInvoice(
      try InvoiceDraft(
        accountID: account, currency: .eur, lines: drafts, issueDate: date, dueDate: date.adding(days: 14),
        method: method),
      actor: .staff)
  }
}

@Suite struct SchemaTests {
  @Test func embeddedMigrationsAreExactlyTheFilesInMigrations() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    let dir = root.appendingPathComponent("migrations")
    let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".sql") }.sorted()
    let embedded = try LedgerSchema.migrations()
    #expect(embedded.map(\.name) == files)
    for migration in embedded {
      let onDisk = try String(contentsOf: dir.appendingPathComponent(migration.name), encoding: .utf8)
      #expect(migration.sql == onDisk, "\(migration.name) embedded differs from the file")
    }
  }

  @Test func everyTableIsStrict() throws {
    let ledger = try TestLedger()
    let loose = try ledger.db.query(
      "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND strict = 0 AND name NOT LIKE 'sqlite_%'"
    )
    #expect(loose.isEmpty, "non-STRICT tables: \(loose.map { $0["name"] })")
  }

  @Test func applicationIDMarksTheFile() throws {
    let ledger = try TestLedger()
    #expect(try ledger.db.applicationID() == LedgerSchema.applicationID)
    #expect(try ledger.db.scalarText("PRAGMA journal_mode") == "wal")
  }

  @Test func journalLinesCannotBeUpdatedOrDeleted() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    _ = try ledger.invoice(a.id, [("Plan", "19.00")])
    for sql in [
      "UPDATE journal_lines SET debit_minor = debit_minor + 1", "DELETE FROM journal_lines",
      "UPDATE journal_entries SET memo = 'x'", "DELETE FROM journal_entries",
    ] {
      let error = try #require(throws: SQLiteError.self) { try ledger.db.run(sql) }
      #expect(error.message.contains("append-only"))
    }
    #expect(try ledger.count("journal_lines") == 2)
  }

  @Test func constraintsGuardTheTablesThemselves() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    _ = try ledger.card(a.id, "tok_one")
    _ = try ledger.card(a.id, "tok_two")
    // A second default card for the account hits the partial unique index.
    #expect(throws: SQLiteError.self) { try ledger.db.run("UPDATE cards SET is_default = 1") }
    // Unbalanced direction and negative amounts are refused by CHECK constraints.
    #expect(throws: SQLiteError.self) {
      try ledger.db.run(
        "INSERT INTO journal_lines (entry_id, ledger_account, currency, debit_minor, credit_minor) VALUES (1, 'bank', 'EUR', 5, 5)"
      )
    }
    #expect(throws: SQLiteError.self) {
      try ledger.db.run(
        "INSERT INTO plans (code, name, price_minor, currency, period, created_at) VALUES ('x', 'X', -1, 'EUR', 'month', '2026-01-01T00:00:00Z')"
      )
    }
    #expect(throws: SQLiteError.self) {
      try ledger.db.run(
        "INSERT INTO accounts (email, name, locale, plan_id, created_at, updated_at) VALUES ('a@b.fr', 'A', 'de', 1, 'x', 'x')"
      )
    }
  }
}

@Suite struct PlanAccountTests {
  @Test func plansAndDuplicateCodes() throws {
    let ledger = try TestLedger()
    let pro = try ledger.store.addPlan(code: "pro", name: "Pro", price: try ledger.eur("19.00"), period: .month)
    #expect(pro.price.minorUnits == 1900)
    #expect(try ledger.store.plans().map(\.code) == ["free", "pro"])
    let before = try ledger.snapshot()
    #expect(throws: InputError(field: "code", rule: "a plan with code 'pro' already exists")) {
      try ledger.store.addPlan(code: "pro", name: "Again", price: try ledger.eur("1.00"), period: .month)
    }
    #expect(try ledger.snapshot() == before)
  }

  @Test func accountsRecordAnEventAndRefuseUnknownPlans() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    #expect(a.plan == "free" && a.status == .active)
    #expect(try ledger.store.events(account: a.id).map(\.kind) == ["account_created"])
    let before = try ledger.snapshot()
    #expect(throws: NotFoundError.self) {
      try ledger.store.addAccount(email: "x@example.fr", name: "X", locale: .en, planCode: "gold", actor: .staff)
    }
    #expect(throws: InputError.self) {
      try ledger.store.addAccount(
        email: "x@example.fr\r\nBcc: y@example.fr", name: "X", locale: .en, planCode: "free", actor: .staff)
    }
    #expect(try ledger.snapshot() == before)
  }
}

@Suite struct CardTests {
  @Test func firstActiveCardBecomesDefaultAndOthersDoNot() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    let first = try ledger.card(a.id, "tok_first")
    let second = try ledger.card(a.id, "tok_second")
    #expect(first.isDefault && !second.isDefault)
    let switched = try ledger.store.setDefaultCard(second.id, actor: .customer)
    #expect(switched.isDefault)
    #expect(try ledger.store.card(id: first.id)?.isDefault == false)
  }

  @Test func removingTheDefaultPromotesTheNextActiveCard() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    let c1 = try ledger.card(a.id, "tok_1")
    let c2 = try ledger.card(a.id, "tok_2")
    let c3 = try ledger.card(a.id, "tok_3")
    try ledger.db.run("UPDATE cards SET status = 'needs_update' WHERE id = ?", c2.id)
    let (removed, promoted) = try ledger.store.removeCard(c1.id, actor: .customer)
    #expect(removed.status == .removed && !removed.isDefault)
    #expect(promoted?.id == c3.id)  // c2 needs an update, so c3 is next
    // Removing a card that is not the default changes no default.
    let (_, none) = try ledger.store.removeCard(c2.id, actor: .customer)
    #expect(none == nil)
    #expect(try ledger.store.card(id: c3.id)?.isDefault == true)
    // Removing the last card leaves no default.
    let (_, last) = try ledger.store.removeCard(c3.id, actor: .customer)
    #expect(last == nil)
    #expect(try ledger.db.scalarInt("SELECT count(*) FROM cards WHERE is_default = 1") == 0)
    // A new card after that becomes the default again on its own.
    #expect(try ledger.card(a.id, "tok_4").isDefault)
    #expect(try ledger.store.check().ok)
  }

  @Test func refusedCardsWriteNothing() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    _ = try ledger.card(a.id, "tok_taken")
    let before = try ledger.snapshot()
    #expect(throws: InputError.self) { try ledger.card(a.id, "4242424242424242") }
    #expect(throws: InputError.self) { try ledger.card(a.id, "tok_old", expiry: "10/2026") }
    #expect(throws: InputError.self) { try ledger.card(a.id, "tok_taken") }
    #expect(throws: NotFoundError.self) { try ledger.card(999, "tok_new") }
    #expect(throws: NotFoundError.self) { try ledger.store.setDefaultCard(999, actor: .staff) }
    #expect(throws: NotFoundError.self) { try ledger.store.removeCard(999, actor: .staff) }
    #expect(try ledger.snapshot() == before)
  }

  @Test func aCardExpiringThisMonthIsAccepted() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    #expect(try ledger.card(a.id, "tok_now", expiry: "11/2026").isDefault)
  }
}

@Suite struct InvoiceTests {
  @Test func issuingPostsABalancedReceivableRevenueEntry() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    let invoice = try ledger.invoice(a.id, [("Plan Pro", "19.00"), ("Domain", "12.50")])
    #expect(invoice.number == "INV-000001")
    #expect(invoice.total.minorUnits == 3150 && invoice.due.minorUnits == 3150)
    #expect(invoice.lines.map(\.position) == [1, 2])
    let lines = try ledger.db.query(
      "SELECT ledger_account, debit_minor, credit_minor, account_id, invoice_id FROM journal_lines ORDER BY id")
    #expect(lines.count == 2)
    #expect(try lines[0].string("ledger_account") == "receivable" && lines[0].int("debit_minor") == 3150)
    #expect(try lines[1].string("ledger_account") == "revenue" && lines[1].int("credit_minor") == 3150)
    #expect(try lines[0].int("account_id") == a.id && lines[0].int("invoice_id") == invoice.id)
    let balance = try #require(try ledger.store.balances(account: a.id).first)
    #expect(balance.receivable.minorUnits == 3150)
    #expect(try ledger.store.check().ok)
  }

  @Test func transferInvoicesCarryACheckableReference() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    _ = try ledger.invoice(a.id, [("A", "1.00")])
    let invoice = try ledger.invoice(a.id, [("B", "2.00")], method: .transfer)
    let reference = try #require(invoice.paymentReference)
    #expect(try PaymentReference(parsing: reference).compact == reference)
    #expect(reference.hasSuffix("INV000002"))
  }

  @Test func voidingReversesTheIssueAndLeavesTheTrialBalanceAtZero() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    let invoice = try ledger.invoice(a.id, [("Plan", "19.00")])
    let voided = try ledger.store.voidInvoice(invoice.number, reason: "duplicate", actor: .staff)
    #expect(voided.status == .void && voided.due.minorUnits == 0 && voided.voidReason == "duplicate")
    let receivable = try ledger.db.scalarInt(
      "SELECT sum(debit_minor) - sum(credit_minor) FROM journal_lines WHERE ledger_account = 'receivable'")
    #expect(receivable == 0)
    #expect(try ledger.db.scalarInt("SELECT count(*) FROM journal_entries WHERE kind = 'invoice_voided'") == 1)
    let before = try ledger.snapshot()
    #expect(throws: StateError.self) { try ledger.store.voidInvoice(invoice.number, reason: "again", actor: .staff) }
    #expect(try ledger.snapshot() == before)
    #expect(try ledger.store.check().ok)
  }

  @Test func aPaidInvoiceCannotBeVoided() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    let invoice = try ledger.invoice(a.id, [("Plan", "19.00")])
    try ledger.db.run(
      "INSERT INTO payments (account_id, method, amount_minor, currency, received_on, actor, created_at) VALUES (?, 'transfer', 500, 'EUR', '2026-11-23', 'staff', 'x')",
      a.id)
    try ledger.db.run("INSERT INTO payment_allocations VALUES (1, ?, 500)", invoice.id)
    #expect(throws: StateError.self) { try ledger.store.voidInvoice(invoice.number, reason: "x", actor: .staff) }
  }

  @Test func invoicesForUnknownAccountsAreRefused() throws {
    let ledger = try TestLedger()
    let before = try ledger.snapshot()
    #expect(throws: NotFoundError.self) { try ledger.invoice(42, [("A", "1.00")]) }
    #expect(try ledger.snapshot() == before)
  }

  @Test func findsInvoicesByNumberOrID() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    let invoice = try ledger.invoice(a.id, [("A", "1.00")])
    #expect(try ledger.store.invoice("inv-000001")?.id == invoice.id)
    #expect(try ledger.store.invoice("1")?.number == "INV-000001")
    #expect(try ledger.store.invoice("INV-9") == nil)
  }
}

@Suite struct CheckTests {
  @Test func aCleanLedgerPassesEveryCheck() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    _ = try ledger.card(a.id, "tok_a")
    _ = try ledger.invoice(a.id, [("A", "1.00")])
    let report = try ledger.store.check()
    #expect(report.ok)
    #expect(report.checksRun.count >= 10)
    #expect(report.sqliteVersion == Connection.libraryVersion)
  }

  @Test func checkFindsAnUnbalancedEntryWrittenBehindItsBack() throws {
    let ledger = try TestLedger()
    try ledger.db.run(
      "INSERT INTO journal_entries (at, kind, memo) VALUES ('2026-01-01T00:00:00Z', 'reversal', 'forged')")
    try ledger.db.run(
      "INSERT INTO journal_lines (entry_id, ledger_account, currency, debit_minor, credit_minor) VALUES (1, 'bank', 'EUR', 100, 0)"
    )
    try ledger.db.run(
      "INSERT INTO journal_lines (entry_id, ledger_account, currency, debit_minor, credit_minor) VALUES (1, 'revenue', 'EUR', 0, 90)"
    )
    let checks = Set(try ledger.store.check().findings.map(\.check))
    #expect(checks.contains("journal_entry_balanced"))
    #expect(checks.contains("trial_balance_zero"))
  }

  @Test func checkFindsAnInvoiceWhoseLinesDisagree() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    let invoice = try ledger.invoice(a.id, [("A", "1.00")])
    try ledger.db.run("UPDATE invoices SET total_minor = 999 WHERE id = ?", invoice.id)
    let checks = Set(try ledger.store.check().findings.map(\.check))
    #expect(checks.contains("invoice_total_matches_lines"))
    #expect(checks.contains("invoice_receivable_matches_due"))
  }

  @Test func checkFindsACardNumberStoredAsAToken() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    let card = try ledger.card(a.id, "tok_a")
    try ledger.db.run("UPDATE cards SET token = '4111111111111111' WHERE id = ?", card.id)
    #expect(try ledger.store.check().findings.map(\.check) == ["no_card_numbers_stored"])
  }

  @Test func backupIsAVerifiedCopyAndNeverOverwrites() throws {
    let ledger = try TestLedger()
    let a = try ledger.account()
    _ = try ledger.invoice(a.id, [("A", "1.00")])
    let target = ledger.directory + "/copy.db"
    let pages = try ledger.store.backup(to: target)
    #expect(pages > 0)
    let copy = try LedgerStore.open(path: target, access: .readOnly, clock: FixedClock(Instant(secondsSinceEpoch: 0)))
    #expect(try copy.invoices().count == 1)
    #expect(try copy.check().ok)
    #expect(throws: InputError.self) { try ledger.store.backup(to: target) }
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: ledger.directory).filter {
      $0.contains("partial")
    }
    #expect(leftovers.isEmpty)
  }
}
