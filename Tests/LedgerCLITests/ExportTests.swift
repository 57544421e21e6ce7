import Foundation
import Testing

/// The journal exported for an accountant's own tools, checked by those tools (hledger from
/// Debian, beancount from PyPI; `.ci/setup` installs both), and the hash chain that makes a
/// change to history visible to `ledgerd check`.
@Suite(.serialized) struct ExportTests {
  /// The demo month's ledger (60 accounts, a month of dunning).
  func demoMonth() throws -> Workspace {
    let w = try Workspace()
    let built = try w.ledgerd(["simulate", "--accounts", "60", "--db", w.db])
    try #require(built.status == 0, "\(built.stderr)")
    return w
  }

  /// `bean-check`, run as its module: where pip put the script need not be on the PATH.
  let beanCheck = ["-m", "beancount.scripts.check"]

  func write(_ text: String, to path: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) }

  /// An amount as hledger prints it (`-1032.00 EUR`), in minor units and currency.
  func minor(_ amount: String) throws -> (Int64, String) {
    let parts = amount.split(separator: " ")
    try #require(parts.count == 2, "\(amount)")
    let number = String(parts[0])
    let negative = number.hasPrefix("-")
    let digits = number.filter(\.isNumber)
    let value = try #require(Int64(digits), "\(amount)")
    return (negative ? -value : value, String(parts[1]))
  }

  /// The export passes `hledger check --strict` and `bean-check`, and hledger's balances
  /// of it, read as CSV, equal `v_trial_balance` and `v_account_balances` to the minor unit.
  @Test func theDemoMonthPassesHledgerAndBeancountAndAgreesToTheMinorUnit() throws {
    let w = try demoMonth()
    let journal = w.directory + "/books.journal"
    let beancount = w.directory + "/books.beancount"
    let exported = try w.json(["export", "hledger", "--output", journal])
    #expect((exported["entries"] as? Int ?? 0) > 100)
    #expect((exported["head_hash"] as? String)?.count == 64)
    try w.ok(["export", "--format", "beancount", "--output", beancount])
    let hledger = try w.run("hledger", ["check", "--strict", "-f", journal])
    #expect(hledger.status == 0, "\(hledger.stdout) \(hledger.stderr)")
    let bean = try w.run("python3", beanCheck + [beancount])
    #expect(bean.status == 0, "\(bean.stdout) \(bean.stderr)")

    // hledger's own sums, leaf by leaf.
    let csv = try w.run("hledger", ["balance", "-f", journal, "-O", "csv", "--no-total", "--flat", "-E"])
    try #require(csv.status == 0, "\(csv.stderr)")
    var byLedgerAccount: [String: Int64] = [:]
    var receivable: [String: Int64] = [:]
    var credit: [String: Int64] = [:]
    let names = [
      "assets:receivable": "receivable", "assets:bank": "bank", "assets:processor-clearing": "processor_clearing",
      "liabilities:customer-credit": "customer_credit", "income:revenue": "revenue", "expenses:bad-debt": "bad_debt",
      "expenses:processor-fees": "processor_fees",
    ]
    for line in csv.stdout.split(separator: "\n").dropFirst() {
      let cells = line.split(separator: ",", maxSplits: 1).map {
        $0.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
      }
      try #require(cells.count == 2, "\(line)")
      let account = cells[0]
      let root = try #require(names.keys.first { account == $0 || account.hasPrefix($0 + ":") }, "\(account)")
      for amount in cells[1].components(separatedBy: ", ") where amount != "0" {
        let (value, currency) = try minor(amount)
        byLedgerAccount["\(names[root]!)|\(currency)", default: 0] += value
        if let customer = account.split(separator: ":").last, customer.hasPrefix("acct-") {
          let key = "\(customer.dropFirst(5))|\(currency)"
          if root == "assets:receivable" { receivable[key, default: 0] += value }
          if root == "liabilities:customer-credit" { credit[key, default: 0] -= value }
        }
      }
    }
    let trial = try w.sqlite(
      "SELECT ledger_account, currency, balance_minor FROM v_trial_balance WHERE ledger_account <> '(total)'"
    ).stdout
    var viewed: [String: Int64] = [:]
    for row in trial.split(separator: "\n") {
      let cells = row.split(separator: "|")
      viewed["\(cells[0])|\(cells[1])"] = Int64(cells[2])
    }
    #expect(!viewed.isEmpty)
    #expect(
      byLedgerAccount.filter { $0.value != 0 } == viewed.filter { $0.value != 0 },
      "hledger \(byLedgerAccount) views \(viewed)")
    let balances = try w.sqlite("SELECT account_id, currency, receivable_minor, credit_minor FROM v_account_balances")
      .stdout
    var rows = 0
    for row in balances.split(separator: "\n") {
      let cells = row.split(separator: "|")
      let key = "\(cells[0])|\(cells[1])"
      #expect(receivable[key, default: 0] == Int64(cells[2]), "receivable of \(key)")
      #expect(credit[key, default: 0] == Int64(cells[3]), "credit of \(key)")
      rows += 1
    }
    #expect(rows >= 60)
  }

  /// One posting changed by one minor unit: both tools refuse the file.
  @Test func aPostingChangedByOneMinorUnitFailsBothTools() throws {
    let w = try demoMonth()
    for (format, checker, args) in [
      ("hledger", "hledger", ["check", "--strict", "-f"]), ("beancount", "python3", beanCheck),
    ] {
      let path = w.directory + "/books.\(format)"
      try w.ok(["export", format, "--output", path])
      try #require(try w.run(checker, args + [path]).status == 0)
      var lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
      // The first posting of the first transaction: "    income:revenue  -19.00 EUR".
      let index = try #require(lines.firstIndex { $0.hasPrefix("    ") && $0.hasSuffix(" EUR") && !$0.contains("=") })
      let (value, _) = try minor(
        String(lines[index].split(separator: " ", omittingEmptySubsequences: true).dropFirst().joined(separator: " ")))
      let changed = value + 1
      let text = "\(changed < 0 ? "-" : "")\(abs(changed) / 100).\(String(format: "%02d", abs(changed) % 100)) EUR"
      lines[index] = lines[index].split(separator: " ").first.map { "    \($0)  \(text)" } ?? lines[index]
      try write(lines.joined(separator: "\n"), to: path)
      let refused = try w.run(checker, args + [path])
      #expect(refused.status != 0, "\(format) accepted a posting changed by one minor unit")
    }
  }

  /// A range: the balances before it as an opening entry, the assertions at its end; both
  /// tools pass it, and an empty range still declares everything.
  @Test func aRangeOfDaysPassesBothTools() throws {
    let w = try demoMonth()
    for format in ["hledger", "beancount"] {
      let path = w.directory + "/range.\(format)"
      let out = try w.json(["export", format, "--from", "2026-11-30", "--to", "2026-12-10", "--output", path])
      #expect((out["entries"] as? Int ?? 0) > 0)
      let checked =
        format == "hledger"
        ? try w.run("hledger", ["check", "--strict", "-f", path]) : try w.run("python3", beanCheck + [path])
      #expect(checked.status == 0, "\(format): \(checked.stdout) \(checked.stderr)")
      #expect(try String(contentsOfFile: path, encoding: .utf8).contains("opening balances"))
    }
    let refused = try w.ledgerd(["export", "hledger", "--from", "2026-12-10", "--to", "2026-12-01"])
    #expect(refused.status == 65 && refused.stderr.contains("--to"), "\(refused.stderr)")
    let unknown = try w.ledgerd(["export", "ledger"])
    #expect(unknown.status == 65 && unknown.stderr.contains("must be hledger or beancount"), "\(unknown.stderr)")
    // To standard output: the journal there, the summary on standard error.
    let streamed = try w.ledgerd(["export"])
    #expect(streamed.status == 0)
    #expect(streamed.stdout.contains("; journal head: entry ") && streamed.stderr.contains("journal head: entry "))
  }

  /// A line changed with `sqlite3` behind the triggers' back (dropped, then restored), and
  /// balanced so that no sum shows it: `check` exits 1 naming that entry.
  @Test func historyChangedBehindTheTriggersIsFoundByCheck() throws {
    let w = try demoMonth()
    try #require(try w.ledgerd(["check"]).status == 0)
    let entry = try #require(
      Int(
        try w.sqlite(
          "SELECT min(entry_id) FROM journal_lines WHERE entry_id > 20 GROUP BY entry_id HAVING count(*) = 2 LIMIT 1"
        ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
    let edit = try w.sqlite(
      """
      DROP TRIGGER journal_lines_no_update;
      UPDATE journal_lines SET debit_minor = debit_minor + 1 WHERE entry_id = \(entry) AND debit_minor > 0;
      UPDATE journal_lines SET credit_minor = credit_minor + 1 WHERE entry_id = \(entry) AND credit_minor > 0;
      CREATE TRIGGER journal_lines_no_update BEFORE UPDATE ON journal_lines
      BEGIN SELECT RAISE(ABORT, 'journal_lines is append-only'); END;
      """, readOnly: false)
    try #require(edit.status == 0, "\(edit.stderr)")
    let check = try w.ledgerd(["check"])
    #expect(check.status == 1)
    #expect(
      check.stdout.contains("FINDING journal_hash_chain: journal entry \(entry) does not match its hash"),
      "\(check.stdout)")
    // A removed entry is found too (here the last one, so that no other check sees it).
    let w2 = try demoMonth()
    let last = try w2.sqlite("SELECT max(id) FROM journal_entries").stdout.trimmingCharacters(
      in: .whitespacesAndNewlines)
    let removed = try w2.sqlite(
      """
      PRAGMA foreign_keys = OFF;
      DROP TRIGGER journal_lines_no_delete; DROP TRIGGER journal_entries_no_delete;
      DELETE FROM journal_lines WHERE entry_id = \(last); DELETE FROM journal_entries WHERE id = \(last);
      """, readOnly: false)
    try #require(removed.status == 0, "\(removed.stderr)")
    let check2 = try w2.ledgerd(["check"])
    #expect(check2.status == 1)
    #expect(check2.stdout.contains("journal entry \(last) has a hash but is gone"), "\(check2.stdout)")
  }

  /// A ledger whose journal predates the chain gets its hashes when migration 0008 is
  /// applied, and its chain then verifies.
  @Test func aJournalFromBeforeTheChainIsHashedByTheMigration() throws {
    let w = try demoMonth()
    let before = try w.sqlite("SELECT hash FROM journal_hashes ORDER BY entry_id DESC LIMIT 1").stdout
    // Back to a ledger as it was before 0008: no hashes, the migration not applied.
    let undo = try w.sqlite(
      """
      DROP TABLE journal_hashes;
      DELETE FROM schema_migrations WHERE name = '0008_journal_hash_chain.sql';
      """, readOnly: false)
    try #require(undo.status == 0, "\(undo.stderr)")
    let migrated = try w.json(["migrate"])
    #expect(migrated["applied"] as? [String] == ["0008_journal_hash_chain.sql"], "\(migrated)")
    #expect(
      try w.sqlite("SELECT count(*) = (SELECT count(*) FROM journal_entries) FROM journal_hashes").stdout.hasPrefix("1")
    )
    // The same hashes as when they were made entry by entry.
    #expect(try w.sqlite("SELECT hash FROM journal_hashes ORDER BY entry_id DESC LIMIT 1").stdout == before)
    #expect(try w.ledgerd(["check"]).status == 0)
  }
}
