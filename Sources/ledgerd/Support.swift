import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerSQLite
import LedgerSimulator
import LedgerStore
import LedgerStripe

/// Where the ledger lives; shared by every command.
struct DatabaseOptions: ParsableArguments {
  @Option(
    name: .long,
    help: ArgumentHelp("The ledger database file (default ./ledger.db, or $LEDGERD_DB).", valueName: "PATH"))
  var db: String?

  var path: String {
    if let db, !db.isEmpty { return db }
    if let env = ProcessInfo.processInfo.environment["LEDGERD_DB"], !env.isEmpty { return env }
    return "./ledger.db"
  }

  @Option(
    name: .long,
    help: ArgumentHelp(
      "The configuration file (JSON; default $LEDGERD_CONFIG, else built-in defaults).", valueName: "PATH"))
  var config: String?

  @Option(
    name: .long,
    help: ArgumentHelp(
      "How long a write waits for another process's write lock before failing with 'ledger busy' (exit 75); default 30, or $LEDGERD_LOCK_TIMEOUT.",
      valueName: "SECONDS"))
  var lockTimeout: Double?

  /// The options of this group the command line gave, by name.
  var given: [String] {
    [db.map { _ in "--db" }, config.map { _ in "--config" }, lockTimeout.map { _ in "--lock-timeout" }].compactMap {
      $0
    }
  }

  /// The write discipline of this command's connections: the lock timeout from
  /// `--lock-timeout` or `$LEDGERD_LOCK_TIMEOUT`; `$LEDGERD_TEST_HOLD_WRITE_MS` is a test hook
  /// that holds each write transaction open that long before it commits, and
  /// `$LEDGERD_TEST_CHECKPOINT_PAGES` one that checkpoints after that many WAL pages instead
  /// of 10,000 (so that tests on small books run many checkpoints).
  func discipline() throws -> WriteDiscipline {
    let env = ProcessInfo.processInfo.environment
    var discipline = WriteDiscipline()
    if let seconds = try lockTimeout ?? env["LEDGERD_LOCK_TIMEOUT"].flatMap({ $0.isEmpty ? nil : try Self.seconds($0) })
    {
      guard seconds >= 0, seconds <= 86_400 else {
        throw InputError(field: "--lock-timeout", rule: "\(seconds) must be between 0 and 86400 seconds")
      }
      discipline.lockTimeout = .milliseconds(Int64((seconds * 1000).rounded()))
    }
    if let hold = env["LEDGERD_TEST_HOLD_WRITE_MS"].flatMap(Int.init), hold > 0 {
      discipline.holdWriteMilliseconds = hold
    }
    if let pages = env["LEDGERD_TEST_CHECKPOINT_PAGES"].flatMap(Int.init), pages > 0 {
      discipline.checkpointAfterPages = pages
    }
    return discipline
  }

  static func seconds(_ text: String) throws -> Double {
    guard let value = Double(text) else {
      throw InputError(field: "LEDGERD_LOCK_TIMEOUT", rule: "'\(text)' must be a number of seconds")
    }
    return value
  }

