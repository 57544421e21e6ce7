import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerStore

struct ReconcileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reconcile",
    abstract: "Make the ledger agree with the bank and the processor: statements, settlement reports, unmatched lines.",
    discussion:
      "Exit status: 0 everything matched; 1 findings (unmatched lines, mismatches); 65 the file was refused (nothing imported).",
    subcommands: [Bank.self, Processor.self, Unmatched.self, Assign.self, Dismiss.self, Parse.self, Inbox.self])

  struct Bank: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Import a bank statement (camt.053 v02 to v08, or the bank CSV) and match its credits to invoices.")
    @Argument(help: "The statement file.") var file: String
    @Option(
      help: ArgumentHelp(
        "Commit every N lines, after a first pass that checks the whole file (default: one transaction; files over 64 MB: 10000).",
        valueName: "N")) var commitEvery: Int?
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
      if let commitEvery, commitEvery < 1 { throw ValidationError("--commit-every must be at least 1") }
    }

    func run() throws {
      try runGuarded {
        crashIfTestHookNames(file)
        let billing = try database.billing()
        var reconciler = Reconciler(store: billing.store, config: billing.config)
        reconciler.commitEvery = commitEvery
        let report = try reconciler.importBank(path: file)
        try output.emit(report) { bankText(report) }
        if !report.ok { throw ExitCode(Exit.findings) }
      }
    }
  }

  struct Processor: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Compare the processor's settlement report (CSV) with the charge attempts; post its fees.")
    @Argument(help: "The report file.") var file: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        crashIfTestHookNames(file)
        let billing = try database.billing()
        let report = try Reconciler(store: billing.store, config: billing.config).importProcessorReport(path: file)
        try output.emit(report) { processorText(report) }
        if !report.ok { throw ExitCode(Exit.findings) }
      }
    }
  }

  struct Unmatched: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bank lines waiting for staff: assign or dismiss them.")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let store = try database.open(.readOnly)
        let lines = try store.read { try store.unmatchedBankLines() }
        try output.emit(lines) {
          guard !lines.isEmpty else { return "no unmatched bank lines" }
          return table(
            ["LINE", "BOOKED", "AMOUNT", "DIR", "COUNTERPARTY", "REMITTANCE", "NOTE"],
            lines.map {
              [
                String($0.id), $0.bookingDate ?? "-", $0.amount.description,
                $0.direction.rawValue + ($0.isReversal ? " (reversal)" : ""),
                $0.counterpartyName ?? "-", String(($0.reference ?? $0.remittance ?? "-").prefix(40)), $0.note ?? "",
              ]
            })
        }
      }
    }
  }

  struct Assign: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Record an unmatched credit line as a payment of an invoice (the payer is remembered for next time).")
    @Argument(help: "The bank line's id (see `reconcile unmatched`).") var line: String
    @Argument(help: "The invoice's number or id.") var invoice: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    struct Result: Encodable {
      let line: StoredBankLine
      let payment: PaymentRecord
    }

    func run() throws {
      try runGuarded {
        let id = try parseID(line, field: "LINE")
        let billing = try database.billing()
        let (stored, record) = try Reconciler(store: billing.store, config: billing.config).assign(
          lineID: id, invoice: invoice, actor: try actor.resolve())
        try output.emit(Result(line: stored, payment: record)) {
          "bank line \(id) (\(stored.amount)) recorded as payment \(record.paymentID) on \(stored.invoice ?? invoice)"
            + (record.paidInvoices.isEmpty ? "" : "; paid \(record.paidInvoices.joined(separator: ", "))")
            + (record.credit.minorUnits > 0 ? "; \(record.credit) kept as account credit" : "")
            + (stored.note.map { " (\($0))" } ?? "")
        }
      }
    }
  }

  struct Dismiss: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set an unmatched bank line aside, with the reason.")
    @Argument(help: "The bank line's id.") var line: String
    @Option(help: "Why (a bank fee, refunded to the sender, …).") var reason: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let id = try parseID(line, field: "LINE")
        let reason = try Validate.text(reason, field: "--reason")
        let store = try database.open(.readWrite)
        let stored = try store.dismissBankLine(id, reason: reason, actor: try actor.resolve())
        try output.emit(stored) { "bank line \(id) (\(stored.amount)) dismissed: \(reason)" }
      }
    }
  }

  struct Parse: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print the lines ledgerd reads from a bank statement, without touching any ledger.")
    @Argument(help: "The statement file.") var file: String
    @OptionGroup var output: OutputOptions

    struct Parsed: Encodable {
      let format: String
      let version: String?
      let lines: [BankLine]
    }

    func run() throws {
      try runGuarded {
        let kind = try Reconciler.detect(path: file)
        var lines: [BankLine] = []
        let version = try Reconciler.readBankFile(path: file, kind: kind) { lines.append($0) }
        let parsed = Parsed(format: kind.rawValue, version: version, lines: lines)
        try output.emit(parsed) {
          table(
            ["KEY", "BOOKED", "VALUE", "AMOUNT", "DIR", "STATUS", "REFERENCE"],
            lines.map {
              [
                $0.lineKey, $0.bookingDate ?? "-", $0.valueDate ?? "-", $0.amount.description,
                $0.direction.rawValue + ($0.isReversal ? " (reversal)" : ""), $0.status.rawValue,
                $0.reference ?? $0.remittance ?? "-",
              ]
            })
        }
      }
    }
  }

  struct Inbox: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The nightly job: import every file in the inbox by kind, then move it to the archive.",
      discussion: """
        camt.053 XML and bank CSV go through `reconcile bank`, a CSV with a balance_transaction_id \
        column through `reconcile processor`, each file in a child process (this binary, with the \
        same --db, --config and --lock-timeout), so that nothing one file does, not even a crash \
        of its reader, stops the others. A file whose import committed (the child exited 0 or 1) \
        moves to the archive; a refused file (65), or one whose reader crashed (killed by SIGSEGV, \
        SIGILL, SIGABRT…), moves to <archive>/rejected with a .error file beside it (it is not \
        retried); a file that failed for another reason (the database busy, an I/O error, the \
        child stopped by SIGTERM or SIGKILL) stays for the next run. A file whose import is still \
        running after --file-timeout seconds is stopped (SIGKILL) and refused like a crash, so that \
        a file that hangs its reader cannot hang every night's job. \
        Exit status: 65 if a file was refused, 70 if one failed, else 1 if there were findings, else 0.
        """)
    @Option(help: "The directory files are dropped into.") var inbox: String
    @Option(help: "Where imported files are moved.") var archive: String
    @Option(help: "Seconds one file's import may take before it is stopped and the file refused (default 3600).")
    var fileTimeout: Double = 3600
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    struct FileResult: Encodable {
      let file: String
      let kind: String?
      /// imported, rejected, failed
      let outcome: String
      let findings: Int
      let error: String?
      let movedTo: String?
      let bank: BankImportReport?
      let processor: ProcessorImportReport?
    }

    /// How one child import ended.
    struct ChildRun {
      let status: Int32
      /// Killed by this signal rather than exiting.
      let signal: Int32?
      /// Stopped by this command after `--file-timeout` seconds.
      var timedOut = false
      let stdout: Data
      let stderr: String
    }

    /// Signals that mean the child crashed (its reader trapped or faulted) rather than being
    /// stopped from outside: the file is rejected, not retried every night.
    static let crashSignals: Set<Int32> = [SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGSYS]

    func run() throws {
      try runGuarded {
        guard fileTimeout > 0, fileTimeout <= 86_400 else {
          throw InputError(
            field: "--file-timeout", rule: "\(formatSeconds(fileTimeout)) must be more than 0 and at most 86400 seconds"
          )
        }
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: inbox, isDirectory: &isDirectory), isDirectory.boolValue else {
          throw InputError(field: "--inbox", rule: "\(inbox) is not a directory")
        }
        // The ledger and the configuration are checked here, once: a bad --config would
        // otherwise make every child exit 65 and every file be rejected.
        _ = try database.billing()
        let rejected = (archive as NSString).appendingPathComponent("rejected")
        try fm.createDirectory(atPath: archive, withIntermediateDirectories: true)
        // Processor reports first, then statements, each in name order: a payout the report
        // posts is then matched by the statement that shows it arriving, in the same run.
        let all = try fm.contentsOfDirectory(atPath: inbox).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".part") }
          .sorted()
        let isReport = Dictionary(
          uniqueKeysWithValues: all.map {
            ($0, (try? Reconciler.detect(path: (inbox as NSString).appendingPathComponent($0))) == .processorCSV)
          })
        let names = all.filter { isReport[$0] == true } + all.filter { isReport[$0] != true }
        var results: [FileResult] = []
        for name in names {
          let path = (inbox as NSString).appendingPathComponent(name)
          var isDirectory: ObjCBool = false
          guard fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
          var kind: Reconciler.FileKind?
          do {
            let detected = try Reconciler.detect(path: path)
            kind = detected
            let child = try importInChild(path, kind: detected)
            if child.signal == nil, child.status == 0 || child.status == Exit.findings {
              let decoder = JSONDecoder()
              decoder.keyDecodingStrategy = .convertFromSnakeCase
              var bank: BankImportReport?
              var processor: ProcessorImportReport?
              var note: String?
              do {
                if detected == .processorCSV {
                  processor = try decoder.decode(ProcessorImportReport.self, from: child.stdout)
                } else {
                  bank = try decoder.decode(BankImportReport.self, from: child.stdout)
                }
              } catch {
                // The import committed (the child said so); only its report is lost.
                note = "imported (exit \(child.status)), but its report could not be read: \(error)"
              }
              let moved = try move(path, to: archive)
              let findings = bank?.findingsTotal ?? processor?.findingsTotal ?? (child.status == Exit.findings ? 1 : 0)
              results.append(
                FileResult(
                  file: name, kind: detected.rawValue, outcome: "imported", findings: findings, error: note,
                  movedTo: moved, bank: bank,
                  processor: processor))
              continue
            }
            let message: String
            let reject: Bool
            if child.timedOut {
              reject = true
              message =
                "the import did not finish within \(formatSeconds(fileTimeout)) s (--file-timeout) and was stopped; "
                + "\(nothingImported(path)); it is not retried: inspect the file, or import it by hand with "
                + "`ledgerd reconcile \(detected == .processorCSV ? "processor" : "bank")` and a longer wait"
            } else if let signal = child.signal {
              reject = Self.crashSignals.contains(signal)
              message =
                reject
                ? "the reader crashed on this file (killed by signal \(signal)); \(nothingImported(path)); it is not retried: "
                  + "inspect or repair it and drop it in the inbox again"
                : "the import was stopped by signal \(signal) (the job being stopped, the kernel's OOM killer…); "
                  + "\(nothingImported(path)); the file is left for the next run"
            } else {
              reject = child.status == Exit.input
              let said = child.stderr.split(separator: "\n").map { String($0) }
                .map { $0.hasPrefix("ledgerd: error: ") ? String($0.dropFirst("ledgerd: error: ".count)) : $0 }
                .joined(separator: "; ")
              message = said.isEmpty ? "the import exited with status \(child.status)" : said
            }
            if reject {
              try fm.createDirectory(atPath: rejected, withIntermediateDirectories: true)
              let moved = try move(path, to: rejected)
              // The child's own words; after a crash or a timeout, ours first, then what it printed.
              var text =
                child.signal == nil && !child.timedOut && !child.stderr.isEmpty
                ? child.stderr : "ledgerd: error: \(message)\n"
              if child.signal != nil, !child.stderr.isEmpty {
                text += "--- what the crashed import printed ---\n" + child.stderr.suffix(64 * 1024)
              }
              try Data(text.utf8).write(to: URL(fileURLWithPath: moved + ".error"))
              results.append(
                FileResult(
                  file: name, kind: detected.rawValue, outcome: "rejected", findings: 0, error: message, movedTo: moved,
                  bank: nil,
                  processor: nil))
            } else {
              results.append(
                FileResult(
                  file: name, kind: detected.rawValue, outcome: "failed", findings: 0, error: message, movedTo: nil,
                  bank: nil,
                  processor: nil))
            }
            FileHandle.standardError.write(Data("ledgerd: error: \(name): \(message)\n".utf8))
          } catch {
            // The file could not be read to find its kind (an empty file is refused), or moved.
            let (message, code) = describe(error)
            if code == Exit.input {
              try fm.createDirectory(atPath: rejected, withIntermediateDirectories: true)
              let moved = try move(path, to: rejected)
              try Data("ledgerd: error: \(message)\n".utf8).write(to: URL(fileURLWithPath: moved + ".error"))
              results.append(
                FileResult(
                  file: name, kind: kind?.rawValue, outcome: "rejected", findings: 0, error: message, movedTo: moved,
                  bank: nil, processor: nil))
            } else {
              results.append(
                FileResult(
                  file: name, kind: kind?.rawValue, outcome: "failed", findings: 0, error: message, movedTo: nil,
                  bank: nil, processor: nil))
            }
            FileHandle.standardError.write(Data("ledgerd: error: \(name): \(message)\n".utf8))
          }
        }
        try output.emit(results) {
          guard !results.isEmpty else { return "inbox \(inbox): no files" }
          return results.map { r in
            switch r.outcome {
            case "imported":
              let body = r.bank.map(bankText) ?? r.processor.map(processorText) ?? r.error ?? ""
              return "\(r.file): imported, moved to \(r.movedTo ?? "?")\n" + body
            case "rejected": return "\(r.file): REFUSED, moved to \(r.movedTo ?? "?"): \(r.error ?? "")"
            default: return "\(r.file): FAILED, left in the inbox for the next run: \(r.error ?? "")"
            }
          }.joined(separator: "\n")
        }
        if results.contains(where: { $0.outcome == "rejected" }) { throw ExitCode(Exit.input) }
        if results.contains(where: { $0.outcome == "failed" }) { throw ExitCode(Exit.software) }
        if results.contains(where: { $0.findings > 0 }) { throw ExitCode(Exit.findings) }
      }
    }

    /// What a crashed or stopped child left in the ledger: an import is one transaction, so
    /// nothing, unless the file was over the batching threshold (64 MB), where a checking pass
    /// reads the whole file before the first commit (a reader that crashes on the file crashes
    /// there) and the batches committed before a later stop stay (a re-import resumes by line keys).
    func nothingImported(_ path: String) -> String {
      let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
      guard size > Reconciler.defaultBatchAboveBytes else {
        return "nothing was imported (an import is one transaction)"
      }
      return
        "the file is over \(Reconciler.defaultBatchAboveBytes / 1_000_000) MB, so its import is committed in batches after "
        + "a checking pass: nothing was imported if it stopped during that pass, else the batches committed before it stay "
        + "(each line once; importing the file again resumes by line keys)"
    }

    /// Runs `ledgerd reconcile bank|processor FILE --json` with this command's database,
    /// configuration and lock timeout (the environment is inherited) and waits for it.
    func importInChild(_ path: String, kind: Reconciler.FileKind) throws -> ChildRun {
      let fm = FileManager.default
      // The running binary itself: /proc/self/exe names it even if it was replaced meanwhile.
      let executable = fm.isExecutableFile(atPath: "/proc/self/exe") ? "/proc/self/exe" : Self.executablePath()
      var arguments = [
        "reconcile", kind == .processorCSV ? "processor" : "bank", path, "--json", "--db", database.path,
      ]
      if let config = database.config { arguments += ["--config", config] }
      if let timeout = database.lockTimeout { arguments += ["--lock-timeout", String(timeout)] }
      let scratch = NSTemporaryDirectory() + "ledgerd-inbox-\(getpid())-\(UUID().uuidString)"
      let outPath = scratch + ".out"
      let errPath = scratch + ".err"
      guard fm.createFile(atPath: outPath, contents: nil, attributes: [.posixPermissions: 0o600]),
        fm.createFile(atPath: errPath, contents: nil, attributes: [.posixPermissions: 0o600])
      else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: scratch]) }
      defer {
        try? fm.removeItem(atPath: outPath)
        try? fm.removeItem(atPath: errPath)
      }
      let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
      let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
      let process = Process()
      process.executableURL = URL(fileURLWithPath: executable)
      process.arguments = arguments
      process.standardInput = FileHandle.nullDevice
      process.standardOutput = out
      process.standardError = err
      try process.run()
      // Waits at most `fileTimeout` seconds, then kills it: a reader that hangs on a file
      // stops only that file.
      let deadline = Date().addingTimeInterval(fileTimeout)
      var timedOut = false
      while process.isRunning {
        if Date() >= deadline {
          kill(process.processIdentifier, SIGKILL)
          timedOut = true
          break
        }
        usleep(20_000)
      }
      process.waitUntilExit()
      try? out.close()
      try? err.close()
      let signaled = process.terminationReason == .uncaughtSignal
      return ChildRun(
        status: process.terminationStatus, signal: signaled ? process.terminationStatus : nil, timedOut: timedOut,
        stdout: fm.contents(atPath: outPath) ?? Data(),
        stderr: String(decoding: fm.contents(atPath: errPath) ?? Data(), as: UTF8.self))
    }

    /// This binary's path when /proc is not there: argv[0], made absolute.
    static func executablePath() -> String {
      let argv0 = CommandLine.arguments[0]
      if argv0.hasPrefix("/") { return argv0 }
      if argv0.contains("/") { return FileManager.default.currentDirectoryPath + "/" + argv0 }
      let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":")
      return paths.map { "\($0)/\(argv0)" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? argv0
    }

    /// Moves a file into `directory`, never over another file.
    func move(_ path: String, to directory: String) throws -> String {
      let fm = FileManager.default
      let name = (path as NSString).lastPathComponent
      var destination = (directory as NSString).appendingPathComponent(name)
      var n = 1
      while fm.fileExists(atPath: destination) {
        n += 1
        destination = (directory as NSString).appendingPathComponent("\(name).\(n)")
      }
      try fm.moveItem(atPath: path, toPath: destination)
      return destination
    }
  }
}

