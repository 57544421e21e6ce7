import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerStore

/// Times the nightly bank import on a generated statement: a camt.053 file of N entries
/// (a quarter of the paying ones quote their reference exactly, a quarter sloppily, a
/// quarter without the RF, a quarter not at all but from a known payer with the exact
/// amount; the rest are unknown payers, bank debits and pending entries), imported and
/// matched in one run with its peak memory.
struct BenchmarkReconcile: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "benchmark-reconcile",
    abstract: "Generate a camt.053 statement of N entries, import and match it, and print the time and peak memory.")
  @Option(help: "Entries in the statement.") var entries: Int = 1_000_000
  @Option(help: "Open transfer invoices (one account each) the statement pays; at most --entries.") var invoices: Int =
    100_000
  @Option(help: "camt.053 version of the file, 2 to 8.") var version: Int = 8
  @Flag(help: "Import in one transaction even above 64 MB (no checking pass, no intermediate commits).")
  var oneTransaction = false
  @Flag(help: "Keep the generated ledger and statement (printed) instead of deleting them.") var keep = false
  @OptionGroup var output: OutputOptions

  struct Result: Encodable {
    var entries = 0
    var invoices = 0
    var fileMB = 0.0
    var bookSeconds = 0.0
    var generateSeconds = 0.0
    var importSeconds = 0.0
    /// CPU time (user + system) of the import: steadier than wall time on a shared machine.
    var importCPUSeconds = 0.0
    var commitEvery: Int?
    var entriesPerSecond = 0.0
    var matchedByReference = 0
    var matchedByPayer = 0
    var unmatched = 0
    var debits = 0
    var pending = 0
    var peakMemoryMB = 0.0
    var checkFindings = 0
    var folder = ""
  }

  func validate() throws {
    guard entries > 0, invoices >= 0, invoices <= entries else {
      throw ValidationError("--entries must be positive and --invoices between 0 and --entries")
    }
    guard (2...8).contains(version) else { throw ValidationError("--version must be 2 to 8") }
  }

  func run() throws {
    try runGuarded {
      let folder = NSTemporaryDirectory() + "ledgerd-benchmark-reconcile-\(UUID().uuidString)"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      defer { if !keep { try? FileManager.default.removeItem(atPath: folder) } }
      var r = Result()
      r.entries = entries
      r.invoices = invoices
      r.folder = folder
      let clock = try SystemClock.fromEnvironment()
      let store = try LedgerStore.open(path: folder + "/ledger.db", access: .readWrite, clock: clock)
      let config = LedgerConfig().dunning

      // The book: one account and one open transfer invoice per paying entry (not timed).
      var start = ContinuousClock.now
      var book: [(name: String, reference: String, amount: Money)] = []
      book.reserveCapacity(invoices)
      let today = clock.now().date
      try store.write {
        for i in 0..<invoices {
          let name = "Customer \(i)"
          let account = try store.addAccount(
            email: "c\(i)@example.com", name: name, locale: .en, planCode: "free", actor: .system)
          let amount = Money(minorUnits: Int64(1_000 + i % 9_000), currency: .eur)
          let invoice = try store.issueInvoice(
            try InvoiceDraft(
              accountID: account.id, currency: .eur,
              lines: [InvoiceLineDraft(description: "Services", unitAmount: amount)], issueDate: today,
              dueDate: today.adding(days: 14), method: .transfer), actor: .system)
          book.append((name, invoice.paymentReference ?? "", amount))
        }
      }
      r.bookSeconds = seconds(ContinuousClock.now - start)

      // The statement, written in 1 MB chunks.
      start = ContinuousClock.now
      let file = folder + "/statement.xml"
      try writeStatement(file, book: book, today: today)
      r.fileMB = Double((try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0) / 1_000_000
      r.generateSeconds = seconds(ContinuousClock.now - start)

      start = ContinuousClock.now
      let cpuBefore = cpuSeconds()
      var reconciler = Reconciler(store: store, config: config)
      if oneTransaction { reconciler.batchAboveBytes = .max }
      let report = try reconciler.importBank(path: file)
      r.importSeconds = seconds(ContinuousClock.now - start)
      r.importCPUSeconds = cpuSeconds() - cpuBefore
      r.commitEvery = report.commitEvery
      r.peakMemoryMB = peakMemoryMB()
      r.entriesPerSecond = Double(report.linesRead) / max(r.importSeconds, 0.001)
      r.matchedByReference = report.matchedByReference
      r.matchedByPayer = report.matchedByPayer
      r.unmatched = report.unmatched
      r.debits = report.debits
      r.pending = report.pending
      r.checkFindings = try store.check().findings.count
      try output.emit(r) {
        """
        benchmark-reconcile: \(r.entries) entries (camt.053.001.0\(version), \(String(format: "%.0f", r.fileMB)) MB), \(r.invoices) open transfer invoices\(keep ? " (in \(folder))" : "")
          book built in             \(String(format: "%.1f", r.bookSeconds)) s (not timed below)
          statement written in      \(String(format: "%.1f", r.generateSeconds)) s (not timed below)
          import and match          \(String(format: "%.1f", r.importSeconds)) s (\(String(format: "%.1f", r.importCPUSeconds)) s CPU), \(r.commitEvery.map { "a checking pass, then a commit every \($0) lines" } ?? "one transaction")
          entries/s                 \(String(format: "%.0f", r.entriesPerSecond))
          matched by reference      \(r.matchedByReference)
          matched by payer          \(r.matchedByPayer)
          unmatched credits         \(r.unmatched)
          debits                    \(r.debits)
          pending                   \(r.pending)
          peak memory               \(String(format: "%.0f", r.peakMemoryMB)) MB (max RSS, book and file generation included)
          ledger check              \(r.checkFindings == 0 ? "ok" : "\(r.checkFindings) finding(s)")
        """
      }
    }
  }

  /// Writes the statement entry by entry.
  func writeStatement(_ path: String, book: [(name: String, reference: String, amount: Money)], today: CivilDate) throws
  {
    _ = FileManager.default.createFile(atPath: path, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    let date = today.iso8601
    var chunk = """
      <?xml version="1.0" encoding="UTF-8"?>
      <Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.0\(version)">
      <BkToCstmrStmt><GrpHdr><MsgId>BENCH</MsgId><CreDtTm>\(date)T06:00:00</CreDtTm></GrpHdr>
      <Stmt><Id>BENCH-1</Id><Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id></Acct>

      """
    for i in 0..<entries {
      var amount: String
      var credit = true
      var status = "BOOK"
      var remittance: String
      var structured: String?
      var name: String
      if i < book.count {
        let invoice = book[i]
        amount = invoice.amount.amountString
        name = invoice.name
        switch i % 4 {
        case 0:
          structured = invoice.reference
          remittance = "Services"
        case 1: remittance = "invoice " + invoice.reference.lowercased() + " thank you"
        case 2: remittance = "payment " + String(invoice.reference.dropFirst(2))
        default: remittance = "monthly services"
        }
      } else {
        amount = "\(i % 500 + 1).\(String(format: "%02d", i % 100))"
        name = "Stranger \(i % 10_000)"
        remittance = "transfer \(i)"
        switch i % 10 {
        case 0:
          credit = false
          name = "Supplier \(i % 100)"
        case 1: status = "PDNG"
        default: break
        }
      }
      let party = credit ? "Dbtr" : "Cdtr"
      let partyName =
        version >= 8 ? "<\(party)><Pty><Nm>\(name)</Nm></Pty></\(party)>" : "<\(party)><Nm>\(name)</Nm></\(party)>"
      let detailAmount =
        version >= 4
        ? "<Amt Ccy=\"EUR\">\(amount)</Amt>" : "<AmtDtls><TxAmt><Amt Ccy=\"EUR\">\(amount)</Amt></TxAmt></AmtDtls>"
      let sts = version >= 6 ? "<Sts><Cd>\(status)</Cd></Sts>" : "<Sts>\(status)</Sts>"
      chunk += """
        <Ntry><Amt Ccy="EUR">\(amount)</Amt><CdtDbtInd>\(credit ? "CRDT" : "DBIT")</CdtDbtInd>\(sts)\
        <BookgDt><Dt>\(date)</Dt></BookgDt><ValDt><Dt>\(date)</Dt></ValDt><AcctSvcrRef>BENCH\(i)</AcctSvcrRef>\
        <NtryDtls><TxDtls>\(detailAmount)<RltdPties>\(partyName)</RltdPties><RmtInf><Ustrd>\(remittance)</Ustrd>\
        \(structured.map { "<Strd><CdtrRefInf><Ref>\($0)</Ref></CdtrRefInf></Strd>" } ?? "")</RmtInf></TxDtls></NtryDtls></Ntry>

        """
      if chunk.utf8.count >= 1 << 20 {
        try handle.write(contentsOf: Data(chunk.utf8))
        chunk = ""
      }
    }
    chunk += "</Stmt></BkToCstmrStmt></Document>\n"
    try handle.write(contentsOf: Data(chunk.utf8))
  }
}
