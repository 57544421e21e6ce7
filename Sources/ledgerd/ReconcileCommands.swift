import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerStore

struct ReconcileCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reconcile",
    abstract: "Make the ledger agree with the bank and the processor: statements, settlement reports, unmatched lines.",
    discussion: "Exit status: 0 everything matched; 1 findings (unmatched lines, mismatches); 65 the file was refused (nothing imported).",
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
                String($0.id), $0.bookingDate ?? "-", $0.amount.description, $0.direction.rawValue + ($0.isReversal ? " (reversal)" : ""),
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
                $0.direction.rawValue + ($0.isReversal ? " (reversal)" : ""), $0.status.rawValue, $0.reference ?? $0.remittance ?? "-",
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
        camt.053 XML and bank CSV go through `reconcile bank`, a CSV with a balance_transaction_id
        column through `reconcile processor`. A file whose import committed moves to the archive;
        a refused file moves to <archive>/rejected with a .error file beside it (it is not retried);
        a file that failed for another reason (the database busy, a crash) stays for the next run.
        Exit status: 65 if a file was refused, 70 if one failed, else 1 if there were findings, else 0.
        """)
    @Option(help: "The directory files are dropped into.") var inbox: String
    @Option(help: "Where imported files are moved.") var archive: String
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

    func run() throws {
      try runGuarded {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: inbox, isDirectory: &isDirectory), isDirectory.boolValue else {
          throw InputError(field: "--inbox", rule: "\(inbox) is not a directory")
        }
        let billing = try database.billing()
        let reconciler = Reconciler(store: billing.store, config: billing.config)
        let rejected = (archive as NSString).appendingPathComponent("rejected")
        try fm.createDirectory(atPath: archive, withIntermediateDirectories: true)
        let names = try fm.contentsOfDirectory(atPath: inbox).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".part") }.sorted()
        var results: [FileResult] = []
        for name in names {
          let path = (inbox as NSString).appendingPathComponent(name)
          var isDirectory: ObjCBool = false
          guard fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
          var kind: Reconciler.FileKind?
          do {
            kind = try Reconciler.detect(path: path)
            var bank: BankImportReport?
            var processor: ProcessorImportReport?
            if kind == .processorCSV {
              processor = try reconciler.importProcessorReport(path: path)
            } else {
              bank = try reconciler.importBank(path: path)
            }
            let moved = try move(path, to: archive)
            results.append(
              FileResult(
                file: name, kind: kind?.rawValue, outcome: "imported", findings: bank?.findingsTotal ?? processor?.findingsTotal ?? 0,
                error: nil, movedTo: moved, bank: bank, processor: processor))
          } catch {
            let (message, code) = describe(error)
            if code == Exit.input {
              try fm.createDirectory(atPath: rejected, withIntermediateDirectories: true)
              let moved = try move(path, to: rejected)
              try Data("ledgerd: error: \(message)\n".utf8).write(to: URL(fileURLWithPath: moved + ".error"))
              results.append(FileResult(file: name, kind: kind?.rawValue, outcome: "rejected", findings: 0, error: message, movedTo: moved, bank: nil, processor: nil))
            } else {
              results.append(FileResult(file: name, kind: kind?.rawValue, outcome: "failed", findings: 0, error: message, movedTo: nil, bank: nil, processor: nil))
            }
            FileHandle.standardError.write(Data("ledgerd: error: \(name): \(message)\n".utf8))
          }
        }
        try output.emit(results) {
          guard !results.isEmpty else { return "inbox \(inbox): no files" }
          return results.map { r in
            switch r.outcome {
            case "imported":
              let body = r.bank.map(bankText) ?? r.processor.map(processorText) ?? ""
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
      + (r.received.isEmpty ? "" : ": " + r.received.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key) to invoices" }.joined(separator: ", "))
      + (r.credit.values.allSatisfy { Int($0.filter(\.isNumber)) == 0 } ? "" : ", " + r.credit.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key) to account credit" }.joined(separator: ", ")),
  ]
  if r.ok {
    lines.append("everything matched")
  } else {
    lines.append("findings (\(r.findingsTotal)):")
    lines += r.findings.map { "  line \($0.lineID.map(String.init) ?? "-")  \($0.kind)  \($0.amount?.description ?? "")  \($0.detail)" }
    if r.findingsTotal > r.findings.count { lines.append("  … and \(r.findingsTotal - r.findings.count) more (`ledgerd reconcile unmatched`)") }
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
    "  other rows (payouts, …)      \(r.other)",
    "  fees posted                  " + (r.fees.isEmpty ? "none" : r.fees.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")),
  ]
  if r.ok {
    lines.append("everything matched")
  } else {
    lines.append("findings (\(r.findingsTotal)):")
    lines += r.findings.map { "  \($0.kind)  \($0.reference ?? "-")  \($0.amount?.description ?? "")  \($0.detail)" }
  }
  return lines.joined(separator: "\n")
}