  /// Opens the ledger for a command; read-only commands never write the file.
  func open(_ access: LedgerStore.Access, clock: LedgerClock? = nil) throws -> LedgerStore {
    try LedgerStore.open(
      path: path, access: access, clock: try clock ?? SystemClock.fromEnvironment(), discipline: try discipline())
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

  /// The configured processor (the simulated one unless told otherwise).
  func processor(_ config: LedgerConfig, clock: LedgerClock) throws -> any PaymentProcessor {
    try ProcessorMaker(config: config, simulatedPath: processorPath(config)).make(clock: clock)
  }

  /// Where the simulated processor keeps its record: configured, else `<name>.processor.db`
  /// beside the ledger, `<name>` being its path without `.db` (`ledger.processor.db`).
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
  /// EX_IOERR: the disk is full, the ledger or its folder cannot be written or opened, the
  /// disk failed, or the file was replaced under the process; nothing was written.
  static let ioError: Int32 = 74
  /// EX_TEMPFAIL: another process held the write lock for the whole wait; nothing was
  /// written, and the same command can simply be run again.
  static let busy: Int32 = 75
}

/// Runs a command body, turning the ledger's errors into one line on stderr naming the
/// field and the rule, and a non-zero exit.
func runGuarded(_ body: () throws -> Void) throws {
  do {
    try body()
  } catch {
    throw report(error)
  }
  checkpointBeforeExit()
}

/// The same for commands that await.
func runGuardedAsync(_ body: () async throws -> Void) async throws {
  do {
    try await body()
  } catch {
    throw report(error)
  }
  checkpointBeforeExit()
}

/// A one-shot command's last act (SPEC 9): for each file it wrote, when no `ledgerd serve`
/// holds that file's instance lock, it checkpoints the WAL (truncating, under the write
/// lock, waiting at most 2 s for it). Best effort: what it cannot do now, the next
/// writer's threshold checkpoint or the daemon does.
func checkpointBeforeExit() {
  for path in WriteLock.databasesWritten() where !InstanceLock.isHeld(databasePath: path) {
    let size = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
    guard size > 0 else { continue }
    guard let connection = try? Connection(path: path, options: ConnectionOptions(readOnly: false, create: false))
    else { continue }
    _ = try? connection.checkpoint(.truncate, lockTimeout: .seconds(2))
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
  case let e as SQLiteError where e.isBusy: return ("ledger busy: \(e.description)", Exit.busy)
  case let e as SQLiteError where e.isDiskFull:
    return (
      "disk full: the ledger's disk has no space left; free some and run the command again (nothing was written): \(e.description)",
      Exit.ioError
    )
  case let e as SQLiteError where e.isReadOnlyStorage:
    return ("the ledger's file or folder is read-only: nothing was written: \(e.description)", Exit.ioError)
  case let e as SQLiteError where e.primaryCode == 11:  // SQLITE_CORRUPT
    return (
      "the ledger file is damaged (restore it from a backup; see `ledgerd check`): \(e.description)",
      Exit.refusedDatabase
    )
  case let e as SQLiteError where e.isIOFault:
    return ("I/O error on the ledger's disk; nothing was written: \(e.description)", Exit.ioError)
  case let e as SQLiteError: return (e.description, Exit.software)
  case let e as DatabaseFileReplaced: return (e.description, Exit.ioError)
  case let e as UnbalancedEntry: return (e.description, Exit.software)
  case let e as InstanceLock.Held: return (e.description, Exit.refusedDatabase)
  case let e as WriteLockBusy: return (e.description, Exit.busy)
  case let e as ProcessorUnreachable:
    return ("\(e.description); nothing more was charged; run the command again once it answers", Exit.busy)
  case let e as WriteLockUnavailable: return (e.description, Exit.refusedDatabase)
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

/// Makes the configured processor: the simulated one, with its record at `simulatedPath`,
/// or the Stripe adapter with its key read from its file or systemd credential.
struct ProcessorMaker: Sendable {
  let config: LedgerConfig
  let simulatedPath: String

  func make(clock: LedgerClock) throws -> any PaymentProcessor {
    switch config.processorKind {
    case .simulated:
      return try SimulatedProcessor(
        path: simulatedPath, slowMilliseconds: config.slowMilliseconds,
        timeoutMilliseconds: config.timeoutMilliseconds, clock: clock, maxRequestsPerSecond: config.maxRequestsPerSecond
      )
    case .stripe:
      let key = try StripeSecretKey.load(config.stripe, environment: ProcessInfo.processInfo.environment)
      return StripeProcessor(
        settings: config.stripe, key: key, maxRequestsPerSecond: config.maxRequestsPerSecond ?? 25,
        logger: makeLogger("ledgerd.stripe"))
    }
  }
}
