import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// What the stress loops did, shared between their threads.
final class StressLedger: Sendable {
  struct Counts {
    var accounts: Set<Int> = []
    var cards: Set<Int> = []
    var invoices: Set<String> = []
    var payments: Set<String> = []
    var pauses: Set<String> = []
    var busy = 0
    var failures: [String] = []
    var reads = 0
    var readFailures: [String] = []
    var backups: [String] = []
    var backupFailures: [String] = []
  }
  let counts = Mutex(Counts())
  let stop = Atomic<Bool>(false)
  /// The simulated day the daemon and the writers are on (LEDGERD_NOW's day).
  let day = Atomic<Int>(0)
}

/// Many processes on one ledger file (SPEC 9, issue 7): `ledgerd serve` runs the dunning
/// book while writers, auditors' readers and backups work on the same file at once.
///
/// Sizes from the environment: LEDGERD_STRESS_SECONDS (default 45; the long form is 300 or
/// more), LEDGERD_STRESS_WRITERS (default 4), LEDGERD_STRESS_DAY_SECONDS (how long one
/// simulated day lasts, default 5: the daemon is restarted on each new day, which brings
/// retries, reminders and downgrades due), LEDGERD_STRESS_ACCOUNTS (the seeded book, default 200).
@Suite(.serialized) struct StressTests {
  static let start = "2026-11-02"

  static func now(day: Int) -> String {
    let base = ISO8601DateFormatter().date(from: start + "T10:00:00Z")!
    return ISO8601DateFormatter().string(from: base.addingTimeInterval(Double(day) * 86_400))
  }

  /// Every process checkpoints after this many WAL pages instead of 10,000, so that the
  /// daemon's checkpoints (copies beside writers) run often beside the other processes.
  static let checkpointPages = "100"

