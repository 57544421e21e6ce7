import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Whether some process holds the `flock` on `path` (a probe that takes and drops it).
func lockIsHeld(_ path: String) -> Bool {
  let fd = open(path, O_RDONLY)
  guard fd >= 0 else { return false }
  defer { close(fd) }
  if flock(fd, LOCK_EX | LOCK_NB) == 0 {
    flock(fd, LOCK_UN)
    return false
  }
  return true
}

/// Whether `process` has `path` open (Linux's /proc): a ledgerd opens its database's
/// `.lock` file at its first attempt to take the write lock.
func hasOpen(_ process: Process, _ path: String) -> Bool {
  let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
  let fds = "/proc/\(process.processIdentifier)/fd"
  let entries = (try? FileManager.default.contentsOfDirectory(atPath: fds)) ?? []
  return entries.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: fds + "/" + $0)) == target }
}

/// SPEC 9 from the outside: the write lock excludes checkpoints and writes of other
/// processes while a write transaction is open, and says so when it stays busy.
@Suite(.serialized) struct WriteDisciplineTests {
  /// One process holds a write transaction open (the `LEDGERD_TEST_HOLD_WRITE_MS` hook);
  /// another process's checkpoint cannot start until it has committed.
  @Test func aCheckpointCannotStartWhileAnotherProcessHoldsAWriteTransaction() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    try w.ok(["checkpoint"])  // the WAL is empty from here
    let lock = w.db + ".lock"
    let holder = try w.launch(
      ["account", "add", "--email", "held@example.com", "--name", "Held", "--json"],
      environment: ["LEDGERD_TEST_HOLD_WRITE_MS": "3000"], log: "holder.log")
    // Wait until the holder is inside its transaction: the lock stays taken.
    let deadline = Date().addingTimeInterval(10)
    while !(lockIsHeld(lock)
      && {
        usleep(150_000)
        return lockIsHeld(lock)
      }()) && Date() < deadline
    { usleep(20_000) }
    #expect(lockIsHeld(lock), "the holder never took the write lock")
    let held = Date()

    // SQLite's own locks would let a checkpoint run now, beside the open transaction (the
    // overlap the WAL-reset bug needs): plain sqlite3, which does not take ledgerd's lock.
    let unguarded = try w.sqlite("PRAGMA wal_checkpoint(PASSIVE)", readOnly: false)
    #expect(unguarded.status == 0, "\(unguarded.stderr)")

    // ledgerd's checkpoint waits for the lock; with a short wait it reports busy (exit 75).
    let busy = try w.ledgerd(["checkpoint", "--lock-timeout", "0.5"])
    #expect(busy.status == 75)
    #expect(busy.stderr.contains("ledger busy: another ledgerd process has held the write lock for"), "\(busy.stderr)")
    #expect(try w.sqlite("SELECT count(*) FROM accounts").stdout == "0\n", "the held transaction is not committed yet")

