import Foundation
import Testing

/// The built `ledgerd` binary, driven as an operator would from a shell.
@Suite(.serialized) struct CLITests {
  /// The common options (`--db`, `--config`, `--lock-timeout`) before the subcommand, as
  /// the root's help shows them, between a group and its subcommand, or after it.
  @Test func commonOptionsGoBeforeOrAfterTheSubcommand() throws {
    let w = try Workspace()
    let before = w.directory + "/before.db"
    let env = ["LEDGERD_NOW": w.now]
    let migrated = try w.run(Workspace.binary, ["--db", before, "migrate"], environment: env)
    #expect(migrated.status == 0, "\(migrated.stderr)")
    #expect(FileManager.default.fileExists(atPath: before))
    let added = try w.run(
      Workspace.binary,
      ["--db", before, "--lock-timeout", "2", "account", "add", "--email", "a@example.fr", "--name", "A"],
      environment: env)
    #expect(added.status == 0, "\(added.stderr)")
    for args in [
      ["--db", before, "account", "list", "--json"], ["account", "--db", before, "list", "--json"],
      ["account", "list", "--json", "--db", before],
    ] {
      let listed = try w.run(Workspace.binary, args, environment: env)
      #expect((try? listed.json() as? [[String: Any]])?.count == 1, "\(args): \(listed.stdout) \(listed.stderr)")
    }
    let config = try w.writeConfig(#"{"dunning": {"downgrade_plan": "gold"}}"#)
    let refused = try w.run(
      Workspace.binary, ["--db", before, "--config", config, "run-due", "--until", "2026-12-30"], environment: env)
    #expect(refused.status == 65 && refused.stderr.contains("dunning.downgrade_plan"), "\(refused.stderr)")
    #expect(!FileManager.default.fileExists(atPath: w.db), "an option before the subcommand was ignored")
  }

  /// Given before and after the subcommand, the last `--db` on the line wins, as when the
  /// option is repeated after the subcommand.
  @Test func theLastDatabaseOnTheLineWins() throws {
    let w = try Workspace()
    let first = w.directory + "/first.db"
    let last = w.directory + "/last.db"
    let migrated = try w.run(
      Workspace.binary, ["--db", first, "migrate", "--db", last], environment: ["LEDGERD_NOW": w.now])
    #expect(migrated.status == 0, "\(migrated.stderr)")
    #expect(FileManager.default.fileExists(atPath: last))
    #expect(!FileManager.default.fileExists(atPath: first))
  }

  /// `simulate` builds its book in the file named by --db, before or after the subcommand,
  /// never in a temporary folder when one was named.
  @Test(arguments: [false, true]) func simulateWritesTheDatabaseItIsGiven(before: Bool) throws {
    let w = try Workspace()
    let book = w.directory + "/book.db"
    let simulate = ["simulate", "--build-only", "--accounts", "5", "--json"]
    let args = before ? ["--db", book] + simulate : simulate + ["--db", book]
    let built = try w.run(Workspace.binary, args, environment: ["LEDGERD_NOW": w.now])
    #expect(built.status == 0, "\(built.stderr)")
    #expect((try? built.json() as? [String: Any])?["database"] as? String == book, "\(built.stdout)")
    #expect(try w.sqlite("SELECT count(*) FROM accounts", db: book).stdout == "5\n")
  }

  /// A command that opens no ledger refuses the common options instead of ignoring them.
  @Test(arguments: [
    ["--db", "x.db", "benchmark"], ["benchmark", "--db", "x.db"],
    ["reconcile", "parse", "statement.xml", "--config", "c.json"],
  ])
  func aCommandWithoutALedgerRefusesTheCommonOptions(_ args: [String]) throws {
    let w = try Workspace()
    let refused = try w.run(Workspace.binary, args)
    #expect(refused.status == 64, "\(refused.stdout) \(refused.stderr)")
    #expect(refused.stderr.contains("is not an option of"), "\(refused.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: w.directory).filter { !$0.hasPrefix(".") }.isEmpty)
  }

  /// The root's help lists the operator's commands first and the developer's apart.
  @Test func theHelpListsTheDeveloperCommandsApart() throws {
    let w = try Workspace()
    let help = try w.run(Workspace.binary, ["--help"]).stdout
    let sections = help.components(separatedBy: "DEVELOPER SUBCOMMANDS:")
    try #require(sections.count == 2, "\(help)")
    for name in ["simulate", "benchmark", "benchmark-reconcile"] {
      #expect(sections[1].contains("  \(name) "), "\(name)")
      #expect(!sections[0].contains("  \(name) "), "\(name)")
    }
    for name in ["migrate", "serve", "reconcile", "account"] {
      #expect(sections[0].contains("  \(name) "), "\(name)")
    }
  }

  /// The session of the store issue's "must show": a plan, an account, two cards with
  /// default switching and removal, a card and a transfer invoice, a void, a clean check
  /// and a trial balance read with `sqlite3 -readonly`.
  @Test func scriptedSession() throws {
    let w = try Workspace()
    #expect(
      try w.json(["migrate"])["applied"] as? [String] == [
        "0001_schema.sql", "0002_audit_views.sql", "0003_reconciliation.sql", "0004_scheduler_indexes.sql",
        "0005_checks_without_in_lists.sql", "0006_counted_attempts_index.sql", "0007_ledger_identity.sql",
        "0008_journal_hash_chain.sql", "0009_transfer_windows.sql", "0010_account_balances_owed.sql",
        "0011_hand_recorded_payments.sql", "0012_transfer_declarations_by_invoice.sql", "0013_subscriptions.sql",
        "0014_maintained_balances.sql", "0015_processor_customers.sql", "0016_payouts.sql", "0017_http_api.sql",
        "0018_refund_events_index.sql",
      ])
    let plan = try w.json(["plan", "add", "pro", "--name", "Pro", "--price", "19.00", "--currency", "EUR"])
    #expect((plan["price"] as? [String: Any])?["minor"] as? Int == 1900)
    let account = try w.json([
      "account", "add", "--email", "marie@example.fr", "--name", "Marie Curie", "--locale", "fr", "--plan", "pro",
      "--billing", "manual",
    ])
    let id = try #require(account["id"] as? Int)
    let c1 = try w.json([
      "card", "add", "\(id)", "--token", "tok_visa_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028",
    ])
    let c2 = try w.json([
      "card", "add", "\(id)", "--token", "tok_mc_ok", "--brand", "mastercard", "--last4", "4444", "--expiry", "01/2029",
      "--country", "FR",
    ])
    #expect(c1["is_default"] as? Bool == true)
    #expect(c2["is_default"] as? Bool == false)
    let c2id = try #require(c2["id"] as? Int)
    #expect(try w.json(["card", "default", "\(c2id)"])["is_default"] as? Bool == true)
    let removal = try w.json(["card", "remove", "\(c2id)"])
    #expect((removal["new_default"] as? [String: Any])?["id"] as? Int == c1["id"] as? Int)

    let cardInvoice = try w.json([
      "invoice", "issue", "\(id)", "--plan-line", "--addon", "Extra backups=5.00", "--line",
      "Domain example.fr=12.00x2",
    ])
    #expect((cardInvoice["total"] as? [String: Any])?["amount"] as? String == "48.00")
    #expect((cardInvoice["lines"] as? [Any])?.count == 3)
    let transfer = try w.json([
      "invoice", "issue", "\(id)", "--method", "transfer", "--line", "Consulting=150.00", "--line", "Setup=20.50",
      "--due", "2026-12-10",
    ])
    let reference = try #require(transfer["payment_reference"] as? String)
    #expect(reference.hasPrefix("RF"))
    let number = try #require(transfer["number"] as? String)
    #expect(try w.json(["invoice", "void", number, "--reason", "issued twice"])["status"] as? String == "void")

    let check = try w.ledgerd(["check"])
    #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    #expect(check.stdout.contains("ok"))

    let trial = try w.sqlite("SELECT debits_minor, credits_minor FROM v_trial_balance WHERE ledger_account = '(total)'")
    #expect(trial.status == 0)
    #expect(trial.stdout == "38900|38900\n")
    let receivable = try w.sqlite("SELECT receivable_minor FROM v_account_balances WHERE account_id = \(id)")
    #expect(receivable.stdout == "4800\n")

    let shown = try w.json(["account", "show", "\(id)"])
    #expect((shown["events"] as? [Any])?.count == 8)
    #expect((shown["cards"] as? [Any])?.count == 2)
    let listed = try w.ok(["invoice", "list", "--account", "\(id)", "--json"]).json() as? [Any]
    #expect(listed?.count == 2)
  }

