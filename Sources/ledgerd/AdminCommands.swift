import ArgumentParser
import LedgerCore
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
      let outcome = try LedgerStore.migrate(path: database.path, clock: try SystemClock.fromEnvironment())
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
    discussion: "Runs PRAGMA integrity_check and foreign_key_check, then checks that every journal entry balances, the trial balance is zero, invoices agree with their lines, payments and journal, cards follow the default-card rules, and no token looks like a card number.")

  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  func run() throws {
    var failed = false
    try runGuarded {
      let report = try database.open(.readOnly).check()
      failed = !report.ok
      try output.emit(report) {
        var lines = ["SQLite \(report.sqliteVersion); \(report.checksRun.count) checks run"]
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
