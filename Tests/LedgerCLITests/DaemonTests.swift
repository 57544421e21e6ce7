import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

extension Workspace {
  /// Starts `ledgerd ARGS --db <workspace db>` without waiting; output goes to files.
  func launch(_ args: [String], environment: [String: String] = [:], log: String = "serve.log") throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Workspace.binary)
    process.arguments = args + ["--db", db]
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    var env = ProcessInfo.processInfo.environment
    env["LEDGERD_NOW"] = now
    env.merge(self.environment) { $1 }
    env.merge(environment) { $1 }
    process.environment = env
    let path = directory + "/" + log
    if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    handle.seekToEndOfFile()
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    return process
  }

  /// What the processes launched with this log file have written to it so far.
  func serveLog(_ log: String = "serve.log") -> String {
    (try? String(contentsOfFile: directory + "/" + log, encoding: .utf8)) ?? ""
  }

  func writeConfig(_ json: String) throws -> String {
    let path = directory + "/ledgerd.json"
    try Data(json.utf8).write(to: URL(fileURLWithPath: path))
    return path
  }

  /// Starts `serve` (`args`) again and again, each run until no work is left or `seconds`
  /// pass, then SIGTERM (it must exit 0); at most `starts` times. The work left, and the
  /// starts made.
  func serveUntilDone(_ args: [String], environment: [String: String] = [:], starts: Int, seconds: Double) throws
    -> (remaining: Int, restarts: Int)
  {
    var remaining = try remainingWork()
    var restarts = 0
    while remaining != 0 && restarts < starts {
      restarts += 1
      let serve = try launch(args, environment: environment)
      let deadline = Date().addingTimeInterval(seconds)
      repeat {
        usleep(300_000)
        remaining = try remainingWork()
      } while remaining != 0 && Date() < deadline && serve.isRunning
      kill(serve.processIdentifier, SIGTERM)
      #expect(waitForExit(serve, seconds: 10))
      #expect(serve.terminationStatus == 0)
    }
    return (remaining, restarts)
  }

  /// Work the daemon still has at the pinned time: due actions and pending attempts.
  func remainingWork() throws -> Int {
    let out = try sqlite(
      """
      SELECT (SELECT count(*) FROM invoices WHERE status = 'open' AND (next_action = 'in_flight' OR next_action_at <= '\(now)'))
           + (SELECT count(*) FROM charge_attempts WHERE status = 'pending')
      """)
    return Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
  }
}

func waitForExit(_ process: Process, seconds: Double) -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while process.isRunning && Date() < deadline { usleep(20_000) }
  return !process.isRunning
}