  /// Every bad input is refused with its field and rule, a non-zero exit, and the file
  /// byte for byte unchanged.
  @Test(
    arguments: [
      (["plan", "add", "neg", "--name", "N", "--price", "-5.00"], "--price", "greater than zero"),
      (["plan", "add", "bad", "--name", "N", "--price", "12,30"], "--price", "not an amount"),
      (["plan", "add", "dec", "--name", "N", "--price", "12.345", "--currency", "EUR"], "--price", "3 decimals"),
      (
        ["plan", "add", "cur", "--name", "N", "--price", "12.00", "--currency", "XYZ"], "--currency",
        "not a known ISO 4217"
      ),
      (["plan", "add", "big", "--name", "N", "--price", "99999999999999999999"], "--price", "beyond the limit"),
      (["plan", "add", "pro", "--name", "Again", "--price", "1.00"], "code", "already exists"),
      (
        [
          "card", "add", "1", "--token", "4242424242424242", "--brand", "visa", "--last4", "4242", "--expiry",
          "12/2028",
        ], "--token", "looks like a card number"
      ),
      (
        [
          "card", "add", "1", "--token", "4242 4242 4242 4242", "--brand", "visa", "--last4", "4242", "--expiry",
          "12/2028",
        ], "--token", "looks like a card number"
      ),
      (
        ["card", "add", "1", "--token", "tok with space", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028"],
        "--token", "a processor token has"
      ),
      (
        ["card", "add", "1", "--token", "tok_old", "--brand", "visa", "--last4", "4242", "--expiry", "10/2026"],
        "--expiry", "in the past"
      ),
      (
        ["card", "add", "999", "--token", "tok_new", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028"],
        "--account", "no account '999'"
      ),
      (["card", "default", "999"], "card", "no card '999'"),
      (["card", "remove", "999"], "card", "no card '999'"),
      (["invoice", "issue", "999", "--line", "A=1.00"], "account", "no account '999'"),
      (["invoice", "issue", "1", "--line", "A=-1.00"], "line 1 amount", "greater than zero"),
      (["invoice", "issue", "1", "--line", "A=1.001"], "line 1 amount", "decimals"),
      (["invoice", "issue", "1", "--line", "A"], "line 1", "DESCRIPTION=AMOUNT"),
      (["invoice", "issue", "1", "--line", "A=1.00", "--due", "2026-11-01"], "--due", "before the issue date"),
      (["invoice", "void", "INV-999999", "--reason", "x"], "invoice", "no invoice"),
      (["account", "add", "--email", "no-at-sign", "--name", "X"], "--email", "exactly one '@'"),
      (["account", "add", "--email", "a@b.fr\nBcc: c@d.fr", "--name", "X"], "--email", "line breaks"),
      (["account", "add", "--email", "a@b.fr", "--name", "X", "--locale", "de"], "--locale", "fr, en"),
    ] as [([String], String, String)])
  func badInputChangesNothing(args: [String], field: String, rule: String) throws {
    let w = try Workspace()
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok(["account", "add", "--email", "a@example.fr", "--name", "A", "--plan", "pro", "--billing", "manual"])
    let before = w.fingerprint()
    let outcome = try w.ledgerd(args)
    #expect(outcome.status == 65, "exit \(outcome.status): \(outcome.stderr)")
    #expect(outcome.stderr.hasPrefix("ledgerd: error: \(field): "), "\(outcome.stderr)")
    #expect(outcome.stderr.contains(rule), "\(outcome.stderr)")
    #expect(outcome.stdout.isEmpty)
    #expect(w.fingerprint() == before)
    #expect(try w.sqlite("SELECT count(*) FROM events").stdout == "2\n")
  }

  @Test func aDatabaseOfAnotherProgramIsLeftUntouched() throws {
    let w = try Workspace()
    let other = w.directory + "/other.db"
    #expect(try w.run("sqlite3", [other, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);"]).status == 0)
    let before = w.fingerprint(other)
    for args in [
      ["plan", "add", "pro", "--name", "P", "--price", "1.00"], ["check"], ["migrate"], ["account", "list"],
    ] {
      let outcome = try w.ledgerd(args, db: other)
      #expect(outcome.status == 66, "\(args): \(outcome.stderr)")
      #expect(outcome.stderr.contains("is not a ledgerd database"))
    }
    #expect(w.fingerprint(other) == before)

    let text = w.directory + "/notes.txt"
    try Data(String(repeating: "not a database at all\n", count: 20).utf8).write(to: URL(fileURLWithPath: text))
    let beforeText = w.fingerprint(text)
    let outcome = try w.ledgerd(["account", "add", "--email", "a@b.fr", "--name", "A"], db: text)
    #expect(outcome.status == 66)
    #expect(outcome.stderr.contains("not a ledgerd database"))
    #expect(w.fingerprint(text) == beforeText)
  }

  @Test func aDatabaseFromANewerBinaryIsRefused() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let future =
      "INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', lower(hex(randomblob(32))), '2030-01-01T00:00:00Z')"
    #expect(try w.sqlite(future, readOnly: false).status == 0)
    let before = w.fingerprint()
    for args in [["account", "add", "--email", "a@b.fr", "--name", "A"], ["migrate"], ["check"], ["plan", "list"]] {
      let outcome = try w.ledgerd(args)
      #expect(outcome.status == 66, "\(args): \(outcome.stderr)")
      #expect(outcome.stderr.contains("newer ledgerd") && outcome.stderr.contains("9999_future.sql"))
    }
    #expect(w.fingerprint() == before)
  }

  @Test func aChangedMigrationIsRefused() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    #expect(
      try w.sqlite(
        "UPDATE schema_migrations SET checksum = lower(hex(zeroblob(32))) WHERE version = 2", readOnly: false
      ).status == 0)
    let outcome = try w.ledgerd(["plan", "list"])
    #expect(outcome.status == 66)
    #expect(outcome.stderr.contains("0002_audit_views.sql differs"))
  }

  @Test func journalLinesRefuseUpdateAndDeleteFromSqlite3() throws {
    let w = try Workspace()
    try w.ok(["account", "add", "--email", "a@example.fr", "--name", "A"])
    try w.ok(["invoice", "issue", "1", "--line", "A=10.00"])
    let before = try w.sqlite("SELECT * FROM journal_lines").stdout
    for sql in ["UPDATE journal_lines SET debit_minor = 1 WHERE debit_minor > 0", "DELETE FROM journal_lines"] {
      let outcome = try w.sqlite(sql, readOnly: false)
      #expect(outcome.status != 0)
      #expect(outcome.stderr.contains("append-only"), "\(outcome.stderr)")
    }
    #expect(try w.sqlite("SELECT * FROM journal_lines").stdout == before)
    #expect(!before.isEmpty)
  }

  @Test func readersNeverCreateOrMigrate() throws {
    let w = try Workspace()
    let outcome = try w.ledgerd(["account", "list"])
    #expect(outcome.status == 66)
    #expect(outcome.stderr.contains("no ledger at"))
    #expect(!FileManager.default.fileExists(atPath: w.db))
  }

  @Test func databaseComesFromTheEnvironmentToo() throws {
    let w = try Workspace()
    let path = w.directory + "/from-env.db"
    let outcome = try w.run(Workspace.binary, ["migrate"], environment: ["LEDGERD_DB": path, "LEDGERD_NOW": w.now])
    #expect(outcome.status == 0)
    #expect(FileManager.default.fileExists(atPath: path))
    // Without either, ./ledger.db in the working directory.
    #expect(try w.run(Workspace.binary, ["migrate"]).status == 0)
    #expect(FileManager.default.fileExists(atPath: w.directory + "/ledger.db"))
  }

  @Test func backupMakesAVerifiedCopy() throws {
    let w = try Workspace()
    try w.ok(["account", "add", "--email", "a@example.fr", "--name", "A"])
    try w.ok(["invoice", "issue", "1", "--line", "A=10.00"])
    let copy = w.directory + "/copy.db"
    let result = try w.json(["backup", copy])
    #expect((result["pages"] as? Int ?? 0) > 0)
    #expect(try w.sqlite("PRAGMA integrity_check", db: copy).stdout == "ok\n")
    #expect(try w.sqlite("SELECT number FROM invoices", db: copy).stdout == "INV-000001\n")
    let again = try w.ledgerd(["backup", copy])
    #expect(again.status == 65)
    #expect(again.stderr.contains("already exists"))
  }

  @Test func checkExitsNonZeroOnFindings() throws {
    let w = try Workspace()
    try w.ok(["account", "add", "--email", "a@example.fr", "--name", "A"])
    try w.ok(["invoice", "issue", "1", "--line", "A=10.00"])
    #expect(try w.sqlite("UPDATE invoices SET total_minor = 5", readOnly: false).status == 0)
    let outcome = try w.ledgerd(["check", "--json"])
    #expect(outcome.status == 1)
    let report = try #require(try outcome.json() as? [String: Any])
    let findings = try #require(report["findings"] as? [[String: Any]])
    #expect(findings.contains { $0["check"] as? String == "invoice_total_matches_lines" })
  }

  /// `ledgerd benchmark` at a small size: it measures the month, checks the ledger, and
  /// leaves nothing in the temporary folder; a folder given with --dir keeps its databases.
  @Test func theBenchmarkRunsSmallAndRemovesItsTemporaryFolder() throws {
    let w = try Workspace()
    let tmp = w.directory + "/tmp"
    try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    let small = ["benchmark", "--accounts", "200", "--days", "3", "--baseline-rows", "2000"]
    let out = try w.run(Workspace.binary, small + ["--json"], environment: ["TMPDIR": tmp + "/"])
    #expect(out.status == 0, "\(out.stderr)")
    let report = try #require(try out.json() as? [String: Any])
    #expect((report["charge_attempts"] as? Int ?? 0) > 0)
    #expect(report["check_findings"] as? Int == 0)
    #expect(report["month_lock_wait_seconds"] is Double)
    #expect(try FileManager.default.contentsOfDirectory(atPath: tmp).isEmpty, "the benchmark's folder is removed")
    let kept = w.directory + "/kept"
    let again = try w.run(
      Workspace.binary, small + ["--dir", kept, "--statements"], environment: ["TMPDIR": tmp + "/"])
    #expect(again.status == 0, "\(again.stderr)")
    #expect(again.stdout.contains("in \(kept)"))
    #expect(again.stdout.contains("statements of the month by SQLite VM steps"))
    #expect(again.stdout.contains("statements of the month by time in SQLite"))
    #expect(FileManager.default.fileExists(atPath: kept + "/ledger.db"))
  }

  @Test func everyListingPrintsJSON() throws {
    let w = try Workspace()
    try w.ok(["account", "add", "--email", "a@example.fr", "--name", "A"])
    try w.ok(["card", "add", "1", "--token", "tok_a", "--brand", "visa", "--last4", "1111", "--expiry", "01/2030"])
    try w.ok(["invoice", "issue", "1", "--line", "A=10.00"])
    for args in [
      ["plan", "list"], ["account", "list"], ["card", "list", "1"], ["invoice", "list"],
      ["invoice", "show", "INV-000001"],
      ["account", "show", "1"], ["check"], ["migrate"],
    ] {
      let outcome = try w.ledgerd(args + ["--json"])
      #expect(outcome.status == 0, "\(args): \(outcome.stderr)")
      #expect((try? outcome.json()) != nil, "\(args) printed no JSON: \(outcome.stdout)")
    }
  }
}