/// Test hooks, for the inbox's handling of a bad reader only: when `$LEDGERD_TEST_CRASH_ON_FILE`
/// names a file's base name, `reconcile bank` and `reconcile processor` abort (SIGABRT) on it
/// before reading it, as a reader crashing on a hostile file would; when
/// `$LEDGERD_TEST_HANG_ON_FILE` names it, they hang on it. Unset in production.
func crashIfTestHookNames(_ file: String) {
  let env = ProcessInfo.processInfo.environment
  let base = (file as NSString).lastPathComponent
  if let name = env["LEDGERD_TEST_CRASH_ON_FILE"], !name.isEmpty, name == base { abort() }
  if let name = env["LEDGERD_TEST_HANG_ON_FILE"], !name.isEmpty, name == base {
    while true { sleep(3600) }
  }
}

/// Seconds as people write them: 3600, 2.5.
func formatSeconds(_ seconds: Double) -> String {
  seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int64(seconds)) : String(seconds)
}

func bankText(_ r: BankImportReport) -> String {
  var lines = [
    "\(r.file): \(r.version ?? r.format), \(r.linesRead) lines read: \(r.newLines) new, \(r.alreadyImported) already imported",
    "  matched by reference   \(r.matchedByReference)",
    "  matched by payer       \(r.matchedByPayer)",
    "  pending (not booked)   \(r.pending)",
    "  unmatched credits      \(r.unmatched)",
    "  debits                 \(r.debits)",
    "  reversals              \(r.reversals)",
    "  payments recorded      \(r.paymentsRecorded)"
      + (r.received.isEmpty
        ? ""
        : ": "
          + r.received.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key) to invoices" }.joined(separator: ", "))
      + (r.credit.values.allSatisfy { Int($0.filter(\.isNumber)) == 0 }
        ? ""
        : ", "
          + r.credit.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key) to account credit" }.joined(
            separator: ", ")),
  ]
  if r.matchedRecordedPayments > 0 {
    lines.insert("  matched to payments recorded by hand \(r.matchedRecordedPayments) (not booked again)", at: 3)
  }
  if r.matchedPayouts > 0 {
    lines.insert("  processor payouts arrived \(r.matchedPayouts)", at: 3)
  }
  if r.ok {
    lines.append("everything matched")
  } else {
    lines.append("findings (\(r.findingsTotal)):")
    lines += r.findings.map {
      "  line \($0.lineID.map(String.init) ?? "-")  \($0.kind)  \($0.amount?.description ?? "")  \($0.detail)"
    }
    if r.findingsTotal > r.findings.count {
      lines.append("  … and \(r.findingsTotal - r.findings.count) more (`ledgerd reconcile unmatched`)")
    }
  }
  return lines.joined(separator: "\n")
}

