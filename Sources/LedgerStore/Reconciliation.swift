import LedgerCore
import LedgerSQLite

/// A stored bank-statement line, as staff see it.
public struct StoredBankLine: Codable, Sendable, Equatable {
  public let id: Int64
  public let lineKey: String
  public let source: String
  public let statementID: String?
  public let bookingDate: String?
  public let valueDate: String?
  public let amount: Money
  public let direction: BankDirection
  public let isReversal: Bool
  public let bookingStatus: BookingStatus
  public let reference: String?
  public let remittance: String?
  public let counterpartyName: String?
  public let counterpartyIban: String?
  public let matchStatus: String
  public let matchRule: String?
  public let invoice: String?
  public let note: String?
  public let dismissReason: String?
}

/// A charge attempt as the processor's report is compared with it.
public struct AttemptForReport: Sendable, Equatable {
  public let attempt: PendingAttempt
  public let status: AttemptStatus
  public let processorRef: String?
}

/// A payout of the processor's balance, posted from its report.
public struct PostedPayout: Sendable, Equatable {
  public let payoutID: String
  public let balanceTransactionID: String
  /// What reaches the bank.
  public let amount: Money
  public let arrivalDate: String
  public let entryID: Int64
  public let reversalEntryID: Int64?
  public let bankLineID: Int64?
}

/// The payers the ledger knows, by normalized name and IBAN.
public struct KnownPayers: Sendable {
  public var names: [String: Set<Int64>] = [:]
  public var ibans: [String: Set<Int64>] = [:]

  /// Nobody known yet.
  public init() {}

  /// The accounts a line's counterparty may be.
  public func accounts(name: String?, iban: String?) -> Set<Int64> {
    var result: Set<Int64> = []
    if let iban = PayerIdentity.normalizedIBAN(iban), let ids = ibans[iban] { result.formUnion(ids) }
    if let name = PayerIdentity.normalizedName(name), let ids = names[name] { result.formUnion(ids) }
    return result
  }
}

extension LedgerStore {
  // MARK: - Bank lines

  static let bankLineSelect = """
    SELECT b.id, b.line_key, b.source, b.statement_id, b.booking_date, b.value_date, b.amount_minor, b.currency, b.direction,
      b.is_reversal, b.booking_status, b.reference, b.remittance, b.counterparty_name, b.counterparty_iban, b.match_status,
      b.match_rule, i.number AS invoice, b.note, b.dismiss_reason
    FROM bank_statement_lines b LEFT JOIN invoices i ON i.id = b.invoice_id
    """

  func bankLine(from row: Row) throws -> StoredBankLine {
    StoredBankLine(
      id: try row.int("id"), lineKey: try row.string("line_key"), source: try row.string("source"),
      statementID: try row.optionalString("statement_id"), bookingDate: try row.optionalString("booking_date"),
      valueDate: try row.optionalString("value_date"),
      amount: Money(minorUnits: try row.int("amount_minor"), currency: try Currency(code: try row.string("currency"))),
      direction: BankDirection(rawValue: try row.string("direction")) ?? .credit,
      isReversal: try row.bool("is_reversal"),
      bookingStatus: BookingStatus(rawValue: try row.string("booking_status")) ?? .booked,
      reference: try row.optionalString("reference"),
      remittance: try row.optionalString("remittance"), counterpartyName: try row.optionalString("counterparty_name"),
      counterpartyIban: try row.optionalString("counterparty_iban"), matchStatus: try row.string("match_status"),
      matchRule: try row.optionalString("match_rule"), invoice: try row.optionalString("invoice"),
      note: try row.optionalString("note"),
      dismissReason: try row.optionalString("dismiss_reason"))
  }

  /// The stored line with this key, if a statement already brought it.
  public func bankLine(key: String) throws -> StoredBankLine? {
    try db.queryOne(Self.bankLineSelect + " WHERE b.line_key = ?", key).map(bankLine(from:))
  }

