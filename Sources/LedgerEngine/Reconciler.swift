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
  /// Credits that are a payout of the processor's balance arriving: matched to the posted payout.
  public var matchedPayouts = 0
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
  /// Refunds and disputes naming no known charge, kept for the record.
  public var other = 0
  /// Payouts posted (bank / processor clearing) and what they put in the bank, per currency.
  public var payouts = 0
  public var paidOut: [String: String] = [:]
  /// Failed payouts whose entries were reversed.
  public var payoutReversals = 0
  /// Bank lines already imported that this report's payouts matched.
  public var payoutsMatchedOnStatements = 0
  /// The processor's own fees outside any charge, posted as processor fees (counted in `fees`).
  public var feeRows = 0
  /// Rows of categories the ledger does not post or does not know: findings.
  public var unposted = 0
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
            let payoutNote = stored.note?.hasPrefix(Self.payoutNotPostedNote) ?? false
            note(
              &report,
              ReconciliationFinding(
                kind: stored.direction == .debit ? "debit" : payoutNote ? "payout_not_posted" : "unmatched_credit",
                lineID: stored.id,
                reference: stored.lineKey, amount: stored.amount, detail: stored.note ?? "unmatched"))
          }
        case .matchedPayout(let fresh):
          if fresh { report.newLines += 1 } else { report.alreadyImported += 1 }
          report.matchedPayouts += 1
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
    /// A payout of the processor's balance arriving; `fresh` when the line is new.
    case matchedPayout(fresh: Bool)
  }

  /// What a line should become, decided before it is stored.
  enum Verdict {
    case pay(Invoice, rule: String)
    case payout(PostedPayout)
    case unmatched(kind: String, note: String)
  }

  /// How the note of a credit that looks like a payout the ledger has not posted starts.
  static let payoutNotPostedNote = "a payout from the processor"

  /// Days either side of a payout's expected arrival within which a credit of its amount
  /// from the processor is taken to be it.
  public static let payoutWindowDays = 7

  /// Stores one line (unless its key is known) and matches it.
  func importLine(_ line: BankLine, payers: inout KnownPayers) throws -> LineOutcome {
    var existingID: Int64?
    if let existing = try store.bankLine(key: line.lineKey) {
      // A credit left unmatched because its payout was not posted yet is matched once it is.
      if existing.matchStatus == "unmatched", existing.bookingStatus == .booked,
        case .payout(let payout)? = try payoutVerdict(line)
      {
        try matchPayout(payout, lineID: existing.id, line: line)
        return .matchedPayout(fresh: false)
      }
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
    case .payout(let payout):
      let id = try existingID ?? store.insertBankLine(line, matchStatus: "unmatched", note: nil)
      try matchPayout(payout, lineID: id, line: line)
      return .matchedPayout(fresh: existingID == nil)
    }
  }

  /// A booked credit that is a payout of the processor's balance: it quotes the payout's id
  /// (`po_…`) in its reference or remittance text, or it comes from the processor (its name,
  /// `STRIPE`, as payer or in the text) with the amount of a posted payout expected within
  /// `payoutWindowDays` days. Nil when the line says nothing of the processor; an unmatched
  /// verdict when it does but no posted payout fits.
  func payoutVerdict(_ line: BankLine) throws -> Verdict? {
    guard line.direction == .credit, !line.isReversal, line.status == .booked else { return nil }
    let ids = PayoutText.payoutIDs(in: [line.reference, line.remittance])
    if !ids.isEmpty {
      for id in ids {
        guard let payout = try store.payout(id: id) else { continue }
        if payout.amount == line.amount && payout.bankLineID == nil && payout.reversalEntryID == nil {
          return .payout(payout)
        }
        let why =
          payout.reversalEntryID != nil
          ? "it failed and was reversed"
          : payout.bankLineID.map { "it already arrived on bank line \($0)" } ?? "it is \(payout.amount)"
        return .unmatched(
          kind: "payout_mismatch",
          note: "the line quotes payout \(id) of \(line.amount), but \(why): review")
      }
      return .unmatched(
        kind: "payout_not_posted",
        note: Self.payoutNotPostedNote
          + " (\(ids.joined(separator: ", "))) of \(line.amount) that the ledger has not posted yet: import the processor's report; the next run matches it"
      )
    }
    guard PayoutText.namesProcessor([line.counterpartyName, line.remittance, line.reference]) else { return nil }
    let day = line.bookingDate ?? store.clock.now().date.iso8601
    if let payout = try store.waitingPayout(amount: line.amount, near: day, withinDays: Self.payoutWindowDays) {
      return .payout(payout)
    }
    return .unmatched(
      kind: "payout_not_posted",
      note: Self.payoutNotPostedNote
        + " of \(line.amount) that no posted payout expected within \(Self.payoutWindowDays) days of \(day) explains yet: import the processor's report; the next run matches it"
    )
  }

  /// Records a bank line as a payout's arrival, with an event.
  func matchPayout(_ payout: PostedPayout, lineID: Int64, line: BankLine) throws {
    try store.matchPayout(
      payout.payoutID, lineID: lineID,
      note: "payout \(payout.payoutID) of \(payout.amount) from the processor (expected \(payout.arrivalDate))")
    try store.recordReconciliationEvent(
      account: nil, actor: .reconciliation, kind: "payout_arrived",
      reason: "bank line \(lineID) (\(line.amount), booked \(line.bookingDate ?? "-")) is payout \(payout.payoutID)",
      data: ["line_id": String(lineID), "payout_id": payout.payoutID])
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
    // 2. A payout of the processor's balance arriving.
    let payout = try payoutVerdict(line)
    let quotesPayout = !PayoutText.payoutIDs(in: [line.reference, line.remittance]).isEmpty
    if let payout, case .unmatched = payout, !quotesPayout {
      // It only names the processor: a known payer may still explain it (3).
    } else if let payout {
      return payout
    }
    // 3. A known payer and the exact amount of their single open transfer invoice.
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
    // 4. From the processor, but no payout posted yet fits: say so.
    if let payout { return payout }
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
    var paidOut: [Currency: Int64] = [:]
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
            "adjustment": "charge_adjustment", "unposted": "unposted_balance_change",
            "unknown_category": "unknown_category", "payout_problem": "payout_problem",
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
        guard row.treatment == .compare else {
          try importBalanceRow(row, report: &report, fees: &fees, paidOut: &paidOut)
          return
        }
        guard let found = try store.attemptForReportRow(row) else {
          report.unknown += 1
          let detail =
            "the processor settled \(row.gross) (\(row.processorRef ?? "no charge id"), key \(row.idempotencyKey ?? "none")) that no charge attempt of the ledger has"
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
            attempt, processorRef: row.processorRef ?? row.balanceTransactionID, actor: .reconciliation, config: config)
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
    report.paidOut = Dictionary(
      uniqueKeysWithValues: paidOut.map { ($0.key.code, Money(minorUnits: $0.value, currency: $0.key).amountString) })
    return report
  }

  /// A row that is not a charge, by its category's treatment (docs/reconciliation.md, "Each
  /// category"): a payout posted and matched to its bank line if one waits, a failed payout
  /// reversed, the processor's own fee posted, a refund or dispute on a known charge a
  /// finding, any other movement of the balance a finding, nothing posted.
  func importBalanceRow(
    _ row: ProcessorReportRow, report: inout ProcessorImportReport, fees: inout [Currency: Int64],
    paidOut: inout [Currency: Int64]
  ) throws {
    func flag(_ kind: String, outcome: String, attemptID: Int64? = nil, _ detail: String) throws {
      try store.insertProcessorRow(row, attemptID: attemptID, outcome: outcome, detail: detail, feeEntryID: nil)
      report.findingsTotal += 1
      if report.findings.count < findingsLimit {
        report.findings.append(
          ReconciliationFinding(
            kind: kind, lineID: nil, reference: row.balanceTransactionID, amount: row.gross, detail: detail))
      }
    }
    switch row.treatment {
    case .payout:
      let payoutID = row.payoutID ?? row.balanceTransactionID
      if let earlier = try store.payout(id: payoutID) {
        try flag(
          "payout_problem", outcome: "payout_problem",
          "payout \(payoutID) of \(row.gross) was already posted from balance transaction \(earlier.balanceTransactionID): not posted again; ask the processor why it reports it twice"
        )
        return
      }
      try store.insertProcessorRow(
        row, attemptID: nil, outcome: "payout",
        detail:
          "payout \(payoutID): \(Money(minorUnits: -row.gross.minorUnits, currency: row.gross.currency)) to the bank",
        feeEntryID: nil)
      let payout = try store.postPayout(
        row, payoutID: payoutID, arrivalDate: row.arrivalDate ?? String(row.created.prefix(10)))
      report.payouts += 1
      paidOut[payout.amount.currency, default: 0] += payout.amount.minorUnits
      if row.fee.minorUnits != 0 { fees[row.fee.currency, default: 0] += row.fee.minorUnits }
      // Its arrival may already be on a statement imported before this report.
      for stored in try store.unmatchedCredits(amount: payout.amount) {
        let line = BankLine(
          lineKey: stored.lineKey, source: stored.source, bookingDate: stored.bookingDate,
          valueDate: stored.valueDate, amount: stored.amount, direction: .credit, reference: stored.reference,
          remittance: stored.remittance, counterpartyName: stored.counterpartyName,
          counterpartyIBAN: stored.counterpartyIban)
        if case .payout(let fits)? = try payoutVerdict(line), fits.payoutID == payoutID {
          try matchPayout(fits, lineID: stored.id, line: line)
          report.payoutsMatchedOnStatements += 1
          break
        }
      }
    case .payoutReversal:
      let payoutID = row.payoutID ?? row.sourceID ?? ""
      guard let payout = try store.payout(id: payoutID), payout.reversalEntryID == nil, payout.bankLineID == nil,
        payout.amount.minorUnits == row.gross.minorUnits, payout.amount.currency == row.gross.currency
      else {
        let known = try store.payout(id: payoutID)
        let why =
          known == nil
          ? "the ledger has posted no payout \(payoutID.isEmpty ? "(the row names none)" : payoutID)"
          : known!.reversalEntryID != nil
            ? "payout \(payoutID) was already reversed"
            : known!.bankLineID != nil
              ? "payout \(payoutID) arrived on bank line \(known!.bankLineID!)"
              : "payout \(payoutID) is \(known!.amount)"
        try flag(
          "payout_problem", outcome: "payout_problem",
          "payout reversal of \(row.gross): \(why); nothing reversed: staff must look")
        return
      }
      try store.insertProcessorRow(
        row, attemptID: nil, outcome: "payout_reversal", detail: "payout \(payoutID) failed: its entry reversed",
        feeEntryID: nil)
      _ = try store.reversePayout(payout, balanceTransactionID: row.balanceTransactionID)
      report.payoutReversals += 1
      paidOut[payout.amount.currency, default: 0] -= payout.amount.minorUnits
    case .fee:
      // What the fee took from the balance: the row's net, negated (a refunded fee is positive).
      let cost = Money(minorUnits: -row.net.minorUnits, currency: row.net.currency)
      let entry = try store.postProcessorFee(cost, balanceTransactionID: row.balanceTransactionID, paymentID: nil)
      try store.insertProcessorRow(
        row, attemptID: nil, outcome: "fee", detail: "the processor's fee of \(cost): posted", feeEntryID: entry)
      report.feeRows += 1
      fees[cost.currency, default: 0] += cost.minorUnits
    case .adjustment, .unposted, .unknown, .compare:
      // A row that names a charge the ledger knows moves money on that charge: staff must
      // see it (a refund, a dispute…); nothing is posted.
      if let named = try store.attemptNamedByAdjustment(row) {
        report.adjustments += 1
        // A refund Stripe's webhook told is in the journal already: staff compare, not record.
        let charge = named.processorRef?.split(separator: "/").last.map(String.init) ?? row.chargeID ?? row.sourceID
        var advice = "nothing posted; staff must record it"
        if row.reportingCategory == "refund", let charge, let posted = try store.refundPostedFromWebhook(charge: charge)
        {
          advice =
            "Stripe's webhook already posted refunds of \(posted) on this charge (journal `refund`); nothing more posted; compare the two"
        }
        try flag(
          "charge_adjustment", outcome: "adjustment", attemptID: named.attempt.id,
          "\(row.reportingCategory) of \(row.gross) (fee \(row.fee)) on attempt \(named.attempt.id) (key \(named.attempt.key), \(named.status.rawValue) in the ledger): \(advice)"
        )
        return
      }
      switch row.treatment {
      case .unposted:
        report.unposted += 1
        try flag(
          "unposted_balance_change", outcome: "unposted",
          "\(row.reportingCategory) of \(row.gross) (net \(row.net)) moves the processor's balance; the ledger does not post it: staff must record it"
        )
      case .unknown:
        report.unposted += 1
        try flag(
          "unknown_category", outcome: "unknown_category",
          "reporting category '\(row.reportingCategory)' is not one the ledger knows; \(row.gross) (net \(row.net)) not posted: staff must look"
        )
      default:
        report.other += 1
        try store.insertProcessorRow(
          row, attemptID: nil, outcome: "other",
          detail: "\(row.reportingCategory) naming no charge of the ledger: kept for the record", feeEntryID: nil)
      }
    }
  }
}
