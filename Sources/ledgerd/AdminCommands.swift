import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerSQLite
import LedgerStore

struct Migrate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Create the ledger or apply the migrations this binary carries.")

  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  struct Result: Encodable {
    let database: String
    let applied: [String]
    let alreadyApplied: [String]
  }

  func run() throws {
    try runGuarded {
      let outcome = try LedgerStore.migrate(
        path: database.path, clock: try SystemClock.fromEnvironment(), discipline: try database.discipline())
      let result = Result(database: database.path, applied: outcome.applied, alreadyApplied: outcome.alreadyApplied)
      try output.emit(result) {
        outcome.applied.isEmpty
          ? "\(database.path): up to date (\(outcome.alreadyApplied.count) migrations)"
          : "\(database.path): applied \(outcome.applied.joined(separator: ", "))"
      }
    }
  }
}

struct Check: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Verify the file and the ledger's invariants; exit 1 on any finding.",
    discussion:
      "Runs PRAGMA integrity_check and foreign_key_check, then checks that every journal entry balances, the trial balance is zero, invoices agree with their lines, payments and journal, cards follow the default-card rules, and no token looks like a card number."
  )

  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  func run() throws {
    var failed = false
    try runGuarded {
      var report = try database.open(.readOnly).check()
      report.writeDiscipline.daemonRunning = InstanceLock.isHeld(databasePath: database.path)
      failed = !report.ok
      try output.emit(report) {
        let d = report.writeDiscipline
        var lines = [
          "SQLite \(report.sqliteVersion)"
            + (d.walResetBugInLibrary ? " (carries the WAL-reset bug, fixed in 3.51.3)" : "")
            + "; \(report.checksRun.count) checks run",
          d.active
            ? "write discipline on: writes and checkpoints under \(d.lockFile), wal_autocheckpoint=0, mmap off"
              + (d.daemonRunning == true ? "; ledgerd serve runs and checkpoints" : "; no daemon runs")
            : "write discipline OFF: journal_mode=\(d.journalMode), wal_autocheckpoint=\(d.walAutocheckpoint), mmap_size=\(d.mmapSize)",
        ]
        lines += report.findings.map { "FINDING \($0.check): \($0.detail)" }
        lines.append(report.ok ? "ok" : "\(report.findings.count) finding(s)")
        return lines.joined(separator: "\n")
      }
    }
    if failed { throw ExitCode(Exit.findings) }
  }
}

struct Backup: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Copy the ledger to a new file with SQLite's online backup API (safe while the daemon writes).")

  @Argument(help: "The new file to write; an existing file is never overwritten.")
  var file: String

  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  struct Result: Encodable {
    let source: String
    let backup: String
    let pages: Int64
  }

  func run() throws {
    try runGuarded {
      let pages = try database.open(.readOnly).backup(to: file)
      try output.emit(Result(source: database.path, backup: file, pages: pages)) {
        "backed up \(database.path) to \(file) (\(pages) pages, integrity ok)"
      }
    }
  }
}

struct Checkpoint: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Copy the WAL into the database file now, under the write lock (what the daemon does when idle).",
    discussion: """
      Waits for the write lock like any write (--lock-timeout, default 30 s; exit 75 when it \
      stays busy), so it never overlaps another process's commit. truncate (the default) \
      waits briefly for readers and empties the WAL file; passive copies what no reader \
      still needs and never waits.
      """)

  @Option(help: "passive or truncate.") var mode: String = "truncate"
  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  func run() throws {
    try runGuarded {
      guard let mode = Connection.CheckpointMode(rawValue: mode.lowercased()) else {
        throw InputError(field: "--mode", rule: "'\(mode)' must be passive or truncate")
      }
      guard FileManager.default.fileExists(atPath: database.path) else { throw MissingLedger(path: database.path) }
      var options = ConnectionOptions(readOnly: false, create: false)
      options.discipline = try database.discipline()
      let connection = try Connection(path: database.path, options: options)
      try LedgerSchema.migrator().requireCurrent(on: connection)  // a file that is not ours is left alone
      let result = try connection.checkpoint(mode)
      try output.emit(result) {
        "checkpoint (\(result.mode)): \(result.checkpointedFrames) of \(result.walFrames) WAL frames in the database file"
          + (result.complete ? "" : " (readers still use the rest)")
          + "; waited \(result.lockWaitMilliseconds) ms for the write lock"
      }
    }
  }
}