    // With the default wait it starts only once the holder's 3 s transaction has ended
    // (the holder took the lock at most ~0.2 s before `held`): it took the lock no earlier
    // than 2.7 s after `held`.
    let started = Date()
    let checkpoint = try w.json(["checkpoint", "--mode", "passive"])
    let lockWait = Double(checkpoint["lock_wait_milliseconds"] as? Int ?? 0) / 1000
    let startedAfterHeld = started.addingTimeInterval(lockWait).timeIntervalSince(held)
    #expect(waitForExit(holder, seconds: 10))
    #expect(holder.terminationStatus == 0)
    #expect(startedAfterHeld >= 2.5, "the checkpoint started \(startedAfterHeld) s after the transaction was seen open")
    let frames = checkpoint["wal_frames"] as? Int ?? -1
    #expect(checkpoint["checkpointed_frames"] as? Int == frames)
    #expect(checkpoint["complete"] as? Bool == true)
    #expect(try w.sqlite("SELECT count(*) FROM accounts").stdout == "1\n")
    print(
      "write lock: a checkpoint waited \(Int(lockWait * 1000)) ms for another process's open write transaction and started \(String(format: "%.2f", startedAfterHeld)) s after it was seen open (\(frames) WAL frames copied)"
    )
  }

  /// A second writer waits for the first and then succeeds; with a short wait it fails with
  /// the busy error and exit 75, having written nothing.
  @Test func aSecondWriterWaitsOrFailsBusyWithNothingWritten() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let holder = try w.launch(
      ["account", "add", "--email", "first@example.com", "--name", "First"],
      environment: ["LEDGERD_TEST_HOLD_WRITE_MS": "2500"], log: "holder.log")
    let deadline = Date().addingTimeInterval(10)
    while !(lockIsHeld(w.db + ".lock")
      && {
        usleep(150_000)
        return lockIsHeld(w.db + ".lock")
      }()) && Date() < deadline
    { usleep(20_000) }
    let refused = try w.ledgerd(
      ["account", "add", "--email", "busy@example.com", "--name", "Busy"], environment: ["LEDGERD_LOCK_TIMEOUT": "0.3"])
    #expect(refused.status == 75)
    #expect(
      refused.stderr.hasPrefix("ledgerd: error: ledger busy: another ledgerd process has held the write lock for"),
      "\(refused.stderr)")
    let waited = try w.ledgerd(["account", "add", "--email", "second@example.com", "--name", "Second"])
    #expect(waited.status == 0, "\(waited.stderr)")
    #expect(waitForExit(holder, seconds: 10))
    #expect(holder.terminationStatus == 0)
    #expect(
      try w.sqlite("SELECT group_concat(email, ' ') FROM (SELECT email FROM accounts ORDER BY id)").stdout
        == "first@example.com second@example.com\n")
  }

  /// `ledgerd check` names the linked SQLite and the discipline; one-shot commands leave
  /// no WAL behind when no daemon runs.
  @Test func checkReportsTheDisciplineAndCommandsCheckpointBeforeExit() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    try w.ok(["account", "add", "--email", "a@example.com", "--name", "A"])
    let wal = (try? FileManager.default.attributesOfItem(atPath: w.db + "-wal")[.size] as? Int) ?? 0
    #expect(wal == 0)
    let text = try w.ok(["check"]).stdout
    #expect(text.contains("SQLite 3."))
    #expect(text.contains("write discipline on: writes and checkpoints under"))
    let report = try w.json(["check"])
    let discipline = try #require(report["write_discipline"] as? [String: Any])
    #expect(discipline["active"] as? Bool == true)
    #expect(discipline["wal_autocheckpoint"] as? Int == 0)
    #expect(discipline["mmap_size"] as? Int == 0)
    #expect(discipline["daemon_running"] as? Bool == false)
    #expect((discipline["lock_file"] as? String)?.hasSuffix("/ledger.db.lock") == true)
    #expect(report["sqlite_version"] as? String != nil)
  }

  /// While `serve` runs, one-shot commands leave checkpoints to it (their WAL stays), and the
  /// daemon checkpoints the WAL when idle (truncating it to zero bytes).
  @Test func theDaemonCheckpointsWhenIdleAndCommandsLeaveItToIt() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let serve = try w.launch(["serve"])
    defer {
      kill(serve.processIdentifier, SIGTERM)
      _ = waitForExit(serve, seconds: 10)
    }
    var waited = 0
    while !lockIsHeld(w.db + ".instance.lock") && waited < 100 {
      usleep(50_000)
      waited += 1
    }
    #expect(
      try w.json(["check"])["write_discipline"].flatMap { ($0 as? [String: Any])?["daemon_running"] as? Bool } == true)
    let walSize = { (try? FileManager.default.attributesOfItem(atPath: w.db + "-wal")[.size] as? Int) ?? 0 }
    func waitForEmptyWAL() -> Bool {
      let deadline = Date().addingTimeInterval(12)
      while walSize() > 0 && Date() < deadline { usleep(50_000) }
      return walSize() == 0
    }
    // The first command's WAL is checkpointed by the daemon (not by the command: a daemon runs).
    try w.ok(["account", "add", "--email", "a0@example.com", "--name", "A0"])
    #expect(waitForEmptyWAL(), "the daemon did not checkpoint when idle")
    // The next ones, within the daemon's 5 s between idle checkpoints, stay in the WAL…
    for i in 1..<5 { try w.ok(["account", "add", "--email", "a\(i)@example.com", "--name", "A\(i)"]) }
    #expect(walSize() > 0, "the commands checkpointed although a daemon runs")
    // …until the daemon's next idle checkpoint.
    #expect(waitForEmptyWAL(), "the daemon did not checkpoint when idle")
    #expect(try w.sqlite("SELECT count(*) FROM accounts").stdout == "5\n")
  }

  /// A daemon waiting for a write lock someone else holds still answers SIGTERM at once
  /// (exit 0, within 10 s), having written nothing.
  @Test func aDaemonWaitingForTheLockStopsOnSIGTERM() throws {
    let w = try Workspace()
    w.now = "2026-11-02T10:00:00Z"
    #expect(try w.ledgerd(["simulate", "--build-only", "--accounts", "20", "--db", w.db]).status == 0)
    let before = try w.sqlite("SELECT count(*) FROM charge_attempts").stdout
    let fd = open(w.db + ".lock", O_RDWR | O_CREAT, 0o600)
    #expect(fd >= 0)
    defer { close(fd) }
    #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
    let serve = try w.launch(["serve"])
    // Started, and waiting for the lock (held here) to charge what is due.
    #expect(waitUntil(seconds: 15) { serve.isRunning && hasOpen(serve, w.db + ".lock") })
    #expect(serve.isRunning)
    let sent = Date()
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10))
    #expect(serve.terminationStatus == 0)
    #expect(Date().timeIntervalSince(sent) < 10)
    flock(fd, LOCK_UN)
    #expect(try w.sqlite("SELECT count(*) FROM charge_attempts").stdout == before)
    let log = (try? String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)) ?? ""
    #expect(log.contains("stopped waiting for the write lock"), "\(log)")
  }
}
