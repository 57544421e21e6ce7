import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerSQLite
import LedgerStore

/// Where the ledger lives; shared by every command.
struct DatabaseOptions: ParsableArguments {
  @Option(name: .long, help: ArgumentHelp("The ledger database file (default ./ledger.db, or $LEDGERD_DB).", valueName: "PATH"))
  var db: String?

  var path: String {
    if let db, !db.isEmpty { return db }
    if let env = ProcessInfo.processInfo.environment["LEDGERD_DB"], !env.isEmpty { return env }
    return "./ledger.db"
  }

  @Option(name: .long, help: ArgumentHelp("The configuration file (JSON; default $LEDGERD_CONFIG, else built-in defaults).", valueName: "PATH"))
  var config: String?

  /// Opens the ledger for a command; read-only commands never write the file.
  func open(_ access: LedgerStore.Access, clock: LedgerClock? = nil) throws -> LedgerStore {
    try LedgerStore.open(path: path, access: access, clock: try clock ?? SystemClock.fromEnvironment())
  }

  /// The configuration: the file given, or the defaults.
  func loadConfig() throws -> LedgerConfig {
    let file = config ?? ProcessInfo.processInfo.environment["LEDGERD_CONFIG"]
    guard let file, !file.isEmpty else { return LedgerConfig() }
    return try LedgerConfig.load(path: file)
  }

  /// The ledger opened for writing, with the actions that reschedule what they touch.
  func billing() throws -> Billing {
    let config = try loadConfig()
    return Billing(store: try open(.readWrite), config: config.dunning)
  }

  /// The processor: the simulated one, with its record beside the ledger unless configured.
  func processor(_ config: LedgerConfig) throws -> SimulatedProcessor {
    try SimulatedProcessor(path: processorPath(config), slowMilliseconds: config.slowMilliseconds, timeoutMilliseconds: config.timeoutMilliseconds)
  }

  /// Where the simulated processor keeps its record: configured, else `<db>.processor.db`.
  func processorPath(_ config: LedgerConfig) -> String {
    config.simulatedProcessorPath ?? (path.hasSuffix(".db") ? String(path.dropLast(3)) : path) + ".processor.db"
  }
}

/// `--json` for commands that print.
struct OutputOptions: ParsableArguments {
  @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
  var json = false

  /// Prints `value` as JSON, or `text()` for people.
  func emit<T: Encodable>(_ value: T, text: () -> String) throws {
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
      encoder.keyEncodingStrategy = .convertToSnakeCase
      print(String(decoding: try encoder.encode(value), as: UTF8.self))
    } else {
      print(text())
    }
  }
}

/// Who is acting, recorded in every event the command writes.
struct ActorOptions: ParsableArguments {
  @Option(name: .long, help: "Who makes this change: staff (the default for most commands), customer, system.")
  var actor: String?

  func resolve(default fallback: Actor = .staff) throws -> Actor {
    guard let actor else { return fallback }
    guard let resolved = Actor(rawValue: actor), [.staff, .customer, .system].contains(resolved) else {
      throw InputError(field: "--actor", rule: "'\(actor)' must be one of staff, customer, system")
    }
    return resolved
  }
}

/// Exit codes, from sysexits(3) where one fits.
enum Exit {
  static let findings: Int32 = 1
  static let input: Int32 = 65
  static let refusedDatabase: Int32 = 66
  static let software: Int32 = 70
}

/// Runs a command body, turning the ledger's errors into one line on stderr naming the
/// field and the rule, and a non-zero exit.
func runGuarded(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch {
    throw report(error)
  }
}

/// The same for commands that await.
func runGuarded(_ body: () async throws -> Void) async throws {
  do {
    try await body()
  } catch {
    throw report(error)
  }
}

func report(_ error: Error) -> Error {
  if error is ExitCode { return error }
  let (message, code) = describe(error)
  FileHandle.standardError.write(Data("ledgerd: error: \(message)\n".utf8))
  return ExitCode(code)
}

func describe(_ error: Error) -> (String, Int32) {
  switch error {
  case let e as InputError: return (e.description, Exit.input)
  case let e as NotFoundError: return (e.description, Exit.input)
  case let e as StateError: return (e.description, Exit.input)
  case let e as MigrationError: return (e.description, Exit.refusedDatabase)
  case let e as MissingLedger: return (e.description, Exit.refusedDatabase)
  case let e as SQLiteError where e.isNotADatabase:
    return ("the file is not a ledgerd database (not an SQLite file); refusing to touch it", Exit.refusedDatabase)
  case let e as SQLiteError: return (e.description, Exit.software)
  case let e as UnbalancedEntry: return (e.description, Exit.software)
  case let e as InstanceLock.Held: return (e.description, Exit.refusedDatabase)
  default: return (String(describing: error), Exit.software)
  }
}

/// Left-aligned columns for text output.
func table(_ header: [String], _ rows: [[String]]) -> String {
  let all = [header] + rows
  let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
  return all.map { row in
    row.enumerated().map { i, cell in
      i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
    }.joined(separator: "  ")
  }.joined(separator: "\n")
}

func parseID(_ text: String, field: String) throws -> Int64 {
  guard let id = Int64(text), id > 0 else {
    throw InputError(field: field, rule: "'\(text)' must be a positive whole number (an id)")
  }
  return id
}
