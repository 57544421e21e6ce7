import Foundation
import LedgerCore
import LedgerSQLite

/// What one run of a program printed and returned.
struct Outcome {
  let status: Int32
  let stdout: String
  let stderr: String

  /// stdout parsed as a JSON object or array.
  func json() throws -> Any { try JSONSerialization.jsonObject(with: Data(stdout.utf8)) }
}

/// Runs the built `ledgerd` binary (and other programs) as a user would, in a scratch
/// directory of its own, on a pinned day.
final class Workspace {
  let directory: String
  var db: String { directory + "/ledger.db" }
  var now = "2026-11-23T10:00:00Z"
  /// Environment every `ledgerd` run of this workspace gets (after LEDGERD_NOW).
  var environment: [String: String] = [:]

  init() throws {
    directory = NSTemporaryDirectory() + "ledgerd-cli-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(atPath: directory) }

  /// The binary under test: $LEDGERD_BIN, or `ledgerd` beside the test bundle.
  static let binary: String = {
    if let path = ProcessInfo.processInfo.environment["LEDGERD_BIN"], !path.isEmpty { return path }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    if dir.lastPathComponent == "MacOS" {
      dir = dir.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
    return dir.appendingPathComponent("ledgerd").path
  }()

  /// Runs `ledgerd ARGS --db <workspace db>` unless the arguments name a database.
  @discardableResult
  func ledgerd(_ args: [String], db: String? = nil, environment: [String: String] = [:]) throws -> Outcome {
    var full = args
    if !args.contains("--db") { full += ["--db", db ?? self.db] }
    var env = ["LEDGERD_NOW": now]
    env.merge(self.environment) { $1 }
    env.merge(environment) { $1 }
    return try run(Workspace.binary, full, environment: env)
  }

  /// Every later command of this workspace charges each card invoice when it falls due, not
  /// at the daily collection time: for tests about other rules, on the workspace's hour.
  func chargeWhenDue() throws {
    let path = directory + "/when-due.json"
    try Data(#"{"dunning": {"collection_time": "when_due"}}"#.utf8).write(to: URL(fileURLWithPath: path))
    environment["LEDGERD_CONFIG"] = path
  }

  /// Runs `ledgerd` and fails unless it exits 0.
  @discardableResult
  func ok(_ args: [String]) throws -> Outcome {
    let outcome = try ledgerd(args)
    guard outcome.status == 0 else {
      throw Failure("ledgerd \(args.joined(separator: " ")) exited \(outcome.status): \(outcome.stderr)")
    }
    return outcome
  }

  /// Runs `ledgerd ... --json` and returns the parsed object.
  func json(_ args: [String]) throws -> [String: Any] {
    guard let object = try ok(args + ["--json"]).json() as? [String: Any] else { throw Failure("not a JSON object") }
    return object
  }

  func run(_ program: String, _ args: [String], environment: [String: String] = [:]) throws -> Outcome {
    try Workspace.run(program, args, in: directory, environment: environment)
  }

  /// Runs a program in `directory` and waits for it; usable from any thread.
  static func run(_ program: String, _ args: [String], in directory: String, environment: [String: String] = [:]) throws
    -> Outcome
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/env")
    process.arguments = program.hasPrefix("/") ? args : [program] + args
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "LEDGERD_DB")
    env.merge(environment) { $1 }
    process.environment = env
    let out = directory + "/.stdout-\(UUID().uuidString)"
    let err = directory + "/.stderr-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: out, contents: nil)
    _ = FileManager.default.createFile(atPath: err, contents: nil)
    let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
    let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
    process.standardOutput = outHandle
    process.standardError = errHandle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try outHandle.close()
    try errHandle.close()
    defer {
      try? FileManager.default.removeItem(atPath: out)
      try? FileManager.default.removeItem(atPath: err)
    }
    return Outcome(
      status: process.terminationStatus,
      stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
      stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
  }

  /// `sqlite3 -readonly DB SQL` (the auditors' tool).
  func sqlite(_ sql: String, readOnly: Bool = true, db: String? = nil) throws -> Outcome {
    try run("sqlite3", (readOnly ? ["-readonly"] : []) + [db ?? self.db, sql])
  }

  /// SHA-256 of the database file and of its WAL, if any: equal fingerprints mean nothing
  /// was written. An empty WAL (left by a read-only connection) holds nothing and counts
  /// as none.
  func fingerprint(_ path: String? = nil) -> String {
    let base = path ?? db
    return [base, base + "-wal"].map { file in
      guard let data = FileManager.default.contents(atPath: file), !data.isEmpty else { return "-" }
      return SHA256.hex(Array(data))
    }.joined(separator: "/")
  }
}

/// Polls `condition` until it holds or `seconds` have passed, and says whether it held: a
/// test waits for what it needs to see, not for a fixed time that a busy machine overruns
/// and an idle one wastes.
@discardableResult
func waitUntil(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while try !condition() {
    guard Date() < deadline else { return false }
    usleep(20_000)
  }
  return true
}

struct Failure: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// A Python test tool started as a listener: it writes `<directory>/ready` once it listens;
/// the wait ends there, or fails with `missing` after 15 s or when the tool exits.
func startListener(_ tool: String, _ arguments: [String], directory: String, missing: String) throws -> Process {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = ["python3", tool] + arguments
  process.standardOutput = FileHandle.nullDevice
  process.standardError = FileHandle.nullDevice
  try? FileManager.default.removeItem(atPath: directory + "/ready")
  try process.run()
  let deadline = Date().addingTimeInterval(15)
  while !FileManager.default.fileExists(atPath: directory + "/ready") {
    guard process.isRunning, Date() < deadline else { throw Failure(missing) }
    usleep(20_000)
  }
  return process
}

/// Stops a listener with SIGKILL (a child of the test runner may inherit a mask that blocks
/// SIGTERM); the tools write what they received before they answer it.
func stopListener(_ process: Process?) {
  guard let process, process.isRunning else { return }
  kill(process.processIdentifier, SIGKILL)
  process.waitUntilExit()
}