  @Test func manyProcessesOnOneLedgerKeepItIntact() throws {
    let env = ProcessInfo.processInfo.environment
    let seconds = Double(env["LEDGERD_STRESS_SECONDS"] ?? "") ?? 45
    let writers = max(4, Int(env["LEDGERD_STRESS_WRITERS"] ?? "") ?? 4)
    let daySeconds = max(1, Double(env["LEDGERD_STRESS_DAY_SECONDS"] ?? "") ?? 5)
    let seedAccounts = Int(env["LEDGERD_STRESS_ACCOUNTS"] ?? "") ?? 200

    let w = try Workspace()
    w.now = Self.now(day: 0)
    let config = try w.writeConfig(
      #"{"dunning": {"collection_time": "when_due"}, "processor": {"slow_ms": 30, "timeout_ms": 20, "max_in_flight": 4}, "daemon": {"batch_size": 50}}"#
    )
    let built = try w.ledgerd([
      "simulate", "--build-only", "--accounts", String(seedAccounts), "--config", config, "--db", w.db,
    ])
    #expect(built.status == 0, "\(built.stderr)")
    let backups = w.directory + "/backups"
    try FileManager.default.createDirectory(atPath: backups, withIntermediateDirectories: true)

    let shared = StressLedger()
    let directory = w.directory
    let db = w.db
    let binary = Workspace.binary
    let group = DispatchGroup()
    func spawn(_ body: @escaping @Sendable () -> Void) {
      group.enter()
      Thread {
        body()
        group.leave()
      }.start()
    }
    @Sendable func ledgerd(_ args: [String]) -> Outcome {
      let now = Self.now(day: shared.day.load(ordering: .relaxed))
      do {
        return try Workspace.run(
          binary, args + ["--db", db, "--config", config], in: directory,
          environment: ["LEDGERD_NOW": now, "LEDGERD_TEST_CHECKPOINT_PAGES": Self.checkpointPages])
      } catch {
        return Outcome(status: -1, stdout: "", stderr: String(describing: error))
      }
    }
    /// Success: the parsed JSON object. The documented busy error: counted. Anything else: a failure.
    @Sendable func attempt(_ args: [String]) -> [String: Any]? {
      let outcome = ledgerd(args + ["--json"])
      if outcome.status == 0,
        let object = (try? JSONSerialization.jsonObject(with: Data(outcome.stdout.utf8))) as? [String: Any]
      {
        return object
      }
      shared.counts.withLock { c in
        if outcome.status == 75 && outcome.stderr.contains("ledger busy:") {
          c.busy += 1
        } else {
          c.failures.append("ledgerd \(args.joined(separator: " ")) exited \(outcome.status): \(outcome.stderr)")
        }
      }
      return nil
    }

    // Writers: new accounts, cards, card and transfer invoices, payments and pauses, each on
    // its own accounts and invoices, so that no command is refused for another's change.
    for k in 0..<writers {
      spawn {
        var generator = SystemRandomNumberGenerator()
        var accounts: [(id: Int, hasCard: Bool)] = []
        var transfers: [(number: String, day: Int)] = []
        var i = 0
        let tokens = [
          "tok_ok", "tok_decline_insufficient_funds", "tok_fail1_then_ok", "tok_decline_expired_card", "tok_visa_ok",
        ]
        while !shared.stop.load(ordering: .relaxed) {
          i += 1
          let tag = "w\(k)-\(i)"
          let roll = Int.random(in: 0..<100, using: &generator)
          let today = shared.day.load(ordering: .relaxed)
          transfers.removeAll { today - $0.day > 2 }  // only fresh ones: far from their due date
          if accounts.count < 2 || roll < 15 {
            let plan = roll % 2 == 0 ? "pro" : "free"
            if let a = attempt([
              "account", "add", "--email", "stress-\(tag)@example.com", "--name", "Stress \(tag)", "--plan", plan,
              "--billing", "manual",
            ]),
              let id = a["id"] as? Int
            {
              accounts.append((id, false))
              shared.counts.withLock { _ = $0.accounts.insert(id) }
            }
          } else if let n = accounts.firstIndex(where: { !$0.hasCard })
            ?? (roll < 25 ? accounts.indices.randomElement() : nil)
          {
            let token = tokens[Int.random(in: 0..<tokens.count, using: &generator)] + ".stress-\(tag)"
            if let c = attempt([
              "card", "add", "\(accounts[n].id)", "--token", token, "--brand", "visa", "--last4", "4242", "--expiry",
              "12/2030",
            ]),
              let id = c["id"] as? Int
            {
              accounts[n].hasCard = true
              shared.counts.withLock { _ = $0.cards.insert(id) }
            }
          } else if roll < 55 {
            let account = accounts.filter(\.hasCard).randomElement() ?? accounts[0]
            if let inv = attempt(["invoice", "issue", "\(account.id)", "--line", "Stress \(tag)=12.00"]),
              let number = inv["number"] as? String
            {
              shared.counts.withLock { _ = $0.invoices.insert(number) }
            }
          } else if roll < 75 || transfers.isEmpty {
            let account = accounts.randomElement()!
            if let inv = attempt([
              "invoice", "issue", "\(account.id)", "--method", "transfer", "--line", "Stress transfer \(tag)=30.00",
            ]),
              let number = inv["number"] as? String
            {
              transfers.append((number, today))
              shared.counts.withLock { _ = $0.invoices.insert(number) }
            }
          } else {
            let invoice = transfers.removeFirst().number
            if roll < 88 {
              let reference = "stress-pay-\(tag)"
              if attempt(["payment", "record", invoice, "--amount", "30.00", "--reference", reference]) != nil {
                shared.counts.withLock { _ = $0.payments.insert(reference) }
              }
            } else {
              let proof = "stress-proof-\(tag)"
              if attempt(["invoice", "pause", invoice, "--proof", proof]) != nil {
                shared.counts.withLock { _ = $0.pauses.insert(proof) }
              }
            }
          }
        }
      }
    }

    // Auditors: two loops of `sqlite3 -readonly` over the audit views; the trial balance
    // must be zero in every snapshot they see. Like any client of a shared SQLite file they
    // set a busy timeout: opening can meet the moment the last connection closes (and
    // checkpoints) or the next one rebuilds the WAL index, which SQLite reports as busy.
    for _ in 0..<2 {
      spawn {
        let sql = """
          SELECT debits_minor = credits_minor FROM v_trial_balance WHERE ledger_account = '(total)';
          SELECT count(*) FROM v_account_balances; SELECT count(*) FROM v_receivables_aging;
          SELECT count(*) FROM v_dunning_pipeline; SELECT count(*) FROM v_charge_attempts; SELECT count(*) FROM v_invoice_balances;
          """
        while !shared.stop.load(ordering: .relaxed) {
          let out =
            (try? Workspace.run("sqlite3", ["-readonly", "-cmd", ".timeout 5000", db, sql], in: directory))
            ?? Outcome(status: -1, stdout: "", stderr: "did not run")
          shared.counts.withLock { c in
            if out.status == 0 && out.stdout.hasPrefix("1\n") {
              c.reads += 1
            } else {
              c.readFailures.append("sqlite3 -readonly exited \(out.status): \(out.stdout.prefix(80)) \(out.stderr)")
            }
          }
          usleep(50_000)
        }
      }
    }

    // Backups: one loop of `ledgerd backup` to new files.
    spawn {
      var n = 0
      while !shared.stop.load(ordering: .relaxed) {
        n += 1
        let file = backups + "/backup-\(n).db"
        let out = ledgerd(["backup", file])
        shared.counts.withLock { c in
          if out.status == 0 {
            c.backups.append(file)
          } else if out.status == 75 && out.stderr.contains("ledger busy:") {
            c.busy += 1
          } else {
            c.backupFailures.append("backup exited \(out.status): \(out.stderr)")
          }
        }
        usleep(700_000)
      }
    }

    // The daemon, restarted on each new simulated day (SIGTERM: it must exit 0 within 10 s;
    // one that does not is killed and reported).
    func stop(_ daemon: Process) -> Int32 {
      kill(daemon.processIdentifier, SIGTERM)
      if waitForExit(daemon, seconds: 10) { return daemon.terminationStatus }
      Issue.record("serve did not exit within 10 s of SIGTERM")
      kill(daemon.processIdentifier, SIGKILL)
      daemon.waitUntilExit()
      return -9
    }
    let begin = Date()
    var daemon = try w.launch(
      ["serve", "--config", config], environment: ["LEDGERD_TEST_CHECKPOINT_PAGES": Self.checkpointPages],
      log: "serve.log")
    var restarts = 0
    var daemonExits: [Int32] = []
    while Date().timeIntervalSince(begin) < seconds {
      usleep(100_000)
      let day = Int(Date().timeIntervalSince(begin) / daySeconds)
      if day != shared.day.load(ordering: .relaxed) {
        daemonExits.append(stop(daemon))
        shared.day.store(day, ordering: .relaxed)
        w.now = Self.now(day: day)
        daemon = try w.launch(
          ["serve", "--config", config], environment: ["LEDGERD_TEST_CHECKPOINT_PAGES": Self.checkpointPages],
          log: "serve.log")
        restarts += 1
      }
      if !daemon.isRunning {
        Issue.record("the daemon stopped by itself with status \(daemon.terminationStatus)")
        daemon = try w.launch(
          ["serve", "--config", config], environment: ["LEDGERD_TEST_CHECKPOINT_PAGES": Self.checkpointPages],
          log: "serve.log")
      }
    }
    shared.stop.store(true, ordering: .relaxed)
    group.wait()
    daemonExits.append(stop(daemon))
    #expect(daemonExits.allSatisfy { $0 == 0 }, "daemon exits: \(daemonExits)")

    // The file, every backup and the ledger's invariants.
    let counts = shared.counts.withLock { $0 }
    #expect(try w.sqlite("PRAGMA integrity_check").stdout == "ok\n")
    var backupsOK = 0
    for file in counts.backups {
      let verdict = try w.sqlite("PRAGMA integrity_check", db: file).stdout
      if verdict == "ok\n" { backupsOK += 1 } else { Issue.record("backup \(file): \(verdict)") }
    }
    #expect(backupsOK == counts.backups.count)
    #expect(!counts.backups.isEmpty)
    if let last = counts.backups.last {
      let check = try w.ledgerd(["check"], db: last)
      #expect(check.status == 0, "check of \(last): \(check.stdout)\(check.stderr)")
    }
    let check = try w.ledgerd(["check", "--json"])
    #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    let report = (try? check.json()) as? [String: Any]
    #expect((report?["write_discipline"] as? [String: Any])?["active"] as? Bool == true)

    // Every command that reported success is in the ledger, and nothing else of theirs is.
    func column(_ sql: String) throws -> Set<String> {
      let out = try w.sqlite(sql)
      #expect(out.status == 0, "\(out.stderr)")
      return Set(out.stdout.split(separator: "\n").map(String.init))
    }
    #expect(try column("SELECT id FROM accounts WHERE email LIKE 'stress-%'") == Set(counts.accounts.map(String.init)))
    #expect(try column("SELECT id FROM cards WHERE token LIKE '%.stress-%'") == Set(counts.cards.map(String.init)))
    #expect(
      try column("SELECT i.number FROM invoices i JOIN accounts a ON a.id = i.account_id WHERE a.email LIKE 'stress-%'")
        == counts.invoices)
    #expect(try column("SELECT reference FROM payments WHERE reference LIKE 'stress-pay-%'") == counts.payments)
    #expect(try column("SELECT proof FROM pauses WHERE proof LIKE 'stress-proof-%'") == counts.pauses)

