import Foundation
import LedgerCore
import LedgerSQLite
import Testing

@testable import LedgerStore

/// The commands about one account (`account show`, `explain`, `invoice list --account`,
/// `invoice show`, its charge attempts) and the audit views filtered by account read that
/// account's rows through indexes: their cost follows the account, not the book. Each
/// statement the store runs for them is traced and its plan asked of SQLite; a `SCAN` of a
/// table that grows with the book (a whole table, or a whole index of it) fails the test.
@Suite struct AccountQueryPlanTests {
  /// Tables that grow with the book, which no query about one account may scan.
  static let bookTables: Set<String> = [
    "invoices", "journal_lines", "charge_attempts", "events", "payments", "ledger_balances", "accounts", "cards",
  ]

  /// A ledger with a little of everything for its first account: cards, invoices (open,
  /// paid, void), a payment, a charge attempt, events; and a second account beside it.
  static func ledger() throws -> (TestLedger, Account) {
    let ledger = try TestLedger()
    let account = try ledger.account()
    let other = try ledger.account()
    let card = try ledger.card(account.id, "tok_ok.plans")
    _ = try ledger.card(other.id, "tok_ok.other")
    let open = try ledger.invoice(account.id, [("Plan", "19.00")])
    let paid = try ledger.invoice(account.id, [("Domain", "12.00")], method: .transfer)
    let void = try ledger.invoice(account.id, [("Setup", "20.50")])
    _ = try ledger.invoice(other.id, [("Plan", "19.00")])
    _ = try ledger.store.voidInvoice(void.number, reason: "issued twice", actor: .staff)
    _ = try ledger.store.write {
      try ledger.store.applyPayment(
        account: account.id, amount: paid.total, method: "transfer", reference: nil,
        receivedOn: try CivilDate(iso8601: "2026-11-23"), chargeAttemptID: nil, bankLineID: nil, invoices: [paid.id],
        actor: .staff, config: DunningConfig())
    }
    _ = try ledger.store.write {
      try ledger.store.beginAttempt(
        account: account.id,
        card: ChargeCard(id: card.id, token: card.token, brand: card.brand, last4: card.last4, isDefault: true),
        amount: open.total, invoices: [(open.id, open.total.minorUnits)], key: "ldg_plan_test_1", actor: .scheduler)
    }
    return (ledger, account)
  }

  /// The statements `body` runs, in order, each once.
  static func statements(of ledger: TestLedger, _ body: () throws -> Void) throws -> [String] {
    var seen: [String] = []
    ledger.db.trace { run in
      let sql = run.sql.trimmingCharacters(in: .whitespacesAndNewlines)
      if (sql.uppercased().hasPrefix("SELECT") || sql.uppercased().hasPrefix("WITH")) && !seen.contains(sql) {
        seen.append(sql)
      }
    }
    defer { ledger.db.trace(nil) }
    try body()
    return seen
  }

  /// How many parameters `sql` takes: `?NNN` is parameter NNN, a bare `?` the one after the
  /// largest so far (SQLite's rule); string literals are skipped.
  static func parameterCount(_ sql: String) -> Int {
    var count = 0
    var inString = false
    var chars = sql.makeIterator()
    var pending: Character? = nil
    while let c = pending ?? chars.next() {
      pending = nil
      if c == "'" {
        inString.toggle()
        continue
      }
      guard !inString, c == "?" else { continue }
      var digits = ""
      while let d = chars.next() {
        if d.isNumber {
          digits.append(d)
        } else {
          pending = d
          break
        }
      }
      count = digits.isEmpty ? count + 1 : max(count, Int(digits) ?? 0)
    }
    return count
  }

  /// The tables each name in a plan can stand for: the tables themselves and their aliases
  /// in `sql` and in the views it reads (and the views those read).
  static func aliases(in sql: String, db: Connection) throws -> [String: Set<String>] {
    var texts = [sql]
    var views: Set<String> = []
    let viewName = try NSRegularExpression(pattern: #"\bv_[a-z_]+\b"#)
    var index = 0
    while index < texts.count {
      let text = texts[index]
      index += 1
      for match in viewName.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
        let name = String(text[Range(match.range, in: text)!])
        guard !views.contains(name),
          let definition = try db.scalarText("SELECT sql FROM sqlite_schema WHERE type = 'view' AND name = ?", name)
        else { continue }
        views.insert(name)
        texts.append(definition)
      }
    }
    let keywords: Set<String> = [
      "where", "join", "left", "inner", "cross", "on", "group", "order", "using", "limit", "indexed", "not", "union",
    ]
    let reference = try NSRegularExpression(
      pattern: #"\b(?:FROM|JOIN)\s+([a-z_]+)(?:\s+(?:AS\s+)?([a-z_][a-z0-9_]*))?"#, options: [.caseInsensitive])
    var names: [String: Set<String>] = [:]
    for text in texts {
      for match in reference.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
        let table = String(text[Range(match.range(at: 1), in: text)!]).lowercased()
        names[table, default: []].insert(table)
        if let range = Range(match.range(at: 2), in: text) {
          let alias = String(text[range]).lowercased()
          if !keywords.contains(alias) { names[alias, default: []].insert(table) }
        }
      }
    }
    return names
  }

