import Foundation
import LedgerCore
import LedgerStore

/// Something reconciliation could not settle on its own: staff must look.
public struct ReconciliationFinding: Codable, Sendable, Equatable {
  /// `unmatched_credit`, `debit`, `reversal`, `pending`, `already_paid`, `currency_mismatch`,
  /// `settled_not_recorded`, `charged_twice`, `missing_from_report`, `amount_mismatch`,
  /// `unknown_charge`, `duplicate_settlement`, `charge_adjustment`, …
  public let kind: String
  public let lineID: Int64?
  public let reference: String?
  public let amount: Money?
  public let detail: String

  /// `lineId`, not `lineID`: the JSON key is `line_id` either way, and the nightly job
  /// decodes a child's report with `convertFromSnakeCase`, which gives `lineId`.
  enum CodingKeys: String, CodingKey {
    case kind, reference, amount, detail
    case lineID = "lineId"
  }
}

/// What one bank statement import did.
public struct BankImportReport: Codable, Sendable {
  public var file: String
  public var format: String
  public var version: String?
  /// Lines per transaction when the import was batched (nil: one transaction).
  public var commitEvery: Int?
  public var linesRead = 0
  public var newLines = 0
  public var alreadyImported = 0
  public var matchedByReference = 0
  public var matchedByPayer = 0
  public var pending = 0
  public var unmatched = 0
  public var debits = 0
  public var reversals = 0
  public var paymentsRecorded = 0
  /// Credits that are the bank's record of a payment already recorded by hand: matched to
  /// it, nothing booked again.
  public var matchedRecordedPayments = 0
  /// Per currency: what went to invoices and what became account credit.
  public var received: [String: String] = [:]
  public var credit: [String: String] = [:]
  /// Findings about this file's lines (at most `findingsLimit`; `findingsTotal` counts all).
  public var findings: [ReconciliationFinding] = []
  public var findingsTotal = 0
  public var ok: Bool { findingsTotal == 0 }

  init(file: String, format: String) {
    self.file = file
    self.format = format
  }
}

/// What one processor report import did.
public struct ProcessorImportReport: Codable, Sendable {
  public var file: String
  public var rowsRead = 0
  public var newRows = 0
  public var alreadyImported = 0
  public var matched = 0
  public var recorded = 0
  public var mismatched = 0
  public var unknown = 0
  public var missingFromReport = 0
  /// Second charge rows for an attempt already settled: nothing posted (`duplicate_settlement`).
  public var duplicates = 0
  /// Refunds, disputes, chargebacks… naming a charge the ledger knows (`charge_adjustment`).
  public var adjustments = 0
  /// Payouts and rows naming no known charge, kept for the record.
  public var other = 0
  public var fees: [String: String] = [:]
  public var findings: [ReconciliationFinding] = []
  public var findingsTotal = 0
  public var ok: Bool { findingsTotal == 0 }

  init(file: String) { self.file = file }
}

/// The nightly reconciliation: bank statements and the processor's settlement report
/// compared with the ledger. Every import is one transaction: a refused file writes nothing,
/// and a line key or balance transaction id already stored is never recorded twice.
public struct Reconciler {
  public let store: LedgerStore
  public let config: DunningConfig
  /// Findings kept in a report (the total is always counted).
  public var findingsLimit = 1_000
  /// Commit every this many lines instead of once (nil: once, unless the file is larger
  /// than `batchAboveBytes`). A batched import first reads the whole file once without
  /// writing, so a bad file is still refused with nothing imported; an import interrupted
  /// between batches resumes by line keys when run again.
  public var commitEvery: Int?
  /// Files larger than this are imported in batches of `defaultBatchLines`.
  public var batchAboveBytes = Self.defaultBatchAboveBytes
  public static let defaultBatchAboveBytes = 64 * 1_000_000
  public static let defaultBatchLines = 10_000

  /// Reconciles against `store`; payments are rescheduled with `config`'s policy.
  public init(store: LedgerStore, config: DunningConfig) {
    self.store = store
    self.config = config
  }

  /// The kind of a file, from its first bytes and, for CSV, its header.
  public enum FileKind: String, Sendable {
    case camt053
    case bankCSV = "bank_csv"
    case processorCSV = "processor_csv"
  }