  /// A payment recorded by hand (`ledgerd payment record`: no charge, no bank line yet) that
  /// a booked credit line is the bank's record of: the same reference (the line's bank
  /// reference, structured reference or whole remittance text; case and outer blanks
  /// ignored), the same amount and currency, received within `days` days either side of
  /// the line's booking date. The closest in time, then the oldest.
  public func handRecordedPayment(for line: BankLine, withinDays days: Int) throws
    -> (paymentID: Int64, accountID: Int64, invoiceID: Int64?, receivedOn: String, reference: String)?
  {
    let refs = [line.accountServicerRef, line.reference, line.remittance].compactMap { $0 }
    guard !refs.isEmpty else { return nil }
    let booked = line.bookingDate ?? today.iso8601
    let row = try db.queryOne(
      """
      SELECT p.id, p.account_id, p.received_on, p.reference,
        (SELECT min(a.invoice_id) FROM payment_allocations a WHERE a.payment_id = p.id) AS invoice_id
      FROM payments p
      WHERE p.bank_line_id IS NULL AND p.charge_attempt_id IS NULL AND p.amount_minor = ?1 AND p.currency = ?2
        AND p.method = 'transfer' AND p.reference IS NOT NULL
        AND lower(trim(p.reference)) IN (lower(trim(?3)), lower(trim(?4)), lower(trim(?5)))
        AND p.received_on BETWEEN date(?6, '-' || ?7 || ' days') AND date(?6, '+' || ?7 || ' days')
      ORDER BY abs(julianday(p.received_on) - julianday(?6)), p.id LIMIT 1
      """, line.amount.minorUnits, line.amount.currency.code, refs[0], refs.count > 1 ? refs[1] : refs[0],
      refs.count > 2 ? refs[2] : refs[0], booked, days)
    guard let row else { return nil }
    return (
      try row.int("id"), try row.int("account_id"), try row.optionalInt("invoice_id"), try row.string("received_on"),
      try row.string("reference")
    )
  }

  /// Links a hand-recorded payment to the bank line that is its record: the line is matched
  /// to it, and nothing is booked again (no payment, journal entry or email).
  public func linkBankLine(_ lineID: Int64, toPayment paymentID: Int64) throws {
    try db.run("UPDATE payments SET bank_line_id = ? WHERE id = ? AND bank_line_id IS NULL", lineID, paymentID)
  }

  /// The stored line with this id (what staff quote).
  public func bankLine(id: Int64) throws -> StoredBankLine? {
    try db.queryOne(Self.bankLineSelect + " WHERE b.id = ?", id).map(bankLine(from:))
  }

  /// Lines waiting for staff, oldest first.
  public func unmatchedBankLines(limit: Int = 100_000) throws -> [StoredBankLine] {
    try db.query(Self.bankLineSelect + " WHERE b.match_status = 'unmatched' ORDER BY b.id LIMIT ?", limit).map(
      bankLine(from:))
  }

  /// How many lines wait for staff.
  public func unmatchedBankLineCount() throws -> Int64 {
    try db.scalarInt("SELECT count(*) FROM bank_statement_lines WHERE match_status = 'unmatched'") ?? 0
  }

  /// Stores a new line with its first verdict. Its note is masked like every text ledgerd
  /// derives from a statement: a bank reference quoted in it may look like a card number.
  public func insertBankLine(_ line: BankLine, matchStatus: String, note: String?) throws -> Int64 {
    try db.run(
      """
      INSERT INTO bank_statement_lines (line_key, source, statement_id, booking_date, value_date, amount_minor, currency, direction,
        is_reversal, booking_status, reference, remittance, counterparty_name, counterparty_iban, match_status, note,
        account_servicer_ref, imported_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      """, line.lineKey, line.source, line.statementID, line.bookingDate, line.valueDate, line.amount.minorUnits,
      line.amount.currency.code, line.direction.rawValue, line.isReversal ? 1 : 0, line.status.rawValue, line.reference,
      line.remittance, line.counterpartyName, line.counterpartyIBAN, matchStatus, note.map(CardNumberText.masked),
      line.accountServicerRef,
      now)
    return db.lastInsertRowID
  }

  /// A pending line the bank has now booked: its booked fields replace the announced ones.
  public func bookPendingLine(id: Int64, _ line: BankLine) throws {
    try db.run(
      """
      UPDATE bank_statement_lines SET booking_status = 'booked', booking_date = ?, value_date = ?, amount_minor = ?, currency = ?,
        direction = ?, is_reversal = ?, reference = ?, remittance = ?, counterparty_name = ?, counterparty_iban = ?,
        match_status = 'unmatched', note = NULL
      WHERE id = ? AND booking_status = 'pending'
      """, line.bookingDate, line.valueDate, line.amount.minorUnits, line.amount.currency.code, line.direction.rawValue,
      line.isReversal ? 1 : 0, line.reference, line.remittance, line.counterpartyName, line.counterpartyIBAN, id)
  }