  /// `EXPLAIN QUERY PLAN` of `sql`, one line per step.
  static func plan(_ sql: String, db: Connection) throws -> [String] {
    let arguments = [SQLBindable](repeating: Int64(1), count: parameterCount(sql))
    return try db.query("EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { try $0.string("detail") }
  }

  /// The plan's full scans of the book's tables, each with the table it reads.
  static func bookScans(_ sql: String, db: Connection) throws -> [String] {
    let names = try aliases(in: sql, db: db)
    return try plan(sql, db: db).compactMap { step in
      guard step.hasPrefix("SCAN ") else { return nil }
      let name = String(step.dropFirst(5).prefix { $0 != " " })
      let tables = (names[name] ?? [name]).intersection(bookTables)
      return tables.isEmpty ? nil : "\(step) (\(tables.sorted().joined(separator: "/")))"
    }
  }

  @Test func theCommandsAboutOneAccountScanNoTableOfTheBook() throws {
    let (ledger, account) = try Self.ledger()
    let store = ledger.store
    let commands: [(name: String, run: () throws -> Void)] = [
      (
        "account show",
        {
          _ = try store.read {
            (
              try store.requireAccount(account.id), try store.balances(account: account.id),
              try store.cards(account: account.id, includeRemoved: true), try store.invoices(account: account.id),
              try store.events(account: account.id)
            )
          }
        }
      ),
      (
        "explain",
        {
          _ = try store.read {
            (
              try store.requireAccount(account.id), try store.events(account: account.id),
              try store.upcoming(account: account.id, config: DunningConfig())
            )
          }
        }
      ),
      ("invoice list --account", { _ = try store.invoices(account: account.id) }),
      ("invoice list --account --status", { _ = try store.invoices(account: account.id, status: .open) }),
      ("invoice show", { _ = try store.requireInvoice("INV-000001") }),
      ("invoice show by id", { _ = try store.requireInvoice("1") }),
    ]
    for command in commands {
      let statements = try Self.statements(of: ledger, command.run)
      #expect(!statements.isEmpty, "\(command.name) ran no query")
      for sql in statements {
        let scans = try Self.bookScans(sql, db: ledger.db)
        #expect(scans.isEmpty, "\(command.name) scans \(scans) in: \(sql)")
      }
    }
  }

  @Test(arguments: [
    "v_account_balances", "v_invoice_balances", "v_receivables_aging", "v_dunning_pipeline", "v_charge_attempts",
    "v_account_events",
  ])
  func anAuditViewFilteredByAccountScansNoTableOfTheBook(view: String) throws {
    let (ledger, account) = try Self.ledger()
    let sql = "SELECT * FROM \(view) WHERE account_id = ?"
    #expect(try !ledger.db.query(sql, account.id).isEmpty || view == "v_dunning_pipeline")
    let scans = try Self.bookScans(sql, db: ledger.db)
    #expect(scans.isEmpty, "\(view) by account scans \(scans)")
  }

  /// The views over the whole book read the running balances, never the journal, and the
  /// open invoices only (through the partial index of open invoices), never all of them.
  @Test func theWholeBookViewsReadBalancesAndOpenInvoicesOnly() throws {
    let (ledger, _) = try Self.ledger()
    let openIndexes = Set(
      try ledger.db.query(
        "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'invoices' AND sql LIKE '%WHERE status = ''open'''"
      ).map { try $0.string("name") })
    #expect(openIndexes.contains("invoices_open_account"))
    for view in ["v_trial_balance", "v_account_balances", "v_receivables_aging", "v_dunning_pipeline"] {
      let sql = "SELECT * FROM \(view)"
      let names = try Self.aliases(in: sql, db: ledger.db)
      #expect(names["journal_lines"] == nil, "\(view) reads the journal")
      for scan in try Self.bookScans(sql, db: ledger.db) {
        let openOnly = openIndexes.contains {
          scan.contains("USING INDEX \($0) ") || scan.contains("USING COVERING INDEX \($0) ")
        }
        let allowed =
          (scan.hasSuffix("(invoices)") && openOnly) || scan.hasSuffix("(ledger_balances)")
          || scan.hasSuffix("(accounts)")
        #expect(allowed, "\(view) scans \(scan)")
      }
    }
  }

  /// The test above would see a scan: through an alias, inside a view, through an index read
  /// whole, or behind a filter that tests its parameter for null.
  @Test func aScanOfTheBookIsSeen() throws {
    let (ledger, _) = try Self.ledger()
    let scanning = [
      ("SELECT * FROM v_charge_attempts WHERE currency = ?", "charge_attempts"),
      ("SELECT e.id FROM events e WHERE e.kind = ?", "events"),
      ("SELECT id FROM invoices WHERE ?1 IS NULL OR account_id = ?1", "invoices"),
      ("SELECT account_id, count(*) FROM invoices GROUP BY account_id", "invoices"),
      ("SELECT sum(debit_minor) FROM journal_lines l WHERE l.currency = ?", "journal_lines"),
    ]
    for (sql, table) in scanning {
      let scans = try Self.bookScans(sql, db: ledger.db)
      #expect(scans.contains { $0.hasSuffix("(\(table))") }, "\(sql): \(scans)")
    }
  }

  @Test func parametersAreCountedAsSQLiteCountsThem() {
    #expect(Self.parameterCount("SELECT 1") == 0)
    #expect(Self.parameterCount("SELECT ? , ?") == 2)
    #expect(Self.parameterCount("SELECT ?1 WHERE x = ?1 OR y = ?2") == 2)
    #expect(Self.parameterCount("SELECT '?' , ?") == 1)
    #expect(Self.parameterCount("SELECT ?2, ?") == 3)
  }
}