  /// camt.053 when the first non-blank byte is `<`; a processor report when the CSV
  /// header has `balance_transaction_id`; otherwise the bank CSV.
  public static func detect(path: String) throws -> FileKind {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw InputError(field: path, rule: "cannot be opened")
    }
    defer { try? handle.close() }
    let head = (try? handle.read(upToCount: 4096)) ?? Data()
    var bytes = Array(head)
    // Statements and reports are UTF-8: a UTF-16 or UTF-32 file is named as such, not read
    // as a CSV of odd bytes.
    if bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE])
      || bytes.starts(with: [0x00, 0x00, 0xFE, 0xFF])
    {
      let width =
        bytes.starts(with: [0xFF, 0xFE, 0x00, 0x00]) || bytes.starts(with: [0x00, 0x00]) ? "UTF-32" : "UTF-16"
      throw InputError(
        field: path,
        rule: "starts with a \(width) byte-order mark; statements and reports must be UTF-8; nothing was imported")
    }
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
    guard let first = bytes.first(where: { ![9, 10, 13, 32].contains($0) }) else {
      throw InputError(field: path, rule: "is empty; nothing was imported")
    }
    if first == UInt8(ascii: "<") { return .camt053 }
    let header = String(decoding: bytes.prefix { $0 != 10 }, as: UTF8.self)
    return ProcessorReportFormat.looksLikeReport(header.split(separator: ",").map(String.init))
      ? .processorCSV : .bankCSV
  }

  /// Reads every line of a bank file (camt.053 or bank CSV) without touching the ledger.
  public static func readBankFile(path: String, kind: FileKind, _ body: @escaping (BankLine) throws -> Void) throws
    -> String?
  {
    switch kind {
    case .camt053:
      let reader = Camt053Reader(path: path)
      try reader.read(body)
      return reader.version.map { "camt.053.001.0\($0)" }
    case .bankCSV:
      var format: BankCSVFormat?
      var seen: [String: Int] = [:]
      try readCSV(path: path) { record, line in
        guard let f = format else {
          format = try BankCSVFormat(header: record)
          return
        }
        try body(
          try f.line(record, lineNumber: line) { l, account in
            let hash = SHA256.hex(Array(([account ?? ""] + l.identityFields).joined(separator: "\u{1F}").utf8))
            let n = seen[hash, default: 0] + 1
            seen[hash] = n
            return BankLineKey.fallback(account: account, hash: hash, occurrence: n)
          })
      }
      guard format != nil else { throw InputError(field: path, rule: "has no header row; nothing was imported") }
      return nil
    case .processorCSV:
      throw InputError(field: path, rule: "is a processor settlement report; use `ledgerd reconcile processor`")
    }
  }

  /// Streams a CSV file through `CSVReader` in 64 KiB chunks.
  static func readCSV(path: String, _ body: ([String], Int) throws -> Void) throws {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw InputError(field: path, rule: "cannot be opened")
    }
    defer { try? handle.close() }
    var reader = CSVReader()
    do {
      while let chunk = try handle.read(upToCount: 64 * 1024), !chunk.isEmpty {
        try reader.feed(chunk, emit: body)
      }
      try reader.finish(emit: body)
    } catch let error as InputError {
      throw error.field.hasPrefix(path) ? error : error.renamed("\(path): \(error.field)")
    }
  }

  // MARK: - Bank statements

  /// Imports a bank statement and matches its credits, in one transaction.
  public func importBank(path: String) throws -> BankImportReport {
    let kind = try Self.detect(path: path)
    var report = BankImportReport(file: path, format: kind.rawValue)
    var received: [Currency: Int64] = [:]
    var credit: [Currency: Int64] = [:]
    let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    let batch = commitEvery ?? (size > batchAboveBytes ? Self.defaultBatchLines : nil)
    report.commitEvery = batch
    if batch != nil {
      // Refuse a bad file before anything is committed.
      _ = try Self.readBankFile(path: path, kind: kind) { _ in }
    }
    try store.batchedWrite { commit in
      var payers = try store.knownPayers()
      report.version = try Self.readBankFile(path: path, kind: kind) { line in
        report.linesRead += 1
        if let batch, report.linesRead % batch == 0 { try commit() }
        let outcome = try importLine(line, payers: &payers)
        switch outcome {
        case .duplicate(let stored):
          report.alreadyImported += 1
          if stored.matchStatus == "unmatched" {
            note(
              &report,
              ReconciliationFinding(
                kind: stored.direction == .debit ? "debit" : "unmatched_credit", lineID: stored.id,
                reference: stored.lineKey, amount: stored.amount, detail: stored.note ?? "unmatched"))
          }
        case .pending:
          report.newLines += 1
          report.pending += 1
        case .matched(let rule, let record, _):
          report.newLines += 1
          if rule == "reference" { report.matchedByReference += 1 } else { report.matchedByPayer += 1 }
          report.paymentsRecorded += 1
          received[record.amount.currency, default: 0] += record.allocated.minorUnits
          credit[record.amount.currency, default: 0] += record.credit.minorUnits
        case .unmatched(let id, let kind, let detail):
          report.newLines += 1
          switch kind {
          case "debit": report.debits += 1
          case "reversal": report.reversals += 1
          default: report.unmatched += 1
          }
          note(
            &report,
            ReconciliationFinding(kind: kind, lineID: id, reference: line.lineKey, amount: line.amount, detail: detail))
        case .matchedRecorded:
          report.newLines += 1
          report.matchedRecordedPayments += 1
        case .matchedWithFinding(let rule, let record, let finding):
          report.newLines += 1
          if rule == "reference" { report.matchedByReference += 1 } else { report.matchedByPayer += 1 }
          report.paymentsRecorded += 1
          received[record.amount.currency, default: 0] += record.allocated.minorUnits
          credit[record.amount.currency, default: 0] += record.credit.minorUnits
          note(&report, finding)
        }
      }
    }
    report.received = Dictionary(
      uniqueKeysWithValues: received.map { ($0.key.code, Money(minorUnits: $0.value, currency: $0.key).amountString) })
    report.credit = Dictionary(
      uniqueKeysWithValues: credit.map { ($0.key.code, Money(minorUnits: $0.value, currency: $0.key).amountString) })
    return report
  }

  func note(_ report: inout BankImportReport, _ finding: ReconciliationFinding) {
    report.findingsTotal += 1
    if report.findings.count < findingsLimit { report.findings.append(finding) }
  }

  enum LineOutcome {
    case duplicate(StoredBankLine)
    case pending
    case matched(rule: String, PaymentRecord, invoice: Int64)
    case matchedWithFinding(rule: String, PaymentRecord, ReconciliationFinding)
    case unmatched(id: Int64, kind: String, detail: String)
    /// The bank's record of a payment already recorded by hand: linked, not booked again.
    case matchedRecorded(id: Int64, paymentID: Int64)
  }

  /// What a line should become, decided before it is stored.
  enum Verdict {
    case pay(Invoice, rule: String)
    case unmatched(kind: String, note: String)
  }

  /// Stores one line (unless its key is known) and matches it.
  func importLine(_ line: BankLine, payers: inout KnownPayers) throws -> LineOutcome {
    var existingID: Int64?
    if let existing = try store.bankLine(key: line.lineKey) {
      guard existing.bookingStatus == .pending, line.status == .booked else { return .duplicate(existing) }
      // The bank has booked what it announced: match it now.
      try store.bookPendingLine(id: existing.id, line)
      existingID = existing.id
    } else if line.status == .pending {
      _ = try store.insertBankLine(
        line, matchStatus: "ignored", note: "pending: announced, not booked; matched when the bank books it")
      return .pending
    }
    if let outcome = try matchRecordedPayment(line, existingID: existingID, payers: &payers) { return outcome }
    switch try decide(line, payers: payers) {
    case .unmatched(let kind, let note):
      let id: Int64
      if let existingID {
        id = existingID
        try store.markBankLine(id, status: "unmatched", invoiceID: nil, rule: nil, note: note)
      } else {
        id = try store.insertBankLine(line, matchStatus: "unmatched", note: note)
      }
      return .unmatched(id: id, kind: kind, detail: note)
    case .pay(let invoice, let rule):
      let id = try existingID ?? store.insertBankLine(line, matchStatus: "unmatched", note: nil)
      return try pay(line, id: id, invoice: invoice, rule: rule, payers: &payers)
    }
  }

  /// Days either side of a hand-recorded payment's received date within which a credit line
  /// with its reference, amount and currency is taken to be the bank's record of it.
  public static let recordedPaymentWindowDays = 7

  /// A booked credit that is the bank's record of a payment staff already recorded by hand
  /// (`ledgerd payment record --reference …`) is matched to that payment and not booked
  /// again: no second payment, journal entry or email.
  func matchRecordedPayment(_ line: BankLine, existingID: Int64?, payers: inout KnownPayers) throws -> LineOutcome? {
    guard line.direction == .credit, !line.isReversal, line.status == .booked,
      let found = try store.handRecordedPayment(for: line, withinDays: Self.recordedPaymentWindowDays)
    else { return nil }
    let id = try existingID ?? store.insertBankLine(line, matchStatus: "unmatched", note: nil)
    try store.linkBankLine(id, toPayment: found.paymentID)
    let note =
      "the bank's record of payment \(found.paymentID), recorded by hand (received \(found.receivedOn), reference \(found.reference)): not booked again"
    try store.markBankLine(id, status: "matched", invoiceID: found.invoiceID, rule: "reference", note: note)
    try store.learnPayer(account: found.accountID, name: line.counterpartyName, iban: line.counterpartyIBAN, lineID: id)
    if let iban = PayerIdentity.normalizedIBAN(line.counterpartyIBAN) {
      payers.ibans[iban, default: []].insert(found.accountID)
    }
    if let name = PayerIdentity.normalizedName(line.counterpartyName) {
      payers.names[name, default: []].insert(found.accountID)
    }
    try store.recordReconciliationEvent(
      account: found.accountID, invoice: found.invoiceID, actor: .reconciliation,
      kind: "bank_line_matched_recorded_payment",
      reason: "bank line \(id) (\(line.amount)) is " + note,
      data: ["line_id": String(id), "payment_id": String(found.paymentID)])
    return .matchedRecorded(id: id, paymentID: found.paymentID)
  }

  /// The matching rules, in order (see docs/reconciliation.md): debits and reversals go to staff; a
  /// credit is matched by its reference, else by a known payer and the exact amount.
  func decide(_ line: BankLine, payers: KnownPayers) throws -> Verdict {
    if line.direction == .debit || line.isReversal {
      let detail: String
      let kind: String
      if let original = try store.reversedCreditLine(for: line) {
        kind = "reversal"
        detail =
          "\(line.isReversal ? "reversal" : "debit") of \(line.amount) undoing credit line \(original.lineID)"
          + (original.paymentID.map { " (payment \($0)" + (original.invoice.map { " on \($0)" } ?? "") + ")" } ?? "")
          + ": the payment stands until staff refund or reverse it; dismiss the line once done"
      } else if line.isReversal {
        kind = "reversal"
        detail = "reversal of \(line.amount) (\(line.direction.rawValue)) with no matched line to undo: review"
      } else {
        kind = "debit"
        detail =
          "debit of \(line.amount)\(line.counterpartyName.map { " to \($0)" } ?? ""): not a customer payment; dismiss with a reason once reviewed"
      }
      return .unmatched(kind: kind, note: String(detail.prefix(500)))
    }
    // 1. The payment reference, structured or in the remittance text.
    for candidate in ReferenceFinder.candidates(structured: line.reference, remittance: line.remittance) {
      guard let invoiceID = try store.invoiceID(paymentReference: candidate),
        let invoice = try store.invoice(id: invoiceID)
      else {
        continue
      }
      guard invoice.total.currency == line.amount.currency else {
        return .unmatched(
          kind: "currency_mismatch",
          note:
            "reference \(candidate) names \(invoice.number), which is in \(invoice.total.currency.code); the line is in \(line.amount.currency.code)"
        )
      }
      return .pay(invoice, rule: "reference")
    }
    // 2. A known payer and the exact amount of their single open transfer invoice.
    let accounts = payers.accounts(name: line.counterpartyName, iban: line.counterpartyIBAN)
    if !accounts.isEmpty {
      let candidates = try store.openTransferInvoices(accounts: accounts, due: line.amount)
      if candidates.count == 1, let invoice = try store.invoice(id: candidates[0]) {
        return .pay(invoice, rule: "payer_amount")
      }
      return .unmatched(
        kind: "unmatched_credit",
        note: candidates.isEmpty
          ? "known payer (account \(accounts.sorted().map(String.init).joined(separator: ", "))) but no open transfer invoice of exactly \(line.amount), and no valid reference"
          : "known payer with \(candidates.count) open transfer invoices of \(line.amount): assign one")
    }
    return .unmatched(
      kind: "unmatched_credit",
      note: "no valid invoice reference and an unknown payer" + (line.counterpartyName.map { " (\($0))" } ?? ""))
  }

  /// Records the line as a payment on `invoice` through the same code as
  /// `ledgerd payment record`, and learns the payer. The payment's reference is a label
  /// (the line is linked by `bank_line_id`): the bank's reference, masked if it looks like
  /// a card number, as it reaches emails and events.
  func pay(
    _ line: BankLine, id: Int64, invoice: Invoice, rule: String, payers: inout KnownPayers,
    actor: Actor = .reconciliation
  ) throws
    -> LineOutcome
  {
    let receivedOn = try line.bookingDate.map { try CivilDate(iso8601: $0) } ?? store.clock.now().date
    let record = try store.applyPayment(
      account: invoice.accountID, amount: line.amount, method: "transfer",
      reference: (line.accountServicerRef ?? line.reference ?? line.remittance.map { String($0.prefix(140)) }).map(
        CardNumberText.masked),
      receivedOn: receivedOn,
      chargeAttemptID: nil, bankLineID: id, invoices: [invoice.id], actor: actor, config: config)
    try store.reschedule([invoice.id], config: config)
    var note: String?
    var finding: ReconciliationFinding?
    if invoice.status != .open && invoice.status != .uncollectible {
      note = "\(invoice.number) was already \(invoice.status.rawValue): \(record.credit) kept as account credit"
      finding = ReconciliationFinding(
        kind: "already_paid", lineID: id, reference: line.lineKey, amount: line.amount, detail: note!)
    } else if record.credit.minorUnits > 0 {
      note = "overpaid \(invoice.number): \(record.credit) kept as account credit"
    } else if record.paidInvoices.isEmpty {
      let left = invoice.due.minorUnits - record.allocated.minorUnits
      note =
        "partial payment of \(invoice.number): \(Money(minorUnits: left, currency: line.amount.currency)) still due"
    }
    try store.markBankLine(id, status: "matched", invoiceID: invoice.id, rule: rule, note: note)
    try store.learnPayer(
      account: invoice.accountID, name: line.counterpartyName, iban: line.counterpartyIBAN, lineID: id)
    if let iban = PayerIdentity.normalizedIBAN(line.counterpartyIBAN) {
      payers.ibans[iban, default: []].insert(invoice.accountID)
    }
    if let name = PayerIdentity.normalizedName(line.counterpartyName) {
      payers.names[name, default: []].insert(invoice.accountID)
    }
    if let finding { return .matchedWithFinding(rule: rule, record, finding) }
    return .matched(rule: rule, record, invoice: invoice.id)
  }

  /// Staff match an unmatched credit line to an invoice: recorded as a payment (partial or
  /// over-payment as usual) and the payer is remembered.
  public func assign(lineID: Int64, invoice reference: String, actor: Actor) throws -> (StoredBankLine, PaymentRecord) {
    try store.write {
      guard let stored = try store.bankLine(id: lineID) else {
        throw NotFoundError(field: "LINE", value: String(lineID))
      }
      guard stored.matchStatus == "unmatched" else {
        throw StateError(
          subject: "bank line \(lineID)", rule: "is \(stored.matchStatus); only an unmatched line can be assigned")
      }
      guard stored.direction == .credit, !stored.isReversal else {
        throw StateError(
          subject: "bank line \(lineID)",
          rule: "is a \(stored.isReversal ? "reversal" : "debit"); only a credit can pay an invoice")
      }
      guard stored.bookingStatus == .booked else {
        throw StateError(subject: "bank line \(lineID)", rule: "is pending; wait until it is booked")
      }
      let invoice = try store.requireInvoice(reference, field: "INVOICE")
      guard invoice.status == .open || invoice.status == .uncollectible else {
        throw StateError(
          subject: "invoice \(invoice.number)", rule: "is \(invoice.status.rawValue); nothing is owed on it")
      }
      guard invoice.total.currency == stored.amount.currency else {
        throw InputError(
          field: "INVOICE",
          rule: "\(invoice.number) is in \(invoice.total.currency.code); the line is in \(stored.amount.currency.code)")
      }
      let line = BankLine(
        lineKey: stored.lineKey, source: stored.source, bookingDate: stored.bookingDate, valueDate: stored.valueDate,
        amount: stored.amount,
        direction: .credit, reference: stored.reference, remittance: stored.remittance,
        counterpartyName: stored.counterpartyName,
        counterpartyIBAN: stored.counterpartyIban)
      var payers = KnownPayers()
      let outcome = try pay(line, id: lineID, invoice: invoice, rule: "staff", payers: &payers, actor: actor)
      guard case .matched(_, let record, _) = outcome else {
        throw StateError(subject: "bank line \(lineID)", rule: "could not be assigned")
      }
      return (try store.bankLine(id: lineID)!, record)
    }
  }

  // MARK: - Processor settlement report

  /// Compares the processor's report with the charge attempts, in one transaction.
  public func importProcessorReport(path: String) throws -> ProcessorImportReport {
    var report = ProcessorImportReport(file: path)
    var fees: [Currency: Int64] = [:]
    func finding(_ f: ReconciliationFinding) {
      report.findingsTotal += 1
      if report.findings.count < findingsLimit { report.findings.append(f) }
    }
    try store.write {
      var format: ProcessorReportFormat?
      var firstDay: String?
      var lastDay: String?
      var touched: [Int64] = []
      try Self.readCSV(path: path) { record, lineNumber in
        guard let f = format else {
          format = try ProcessorReportFormat(header: record)
          return
        }
        let row = try f.row(record, lineNumber: lineNumber)
        report.rowsRead += 1
        let day = String(row.created.prefix(10))
        if row.reportingCategory == "charge" {
          firstDay = min(firstDay ?? day, day)
          lastDay = max(lastDay ?? day, day)
        }
        if let (outcome, detail) = try store.processorRowOutcome(row.balanceTransactionID) {
          report.alreadyImported += 1
          let kinds = [
            "mismatch": "amount_mismatch", "unknown": "unknown_charge", "duplicate": "duplicate_settlement",
            "adjustment": "charge_adjustment",
          ]
          if let kind = kinds[outcome] {
            finding(
              ReconciliationFinding(
                kind: kind, lineID: nil, reference: row.balanceTransactionID, amount: row.gross,
                detail: detail ?? outcome))
          }
          return
        }
        report.newRows += 1
        guard row.reportingCategory == "charge" else {
          // Payouts are the processor paying the balance out: informational. Any other row
          // (refund, dispute, chargeback…) that names a charge the ledger knows moves money
          // on that charge: staff must see it; nothing is posted.
          if !row.reportingCategory.hasPrefix("payout"),
            let named = try store.attemptNamedByAdjustment(
              key: row.idempotencyKey, sourceID: row.sourceID, paymentIntentID: row.paymentIntentID)
          {
            report.adjustments += 1
            let detail =
              "\(row.reportingCategory) of \(row.gross) (fee \(row.fee)) on attempt \(named.attempt.id) (key \(named.attempt.key), \(named.status.rawValue) in the ledger): nothing posted; staff must record it"
            try store.insertProcessorRow(
              row, attemptID: named.attempt.id, outcome: "adjustment", detail: detail, feeEntryID: nil)
            finding(
              ReconciliationFinding(
                kind: "charge_adjustment", lineID: nil, reference: row.balanceTransactionID, amount: row.gross,
                detail: detail))
            return
          }
          report.other += 1
          try store.insertProcessorRow(
            row, attemptID: nil, outcome: "other", detail: "\(row.reportingCategory): kept for the record",
            feeEntryID: nil)
          return
        }
        guard let found = try store.attemptForReport(key: row.idempotencyKey, processorRef: row.sourceID) else {
          report.unknown += 1
          let detail =
            "the processor settled \(row.gross) (\(row.sourceID ?? "no source id"), key \(row.idempotencyKey ?? "none")) that no charge attempt of the ledger has"
          try store.insertProcessorRow(row, attemptID: nil, outcome: "unknown", detail: detail, feeEntryID: nil)
          finding(
            ReconciliationFinding(
              kind: "unknown_charge", lineID: nil, reference: row.balanceTransactionID, amount: row.gross,
              detail: detail))
          return
        }
        let attempt = found.attempt
        if let first = try store.settlingReportRow(attempt: attempt.id) {
          // The same charge settled twice in the reports: never post its fee or record it again.
          report.duplicates += 1
          let detail =
            "attempt \(attempt.id) (key \(attempt.key)) was already settled by \(first); this second charge row of \(row.gross) is not posted: ask the processor whether the customer was charged twice"
          try store.insertProcessorRow(
            row, attemptID: attempt.id, outcome: "duplicate", detail: detail, feeEntryID: nil)
          finding(
            ReconciliationFinding(
              kind: "duplicate_settlement", lineID: nil, reference: row.balanceTransactionID, amount: row.gross,
              detail: detail))
          return
        }
        if row.gross != attempt.amount {
          report.mismatched += 1
          let detail =
            "attempt \(attempt.id) (key \(attempt.key)) is \(attempt.amount) in the ledger; the processor settled \(row.gross)"
          try store.insertProcessorRow(row, attemptID: attempt.id, outcome: "mismatch", detail: detail, feeEntryID: nil)
          finding(
            ReconciliationFinding(
              kind: "amount_mismatch", lineID: nil, reference: row.balanceTransactionID, amount: row.gross,
              detail: detail))
          return
        }
        var outcome = "matched"
        var detail: String?
        if found.status != .succeeded {
          // Money the processor took that the ledger does not have: a twice-paid invoice is
          // flagged for a refund, otherwise the charge is recorded as it should have been.
          let doubles = try attempt.invoiceIDs.filter { try store.invoicePaidByOtherCharge($0, attempt: attempt.id) }
          if !doubles.isEmpty {
            report.mismatched += 1
            detail =
              "attempt \(attempt.id) was \(found.status.rawValue) in the ledger but settled by the processor, and its invoice was already paid by another charge: the customer was charged twice; refund \(row.gross)"
            try store.insertProcessorRow(
              row, attemptID: attempt.id, outcome: "mismatch", detail: detail, feeEntryID: nil)
            finding(
              ReconciliationFinding(
                kind: "charged_twice", lineID: nil, reference: row.balanceTransactionID, amount: row.gross,
                detail: detail!))
            return
          }
          // Paid meanwhile by a transfer, a manual payment or account credit: the money the
          // processor took is still recorded (as account credit), so the ledger matches the
          // processor, but the customer paid twice and staff must refund.
          let paidByOthers = try store.invoicesPaidByOtherPayments(attempt: attempt.id)
          let record = try store.recordChargeSucceeded(
            attempt, processorRef: row.sourceID ?? row.balanceTransactionID, actor: .reconciliation, config: config)
          touched += attempt.invoiceIDs
          outcome = "recorded"
          detail =
            "attempt \(attempt.id) was \(found.status.rawValue) in the ledger; the processor settled it: recorded as a payment"
          if !paidByOthers.isEmpty {
            detail! +=
              ", but \(paidByOthers.joined(separator: ", ")) had already been paid by another payment: the customer was charged twice; \(record.credit) kept as account credit, refund it"
          }
          try store.recordReconciliationEvent(
            account: attempt.accountID, invoice: attempt.invoiceIDs.first, actor: .reconciliation,
            kind: "charge_settled_unrecorded",
            reason: detail!,
            data: ["attempt_id": String(attempt.id), "balance_transaction_id": row.balanceTransactionID])
          report.recorded += 1
          finding(
            ReconciliationFinding(
              kind: paidByOthers.isEmpty ? "settled_not_recorded" : "charged_twice", lineID: nil,
              reference: row.balanceTransactionID,
              amount: row.gross, detail: detail!))
        } else {
          report.matched += 1
        }
        let feeEntry = try store.postProcessorFee(
          row.fee, balanceTransactionID: row.balanceTransactionID, paymentID: try store.paymentID(attempt: attempt.id))
        fees[row.fee.currency, default: 0] += row.fee.minorUnits
        try store.insertProcessorRow(row, attemptID: attempt.id, outcome: outcome, detail: detail, feeEntryID: feeEntry)
      }
      guard format != nil else { throw InputError(field: path, rule: "has no header row; nothing was imported") }
      try store.reschedule(touched, config: config)
      if let firstDay, let lastDay {
        for missing in try store.succeededAttemptsMissingFromReports(fromDay: firstDay, toDay: lastDay) {
          report.missingFromReport += 1
          finding(
            ReconciliationFinding(
              kind: "missing_from_report", lineID: nil, reference: missing.key, amount: missing.amount,
              detail:
                "attempt \(missing.id) (key \(missing.key)) of \(missing.amount) succeeded in the ledger on \(missing.createdAt) but no report row names it"
            ))
        }
      }
    }
    report.fees = Dictionary(
      uniqueKeysWithValues: fees.map { ($0.key.code, Money(minorUnits: $0.value, currency: $0.key).amountString) })
    return report
  }
}