  /// Records the verdict on a line.
  public func markBankLine(_ id: Int64, status: String, invoiceID: Int64?, rule: String?, note: String?) throws {
    try db.run(
      "UPDATE bank_statement_lines SET match_status = ?, invoice_id = ?, match_rule = ?, note = ? WHERE id = ?", status,
      invoiceID, rule,
      note.map(CardNumberText.masked), id)
  }

  /// Staff set a line aside with a reason; it leaves the unmatched list.
  public func dismissBankLine(_ id: Int64, reason: String, actor: Actor) throws -> StoredBankLine {
    try write {
      guard let line = try bankLine(id: id) else { throw NotFoundError(field: "LINE", value: String(id)) }
      guard line.matchStatus == "unmatched" else {
        throw StateError(
          subject: "bank line \(id)", rule: "is \(line.matchStatus); only an unmatched line can be dismissed")
      }
      try db.run(
        "UPDATE bank_statement_lines SET match_status = 'dismissed', dismiss_reason = ?, dismissed_at = ? WHERE id = ?",
        reason, now, id)
      try recordEvent(
        account: nil, actor: actor, kind: "bank_line_dismissed",
        reason:
          "bank line \(id) (\(line.direction.rawValue) of \(line.amount)\(line.counterpartyName.map { " from \($0)" } ?? "")) dismissed: \(reason)",
        data: ["line_id": String(id), "line_key": CardNumberText.masked(line.lineKey)])
      return try bankLine(id: id)!
    }
  }

  /// The invoice whose payment reference is exactly this compact RF reference.
  public func invoiceID(paymentReference: String) throws -> Int64? {
    try db.scalarInt("SELECT id FROM invoices WHERE payment_reference = ?", paymentReference)
  }

  /// Account names, and the IBANs and names learned from matched lines.
  public func knownPayers() throws -> KnownPayers {
    var known = KnownPayers()
    for row in try db.query("SELECT id, name FROM accounts WHERE status <> 'closed'") {
      if let name = PayerIdentity.normalizedName(try row.string("name")) {
        known.names[name, default: []].insert(try row.int("id"))
      }
    }
    for row in try db.query("SELECT kind, value, account_id FROM payer_identities") {
      let id = try row.int("account_id")
      if try row.string("kind") == "iban" {
        known.ibans[try row.string("value"), default: []].insert(id)
      } else {
        known.names[try row.string("value"), default: []].insert(id)
      }
    }
    return known
  }