/// The dunning commands' bad input: refused with field and rule, nothing written.
@Suite(.serialized) struct CollectionInputTests {
  @Test(
    arguments: [
      (
        ["transfer", "declare", "INV-000001", "--amount", "0", "--date", "2026-11-20", "--reference", "VIR 1"],
        "--amount", "greater than zero"
      ),
      (
        ["transfer", "declare", "INV-000001", "--amount", "5.00", "--date", "2030-01-01", "--reference", "VIR 1"],
        "--date", "in the future"
      ),
      (
        ["transfer", "declare", "INV-000001", "--amount", "5.00", "--date", "2026-11-31", "--reference", "VIR 1"],
        "--date", "not a calendar date"
      ),
      (
        ["transfer", "declare", "INV-000404", "--amount", "5.00", "--date", "2026-11-20", "--reference", "VIR 1"],
        "invoice", "no invoice"
      ),
      (["payment", "record", "INV-000001", "--amount", "1.001"], "--amount", "decimals"),
      (["payment", "record", "INV-000001", "--amount", "5.00", "--method", "card"], "--method", "must be transfer"),
      (["invoice", "pause", "INV-000001", "--proof", "a\nb"], "--proof", "line breaks"),
      (["invoice", "resume", "INV-000001"], "invoice INV-000001", "is not paused"),
      (["run-due", "--until", "2026-13-01"], "--until", "not a"),
      (["run-due", "--until", "2020-01-01"], "--until", "before now"),
      (["card", "update", "999", "--expiry", "12/2030"], "card", "no card '999'"),
      (["card", "update", "1"], "--expiry", "give a new --expiry or --token"),
      (["explain", "999"], "account", "no account '999'"),
    ] as [([String], String, String)])
  func refusedWithNothingWritten(args: [String], field: String, rule: String) throws {
    let w = try Workspace()
    try w.ok(["account", "add", "--email", "a@example.fr", "--name", "A"])
    try w.ok(["card", "add", "1", "--token", "tok_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028"])
    try w.ok(["invoice", "issue", "1", "--method", "transfer", "--line", "Plan=19.00"])
    let before = w.fingerprint()
    let outcome = try w.ledgerd(args)
    #expect(outcome.status == 65, "exit \(outcome.status): \(outcome.stderr)")
    #expect(outcome.stderr.hasPrefix("ledgerd: error: \(field): "), "\(outcome.stderr)")
    #expect(outcome.stderr.contains(rule), "\(outcome.stderr)")
    #expect(w.fingerprint() == before)
  }
}