@Suite(.serialized) struct DaemonTests {
  /// `ledgerd serve` on a book of ~2,000 invoices with mixed tokens (slow answers, lost
  /// answers, no answers, declines with fallbacks), killed with SIGKILL at random moments
  /// and restarted until all work is done. Sizes: LEDGERD_CRASH_ACCOUNTS (default 1800,
  /// which makes 2,160 invoices) and LEDGERD_CRASH_KILLS (default 50). The daemon
  /// checkpoints after 100 WAL pages, so that kills land in its checkpoints too.
  @Test func sigkillAtRandomMomentsNeverChargesTwiceNorLosesACharge() throws {
    let env = ProcessInfo.processInfo.environment
    let accounts = Int(env["LEDGERD_CRASH_ACCOUNTS"] ?? "") ?? 1800
    let kills = Int(env["LEDGERD_CRASH_KILLS"] ?? "") ?? 50
    let w = try Workspace()
    w.now = "2026-11-02T10:00:00Z"
    let config = try w.writeConfig(
      #"{"dunning": {"collection_time": "when_due"}, "processor": {"slow_ms": 40, "timeout_ms": 20, "max_in_flight": 4}, "daemon": {"batch_size": 50}}"#
    )
    let built = try w.ledgerd([
      "simulate", "--build-only", "--accounts", String(accounts), "--config", config, "--db", w.db,
    ])
    #expect(built.status == 0, "\(built.stderr)")
    let invoices =
      Int(try w.sqlite("SELECT count(*) FROM invoices").stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    #expect(invoices > accounts)

    var killed = 0
    var rounds = 0
    while killed < kills {
      rounds += 1
      let serve = try w.launch(["serve", "--config", config], environment: ["LEDGERD_TEST_CHECKPOINT_PAGES": "100"])
      usleep(UInt32.random(in: 30_000...350_000))
      if serve.isRunning {
        kill(serve.processIdentifier, SIGKILL)
        killed += 1
      }
      serve.waitUntilExit()
      #expect(serve.terminationReason == .uncaughtSignal || serve.terminationStatus == 0)
    }
    // Restart until all work at the pinned time is done, then stop it properly.
    let (remaining, restarts) = try w.serveUntilDone(
      ["serve", "--config", config], environment: ["LEDGERD_TEST_CHECKPOINT_PAGES": "100"], starts: 20, seconds: 120)
    #expect(remaining == 0, "work left after \(restarts) restarts")

    let processorDB = w.directory + "/ledger.processor.db"
    #expect(try w.sqlite("ATTACH '\(processorDB)' AS p; SELECT 1", readOnly: false).status == 0)
    func q(_ sql: String) throws -> String {
      let out = try w.run("sqlite3", ["-readonly", w.db, "ATTACH 'file:\(processorDB)?mode=ro' AS p; \(sql)"])
      return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines) + out.stderr
    }
    let processorSuccesses = try q("SELECT count(*) FROM p.charges WHERE outcome = 'succeeded'")
    // Every success at the processor is a succeeded attempt in the ledger, and the reverse.
    #expect(
      try q(
        "SELECT count(*) FROM p.charges c WHERE c.outcome = 'succeeded' AND NOT EXISTS (SELECT 1 FROM charge_attempts a WHERE a.idempotency_key = c.key AND a.status = 'succeeded')"
      ) == "0")
    #expect(
      try q(
        "SELECT count(*) FROM charge_attempts a WHERE a.status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM p.charges c WHERE c.key = a.idempotency_key AND c.outcome = 'succeeded')"
      ) == "0")
    // No invoice was charged twice: one successful processor charge per paid card invoice.
    #expect(
      try q(
        "SELECT count(*) FROM (SELECT ci.invoice_id FROM charge_attempt_invoices ci JOIN charge_attempts a ON a.id = ci.attempt_id JOIN p.charges c ON c.key = a.idempotency_key WHERE c.outcome = 'succeeded' GROUP BY ci.invoice_id HAVING count(*) > 1)"
      ) == "0")
    #expect(Int(processorSuccesses) ?? 0 > 0)
    let check = try w.ledgerd(["check"])
    #expect(check.status == 0, "\(check.stdout)")
    #expect(try q("SELECT debits_minor = credits_minor FROM v_trial_balance WHERE ledger_account = '(total)'") == "1")
    // Evidence that kills landed mid-charge: attempts the processor never got, and charges
    // it made whose answers were recorded only by the recovery at the next start.
    let neverSent = try q("SELECT count(*) FROM charge_attempts WHERE raw_code = 'not_received'")
    let recoveredPayments = try q("SELECT count(*) FROM payments WHERE actor = 'system' AND method = 'card'")
    print(
      "crash test: \(invoices) invoices, \(killed) SIGKILLs over \(rounds) starts, \(restarts) final restart(s), \(processorSuccesses) processor charges, \(neverSent) attempts cut before the call, \(recoveredPayments) charges recovered at start-up, no invoice charged twice, check ok"
    )
  }

  /// SIGTERM in the middle of a busy batch: exit 0 within 10 s, nothing half-written; the
  /// systemd notify protocol is spoken on the socket; a second serve refuses at once.
  @Test func sigtermDuringABusyBatchNotifiesAndExitsCleanly() throws {
    let w = try Workspace()
    w.now = "2026-11-02T10:00:00Z"
    let config = try w.writeConfig(
      #"{"dunning": {"collection_time": "when_due"}, "processor": {"slow_ms": 300, "max_in_flight": 2}, "daemon": {"batch_size": 20}}"#
    )
    #expect(
      try w.ledgerd(["simulate", "--build-only", "--accounts", "200", "--config", config, "--db", w.db]).status == 0)

    let socketPath = w.directory + "/notify.sock"
    let received = w.directory + "/notify.txt"
    let listener = Process()
    listener.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    listener.arguments = [
      "python3", "-c",
      """
      import socket, sys
      s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
      s.bind(sys.argv[1])
      with open(sys.argv[2], 'a') as f:
          while True:
              f.write(s.recv(4096).decode() + '\\n--\\n'); f.flush()
      """, socketPath, received,
    ]
    listener.standardOutput = FileHandle.nullDevice
    listener.standardError = FileHandle.nullDevice
    listener.standardInput = FileHandle.nullDevice
    try listener.run()
    // SIGKILL: a child of the test runner may inherit a mask that blocks SIGTERM, and the
    // listener would outlive the test.
    defer {
      kill(listener.processIdentifier, SIGKILL)
      listener.waitUntilExit()
    }
    var waited = 0
    while !FileManager.default.fileExists(atPath: socketPath) && waited < 100 {
      usleep(50_000)
      waited += 1
    }

    let serve = try w.launch(
      ["serve", "--config", config], environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "400000"])
    // Serving (READY=1, a watchdog ping sent) and in the middle of a batch (charges out).
    let notified = { (try? String(contentsOfFile: received, encoding: .utf8)) ?? "" }
    let busy = try waitUntil(seconds: 15) {
      let sent = notified()
      return try sent.contains("READY=1") && sent.contains("WATCHDOG=1")
        && w.sqlite("SELECT count(*) > 0 FROM charge_attempts").stdout.hasPrefix("1")
    }
    #expect(busy, "\(notified())")
    let second = try w.ledgerd(["serve", "--config", config])
    #expect(second.status == 66)
    #expect(second.stderr.contains("another ledgerd serve already runs"))

    #expect(try w.remainingWork() > 0, "the batch should still be busy")
    let sent = Date()
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10))
    let took = Date().timeIntervalSince(sent)
    #expect(serve.terminationStatus == 0)
    #expect(took < 10, "took \(took) s")
    // The listener writes what it receives a moment later.
    waitUntil(seconds: 5) { notified().contains("STOPPING=1") }
    let messages = notified()
    #expect(messages.contains("READY=1"))
    #expect(messages.contains("STATUS="))
    #expect(messages.contains("WATCHDOG=1"))
    #expect(messages.contains("STOPPING=1"))
    #expect(try w.ledgerd(["check"]).status == 0)
    print("SIGTERM during a busy batch: exit 0 after \(String(format: "%.2f", took)) s")
  }
  /// SIGTERM while serve is still starting, before its service group listens for signals
  /// (a test hook makes the start 5 s long, as on a loaded machine): an orderly stop, exit 0,
  /// not the signal's default action.
  @Test func sigtermWhileStartingIsAnOrderlyStop() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let serve = try w.launch(["serve"], environment: ["LEDGERD_TEST_START_DELAY_MS": "5000"])
    defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
    // Sent once the process catches SIGTERM (its handler is in), or after 4 s, inside the delay.
    let status = "/proc/\(serve.processIdentifier)/status"
    waitUntil(seconds: 4) {
      let text = (try? String(contentsOfFile: status, encoding: .utf8)) ?? ""
      guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
        let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16)
      else { return false }
      return mask & (1 << (UInt64(SIGTERM) - 1)) != 0
    }
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 20))
    #expect(serve.terminationReason == .exit && serve.terminationStatus == 0, "\(serve.terminationReason)")
    #expect(w.serveLog().contains("received while starting: stopping"), "\(w.serveLog())")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// The write of a charge's outcome finds the ledger busy (another process holds the write
  /// lock longer than the daemon waits): the tick fails after the processor took the money.
  /// The daemon resolves the pending attempt by its key as soon as it can write again,
  /// without a restart.
  @Test func aChargeWhoseOutcomeCouldNotBeWrittenIsRecordedWithoutARestart() throws {
    let w = try Workspace()
    try w.chargeWhenDue()  // charged on the workspace's hour: the test is about something else
    let config = try w.writeConfig(#"{"dunning": {"collection_time": "when_due"}, "processor": {"slow_ms": 2000}}"#)
    try w.ok(["migrate"])
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok([
      "account", "add", "--email", "slow@example.com", "--name", "Slow", "--plan", "pro", "--billing", "manual",
    ])
    try w.ok(["card", "add", "1", "--token", "tok_slow.1", "--brand", "visa", "--last4", "4242", "--expiry", "12/2030"])
    let serve = try w.launch(
      ["serve", "--config", config, "--lock-timeout", "1"], environment: ["LEDGERD_LOG": "info"])
    defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
    try w.ok(["invoice", "issue", "1", "--plan-line"])
    func scalar(_ sql: String) throws -> String {
      try w.sqlite(sql).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    var deadline = Date().addingTimeInterval(10)
    while try scalar("SELECT count(*) FROM charge_attempts WHERE status = 'pending'") != "1" && Date() < deadline {
      usleep(20_000)
    }
    #expect(
      try scalar("SELECT count(*) FROM charge_attempts WHERE status = 'pending'") == "1", "the charge never started")
    // While the processor takes its 2 s, another command holds the write lock for 6 s.
    let holder = try w.launch(
      ["account", "add", "--email", "holder@example.com", "--name", "Holder"],
      environment: ["LEDGERD_TEST_HOLD_WRITE_MS": "6000"], log: "holder.log")
    deadline = Date().addingTimeInterval(20)
    while try scalar("SELECT status FROM invoices WHERE id = 1") != "paid" && Date() < deadline { usleep(100_000) }
    #expect(waitForExit(holder, seconds: 10) && holder.terminationStatus == 0)
    let log = (try? String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)) ?? ""
    #expect(log.contains("tick failed"), "the outcome's write was expected to find the ledger busy: \(log)")
    #expect(try scalar("SELECT status FROM invoices WHERE id = 1") == "paid", "\(log)")
    #expect(try scalar("SELECT status FROM charge_attempts") == "succeeded")
    #expect(serve.isRunning, "resolved by the running daemon, not by a restart")
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10) && serve.terminationStatus == 0)
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// A schedule that does not advance (here an inconsistent ledger: an open invoice with
  /// nothing left to pay, whose charge round has nothing to charge) stops the tick with an
  /// error naming the invoice; the daemon logs it, keeps serving, and answers SIGTERM.
  @Test func aScheduleThatDoesNotAdvanceFailsTheTickAndSigtermIsStillAnswered() throws {
    let w = try Workspace()
    try w.chargeWhenDue()  // charged on the workspace's hour: the test is about something else
    w.now = "2026-11-02T10:00:00Z"
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok([
      "account", "add", "--email", "marie@example.fr", "--name", "Marie", "--plan", "pro", "--billing", "manual",
    ])
    try w.ok([
      "card", "add", "1", "--token", "tok_visa_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028",
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=19.00"])
    let corrupt = try w.sqlite(
      """
      INSERT INTO payments (account_id, method, amount_minor, currency, received_on, actor, created_at)
        VALUES (1, 'transfer', 1900, 'EUR', '2026-11-02', 'staff', '2026-11-02T10:00:00Z');
      INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor) VALUES (last_insert_rowid(), 1, 1900);
      """, readOnly: false)
    #expect(corrupt.status == 0, "\(corrupt.stderr)")
    // Charged when due (not at the daily collection time), so the stuck charge comes at once.
    let config = try w.writeConfig(#"{"dunning": {"collection_time": "when_due"}}"#)
    let serve = try w.launch(["serve", "--config", config], environment: ["LEDGERD_LOG": "info"])
    let log = w.directory + "/serve.log"
    var waited = 0
    while waited < 150, !(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("does not advance")) {
      usleep(100_000)
      waited += 1
    }
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    #expect(text.contains("tick failed: invoice INV-000001: the schedule does not advance"), "\(text.suffix(2000))")
    #expect(serve.isRunning)
    let sent = Date()
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10))
    #expect(serve.terminationStatus == 0)
    #expect(Date().timeIntervalSince(sent) < 10)
    #expect(try w.sqlite("SELECT count(*) FROM charge_attempts").stdout == "0\n")
  }
}