    // Nothing failed except with the documented busy error.
    #expect(counts.failures.isEmpty, "\(counts.failures.prefix(5))")
    #expect(counts.readFailures.isEmpty, "\(counts.readFailures.prefix(5))")
    #expect(counts.backupFailures.isEmpty, "\(counts.backupFailures.prefix(5))")
    #expect(!counts.accounts.isEmpty && !counts.invoices.isEmpty && counts.reads > 0)

    let attempts = try w.sqlite("SELECT count(*) FROM charge_attempts").stdout.trimmingCharacters(
      in: .whitespacesAndNewlines)
    let events = try w.sqlite("SELECT count(*) FROM events WHERE actor = 'scheduler'").stdout.trimmingCharacters(
      in: .whitespacesAndNewlines)
    let dunning = try w.sqlite(
      "SELECT (SELECT count(*) FROM outbox WHERE kind = 'dunning_reminder') || ' reminders, ' || (SELECT count(*) FROM outbox WHERE kind = 'downgrade_notice') || ' downgrades'"
    ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    // Cards that reached the network limit (15 counted attempts; the default run lasts
    // fewer simulated days than the 30-day window).
    let limited = try w.sqlite(
      "SELECT count(*) FROM (SELECT card_id FROM charge_attempts WHERE status IN ('pending', 'succeeded', 'declined') GROUP BY card_id HAVING count(*) >= 15)"
    ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    // The network's rule holds under all this: at no attempt does its card have more than
    // 15 counted attempts in the 30 days up to it.
    let overLimit = try w.sqlite(
      """
      SELECT count(*) FROM charge_attempts a WHERE a.status IN ('pending', 'succeeded', 'declined')
        AND (SELECT count(*) FROM charge_attempts b WHERE b.card_id = a.card_id AND b.status IN ('pending', 'succeeded', 'declined')
             AND b.created_at > strftime('%Y-%m-%dT%H:%M:%SZ', a.created_at, '-30 days') AND b.created_at <= a.created_at) > 15
      """
    ).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(overLimit == "0", "cards charged more than 15 times in the window")
    // The daemon's checkpoints, from the line each stop logs: copies beside the other
    // processes' writes, none needing the lock throughout.
    let serveLog = (try? String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)) ?? ""
    var besideWriters = 0
    var underLock = 0
    var stopLines = 0
    for line in serveLog.split(separator: "\n") where line.contains("checkpoints while serving: ") {
      stopLines += 1
      let counts = line.split(separator: "checkpoints while serving: ")[1]
      let numbers = counts.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
      if numbers.count >= 2 {
        besideWriters += numbers[0]
        underLock += numbers[1]
      }
      #expect(!counts.contains("failed"), "\(line)")
    }
    #expect(stopLines > 0, "no stop line in the daemon's log")
    #expect(besideWriters > 0, "no checkpoint copied beside writers")
    #expect(underLock == 0)
    let writes =
      counts.accounts.count + counts.cards.count + counts.invoices.count + counts.payments.count + counts.pauses.count
    print(
      """
      stress: \(Int(seconds)) s, \(writers) writers, 2 readers, 1 backup loop, serve restarted \(restarts) times over \(restarts + 1) simulated days; \
      \(writes) writes reported and found (\(counts.accounts.count) accounts, \(counts.cards.count) cards, \(counts.invoices.count) invoices, \
      \(counts.payments.count) payments, \(counts.pauses.count) pauses), \(counts.busy) busy, \(counts.failures.count) other failures; \
      \(counts.reads) audit reads; \(counts.backups.count) backups, all integrity ok; \(besideWriters) daemon checkpoints copied beside writers; \(attempts) charge attempts (\(limited) cards charged 15 times or more), \(dunning), \(events) scheduler events; \
      integrity_check ok, ledgerd check clean
      """)
  }
}