  /// Remembers who paid for an account, so their next transfer can be matched by amount.
  /// A name or IBAN longer than the column holds is not learned (never cut: two cut values
  /// could name different payers).
  public func learnPayer(account: Int64, name: String?, iban: String?, lineID: Int64) throws {
    for (kind, value) in [("iban", PayerIdentity.normalizedIBAN(iban)), ("name", PayerIdentity.normalizedName(name))] {
      guard let value, value.unicodeScalars.count <= PayerIdentity.maxLearnedLength else { continue }
      try db.run(
        "INSERT INTO payer_identities (kind, value, account_id, learned_from_line, learned_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        kind, value, account, lineID, now)
    }
  }

  /// Open transfer invoices of these accounts whose amount due is exactly `amount`.
  public func openTransferInvoices(accounts: Set<Int64>, due amount: Money) throws -> [Int64] {
    var ids: [Int64] = []
    for account in accounts.sorted() {
      ids += try db.query(
        """
        SELECT i.id FROM invoices i WHERE i.account_id = ? AND i.status = 'open' AND i.collection_method = 'transfer' AND i.currency = ?
          AND i.total_minor - (SELECT coalesce(sum(a.amount_minor), 0) FROM payment_allocations a WHERE a.invoice_id = i.id) = ?
        ORDER BY i.id
        """, account, amount.currency.code, amount.minorUnits
      ).map { try $0.int("id") }
    }
    return ids
  }

  /// The matched credit line a debit (or a reversal) seems to undo: same amount and
  /// currency, and the same reference, remittance or payer IBAN; the newest first.
  public func reversedCreditLine(for line: BankLine) throws -> (lineID: Int64, paymentID: Int64?, invoice: String?)? {
    guard
      let row = try db.queryOne(
        """
        SELECT b.id, p.id AS payment_id, i.number FROM bank_statement_lines b
        LEFT JOIN payments p ON p.bank_line_id = b.id LEFT JOIN invoices i ON i.id = b.invoice_id
        WHERE b.amount_minor = ?1 AND b.currency = ?2 AND b.direction = 'credit' AND b.match_status = 'matched'
          AND ((?3 IS NOT NULL AND b.reference = ?3) OR (?4 IS NOT NULL AND b.remittance = ?4) OR (?5 IS NOT NULL AND b.counterparty_iban = ?5))
        ORDER BY b.id DESC LIMIT 1
        """, line.amount.minorUnits, line.amount.currency.code, line.reference, line.remittance, line.counterpartyIBAN)
    else { return nil }
    return (try row.int("id"), try row.optionalInt("payment_id"), try row.optionalString("number"))
  }

  // MARK: - Processor report

  /// True when a report row with this balance transaction id was already imported.
  public func processorRowOutcome(_ balanceTransactionID: String) throws -> (outcome: String, detail: String?)? {
    try db.queryOne(
      "SELECT outcome, detail FROM processor_report_rows WHERE balance_transaction_id = ?", balanceTransactionID
    ).map {
      (try $0.string("outcome"), try $0.optionalString("detail"))
    }
  }

  /// The charge attempt a report row names, by idempotency key, else by the processor's charge id.
  public func attemptForReport(key: String?, processorRef: String?, attemptID: Int64? = nil) throws -> AttemptForReport?
  {
    let select = """
      SELECT a.id, a.idempotency_key, a.account_id, a.card_id, c.token, c.brand, c.last4, a.amount_minor, a.currency, a.status, a.processor_ref, a.created_at,
        (SELECT group_concat(invoice_id) FROM charge_attempt_invoices WHERE attempt_id = a.id) AS invoices
      FROM charge_attempts a JOIN cards c ON c.id = a.card_id
      """
    var row: Row?
    if let key { row = try db.queryOne(select + " WHERE a.idempotency_key = ?", key) }
    if row == nil, let processorRef { row = try db.queryOne(select + " WHERE a.processor_ref = ?", processorRef) }
    if row == nil, let attemptID { row = try db.queryOne(select + " WHERE a.id = ?", attemptID) }
    guard let row else { return nil }
    let attempt = PendingAttempt(
      id: try row.int("id"), key: try row.string("idempotency_key"), accountID: try row.int("account_id"),
      cardID: try row.int("card_id"),
      token: try row.string("token"),
      cardLabel: PendingAttempt.cardLabel(brand: try row.string("brand"), last4: try row.string("last4")),
      amount: Money(minorUnits: try row.int("amount_minor"), currency: try Currency(code: try row.string("currency"))),
      invoiceIDs: (try row.optionalString("invoices") ?? "").split(separator: ",").compactMap { Int64($0) },
      sentAt: try Instant(iso8601: try row.string("created_at")), processorRef: try row.optionalString("processor_ref"))
    return AttemptForReport(
      attempt: attempt, status: AttemptStatus(rawValue: try row.string("status")) ?? .pending,
      processorRef: try row.optionalString("processor_ref"))
  }

  /// The charge attempt a report row names: by the ledger's idempotency key, else by the
  /// processor's references as the attempt stores them (`processor_ref`): `pi_…/ch_…`, the
  /// charge id or source id alone, the PaymentIntent alone, or any charge of that
  /// PaymentIntent (`pi_…/…`). Every look-up goes through an index.
  public func attemptForReportRow(_ row: ProcessorReportRow) throws -> AttemptForReport? {
    if let key = row.idempotencyKey, let found = try attemptForReport(key: key, processorRef: nil) { return found }
    var refs: [String] = []
    for ref in [row.processorRef, row.sourceID, row.chargeID, row.paymentIntentID].compactMap({ $0 })
    where !refs.contains(ref) {
      refs.append(ref)
    }
    for ref in refs {
      if let found = try attemptForReport(key: nil, processorRef: ref) { return found }
    }
    if let pi = row.paymentIntentID,
      let id = try db.scalarInt(
        "SELECT id FROM charge_attempts WHERE processor_ref > ?1 || '/' AND processor_ref < ?1 || '0' ORDER BY id LIMIT 1",
        pi)
    {
      return try attemptForReport(key: nil, processorRef: nil, attemptID: id)
    }
    return nil
  }

  /// The charge attempt a non-charge row (refund, dispute…) names: by idempotency key or
  /// the processor's references (`attemptForReportRow`), else through a charge row already
  /// imported with that charge or payment intent id.
  public func attemptNamedByAdjustment(_ row: ProcessorReportRow) throws -> AttemptForReport? {
    if let found = try attemptForReportRow(row) { return found }
    let charge = row.chargeID ?? row.sourceID
    guard charge != nil || row.paymentIntentID != nil,
      let id = try db.scalarInt(
        """
        SELECT attempt_id FROM processor_report_rows WHERE attempt_id IS NOT NULL AND reporting_category = 'charge'
          AND ((?1 IS NOT NULL AND (source_id = ?1 OR payment_intent_id = ?1)) OR (?2 IS NOT NULL AND payment_intent_id = ?2))
        ORDER BY created LIMIT 1
        """, charge, row.paymentIntentID)
    else { return nil }
    return try attemptForReport(key: nil, processorRef: nil, attemptID: id)
  }

  /// The balance transaction of a charge row that already settled this attempt (matched
  /// or recorded), if any.
  public func settlingReportRow(attempt: Int64) throws -> String? {
    try db.queryOne(
      "SELECT balance_transaction_id FROM processor_report_rows WHERE attempt_id = ? AND outcome IN ('matched', 'recorded') ORDER BY created LIMIT 1",
      attempt
    ).map { try $0.string("balance_transaction_id") }
  }

  /// Stores a report row with the comparison's outcome; the detail, which quotes the
  /// processor's ids, is masked (the ids' own columns keep them as given).
  public func insertProcessorRow(
    _ row: ProcessorReportRow, attemptID: Int64?, outcome: String, detail: String?, feeEntryID: Int64?
  ) throws {
    try db.run(
      """
      INSERT INTO processor_report_rows (balance_transaction_id, created, currency, gross_minor, fee_minor, net_minor, reporting_category,
        source_id, payment_intent_id, idempotency_key, attempt_id, outcome, detail, fee_entry_id, imported_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      """, row.balanceTransactionID, row.created, row.gross.currency.code, row.gross.minorUnits, row.fee.minorUnits,
      row.net.minorUnits,
      row.reportingCategory, row.sourceID, row.paymentIntentID, row.idempotencyKey, attemptID, outcome,
      detail.map(CardNumberText.masked),
      feeEntryID, now)
  }

  /// Posts the processor's fee on a settled charge: processor fees / processor clearing, so
  /// what stays in clearing is the payout's net.
  public func postProcessorFee(_ fee: Money, balanceTransactionID: String, paymentID: Int64?) throws -> Int64? {
    guard fee.minorUnits != 0 else { return nil }
    let lines: [JournalLine] =
      fee.minorUnits > 0
      ? [.debit(.processorFees, fee), .credit(.processorClearing, fee)]
      : [
        .debit(.processorClearing, Money(minorUnits: -fee.minorUnits, currency: fee.currency)),
        .credit(.processorFees, Money(minorUnits: -fee.minorUnits, currency: fee.currency)),
      ]
    return try post(
      try JournalEntry(
        kind: .processorFee, memo: CardNumberText.masked("processor fee \(fee) on \(balanceTransactionID)"),
        lines: lines,
        paymentID: paymentID))
  }

  /// True when another charge attempt already paid this invoice successfully.
  public func invoicePaidByOtherCharge(_ invoiceID: Int64, attempt: Int64) throws -> Bool {
    try db.scalarInt(
      """
      SELECT count(*) FROM charge_attempt_invoices ci JOIN charge_attempts a ON a.id = ci.attempt_id
      WHERE ci.invoice_id = ? AND a.id <> ? AND a.status = 'succeeded'
      """, invoiceID, attempt) ?? 0 > 0
  }

  /// The attempt's invoices that a payment other than this attempt's (a transfer, a
  /// manual payment, account credit, another charge) already paid in whole or in part.
  public func invoicesPaidByOtherPayments(attempt: Int64) throws -> [String] {
    try db.query(
      """
      SELECT DISTINCT i.number FROM charge_attempt_invoices ci JOIN invoices i ON i.id = ci.invoice_id
      JOIN payment_allocations pa ON pa.invoice_id = i.id JOIN payments p ON p.id = pa.payment_id
      WHERE ci.attempt_id = ?1 AND (p.charge_attempt_id IS NULL OR p.charge_attempt_id <> ?1)
      ORDER BY i.id
      """, attempt
    ).map { try $0.string("number") }
  }

  /// The payment a succeeded attempt recorded.
  public func paymentID(attempt: Int64) throws -> Int64? {
    try db.scalarInt("SELECT id FROM payments WHERE charge_attempt_id = ?", attempt)
  }

  /// Succeeded attempts created on the report's days that no report row has named.
  public func succeededAttemptsMissingFromReports(fromDay: String, toDay: String) throws -> [(
    id: Int64, key: String, amount: Money, createdAt: String
  )] {
    try db.query(
      """
      SELECT a.id, a.idempotency_key, a.amount_minor, a.currency, a.created_at FROM charge_attempts a
      WHERE a.status = 'succeeded' AND substr(a.created_at, 1, 10) BETWEEN ? AND ?
        AND NOT EXISTS (SELECT 1 FROM processor_report_rows r WHERE r.attempt_id = a.id AND r.reporting_category = 'charge')
      ORDER BY a.id
      """, fromDay, toDay
    ).map {
      (
        try $0.int("id"), try $0.string("idempotency_key"),
        Money(minorUnits: try $0.int("amount_minor"), currency: try Currency(code: try $0.string("currency"))),
        try $0.string("created_at")
      )
    }
  }

  // MARK: - Payouts

  static let payoutSelect = """
    SELECT payout_id, balance_transaction_id, currency, amount_minor, arrival_date, entry_id, reversal_entry_id, bank_line_id
    FROM processor_payouts
    """

  func payout(from row: Row) throws -> PostedPayout {
    PostedPayout(
      payoutID: try row.string("payout_id"), balanceTransactionID: try row.string("balance_transaction_id"),
      amount: Money(minorUnits: try row.int("amount_minor"), currency: try Currency(code: try row.string("currency"))),
      arrivalDate: try row.string("arrival_date"), entryID: try row.int("entry_id"),
      reversalEntryID: try row.optionalInt("reversal_entry_id"), bankLineID: try row.optionalInt("bank_line_id"))
  }

  /// The payout posted under this id, if any.
  public func payout(id: String) throws -> PostedPayout? {
    try db.queryOne(Self.payoutSelect + " WHERE payout_id = ?", id).map(payout(from:))
  }

  /// Posts a payout row of the report (its report row already stored): bank / processor
  /// clearing for what reaches the bank, and the payout's own fee, if any, to processor
  /// fees; what leaves the processor's balance is the row's net.
  public func postPayout(_ row: ProcessorReportRow, payoutID: String, arrivalDate: String) throws -> PostedPayout {
    let toBank = Money(minorUnits: -row.gross.minorUnits, currency: row.gross.currency)
    let outOfBalance = Money(minorUnits: -row.net.minorUnits, currency: row.net.currency)
    var lines: [JournalLine] = [.debit(.bank, toBank)]
    if row.fee.minorUnits > 0 { lines.append(.debit(.processorFees, row.fee)) }
    if row.fee.minorUnits < 0 {
      lines.append(.credit(.processorFees, Money(minorUnits: -row.fee.minorUnits, currency: row.fee.currency)))
    }
    lines.append(.credit(.processorClearing, outOfBalance))
    let entryID = try post(
      try JournalEntry(
        kind: .payout,
        memo: CardNumberText.masked(
          "payout \(payoutID) of \(toBank) to the bank, expected \(arrivalDate) (\(row.balanceTransactionID))"),
        lines: lines))
    try db.run(
      """
      INSERT INTO processor_payouts (payout_id, balance_transaction_id, currency, amount_minor, arrival_date, entry_id, posted_at)
      VALUES (?, ?, ?, ?, ?, ?, ?)
      """, payoutID, row.balanceTransactionID, toBank.currency.code, toBank.minorUnits, arrivalDate, entryID, now)
    return PostedPayout(
      payoutID: payoutID, balanceTransactionID: row.balanceTransactionID, amount: toBank, arrivalDate: arrivalDate,
      entryID: entryID, reversalEntryID: nil, bankLineID: nil)
  }

  /// Reverses a payout that failed (its reversal row already stored): the payout's entry
  /// with every line's side swapped.
  public func reversePayout(_ payout: PostedPayout, balanceTransactionID: String) throws -> Int64 {
    var lines: [JournalLine] = []
    for row in try db.query(
      "SELECT ledger_account, currency, debit_minor, credit_minor FROM journal_lines WHERE entry_id = ? ORDER BY id",
      payout.entryID)
    {
      let currency = try Currency(code: try row.string("currency"))
      let account = LedgerAccount(rawValue: try row.string("ledger_account")) ?? .processorClearing
      let debit = try row.int("debit_minor")
      let credit = try row.int("credit_minor")
      lines.append(
        debit > 0
          ? .credit(account, Money(minorUnits: debit, currency: currency))
          : .debit(account, Money(minorUnits: credit, currency: currency)))
    }
    let entryID = try post(
      try JournalEntry(
        kind: .reversal,
        memo: CardNumberText.masked(
          "payout \(payout.payoutID) of \(payout.amount) failed and came back to the processor's balance (\(balanceTransactionID))"
        ),
        lines: lines))
    try db.run(
      "UPDATE processor_payouts SET reversal_balance_transaction_id = ?, reversal_entry_id = ? WHERE payout_id = ?",
      balanceTransactionID, entryID, payout.payoutID)
    return entryID
  }

  /// The payout, not yet matched nor reversed, that a credit of this amount booked on
  /// `day` may be: expected within `days` days of it, the closest first, then the oldest.
  public func waitingPayout(amount: Money, near day: String, withinDays days: Int) throws -> PostedPayout? {
    try db.queryOne(
      Self.payoutSelect
        + """
         WHERE amount_minor = ?1 AND currency = ?2 AND bank_line_id IS NULL AND reversal_entry_id IS NULL
          AND arrival_date BETWEEN date(?3, '-' || ?4 || ' days') AND date(?3, '+' || ?4 || ' days')
        ORDER BY abs(julianday(arrival_date) - julianday(?3)), posted_at, payout_id LIMIT 1
        """, amount.minorUnits, amount.currency.code, day, days
    ).map(payout(from:))
  }

  /// Records that a bank line is a payout's arrival: the line matched by the rule `payout`
  /// (no payment), the payout linked to it.
  public func matchPayout(_ payoutID: String, lineID: Int64, note: String) throws {
    try db.run(
      "UPDATE processor_payouts SET bank_line_id = ?, matched_at = ? WHERE payout_id = ? AND bank_line_id IS NULL",
      lineID, now, payoutID)
    try markBankLine(lineID, status: "matched", invoiceID: nil, rule: "payout", note: note)
  }

  /// Booked credits still unmatched with this amount and currency: the lines a payout just
  /// posted may be.
  public func unmatchedCredits(amount: Money) throws -> [StoredBankLine] {
    try db.query(
      Self.bankLineSelect
        + """
         WHERE b.amount_minor = ? AND b.currency = ? AND b.direction = 'credit' AND b.match_status = 'unmatched'
          AND b.is_reversal = 0 AND b.booking_status = 'booked' ORDER BY b.id
        """, amount.minorUnits, amount.currency.code
    ).map(bankLine(from:))
  }

  /// Records an event about reconciliation; its reason and data, which quote the
  /// processor's and the bank's ids, are masked.
  public func recordReconciliationEvent(
    account: Int64?, invoice: Int64? = nil, actor: Actor, kind: String, reason: String, data: [String: String] = [:]
  )
    throws
  {
    try recordEvent(
      account: account, invoice: invoice, actor: actor, kind: kind, reason: CardNumberText.masked(reason),
      data: data.mapValues(CardNumberText.masked))
  }
}
