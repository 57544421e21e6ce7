import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerSQLite
import LedgerSimulator
import LedgerStore

struct Benchmark: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "benchmark",
    abstract: "Measure a dunning month over many accounts against plain SQLite inserts, in one run.",
    discussion: """
      Builds the demo book of `simulate` (not timed), then times the month: every charge, \
      retry, reminder, downgrade and payment through the scheduler with the zero-latency \
      simulated processor. The baseline, in the same run and with the same connection \
      settings (WAL, synchronous=FULL): single-row inserts in 1,000-row transactions. \
      Build with -c release for meaningful figures.
      """)
  @Option(help: "How many accounts.") var accounts: Int = 100_000
  @Option(help: "How many days.") var days: Int = 30
  @Option(help: "Rows for the insert baseline.") var baselineRows: Int = 200_000
  @Option(help: "synchronous for both runs: FULL (default) or NORMAL.") var synchronous: String = "FULL"
  @Option(
    help: "Folder for the benchmark's databases, kept afterwards (default: a new temporary folder, removed at the end)."
  ) var dir: String?
  @Option(help: "Processor calls in flight at once.") var maxInFlight: Int = 16
  @Option(help: "Due invoices per transaction batch.") var batchSize: Int = 5000
  @Option(help: "The processor's time per call, e.g. 200ms or 1s (default: none).") var latency: String = "0ms"
  @Option(help: "Spread of the call time around --latency, e.g. 50ms.") var jitter: String = "0ms"
  @Option(help: "Share of calls whose answer never comes, e.g. 2% (the charge is made).") var timeouts: String = "0%"
  @Option(help: "How long a call that never answers holds its slot, e.g. 5s.") var timeout: String = "5s"
  @Option(help: "The processor's limit of calls per second (default: none).") var maxRequestsPerSecond: Int?
  @Option(help: "WAL pages after which a commit asks for a checkpoint (copied beside the writer).")
  var walAutocheckpoint: Int = WriteDiscipline().checkpointAfterPages
  @Flag(help: "Run without the write lock (to measure what it costs; never do this on a shared ledger).")
  var noWriteLock = false
  @Flag(
    help:
      "Also print the ledger's statements by cost in the month (runs, SQLite VM steps, time; traced, so the month runs slower)."
  ) var statements = false
  @OptionGroup var output: OutputOptions

  struct Result: Encodable {
    var accounts = 0
    var invoices = 0
    var synchronous = ""
    var writeLock = true
    var buildSeconds = 0.0
    var monthSeconds = 0.0
    /// Processor time (user + system) the month used: steadier than the wall clock on a busy machine.
    var monthCPUSeconds = 0.0
    /// How long the month's writes waited for the write lock (held by a checkpoint).
    var monthLockWaitSeconds = 0.0
    /// Checkpoints of the month: copied beside the writer, under the lock throughout, failed.
    var checkpointsBesideWriter = 0
    var checkpointsUnderLock = 0
    var checkpointsFailed = 0
    var chargeAttempts = 0
    var attemptsPerSecond = 0.0
    var baselineInsertsPerSecond = 0.0
    var attemptsPerBaselineInsert = 0.0
    var peakMemoryMB = 0.0
    var checkFindings = 0
    /// With a simulated latency: the mean time a call holds its slot (timeouts counted at
    /// their full wait), the Little's-law limit (in flight ÷ that mean, or the rate limit if
    /// lower), and the busiest pass's calls per second against it.
    var meanCallSeconds = 0.0
    var littlesLawLimit = 0.0
    var busiestPassCalls = 0
    var busiestPassSeconds = 0.0
    var busiestPassCallsPerSecond = 0.0
    var efficiency = 0.0
  }

  /// "200ms", "5s" or "1.5s" as a duration.
  static func duration(_ text: String, field: String) throws -> Duration {
    let (number, unit): (Substring, Int64) =
      text.hasSuffix("ms") ? (text.dropLast(2), 1) : text.hasSuffix("s") ? (text.dropLast(), 1000) : ("", 0)
    let parts = number.split(separator: ".", omittingEmptySubsequences: false)
    guard unit > 0, (1...2).contains(parts.count), let whole = Int64(parts[0]), whole >= 0,
      parts.count == 1 || (parts[1].count <= 3 && Int64(parts[1]) != nil)
    else { throw InputError(field: field, rule: "'\(text)' must be a duration such as 200ms or 5s") }
    var millis = whole * unit
    if parts.count == 2 {
      let fraction = Int64(parts[1].padding(toLength: 3, withPad: "0", startingAt: 0)) ?? 0
      millis += fraction * unit / 1000
    }
    return .milliseconds(millis)
  }

  /// "2%" or "0.5%" in ten-thousandths.
  static func share(_ text: String, field: String) throws -> Int {
    let parts = text.dropLast().split(separator: ".", omittingEmptySubsequences: false)
    guard text.hasSuffix("%"), (1...2).contains(parts.count), let whole = Int(parts[0]),
      parts.count == 1 || (parts[1].count <= 2 && Int(parts[1]) != nil)
    else { throw InputError(field: field, rule: "'\(text)' must be a percentage such as 2% or 0.5%") }
    let value = whole * 100 + (parts.count == 2 ? Int(parts[1].padding(toLength: 2, withPad: "0", startingAt: 0))! : 0)
    guard value <= 10_000 else { throw InputError(field: field, rule: "'\(text)' is more than 100%") }
    return value
  }

  func run() async throws {
    try await runGuardedAsync {
      guard let sync = ConnectionOptions.Synchronous(rawValue: synchronous.uppercased()), sync != .off else {
        throw InputError(field: "--synchronous", rule: "'\(synchronous)' must be FULL or NORMAL")
      }
      var network = SimulatedNetwork()
      network.latency = try Self.duration(latency, field: "--latency")
      network.jitter = try Self.duration(jitter, field: "--jitter")
      network.timeoutsPerTenThousand = try Self.share(timeouts, field: "--timeouts")
      network.timeout = try Self.duration(timeout, field: "--timeout")
      let folder = dir ?? NSTemporaryDirectory() + "ledgerd-bench-\(UUID().uuidString.prefix(8))"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      // A folder of its own making (about 0.5 GB at 100,000 accounts) goes when the run ends,
      // however it ends; one given with --dir is kept for a look at the databases.
      defer { if dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
      var result = Result()
      result.accounts = accounts
      result.synchronous = sync.rawValue
      result.writeLock = !noWriteLock
      var discipline = WriteDiscipline()
      discipline.lock = !noWriteLock
      discipline.checkpointAfterPages = max(0, walAutocheckpoint)

      // Baseline: plain single-row inserts, 1,000 per transaction, same settings.
      let baseline = try Connection(
        path: folder + "/baseline.db",
        options: {
          var o = ConnectionOptions()
          o.synchronous = sync
          o.discipline = discipline
          return o
        }())
      try baseline.enableWAL()
      try baseline.execute(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, amount_minor INTEGER NOT NULL, note TEXT NOT NULL) STRICT"
      )
      let b0 = ContinuousClock.now
      var row = 0
      while row < baselineRows {
        try baseline.write { db in
          for _ in 0..<1000 {
            try db.run("INSERT INTO t (account, amount_minor, note) VALUES (?, ?, ?)", row % 977, 1900, "charge")
            row += 1
          }
        }
      }
      result.baselineInsertsPerSecond = Double(row) / seconds(ContinuousClock.now - b0)

      let start = Instant(try CivilDate(iso8601: "2026-11-02"), hour: 9)
      let clock = ManualClock(start)
      let store = try LedgerStore.open(
        path: folder + "/ledger.db", access: .readWrite, clock: clock, synchronous: sync, discipline: discipline)
      var config = LedgerConfig()
      config.batchSize = max(1, batchSize)
      let billing = Billing(store: store, config: config.dunning)
      var actions: [Int: [() throws -> Void]] = [:]
      let t0 = ContinuousClock.now
      let processor = try SimulatedProcessor(
        path: folder + "/processor.db", slowMilliseconds: 0, timeoutMilliseconds: 0, clock: clock,
        discipline: discipline)
      let scheduler = Scheduler(
        store: store, processor: processor, config: config.dunning,
        logger: makeLogger("ledgerd.benchmark", level: .error))
      config.maxInFlight = max(1, maxInFlight)
      config.maxRequestsPerSecond = maxRequestsPerSecond
      config.configure(scheduler)
      await processor.setNetwork(network)
      await processor.setRateLimit(perSecond: maxRequestsPerSecond)
      try store.write {
        try buildDemoBook(billing, accounts: accounts, start: start, actions: &actions)
        try scheduler.issueDueRenewals()
      }
      result.buildSeconds = seconds(ContinuousClock.now - t0)
      result.invoices = Int(try store.db.scalarInt("SELECT count(*) FROM invoices") ?? 0)
      // With --statements, every statement run of the month is traced: its runs, SQLite VM
      // steps and time, by SQL text.
      let costs = StatementCosts()
      if statements { store.db.trace(costs.add) }
      let m0 = ContinuousClock.now
      let cpu0 = cpuSeconds()
      let waited0 = store.db.writeLockWaited
      let checkpoints0 = store.db.checkpointsMade
      let report = try await runDemoMonth(scheduler, clock: clock, start: start, days: days, actions: actions)
      result.monthSeconds = seconds(ContinuousClock.now - m0)
      result.monthCPUSeconds = cpuSeconds() - cpu0
      result.monthLockWaitSeconds = seconds(store.db.writeLockWaited - waited0)
      store.db.trace(nil)
      store.db.waitForCheckpoints()
      let checkpoints = store.db.checkpointsMade
      result.checkpointsBesideWriter = checkpoints.besideWriters - checkpoints0.besideWriters
      result.checkpointsUnderLock = checkpoints.underLock - checkpoints0.underLock
      result.checkpointsFailed = checkpoints.failed - checkpoints0.failed
      result.chargeAttempts = report.attempts
      result.attemptsPerSecond = Double(report.attempts) / result.monthSeconds
      result.attemptsPerBaselineInsert = result.attemptsPerSecond / result.baselineInsertsPerSecond
      result.peakMemoryMB = peakMemoryMB()
      let share = Double(network.timeoutsPerTenThousand) / 10_000
      result.meanCallSeconds = (1 - share) * seconds(network.latency) + share * seconds(network.timeout)
      if result.meanCallSeconds > 0 {
        result.littlesLawLimit = min(
          Double(config.maxInFlight) / result.meanCallSeconds, Double(maxRequestsPerSecond ?? Int.max))
        result.busiestPassCalls = report.busiestPassCalls
        result.busiestPassSeconds = report.busiestPassSeconds
        result.busiestPassCallsPerSecond = Double(report.busiestPassCalls) / max(report.busiestPassSeconds, 0.001)
        result.efficiency = result.busiestPassCallsPerSecond / result.littlesLawLimit
      }
      result.checkFindings = try store.check().findings.count
      let r = result
      try output.emit(r) {
        """
        benchmark: \(r.accounts) accounts, \(r.invoices) invoices, \(days) days, synchronous=\(r.synchronous), write lock \(r.writeLock ? "on" : "OFF") (\(dir == nil ? "in a temporary folder, removed at the end" : "in \(folder)"))
          book built in             \(String(format: "%.1f", r.buildSeconds)) s (not timed below)
          dunning month             \(String(format: "%.1f", r.monthSeconds)) s, \(r.chargeAttempts) charge attempts
          charge attempts/s         \(String(format: "%.0f", r.attemptsPerSecond))
          CPU time of the month     \(String(format: "%.1f", r.monthCPUSeconds)) s (user + system), \(String(format: "%.0f", Double(r.chargeAttempts) / max(r.monthCPUSeconds, 0.001))) attempts per CPU second
          waits for the write lock  \(String(format: "%.1f", r.monthLockWaitSeconds)) s (writes held off by checkpoints)
          checkpoints               \(r.checkpointsBesideWriter) copies beside the writer, \(r.checkpointsUnderLock) under the lock throughout\(r.checkpointsFailed > 0 ? ", \(r.checkpointsFailed) FAILED (last: \(checkpoints.lastFailure ?? "?"))" : "")
          baseline inserts/s        \(String(format: "%.0f", r.baselineInsertsPerSecond)) (single-row INSERT, 1,000 per transaction)
          ratio                     \(String(format: "%.3f", r.attemptsPerBaselineInsert)) attempts per baseline insert
          peak memory               \(String(format: "%.0f", r.peakMemoryMB)) MB (max RSS)
          ledger check              \(r.checkFindings == 0 ? "ok" : "\(r.checkFindings) finding(s)")
        """
          + (r.meanCallSeconds > 0
            ? """

              processor                 \(network.latency) ± \(network.jitter) per call, \(timeouts) of calls unanswered after \(network.timeout), \(config.maxInFlight) in flight\(maxRequestsPerSecond.map { ", at most \($0) calls/s" } ?? "")
              busiest pass              \(r.busiestPassCalls) calls in \(String(format: "%.1f", r.busiestPassSeconds)) s = \(String(format: "%.1f", r.busiestPassCallsPerSecond)) calls/s
              Little's-law limit        \(String(format: "%.1f", r.littlesLawLimit)) calls/s (\(config.maxInFlight) in flight ÷ \(String(format: "%.3f", r.meanCallSeconds)) s mean call\(maxRequestsPerSecond.map { ", or \($0)/s if lower" } ?? ""))
              efficiency                \(String(format: "%.1f", r.efficiency * 100)) % of the limit
            """ : "")
      }
      if statements {
        let attempts = Double(max(1, r.chargeAttempts))
        let all = costs.bySQL.map {
          (sql: $0.key.split(whereSeparator: \.isWhitespace).joined(separator: " "), cost: $0.value)
        }
        let runs = all.reduce(0) { $0 + $1.cost.runs }
        print(
          "statements of the month by SQLite VM steps (per charge attempt; \(all.count) statements, \(String(format: "%.1f", Double(runs) / attempts)) runs per attempt in all):"
        )
        for s in all.sorted(by: { $0.cost.vmSteps > $1.cost.vmSteps }).prefix(40) {
          print(
            String(
              format: "  %9.2f runs %9.1f steps  ", Double(s.cost.runs) / attempts, Double(s.cost.vmSteps) / attempts)
              + String(s.sql.prefix(110)))
        }
        let totalTime = Double(all.reduce(0) { $0 + $1.cost.nanoseconds }) / 1e9
        print(
          "statements of the month by time in SQLite (\(String(format: "%.1f", totalTime)) s in all; µs per charge attempt):"
        )
        for s in all.sorted(by: { $0.cost.nanoseconds > $1.cost.nanoseconds }).prefix(40) {
          print(String(format: "  %9.2f µs  ", Double(s.cost.nanoseconds) / 1e3 / attempts) + String(s.sql.prefix(110)))
        }
      }
    }
  }
}

/// What the month's statement runs cost, by SQL text (`--statements`), from the trace the
/// benchmark installs on the ledger's connection.
final class StatementCosts {
  struct Cost {
    var runs = 0
    var vmSteps = 0
    var nanoseconds: Int64 = 0
  }
  private(set) var bySQL: [String: Cost] = [:]

  func add(_ run: StatementRun) {
    bySQL[run.sql, default: Cost()].runs += 1
    bySQL[run.sql, default: Cost()].vmSteps += run.vmSteps
    bySQL[run.sql, default: Cost()].nanoseconds += run.nanoseconds
  }
}
