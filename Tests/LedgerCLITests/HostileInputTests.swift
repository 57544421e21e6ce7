import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Hostile input and faults, through the binary: card numbers where a token or free text
/// belongs, amounts that would overflow a sum, configuration that names what does not
/// exist, and what an operator should not have done (a ledger file replaced or damaged
/// under the daemon, a full or read-only disk, a permissive umask).
@Suite(.serialized) struct HostileInputTests {
  /// The process's exit status once it has exited within `seconds`; nil when it had not,
  /// and then it is killed, so that a failing test leaves nothing running.
  func exitStatus(_ process: Process, within seconds: Double) -> Int32? {
    if waitForExit(process, seconds: seconds) { return process.terminationStatus }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    return nil
  }

  /// A ledger with account 1 (card `tok_ok.1`), its card invoice INV-000001 and its
  /// transfer invoice INV-000002.
  func book() throws -> Workspace {
    let w = try Workspace()
    try w.ok(["migrate"])
    try w.ok(["account", "add", "--email", "marie@example.fr", "--name", "Marie Curie", "--locale", "fr"])
    try w.ok(["card", "add", "1", "--token", "tok_ok.1", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028"])
    try w.ok(["invoice", "issue", "1", "--line", "Domain=12.00", "--due", "2026-12-20"])
    try w.ok(["invoice", "issue", "1", "--method", "transfer", "--line", "Consulting=150.00"])
    return w
  }

  // MARK: - Card numbers

  static let cardNumberCases: [(args: [String], field: String)] = [
    (
      [
        "card", "add", "1", "--token", "4242424242424242.x", "--brand", "visa", "--last4", "4242", "--expiry",
        "12/2028",
      ], "--token"
    ),
    (
      [
        "card", "add", "1", "--token", "tok_4242424242424242", "--brand", "visa", "--last4", "4242", "--expiry",
        "12/2028",
      ], "--token"
    ),
    (
      [
        "card", "add", "1", "--token", "4242.4242.4242.4242", "--brand", "visa", "--last4", "4242", "--expiry",
        "12/2028",
      ], "--token"
    ),
    (["card", "update", "1", "--token", "pm_4000-0566-5566-5556"], "--token"),
    (["account", "add", "--email", "jo@example.fr", "--name", "Jo 4242 4242 4242 4242"], "--name"),
    (["account", "add", "--email", "4242424242424242@example.fr", "--name", "Jo"], "--email"),
    (["plan", "add", "gold", "--name", "Gold 5555-5555-5555-4444", "--price", "9.00"], "--name"),
    (["invoice", "issue", "1", "--line", "Card 4242424242424242=1.00"], "line 1 description"),
    (
      ["invoice", "issue", "1", "--line", "Domain=1.00", "--addon", "Backup 378282246310005=1.00"], "line 2 description"
    ),
    (["invoice", "pause", "INV-000001", "--proof", "receipt 4242 4242 4242 4242"], "--proof"),
    (
      ["payment", "record", "INV-000001", "--amount", "1.00", "--reference", "paid with 4242424242424242"],
      "--reference"
    ),
    (
      [
        "transfer", "declare", "INV-000002", "--amount", "150.00", "--date", "2026-11-22", "--reference",
        "4242-4242-4242-4242",
      ], "--reference"
    ),
    (["invoice", "void", "INV-000001", "--reason", "customer sent 4242.4242.4242.4242"], "--reason"),
  ]

  /// A card number hidden in a token or typed into any free-text field is refused: exit
  /// 65, the field named, the number not repeated, nothing written.
  @Test(arguments: cardNumberCases)
  func aCardNumberIsRefusedWhereverItHides(args: [String], field: String) throws {
    let w = try book()
    let before = w.fingerprint()
    let outcome = try w.ledgerd(args)
    #expect(outcome.status == 65, "\(args): \(outcome.stderr)")
    #expect(outcome.stderr.contains("\(field):"), "\(outcome.stderr)")
    #expect(outcome.stderr.contains("looks like a card number"), "\(outcome.stderr)")
    #expect(!outcome.stderr.contains("4242424242424242") && !outcome.stderr.contains("4242 4242 4242 4242"))
    #expect(w.fingerprint() == before, "a refused command wrote to the ledger")
  }

  /// Long numbers that are not card numbers pass: a run longer than 19 digits, one that
  /// fails the Luhn check, an IBAN.
  @Test func numbersThatAreNotCardNumbersAreAccepted() throws {
    let w = try book()
    try w.ok(["account", "add", "--email", "jo@example.fr", "--name", "Order 12345678901234567890123"])
    try w.ok(["invoice", "issue", "1", "--line", "Ref 4242424242424241=1.00"])
    try w.ok([
      "payment", "record", "INV-000001", "--amount", "1.00", "--reference", "FR76 3000 6000 0112 3456 7890 189",
    ])
    try w.ok([
      "card", "add", "1", "--token", "tok_visa_2028_0001", "--brand", "visa", "--last4", "0001", "--expiry", "12/2028",
    ])
  }

  /// What got into the ledger before these rules (or past ledgerd) is reported by
  /// `check`, table, row and column named, the number masked.
  @Test func checkReportsCardNumbersAlreadyStored() throws {
    let w = try book()
    try #require(w.ledgerd(["check"]).status == 0)
    let edit = try w.sqlite(
      """
      UPDATE accounts SET name = 'Marie 4111 1111 1111 1111' WHERE id = 1;
      UPDATE invoice_lines SET description = 'Card 5555555555554444' WHERE id = 1;
      """, readOnly: false)
    try #require(edit.status == 0, "\(edit.stderr)")
    let check = try w.ledgerd(["check", "--json"])
    #expect(check.status == 1)
    let findings = try #require((try check.json() as? [String: Any])?["findings"] as? [[String: Any]])
    let cards = findings.filter { $0["check"] as? String == "no_card_numbers_stored" }.compactMap {
      $0["detail"] as? String
    }
    #expect(cards.contains { $0.contains("accounts row 1 column name") && $0.contains("ending 1111") }, "\(cards)")
    #expect(
      cards.contains { $0.contains("invoice_lines row 1 column description") && $0.contains("ending 4444") }, "\(cards)"
    )
    #expect(!check.stdout.contains("4111 1111 1111 1111") && !check.stdout.contains("5555555555554444"))
  }

  // MARK: - Amounts

  /// Amounts past the documented bound (100,000,000,000 minor units) are refused with
  /// exit 65 wherever they come in, so no sum the ledger computes can overflow; `check`
  /// and `account show` keep working.
  @Test func amountsBeyondTheBoundAreRefused() throws {
    let w = try book()
    let before = w.fingerprint()
    let cases: [[String]] = [
      ["invoice", "issue", "1", "--line", "A=50000000000000000.00", "--line", "B=50000000000000000.00"],
      ["invoice", "issue", "1", "--line", "A=600000000.00", "--line", "B=600000000.00"],
      ["invoice", "issue", "1", "--line", "A=2000.00x1000000"],
      ["plan", "add", "huge", "--name", "Huge", "--price", "1000000000.01"],
      ["payment", "record", "INV-000001", "--amount", "92233720368547758.07"],
      ["transfer", "declare", "INV-000002", "--amount", "1000000000.01", "--date", "2026-11-22", "--reference", "x"],
    ]
    for args in cases {
      let outcome = try w.ledgerd(args)
      #expect(outcome.status == 65, "\(args): \(outcome.status) \(outcome.stderr)")
      #expect(outcome.stderr.contains("limit of 1000000000.00 EUR"), "\(args): \(outcome.stderr)")
    }
    let statement = w.directory + "/big.csv"
    try Data(
      """
      id,account_iban,booking_date,amount,currency,remittance
      B1,FR7630006000011234567890189,2026-11-20,92233720368547758.07,EUR,big
      """.utf8
    ).write(to: URL(fileURLWithPath: statement))
    let imported = try w.ledgerd(["reconcile", "bank", statement])
    #expect(imported.status == 65, "\(imported.stderr)")
    #expect(imported.stderr.contains("limit of 1000000000.00 EUR"), "\(imported.stderr)")
    #expect(w.fingerprint() == before, "a refused command wrote to the ledger")
    // At the bound itself, an invoice is accepted, and everything still adds up.
    try w.ok(["invoice", "issue", "1", "--line", "A=500000000.00x2"])
    #expect(try w.ledgerd(["check"]).status == 0)
    #expect(try w.ledgerd(["account", "show", "1"]).status == 0)
  }

  /// Amounts written past ledgerd (by hand) whose sums overflow: `check` reports them as
  /// findings and exits 1; it never fails with an internal error.
  @Test func checkReportsSumsThatOverflowInsteadOfFailing() throws {
    let w = try book()
    let edit = try w.sqlite(
      """
      INSERT INTO journal_entries (at, kind, memo) VALUES ('2026-11-23T10:00:00Z', 'transfer_payment', 'hand-made');
      INSERT INTO journal_lines (entry_id, ledger_account, currency, debit_minor, credit_minor) VALUES
        (last_insert_rowid(), 'bank', 'EUR', 5000000000000000000, 0),
        ((SELECT max(id) FROM journal_entries), 'bank', 'EUR', 5000000000000000000, 0),
        ((SELECT max(id) FROM journal_entries), 'revenue', 'EUR', 0, 5000000000000000000),
        ((SELECT max(id) FROM journal_entries), 'revenue', 'EUR', 0, 5000000000000000000);
      """, readOnly: false)
    try #require(edit.status == 0, "\(edit.stderr)")
    let check = try w.ledgerd(["check", "--json"])
    #expect(check.status == 1, "\(check.status) \(check.stderr)")
    let findings = try #require((try check.json() as? [String: Any])?["findings"] as? [[String: Any]])
    #expect(findings.contains { $0["check"] as? String == "amounts_within_bound" })
    #expect(findings.contains { ($0["detail"] as? String)?.contains("integer overflow") == true }, "\(findings)")
  }

  // MARK: - Configuration naming ledger objects

  /// A downgrade plan the ledger does not have is refused before any work, by `serve` and
  /// `run-due`, naming the key; a malformed one when the config is read.
  @Test func aConfiguredDowngradePlanMustExist() throws {
    let w = try book()
    let unknown = try w.writeConfig(#"{"dunning": {"downgrade_plan": "gold"}}"#)
    let runDue = try w.ledgerd(["run-due", "--until", "2026-12-30", "--config", unknown])
    #expect(runDue.status == 65)
    #expect(runDue.stderr.contains("dunning.downgrade_plan: 'gold' is not a plan of this ledger"), "\(runDue.stderr)")
    let serve = try w.launch(["serve", "--config", unknown])
    defer { _ = exitStatus(serve, within: 0) }
    #expect(exitStatus(serve, within: 10) == 65)
    let log = try String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)
    #expect(log.contains("dunning.downgrade_plan"), "\(log)")
    let malformed = try w.writeConfig(#"{"dunning": {"downgrade_plan": "Free Plan"}}"#)
    let bad = try w.ledgerd(["run-due", "--until", "2026-12-30", "--config", malformed])
    #expect(bad.status == 65)
    #expect(bad.stderr.contains("dunning.downgrade_plan: 'Free Plan' must be"), "\(bad.stderr)")
  }

  /// A setting named twice in the config (one JSON reader keeps the first, another the
  /// last) is refused naming it, before any work, by `run-due` and `serve`.
  @Test func aSettingNamedTwiceIsRefused() throws {
    let w = try book()
    let events = try w.value("SELECT count(*) FROM events")
    let twice = try w.writeConfig(#"{"dunning": {"grace_days": 9, "retry_days": [1], "grace_days": 90}}"#)
    let runDue = try w.ledgerd(["run-due", "--until", "2026-12-30", "--config", twice])
    #expect(runDue.status == 65)
    #expect(runDue.stderr.contains("dunning.grace_days: is named twice in one JSON object"), "\(runDue.stderr)")
    let serve = try w.launch(["serve", "--config", try w.writeConfig(#"{"api": {}, "api": {"enabled": false}}"#)])
    defer { _ = exitStatus(serve, within: 0) }
    #expect(exitStatus(serve, within: 10) == 65)
    let log = try String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)
    #expect(log.contains("api: is named twice"), "\(log)")
    #expect(try w.value("SELECT count(*) FROM events") == events)
  }

  /// A due step that fails for one account (here a trigger refuses its downgrade) is put
  /// off and recorded as an event; the other accounts' steps go on in the same run.
  @Test func oneAccountsFailingStepDoesNotBlockTheOthers() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    for n in 1...3 {
      try w.ok([
        "account", "add", "--email", "c\(n)@example.fr", "--name", "Customer \(n)", "--plan", "pro", "--billing",
        "manual",
      ])
      try w.ok([
        "card", "add", String(n), "--token", "tok_decline_insufficient_funds.\(n)", "--brand", "visa", "--last4",
        "4242", "--expiry", "12/2028",
      ])
      try w.ok(["invoice", "issue", String(n), "--plan-line"])
    }
    let trigger = try w.sqlite(
      """
      CREATE TRIGGER test_refuse_downgrade BEFORE UPDATE OF status ON accounts
      WHEN OLD.id = 2 AND NEW.status = 'downgraded' BEGIN SELECT RAISE(ABORT, 'account 2 refuses its downgrade'); END;
      """, readOnly: false)
    try #require(trigger.status == 0, "\(trigger.stderr)")
    let run = try w.ledgerd(["run-due", "--until", "2026-12-05T10:00:00Z", "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let statuses = try w.sqlite("SELECT id || ':' || status FROM accounts ORDER BY id").stdout
    #expect(statuses.split(separator: "\n") == ["1:downgraded", "2:past_due", "3:downgraded"], "\(statuses)")
    // Tried again every hour from the deadline on, each failure an event.
    let failures =
      Int(
        try w.sqlite("SELECT count(*) FROM events WHERE kind = 'step_failed' AND account_id = 2").stdout
          .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    #expect(failures >= 2, "\(failures)")
    let reason = try w.sqlite("SELECT reason FROM events WHERE kind = 'step_failed' ORDER BY id LIMIT 1").stdout
    #expect(
      reason.contains("downgrade of INV-000002 failed and is tried again at")
        && reason.contains("account 2 refuses its downgrade"), "\(reason)")
    #expect(
      try w.sqlite("SELECT count(*) FROM events WHERE kind = 'step_failed' AND account_id <> 2").stdout.hasPrefix("0"))
  }

  /// A charge's outcome that cannot be recorded for one account (here a trigger refuses
  /// its payment) leaves that attempt pending, to be asked again by key, with an event; the
  /// outcomes of the other accounts, recorded in the same group, are kept.
  @Test func oneAccountsUnrecordableOutcomeDoesNotBlockTheOthers() throws {
    let w = try Workspace()
    try w.chargeWhenDue()
    try w.ok(["migrate"])
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    for n in 1...3 {
      try w.ok([
        "account", "add", "--email", "c\(n)@example.fr", "--name", "Customer \(n)", "--plan", "pro", "--billing",
        "manual",
      ])
      try w.ok([
        "card", "add", String(n), "--token", "tok_ok.\(n)", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028",
      ])
    }
    let trigger = try w.sqlite(
      """
      CREATE TRIGGER test_refuse_payment BEFORE INSERT ON payments
      WHEN NEW.account_id = 2 BEGIN SELECT RAISE(ABORT, 'account 2 refuses its payment'); END;
      """, readOnly: false)
    try #require(trigger.status == 0, "\(trigger.stderr)")
    for n in 1...3 { try w.ok(["invoice", "issue", String(n), "--plan-line"]) }
    let run = try w.ledgerd(["run-due", "--until", w.now, "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let statuses = try w.sqlite("SELECT account_id || ':' || status FROM charge_attempts ORDER BY account_id").stdout
    #expect(statuses.split(separator: "\n") == ["1:succeeded", "2:pending", "3:succeeded"], "\(statuses)")
    let reason = try w.sqlite("SELECT reason FROM events WHERE kind = 'charge_not_recorded' AND account_id = 2").stdout
    #expect(reason.contains("account 2 refuses its payment"), "\(reason)")
    // Once the row is mended, the answer is asked again by key and recorded, charged once.
    _ = try w.sqlite("DROP TRIGGER test_refuse_payment", readOnly: false)
    try w.ok(["run-due", "--until", w.now])
    #expect(try w.sqlite("SELECT count(*) FROM invoices WHERE status = 'paid'").stdout.hasPrefix("3"))
    #expect(
      try w.sqlite(
        "SELECT count(*) FROM charges WHERE outcome = 'succeeded'", db: w.directory + "/ledger.processor.db"
      ).stdout.hasPrefix("3"))
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  // MARK: - The daemon

  /// SIGTERM on a backlog stops at the end of the batch in hand: every invoice is charged
  /// at a slow processor (16 calls of 200 ms in flight, batches of 100), so the backlog
  /// of ~3,000 charges would take a minute; the daemon exits 0 within seconds and leaves
  /// the rest for the next start.
  @Test func sigtermStopsBetweenBatchesOfABacklog() throws {
    let w = try Workspace()
    w.now = "2026-11-02T10:00:00Z"
    let config = try w.writeConfig(
      #"{"dunning": {"collection_time": "when_due"}, "processor": {"slow_ms": 200, "max_in_flight": 16}, "daemon": {"batch_size": 100}}"#
    )
    try #require(
      try w.ledgerd(["simulate", "--build-only", "--accounts", "2500", "--config", config, "--db", w.db]).status == 0)
    let slow = try w.sqlite("UPDATE cards SET token = 'tok_slow.' || id", readOnly: false)
    try #require(slow.status == 0)
    let serve = try w.launch(["serve", "--config", config])
    defer { _ = exitStatus(serve, within: 0) }
    var ready = false
    for _ in 0..<200 where !ready {
      usleep(50_000)
      ready = ((try? String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)) ?? "").contains(
        "notice ledgerd: [LedgerEngine] serving")
    }
    if !ready { _ = exitStatus(serve, within: 0) }
    try #require(ready)
    // The backlog is being worked: charges are at the processor.
    let charging = try waitUntil(seconds: 15) {
      try w.sqlite("SELECT count(*) > 0 FROM charge_attempts").stdout.hasPrefix("1")
    }
    try #require(charging, "the daemon never started charging")
    let before = try w.remainingWork()
    let asked = Date()
    kill(serve.processIdentifier, SIGTERM)
    let status = exitStatus(serve, within: 30)
    let took = Date().timeIntervalSince(asked)
    #expect(status == 0)
    #expect(took < 5, "SIGTERM took \(took) s")
    let left = try w.remainingWork()
    #expect(before > 1_000 && left > 1_000, "the backlog was not large enough to show anything: \(before) then \(left)")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// The ledger file replaced under a running daemon (a restore done with `mv`) while its
  /// charges are at a slow processor: the daemon stops with exit 74 and says why, saves
  /// the file it had open, leaves the restored file as it was, and the next run takes in
  /// the charges the processor made for this ledger that the restored file lacks, so
  /// nothing is charged twice.
  @Test func aReplacedLedgerFileStopsTheDaemonAndNothingIsChargedTwice() throws {
    let w = try Workspace()
    try w.chargeWhenDue()  // charged on the workspace's hour: the test is about something else
    try w.ok(["migrate"])
    let accounts = 24
    for n in 1...accounts {
      try w.ok(["account", "add", "--email", "c\(n)@example.fr", "--name", "Customer \(n)"])
      try w.ok([
        "card", "add", String(n), "--token", "tok_slow.\(n)", "--brand", "visa", "--last4", "4242", "--expiry",
        "12/2028",
      ])
      try w.ok(["invoice", "issue", String(n), "--line", "Domain=10.00"])
    }
    let backup = w.directory + "/backup.db"
    try w.ok(["backup", backup])
    let config = try w.writeConfig(
      #"{"dunning": {"collection_time": "when_due"}, "processor": {"slow_ms": 500, "max_in_flight": 4}, "daemon": {"batch_size": 8}}"#
    )
    let serve = try w.launch(["serve", "--config", config])
    defer { _ = exitStatus(serve, within: 0) }
    let processorDB = w.directory + "/ledger.processor.db"
    func processorCharges() -> Int {
      let out = try? w.run("sqlite3", ["-readonly", processorDB, "SELECT count(*) FROM charges"])
      return Int(out?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
    }
    let deadline = Date().addingTimeInterval(30)
    while processorCharges() < 6 && Date() < deadline { usleep(50_000) }
    try #require(processorCharges() >= 6)
    #expect(rename(backup, w.db) == 0)
    #expect(exitStatus(serve, within: 10) == 74)
    let log = try String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)
    #expect(
      log.contains(
        "critical ledgerd: [LedgerEngine] stopping: the ledger file \(w.db) is no longer the file this process opened"),
      "\(log)")
    // The file it had open is saved; the restored file is read as it was backed up.
    let saved = try FileManager.default.contentsOfDirectory(atPath: w.directory).filter {
      $0.hasPrefix("ledger.db.replaced-")
    }
    #expect(saved.count == 1)
    if let copy = saved.first {
      #expect(try w.ledgerd(["check"], db: w.directory + "/" + copy).status == 0)
      #expect(
        try w.sqlite("SELECT count(*) > 0 FROM charge_attempts", db: w.directory + "/" + copy).stdout.hasPrefix("1"))
    }
    #expect(try w.ledgerd(["check"]).status == 0)
    #expect(try w.sqlite("SELECT count(*) FROM charge_attempts").stdout.hasPrefix("0"))
    // The next run takes in what the processor made, then charges the rest once.
    let run = try w.ledgerd(["run-due", "--until", w.now, "--config", config])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(
      try w.sqlite("SELECT count(*) FROM invoices WHERE status = 'paid'").stdout.trimmingCharacters(
        in: .whitespacesAndNewlines) == "\(accounts)")
    #expect(try w.sqlite("SELECT count(*) FROM events WHERE kind = 'charge_adopted'").stdout.hasPrefix("0") == false)
    let perAccount = try w.run(
      "sqlite3",
      [
        "-readonly", processorDB,
        "SELECT count(*), count(DISTINCT json_extract(metadata, '$.accountID')) FROM charges WHERE outcome = 'succeeded'",
      ]
    ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(perAccount == "\(accounts)|\(accounts)", "succeeded charges | accounts charged: \(perAccount)")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// An idle daemon notices a replaced file within a poll, before anything is due.
  @Test func anIdleDaemonNoticesAReplacedFile() throws {
    let w = try book()
    let backup = w.directory + "/backup.db"
    try w.ok(["backup", backup])
    let serve = try w.launch(["serve"])
    defer { _ = exitStatus(serve, within: 0) }
    try #require(
      waitUntil(seconds: 15) { serve.isRunning && w.serveLog().contains("[LedgerEngine] serving") }, "\(w.serveLog())")
    #expect(rename(backup, w.db) == 0)
    #expect(exitStatus(serve, within: 5) == 74)
  }

  /// A file damaged in place under the daemon (here the pages of `invoices` overwritten)
  /// ends the daemon with a failure at the first read that meets it, instead of a tick
  /// failing and being retried forever.
  @Test func aFileDamagedInPlaceEndsTheDaemonWithAFailure() throws {
    let w = try book()
    try w.ok(["checkpoint"])
    let serve = try w.launch(["serve"])
    defer { _ = exitStatus(serve, within: 0) }
    try #require(
      waitUntil(seconds: 15) { serve.isRunning && w.serveLog().contains("[LedgerEngine] serving") }, "\(w.serveLog())")
    let pages = try w.sqlite("SELECT rootpage FROM sqlite_schema WHERE tbl_name = 'invoices' AND rootpage > 0").stdout
      .split(separator: "\n").compactMap { Int($0) }
    try #require(!pages.isEmpty)
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: w.db))
    for page in pages {
      try handle.seek(toOffset: UInt64((page - 1) * 8192))
      handle.write(Data((0..<8192).map { _ in UInt8.random(in: 0...255) }))
    }
    try handle.close()
    // Another process's commit wakes the daemon, whose next look at invoices fails.
    try w.ok(["account", "add", "--email", "z@example.fr", "--name", "Z"])
    #expect(exitStatus(serve, within: 10) == 66)
    let log = try String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)
    #expect(log.contains("stopping: SQLite error 11"), "\(log)")
  }

  // MARK: - Files and disks

  /// Under a umask of 022, every file and folder ledgerd creates is its owner's alone.
  @Test func filesAreCreatedPrivateWhateverTheUmask() throws {
    let w = try book()
    try w.chargeWhenDue()  // charged on the workspace's hour: the test is about something else
    let script = """
      umask 022
      "$0" invoice issue 1 --line "Today=1.00" --db "$1" >/dev/null && "$0" run-due --until 2026-11-24 --db "$1" >/dev/null && "$0" outbox flush --db "$1" >/dev/null \
        && "$0" backup "$1.copy" --db "$1" >/dev/null
      """
    let outcome = try w.run(
      "sh", ["-c", script, Workspace.binary, w.db], environment: w.environment.merging(["LEDGERD_NOW": w.now]) { $1 })
    try #require(outcome.status == 0, "\(outcome.stderr)")
    let fm = FileManager.default
    var checked: [String] = []
    for name in try fm.contentsOfDirectory(atPath: w.directory) where name.hasPrefix("ledger.") {
      let path = w.directory + "/" + name
      var info = stat()
      try #require(stat(path, &info) == 0)
      #expect(info.st_mode & 0o077 == 0, "\(name) is \(String(info.st_mode & 0o777, radix: 8))")
      checked.append(name)
      if (info.st_mode & S_IFMT) == S_IFDIR {
        for inner in try fm.contentsOfDirectory(atPath: path) {
          var innerInfo = stat()
          try #require(stat(path + "/" + inner, &innerInfo) == 0)
          #expect(innerInfo.st_mode & 0o077 == 0, "\(name)/\(inner) is \(String(innerInfo.st_mode & 0o777, radix: 8))")
        }
      }
    }
    // The ledger, its lock, the processor's record, the mail spool and the backup at least.
    for expected in ["ledger.db", "ledger.db.lock", "ledger.processor.db", "ledger.outbox", "ledger.db.copy"] {
      #expect(checked.contains(expected), "\(expected) not created: \(checked)")
    }
  }

  /// A full disk and a read-only file system: writes exit 74 with a message that says
  /// which, and write nothing; reads go on on the read-only one. Runs in a mount
  /// namespace of its own on a small tmpfs (`unshare`), large enough for a new ledger's
  /// migrations (their WAL is checkpointed into the file when `migrate` ends).
  @Test func aFullOrReadOnlyDiskIsAnIOErrorOfItsOwn() throws {
    let w = try Workspace()
    let mount = w.directory + "/disk"
    try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
    let script = """
      set -u
      L="$0"; M="$1"
      mount -t tmpfs -o size=4m tmpfs "$M" || exit 90
      export LEDGERD_DB="$M/ledger.db"
      "$L" migrate >/dev/null && "$L" account add --email a@example.fr --name A >/dev/null \
        && "$L" invoice issue 1 --line "Domain=10.00" >/dev/null || exit 91
      dd if=/dev/zero of="$M/filler" bs=4k 2>/dev/null
      "$L" invoice issue 1 --line "More=1.00"; echo "full=$?"
      rm "$M/filler"
      echo "after-full=$(sqlite3 -readonly "$LEDGERD_DB" 'SELECT count(*) FROM invoices')"
      mount -o remount,ro "$M" || exit 92
      "$L" invoice issue 1 --line "More=1.00"; echo "readonly=$?"
      "$L" account show 1 >/dev/null; echo "show=$?"
      "$L" invoice list >/dev/null; echo "list=$?"
      "$L" check >/dev/null; echo "check=$?"
      """
    var outcome = try w.run(
      "unshare", ["--user", "--map-root-user", "--mount", "sh", "-c", script, Workspace.binary, mount],
      environment: ["LEDGERD_NOW": w.now])
    if outcome.status != 0 && outcome.stdout.isEmpty {
      // Without user namespaces, as root: a mount namespace alone.
      outcome = try w.run(
        "unshare", ["--mount", "sh", "-c", script, Workspace.binary, mount], environment: ["LEDGERD_NOW": w.now])
    }
    try #require(outcome.status == 0, "\(outcome.status): \(outcome.stdout) \(outcome.stderr)")
    let lines = Set(outcome.stdout.split(separator: "\n").map(String.init))
    #expect(lines.contains("full=74"), "\(outcome.stdout)")
    #expect(outcome.stderr.contains("ledgerd: error: disk full:"), "\(outcome.stderr)")
    #expect(lines.contains("after-full=1"), "a refused write left something: \(outcome.stdout)")
    #expect(lines.contains("readonly=74"), "\(outcome.stdout)")
    #expect(outcome.stderr.contains("ledgerd: error: the ledger's file or folder is read-only"), "\(outcome.stderr)")
    #expect(lines.isSuperset(of: ["show=0", "list=0", "check=0"]), "\(outcome.stdout) \(outcome.stderr)")
  }
}