func processorText(_ r: ProcessorImportReport) -> String {
  var lines = [
    "\(r.file): \(r.rowsRead) rows read: \(r.newRows) new, \(r.alreadyImported) already imported",
    "  charges matched              \(r.matched)",
    "  settled, recorded now        \(r.recorded)",
    "  amount/currency mismatches   \(r.mismatched)",
    "  unknown to the ledger        \(r.unknown)",
    "  ledger successes not in it   \(r.missingFromReport)",
    "  charges settled twice        \(r.duplicates)",
    "  refunds, disputes… on charges \(r.adjustments)",
    "  payouts posted               \(r.payouts)"
      + (r.paidOut.isEmpty
        ? "" : ": " + r.paidOut.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")),
    "  payouts failed, reversed     \(r.payoutReversals)",
    "  payouts found on statements  \(r.payoutsMatchedOnStatements)",
    "  processor's own fees         \(r.feeRows)",
    "  balance changes not posted   \(r.unposted)",
    "  other rows (kept)            \(r.other)",
    "  fees posted                  "
      + (r.fees.isEmpty
        ? "none" : r.fees.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")),
  ]
  if r.ok {
    lines.append("everything matched")
  } else {
    lines.append("findings (\(r.findingsTotal)):")
    lines += r.findings.map { "  \($0.kind)  \($0.reference ?? "-")  \($0.amount?.description ?? "")  \($0.detail)" }
  }
  return lines.joined(separator: "\n")
}
