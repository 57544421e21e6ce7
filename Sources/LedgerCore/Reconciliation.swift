/// Which way money moved on the ledger's bank account.
public enum BankDirection: String, Sendable, Codable, Equatable {
  case credit, debit
}

/// Whether the bank has booked an entry or only announces it.
public enum BookingStatus: String, Sendable, Codable, Equatable {
  case booked, pending
}

/// One line of a bank statement as read from a file, before it is stored: a camt.053
/// transaction detail (or entry without details) or a row of the bank CSV.
public struct BankLine: Sendable, Equatable, Codable {
  /// What makes a re-import record nothing twice (see `docs/reconciliation.md`, "Line keys").
  public var lineKey: String
  public var source: String
  public var statementID: String?
  public var accountIBAN: String?
  /// The bank's reference of the entry (camt.053 `AcctSvcrRef`), when given.
  public var accountServicerRef: String?
  public var bookingDate: String?
  public var valueDate: String?
  public var amount: Money
  public var direction: BankDirection
  public var isReversal: Bool
  public var status: BookingStatus
  /// Structured creditor reference (`CdtrRefInf/Ref`), when given.
  public var reference: String?
  /// Unstructured remittance information, several `Ustrd` joined with a space.
  public var remittance: String?
  public var counterpartyName: String?
  public var counterpartyIBAN: String?

  /// A line with every field given; the readers build these.
  public init(
    lineKey: String, source: String, statementID: String? = nil, accountIBAN: String? = nil,
    accountServicerRef: String? = nil,
    bookingDate: String?, valueDate: String?, amount: Money, direction: BankDirection, isReversal: Bool = false,
    status: BookingStatus = .booked, reference: String? = nil, remittance: String? = nil,
    counterpartyName: String? = nil,
    counterpartyIBAN: String? = nil
  ) {
    self.lineKey = lineKey
    self.source = source
    self.statementID = statementID
    self.accountIBAN = accountIBAN
    self.accountServicerRef = accountServicerRef
    self.bookingDate = bookingDate
    self.valueDate = valueDate
    self.amount = amount
    self.direction = direction
    self.isReversal = isReversal
    self.status = status
    self.reference = reference
    self.remittance = remittance
    self.counterpartyName = counterpartyName
    self.counterpartyIBAN = counterpartyIBAN
  }

  /// The fields that identify an entry when the bank gave no reference of its own, in a
  /// fixed order (the fallback line key hashes them).
  public var identityFields: [String] {
    [
      accountIBAN ?? "", bookingDate ?? "", valueDate ?? "", String(amount.minorUnits), amount.currency.code,
      direction.rawValue,
      isReversal ? "1" : "0", reference ?? "", remittance ?? "", counterpartyName ?? "", counterpartyIBAN ?? "",
    ]
  }
}

/// How a bank line is keyed, whatever file brought it (see `docs/reconciliation.md`, "Line keys"): the
/// servicing account and the bank's own reference of the movement, never the statement, so
/// overlapping statements, the same movement in a CSV export and in a camt.053 statement,
/// and two accounts whose banks number their lines alike each give one key per movement.
public enum BankLineKey {
  /// The longest key stored (the column's limit).
  public static let maxLength = 300

  /// The servicing account as keys name it: the IBAN (or, without one, the bank's other
  /// account id) upper-cased without spaces, with `%` and `:` escaped; nil when empty.
  public static func account(_ raw: String?) -> String? {
    guard let compact = PayerIdentity.normalizedIBAN(raw) else { return nil }
    var escaped = ""
    for ch in compact {
      switch ch {
      case "%": escaped += "%25"
      case ":": escaped += "%3A"
      default: escaped.append(ch)
      }
    }
    return escaped
  }

  /// `acct:<account>:ref:<bank reference>`.
  public static func reference(account: String, ref: String) -> String {
    "acct:\(account):ref:\(ref)"
  }

  /// Without a bank reference: `acct:<account>:sha256:<hash of the line's fields>:<k>`, k
  /// counting identical lines in the same file.
  public static func fallback(account: String?, hash: String, occurrence: Int) -> String {
    "acct:\(account ?? ""):sha256:\(hash):\(occurrence)"
  }

  /// Refuses a key longer than the column allows rather than cutting it (two cut keys could meet).
  public static func checked(_ key: String, field: String) throws -> String {
    guard key.count <= maxLength else {
      throw InputError(
        field: field, rule: "account and bank reference make a line key longer than \(maxLength) characters")
    }
    return key
  }
}

/// Finds invoice payment references in what a payer wrote.
public enum ReferenceFinder {
  /// Every ISO 11649 reference with valid check digits that the structured reference or
  /// the remittance text may hold, in the order found (structured first). Spaces, dashes
  /// and case are ignored (`rf18 inv0 0000 1`), and a missing `RF` prefix is tolerated at
  /// the start of a word (`18INV000001`); the check digits must match either way. The
  /// caller keeps the first one that names an invoice.
  public static func candidates(structured: String?, remittance: String?) -> [String] {
    var found: [String] = []
    for text in [structured, remittance].compactMap({ $0 }) {
      for segment in segments(of: text) {
        let chars = segment.chars
        for start in chars.indices {
          let hasPrefix = start + 1 < chars.count && chars[start] == 82 && chars[start + 1] == 70  // "RF"
          guard hasPrefix || segment.wordStarts.contains(start) else { continue }
          let bodyStart = hasPrefix ? start + 2 : start
          guard bodyStart + 3 <= chars.count, isDigit(chars[bodyStart]), isDigit(chars[bodyStart + 1]) else { continue }
          let check = Int(chars[bodyStart] - 48) * 10 + Int(chars[bodyStart + 1] - 48)
          guard (2...98).contains(check) else { continue }
          var remainder = 0
          var valid: [Int] = []
          for end in (bodyStart + 2)..<min(chars.count, bodyStart + 23) {
            remainder = step(remainder, chars[end])
            // The body followed by "RF" and the check digits must leave 1 (ISO 7064 mod 97-10).
            var r = step(remainder, 82)
            r = step(r, 70)
            r = step(r, chars[bodyStart])
            r = step(r, chars[bodyStart + 1])
            if r == 1 { valid.append(end + 1) }
          }
          for end in valid.reversed() {
            let candidate = "RF" + String(decoding: chars[bodyStart..<end], as: UTF8.self)
            if !found.contains(candidate) { found.append(candidate) }
          }
        }
      }
    }
    return found
  }

  static func isDigit(_ c: UInt8) -> Bool { (48...57).contains(c) }

  static func step(_ remainder: Int, _ c: UInt8) -> Int {
    if isDigit(c) { return (remainder * 10 + Int(c - 48)) % 97 }
    return (remainder * 100 + Int(c - 55)) % 97
  }

  /// Runs of ASCII letters and digits, upper-cased, with spaces and dashes inside a run
  /// dropped (payers group references by four); any other character ends a run. Where each
  /// original word began is kept, for references quoted without their `RF`.
  static func segments(of text: String) -> [(chars: [UInt8], wordStarts: Set<Int>)] {
    var result: [(chars: [UInt8], wordStarts: Set<Int>)] = []
    var current: [UInt8] = []
    var starts: Set<Int> = []
    var atWordStart = true
    for byte in text.utf8 {
      switch byte {
      case 48...57, 65...90, 97...122:
        if atWordStart { starts.insert(current.count) }
        current.append(byte >= 97 ? byte - 32 : byte)
        atWordStart = false
      case 32, 45:  // space, dash
        atWordStart = true
      default:
        if !current.isEmpty { result.append((current, starts)) }
        current = []
        starts = []
        atWordStart = true
      }
    }
    if !current.isEmpty { result.append((current, starts)) }
    return result
  }
}

/// How payer names and IBANs are compared: case, accents, punctuation and spacing ignored.
public enum PayerIdentity {
  /// `"  Marie-Curie "`, `"MARIE CURIE"` and `"Marié Curie"` compare equal; empty stays nil.
  /// Never cut, so that two long names sharing their first characters stay apart.
  public static func normalizedName(_ name: String?) -> String? {
    guard let name else { return nil }
    var words: [String] = []
    var current = ""
    for scalar in name.lowercased().unicodeScalars {
      let folded = fold(scalar)
      if folded.allSatisfy({ $0.isLetter || $0.isNumber }) && !folded.isEmpty {
        current += folded
      } else if !current.isEmpty {
        words.append(current)
        current = ""
      }
    }
    if !current.isEmpty { words.append(current) }
    let joined = words.joined(separator: " ")
    return joined.isEmpty ? nil : joined
  }

  /// An IBAN without spaces, upper-cased; nil when empty. Never cut: it is part of line
  /// keys, and two long account ids cut alike would make two accounts' lines collide.
  public static func normalizedIBAN(_ iban: String?) -> String? {
    guard let iban else { return nil }
    let compact = iban.uppercased().filter { !$0.isWhitespace }
    return compact.isEmpty ? nil : compact
  }

  /// The longest name or IBAN learned as a payer identity (`payer_identities.value`'s limit);
  /// a longer one is still matched against known payers but never learned.
  public static let maxLearnedLength = 200

  /// Latin letters with accents lose them (enough for payer names on European statements).
  static func fold(_ scalar: Unicode.Scalar) -> String {
    let table: [ClosedRange<UInt32>: String] = [
      0xE0...0xE5: "a", 0xE7...0xE7: "c", 0xE8...0xEB: "e", 0xEC...0xEF: "i", 0xF1...0xF1: "n", 0xF2...0xF6: "o",
      0xF8...0xF8: "o",
      0xF9...0xFC: "u", 0xFD...0xFD: "y", 0xFF...0xFF: "y", 0xDF...0xDF: "ss", 0xE6...0xE6: "ae", 0x153...0x153: "oe",
    ]
    for (range, replacement) in table where range.contains(scalar.value) { return replacement }
    return String(scalar)
  }
}

/// A byte-at-a-time UTF-8 check (RFC 3629) for the statement readers: files from a bank
/// are read as UTF-8, and a byte that is not (a Latin-1 export, a damaged file) must refuse
/// the file with its place rather than be replaced by U+FFFD or crash a parser. Refused:
/// bytes that never appear in UTF-8 (0xC0, 0xC1, 0xF5 to 0xFF), a continuation byte without
/// a lead byte, truncated sequences, overlong forms, UTF-16 surrogates and code points past
/// U+10FFFF. Fed one byte at a time, it keeps only the sequence in hand, so it works across
/// the chunks a file is read in.
public struct UTF8Validator: Sendable {
  /// Continuation bytes still expected for the character in hand.
  @usableFromInline var need: UInt8 = 0
  /// The range the next continuation byte must fall in (narrower after E0, ED, F0, F4).
  @usableFromInline var low: UInt8 = 0x80
  @usableFromInline var high: UInt8 = 0xBF
  /// The lead byte of the character in hand, for the error message.
  @usableFromInline var lead: UInt8 = 0

  /// At the start of a file.
  public init() {}

  /// True between the lead byte of a character and its last continuation byte.
  @inlinable public var inSequence: Bool { need > 0 }

  /// Takes the next byte; returns nil when all is well so far, else what is wrong.
  @inlinable @inline(__always)
  public mutating func step(_ byte: UInt8) -> String? {
    if need == 0 {
      if byte < 0x80 { return nil }
      lead = byte
      low = 0x80
      high = 0xBF
      switch byte {
      case 0xC2...0xDF: need = 1
      case 0xE0:
        need = 2
        low = 0xA0
      case 0xE1...0xEC, 0xEE, 0xEF: need = 2
      case 0xED:
        need = 2
        high = 0x9F
      case 0xF0:
        need = 3
        low = 0x90
      case 0xF1...0xF3: need = 3
      case 0xF4:
        need = 3
        high = 0x8F
      default: return Self.badLead(byte)
      }
      return nil
    }
    guard byte >= low && byte <= high else {
      need = 0
      return Self.badContinuation(byte, lead: lead)
    }
    need -= 1
    low = 0x80
    high = 0xBF
    return nil
  }

  /// What is wrong with a byte that cannot start a character.
  @usableFromInline static func badLead(_ byte: UInt8) -> String {
    switch byte {
    case 0x80...0xBF: return "byte \(hex(byte)) continues a character that has no first byte"
    case 0xC0, 0xC1: return "byte \(hex(byte)) starts an overlong (non-shortest) form"
    default: return "byte \(hex(byte)) never appears in UTF-8"
    }
  }

  /// What is wrong with the byte after `lead`'s sequence began.
  @usableFromInline static func badContinuation(_ byte: UInt8, lead: UInt8) -> String {
    guard byte >= 0x80 && byte <= 0xBF else {
      return "the character begun by byte \(hex(lead)) is cut short by byte \(hex(byte)) (a truncated sequence)"
    }
    switch lead {
    case 0xE0, 0xF0: return "bytes \(hex(lead)) \(hex(byte)) begin an overlong (non-shortest) form"
    case 0xED: return "bytes \(hex(lead)) \(hex(byte)) begin a UTF-16 surrogate (U+D800 to U+DFFF), not a character"
    default: return "bytes \(hex(lead)) \(hex(byte)) begin a code point beyond U+10FFFF"
    }
  }

  /// What is wrong when the input ends inside a character.
  public var truncatedAtEnd: String {
    "the input ends inside the character begun by byte \(Self.hex(lead)) (a truncated sequence)"
  }

  /// `0xFF`: how the messages name a byte.
  public static func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return "0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
  }
}

/// A streaming RFC 4180 CSV reader: fed bytes in chunks, it hands over each record as it
/// completes, so a file of any size is read in bounded memory. Quoted fields may hold
/// commas, doubled quotes and line breaks; a trailing CR is dropped. The bytes must be
/// UTF-8 without control characters other than tab, CR and LF: anything else (a Latin-1
/// export, a NUL, an escape sequence that would reach a terminal) is refused with its line,
/// never replaced or passed on.
public struct CSVReader {
  private var utf8 = UTF8Validator()
  private var field: [UInt8] = []
  private var record: [String] = []
  private var inQuotes = false
  private var quoteSeen = false
  private var fieldStarted = false
  /// The line the current record started on (1-based), for error messages.
  public private(set) var recordLine = 1
  private var line = 1
  /// The longest field accepted; a longer one is refused rather than buffered without end.
  public var maxFieldBytes = 64 * 1024

  /// A reader at the start of a file.
  public init() {}

  /// Feeds the next bytes; `emit` receives each complete record with its first line number.
  public mutating func feed(_ bytes: some Sequence<UInt8>, emit: ([String], Int) throws -> Void) throws {
    for byte in bytes {
      if byte >= 0x80 || utf8.inSequence {
        if let problem = utf8.step(byte) {
          throw InputError(field: "line \(line)", rule: "not UTF-8: \(problem); the file must be UTF-8")
        }
      } else if byte < 0x20 && byte != 9 && byte != 10 && byte != 13 {
        throw InputError(
          field: "line \(line)",
          rule: "a control character (byte \(UTF8Validator.hex(byte))) is not allowed; only tab, CR and LF are")
      }
      if inQuotes {
        if byte == UInt8(ascii: "\"") {
          inQuotes = false
          quoteSeen = true
        } else {
          if byte == UInt8(ascii: "\n") { line += 1 }
          try append(byte)
        }
        continue
      }
      switch byte {
      case UInt8(ascii: "\""):
        if quoteSeen {
          // A doubled quote inside a quoted field.
          try append(byte)
          inQuotes = true
          quoteSeen = false
        } else if !fieldStarted {
          inQuotes = true
          fieldStarted = true
        } else {
          throw InputError(
            field: "line \(line)", rule: "a quote in the middle of an unquoted field (quote the whole field)")
        }
      case UInt8(ascii: ","):
        endField()
      case UInt8(ascii: "\n"):
        endField()
        if field.isEmpty && record.count == 1 && record[0].isEmpty {
          record = []  // an empty line
        } else {
          try emit(record, recordLine)
          record = []
        }
        line += 1
        recordLine = line
      case UInt8(ascii: "\r"):
        continue
      default:
        if quoteSeen {
          throw InputError(
            field: "line \(line)", rule: "text after a closing quote (a quote inside a field is written twice)")
        }
        fieldStarted = true
        try append(byte)
      }
    }
  }

  /// Ends the input: a last record without a final newline is emitted; an open quote is refused.
  public mutating func finish(emit: ([String], Int) throws -> Void) throws {
    if utf8.inSequence { throw InputError(field: "line \(line)", rule: "not UTF-8: \(utf8.truncatedAtEnd)") }
    if inQuotes {
      throw InputError(field: "line \(recordLine)", rule: "a quoted field is not closed (truncated file?)")
    }
    if fieldStarted || !record.isEmpty || !field.isEmpty {
      endField()
      try emit(record, recordLine)
      record = []
    }
  }

  private mutating func append(_ byte: UInt8) throws {
    guard field.count < maxFieldBytes else {
      throw InputError(field: "line \(recordLine)", rule: "a field longer than \(maxFieldBytes) bytes")
    }
    field.append(byte)
  }

  private mutating func endField() {
    record.append(String(decoding: field, as: UTF8.self))
    field.removeAll(keepingCapacity: true)
    quoteSeen = false
    fieldStarted = false
  }
}

/// The bank CSV format (documented in docs/reconciliation.md): a header row naming the columns, then
/// one row per line.
///
/// Required: `booking_date` (YYYY-MM-DD), `amount` (decimal with a dot, negative for a
/// debit), `currency`. Optional: `id` (the bank's reference: with the account, the line
/// key), `account_iban` or `account` (the servicing account; required with `id`),
/// `value_date`, `status` (`booked`, the default, or `pending`), `reversal` (`true`/`false`),
/// `reference`, `remittance`, `counterparty_name`, `counterparty_iban`.
public struct BankCSVFormat {
  /// Columns every bank CSV must have.
  public static let required = ["booking_date", "amount", "currency"]
  /// Every column the format knows; others are refused.
  public static let known =
    required + [
      "id", "value_date", "status", "reversal", "reference", "remittance", "counterparty_name", "counterparty_iban",
      "account_iban",
      "account",
    ]
  let index: [String: Int]

  /// Reads the header; unknown columns are refused so a misspelt one is not silently empty.
  public init(header: [String]) throws {
    var index: [String: Int] = [:]
    for (i, raw) in header.enumerated() {
      let name = raw.trimmingCSV.lowercased()
      guard BankCSVFormat.known.contains(name) else {
        throw InputError(
          field: "header", rule: "unknown column '\(raw)' (known: \(BankCSVFormat.known.joined(separator: ", ")))")
      }
      guard index[name] == nil else { throw InputError(field: "header", rule: "column '\(name)' appears twice") }
      index[name] = i
    }
    for name in BankCSVFormat.required where index[name] == nil {
      throw InputError(
        field: "header",
        rule: "the column '\(name)' is missing (required: \(BankCSVFormat.required.joined(separator: ", ")))")
    }
    if index["id"] != nil && index["account_iban"] == nil && index["account"] == nil {
      throw InputError(
        field: "header",
        rule:
          "the column 'id' needs 'account_iban' (or 'account'): a line is keyed by its account and the bank's reference"
      )
    }
    self.index = index
  }

  func value(_ record: [String], _ name: String) -> String? {
    guard let i = index[name], i < record.count else { return nil }
    let text = record[i].trimmingCSV
    return text.isEmpty ? nil : text
  }

  /// One row as a bank line; `fallbackKey` (given the line and its key account) is used
  /// when the row has no `id`. A card number typed into `remittance`, `counterparty_name`
  /// or `reference` is masked (`**** **** **** 4242`) before anything sees it; the keys
  /// (`id`, the IBANs) are kept as given, since masking them could make two movements collide.
  public func line(_ record: [String], lineNumber: Int, fallbackKey: (BankLine, String?) -> String) throws -> BankLine {
    let field = "line \(lineNumber)"
    guard record.count == index.count else {
      throw InputError(field: field, rule: "has \(record.count) fields; the header has \(index.count)")
    }
    let currency = try Currency(code: (value(record, "currency") ?? "").uppercased(), field: "\(field) currency")
    let signed = try Money.parse(value(record, "amount") ?? "", currency: currency, field: "\(field) amount")
    guard signed.minorUnits != 0 else { throw InputError(field: "\(field) amount", rule: "must not be zero") }
    let booking = try CivilDate(iso8601: value(record, "booking_date") ?? "", field: "\(field) booking_date").iso8601
    let valueDate = try value(record, "value_date").map {
      try CivilDate(iso8601: $0, field: "\(field) value_date").iso8601
    }
    let status: BookingStatus
    switch value(record, "status")?.lowercased() ?? "booked" {
    case "booked": status = .booked
    case "pending": status = .pending
    case let other: throw InputError(field: "\(field) status", rule: "'\(other)' must be booked or pending")
    }
    let reversal: Bool
    switch value(record, "reversal")?.lowercased() ?? "false" {
    case "true", "1", "yes": reversal = true
    case "false", "0", "no": reversal = false
    case let other: throw InputError(field: "\(field) reversal", rule: "'\(other)' must be true or false")
    }
    var line = BankLine(
      lineKey: "", source: "csv", accountIBAN: PayerIdentity.normalizedIBAN(value(record, "account_iban")),
      accountServicerRef: value(record, "id"), bookingDate: booking, valueDate: valueDate,
      amount: Money(minorUnits: abs(signed.minorUnits), currency: currency),
      direction: signed.minorUnits < 0 ? .debit : .credit, isReversal: reversal, status: status,
      reference: value(record, "reference").map(CardNumberText.masked),
      remittance: value(record, "remittance").map(CardNumberText.masked),
      counterpartyName: value(record, "counterparty_name").map(CardNumberText.masked),
      counterpartyIBAN: PayerIdentity.normalizedIBAN(value(record, "counterparty_iban")))
    let accountColumn = value(record, "account_iban") != nil || index["account"] == nil ? "account_iban" : "account"
    let account = BankLineKey.account(value(record, "account_iban") ?? value(record, "account"))
    if let id = line.accountServicerRef {
      guard id.count <= 200 else { throw InputError(field: "\(field) id", rule: "longer than 200 characters") }
      guard let account else {
        throw InputError(
          field: "\(field) \(accountColumn)",
          rule: "is required when id is given (the line key is the account and the id)")
      }
      line.lineKey = try BankLineKey.checked(BankLineKey.reference(account: account, ref: id), field: "\(field) id")
    } else {
      line.lineKey = fallbackKey(line, account)
    }
    return line
  }
}

/// One row of the processor's settlement report: a balance transaction of an itemized
/// balance or payout report (Stripe's `balance_change_from_activity.itemized.*`,
/// `payout_reconciliation.itemized.*`, `payouts.itemized.*`, or the simple CSV of the
/// same columns).
public struct ProcessorReportRow: Sendable, Equatable, Codable {
  public var balanceTransactionID: String
  public var created: String
  public var gross: Money
  public var fee: Money
  public var net: Money
  public var reportingCategory: String
  public var sourceID: String?
  public var paymentIntentID: String?
  /// The charge the row concerns (`charge_id`: the charge itself, or the one refunded or disputed).
  public var chargeID: String?
  /// The ledger's idempotency key, from the `payment_metadata[idempotency_key]` column.
  public var idempotencyKey: String?
  /// For a payout or its reversal: the payout (`payout_id`, else a `po_…` source id).
  public var payoutID: String?
  /// For a payout or its reversal: the day the processor expects the money in the bank
  /// (`payout_expected_arrival_date`, `effective_at_utc`, `available_on_utc`…, else the day
  /// of `created`).
  public var arrivalDate: String?

  /// A row with every field given; the report reader builds these.
  public init(
    balanceTransactionID: String, created: String, gross: Money, fee: Money, net: Money, reportingCategory: String,
    sourceID: String?, paymentIntentID: String?, chargeID: String?, idempotencyKey: String?, payoutID: String?,
    arrivalDate: String?
  ) {
    self.balanceTransactionID = balanceTransactionID
    self.created = created
    self.gross = gross
    self.fee = fee
    self.net = net
    self.reportingCategory = reportingCategory
    self.sourceID = sourceID
    self.paymentIntentID = paymentIntentID
    self.chargeID = chargeID
    self.idempotencyKey = idempotencyKey
    self.payoutID = payoutID
    self.arrivalDate = arrivalDate
  }

  /// What the ledger does with the row (see `ProcessorCategory`).
  public var treatment: ProcessorCategory.Treatment { ProcessorCategory.treatment(of: reportingCategory) }

  /// The processor's reference of the charge as the ledger stores it on a charge attempt:
  /// `pi_…/ch_…` when the row names both, else whichever it names.
  public var processorRef: String? {
    let charge = chargeID ?? sourceID.flatMap { $0.hasPrefix("ch_") || $0.hasPrefix("py_") ? $0 : nil }
    if let pi = paymentIntentID, let charge { return pi + "/" + charge }
    return charge ?? sourceID ?? paymentIntentID
  }
}

/// The processor's reporting categories and what the ledger does with each
/// (docs/reconciliation.md, "Each category"). The names are Stripe's `reporting_category`
/// values; `adjustment` and `chargeback` are kept for the simple report of earlier versions.
public enum ProcessorCategory {
  /// What happens to a row of a category.
  public enum Treatment: String, Sendable, Equatable {
    /// A charge: compared with the ledger's charge attempts; its fee posted.
    case compare
    /// Money back to the customer or taken by the card network on a charge (refund,
    /// dispute…): a finding when it names a charge the ledger knows, kept otherwise; nothing posted.
    case adjustment
    /// The processor's own fee, outside any charge: posted (processor fees / processor clearing).
    case fee
    /// The balance paid out to the bank: posted (bank / processor clearing).
    case payout
    /// A payout that failed and came back to the balance: the payout's entry is reversed.
    case payoutReversal
    /// A movement of the processor's balance the ledger does not post (transfers, reserves,
    /// top-ups, financing, Issuing, taxes, other adjustments): a finding for staff.
    case unposted
    /// A category the ledger does not know: a finding, nothing posted.
    case unknown
  }

  /// Every category with its treatment, from Stripe's published list of reporting categories.
  public static let treatments: [String: Treatment] = {
    var t: [String: Treatment] = [
      "charge": .compare, "fee": .fee, "payout": .payout, "payout_reversal": .payoutReversal,
    ]
    for name in [
      "refund", "refund_failure", "partial_capture_reversal", "dispute", "dispute_reversal", "charge_failure",
      "chargeback",
    ] {
      t[name] = .adjustment
    }
    for name in [
      "transfer", "transfer_reversal", "connect_collection_transfer", "connect_reserved_funds", "risk_reserved_funds",
      "payment_network_reserved_funds", "topup", "topup_reversal", "advance", "advance_funding", "financing_paydown",
      "financing_paydown_reversal", "financing_payout", "financing_payout_reversal", "issuing_authorization_hold",
      "issuing_authorization_release", "issuing_transaction", "issuing_dispute", "network_cost", "other_adjustment",
      "adjustment", "platform_earning", "platform_earning_refund", "tax", "anticipation_repayment", "contribution",
      "climate_order_purchase", "climate_order_refund", "unreconciled_customer_funds", "minimum_balance_hold",
      "minimum_balance_release",
    ] {
      t[name] = .unposted
    }
    return t
  }()

  /// The treatment of a category (lower case); `.unknown` for one not in the list.
  public static func treatment(of category: String) -> Treatment { treatments[category] ?? .unknown }
}

/// Recognizes the processor's payouts in what a bank statement says of a credit.
public enum PayoutText {
  /// The words that name the processor on a bank statement: Stripe's default payout
  /// statement descriptor.
  public static let processorNames = ["STRIPE"]

  /// Every payout id (`po_` and letters or digits) quoted in the texts, in order.
  public static func payoutIDs(in texts: [String?]) -> [String] {
    var found: [String] = []
    for text in texts.compactMap({ $0 }) {
      let chars = Array(text.utf8)
      var i = 0
      while i + 3 < chars.count {
        let startsWord = i == 0 || !isWordByte(chars[i - 1])
        if startsWord && (chars[i] | 0x20) == UInt8(ascii: "p") && (chars[i + 1] | 0x20) == UInt8(ascii: "o")
          && chars[i + 2] == UInt8(ascii: "_")
        {
          var end = i + 3
          while end < chars.count && isAlphanumeric(chars[end]) { end += 1 }
          if end > i + 3 {
            let id = "po_" + String(decoding: chars[(i + 3)..<end], as: UTF8.self)
            if !found.contains(id) { found.append(id) }
            i = end
            continue
          }
        }
        i += 1
      }
    }
    return found
  }

  /// True when a text names the processor as a word (`STRIPE`, `Stripe Payments UK`, `STRIPE*PAYOUT`).
  public static func namesProcessor(_ texts: [String?]) -> Bool {
    for text in texts.compactMap({ $0 }) {
      let words = text.uppercased().split { !($0.isLetter || $0.isNumber) }
      if words.contains(where: { processorNames.contains(String($0)) }) { return true }
    }
    return false
  }

  static func isAlphanumeric(_ b: UInt8) -> Bool {
    (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b)
  }

  static func isWordByte(_ b: UInt8) -> Bool { isAlphanumeric(b) || b == UInt8(ascii: "_") }
}

/// The processor's report columns (see docs/reconciliation.md): Stripe's itemized balance
/// and payout reports with their own column names; other columns are ignored, as such
/// reports carry many (customer, card, invoice, metadata of every kind).
public struct ProcessorReportFormat {
  /// Columns every report must have.
  public static let required = [
    "balance_transaction_id", "currency", "gross", "fee", "net", "reporting_category",
  ]
  /// When the balance transaction happened, first found wins: Stripe's `created_utc`, then
  /// `created` (UTC when the report was run without a time zone, and in the simple report),
  /// then the payout report's `effective_at_utc` and `effective_at`. One is required.
  public static let timeColumns = ["created_utc", "created", "effective_at_utc", "effective_at"]
  /// Where the ledger's idempotency key may travel, first found wins.
  public static let keyColumns = ["payment_metadata[idempotency_key]", "metadata[idempotency_key]", "idempotency_key"]
  /// The day a payout reaches the bank, first found wins.
  public static let arrivalColumns = [
    "payout_expected_arrival_date", "effective_at_utc", "effective_at", "automatic_payout_effective_at_utc",
    "automatic_payout_effective_at", "available_on_utc", "available_on",
  ]
  let index: [String: Int]
  let count: Int

  /// Reads the header; a missing required column refuses the report.
  public init(header: [String]) throws {
    var index: [String: Int] = [:]
    for (i, raw) in header.enumerated() {
      let name = raw.trimmingCSV.lowercased()
      guard index[name] == nil else { throw InputError(field: "header", rule: "column '\(name)' appears twice") }
      index[name] = i
    }
    for name in ProcessorReportFormat.required where index[name] == nil {
      throw InputError(
        field: "header",
        rule: "the column '\(name)' is missing (required: \(ProcessorReportFormat.required.joined(separator: ", ")))")
    }
    guard ProcessorReportFormat.timeColumns.contains(where: { index[$0] != nil }) else {
      throw InputError(
        field: "header",
        rule:
          "a time column is missing: one of \(ProcessorReportFormat.timeColumns.joined(separator: ", ")) is required")
    }
    self.index = index
    self.count = header.count
  }

  /// True when a header row looks like a processor report rather than a bank CSV.
  public static func looksLikeReport(_ header: [String]) -> Bool {
    header.contains { $0.trimmingCSV.lowercased() == "balance_transaction_id" }
  }

  func value(_ record: [String], _ name: String) -> String? {
    guard let i = index[name], i < record.count else { return nil }
    let text = record[i].trimmingCSV
    return text.isEmpty ? nil : text
  }

  func first(_ record: [String], _ names: [String]) -> (name: String, value: String)? {
    for name in names { if let v = value(record, name) { return (name, v) } }
    return nil
  }

  /// One row, checked: known currency, amounts within its decimals, net = gross - fee, a
  /// payout negative (money leaving the balance) and its reversal positive. The one
  /// free-text column stored, `reporting_category`, has any card number masked; the ids
  /// are identifiers and kept as given.
  public func row(_ record: [String], lineNumber: Int) throws -> ProcessorReportRow {
    let field = "line \(lineNumber)"
    guard record.count == count else {
      throw InputError(field: field, rule: "has \(record.count) fields; the header has \(count)")
    }
    guard let id = value(record, "balance_transaction_id"), id.count <= 255 else {
      throw InputError(field: "\(field) balance_transaction_id", rule: "is required (at most 255 characters)")
    }
    let currency = try Currency(code: (value(record, "currency") ?? "").uppercased(), field: "\(field) currency")
    let gross = try Money.parse(value(record, "gross") ?? "", currency: currency, field: "\(field) gross")
    let fee = try Money.parse(value(record, "fee") ?? "", currency: currency, field: "\(field) fee")
    let net = try Money.parse(value(record, "net") ?? "", currency: currency, field: "\(field) net")
    for (name, amount) in [("gross", gross), ("fee", fee), ("net", net)] {
      try amount.checkBound(field: "\(field) \(name)")
    }
    guard try gross.subtracting(fee) == net else {
      throw InputError(
        field: "\(field) net",
        rule: "\(net.amountString) is not gross \(gross.amountString) minus fee \(fee.amountString)")
    }
    guard let created = first(record, ProcessorReportFormat.timeColumns) else {
      throw InputError(
        field: "\(field) \(ProcessorReportFormat.timeColumns.first { index[$0] != nil } ?? "created")",
        rule: "is required")
    }
    let instant = try ProcessorReportFormat.instant(created.value, field: "\(field) \(created.name)")
    guard let category = value(record, "reporting_category") else {
      throw InputError(field: "\(field) reporting_category", rule: "is required")
    }
    let masked = CardNumberText.masked(category.lowercased())
    let sourceID = value(record, "source_id")
    var payoutID: String?
    var arrival: String?
    switch ProcessorCategory.treatment(of: masked) {
    case .payout:
      guard gross.minorUnits < 0 else {
        throw InputError(
          field: "\(field) gross",
          rule:
            "\(gross.amountString) on a payout: a payout takes money out of the processor's balance, so its gross must be negative"
        )
      }
      guard net.minorUnits < 0 else {
        throw InputError(field: "\(field) net", rule: "\(net.amountString) on a payout: must be negative")
      }
    case .payoutReversal:
      guard gross.minorUnits > 0 else {
        throw InputError(
          field: "\(field) gross",
          rule:
            "\(gross.amountString) on a payout reversal: a failed payout brings money back to the balance, so its gross must be positive"
        )
      }
    default: break
    }
    if [.payout, .payoutReversal].contains(ProcessorCategory.treatment(of: masked)) {
      payoutID = value(record, "payout_id") ?? sourceID.flatMap { $0.hasPrefix("po_") ? $0 : nil }
      if let payoutID, payoutID.count > 255 {
        throw InputError(field: "\(field) payout_id", rule: "is longer than 255 characters")
      }
      if let (name, text) = first(record, ProcessorReportFormat.arrivalColumns) {
        arrival = try ProcessorReportFormat.day(text, field: "\(field) \(name)")
      } else {
        arrival = String(instant.prefix(10))
      }
    }
    return ProcessorReportRow(
      balanceTransactionID: id, created: instant, gross: gross, fee: fee, net: net,
      reportingCategory: masked, sourceID: sourceID, paymentIntentID: value(record, "payment_intent_id"),
      chargeID: value(record, "charge_id"),
      idempotencyKey: ProcessorReportFormat.keyColumns.lazy.compactMap { self.value(record, $0) }.first,
      payoutID: payoutID, arrivalDate: arrival)
  }

  /// `created` as the ledger stores instants: accepts `YYYY-MM-DD HH:MM:SS` (UTC, as the
  /// reports print it), ISO 8601 with `T…Z`, or Unix seconds.
  static func instant(_ text: String, field: String) throws -> String {
    if let seconds = Int64(text) { return Instant(secondsSinceEpoch: seconds).iso8601 }
    var iso = String(text.map { $0 == " " ? "T" : $0 })
    if !iso.hasSuffix("Z") { iso += "Z" }
    return try Instant(iso8601: iso, field: field).iso8601
  }

  /// A day: `YYYY-MM-DD`, or the day of an instant as `instant` reads it.
  static func day(_ text: String, field: String) throws -> String {
    if text.count == 10 { return try CivilDate(iso8601: text, field: field).iso8601 }
    return String(try instant(text, field: field).prefix(10))
  }
}

extension String {
  /// Trimmed of spaces, tabs and a byte-order mark (spreadsheets write one before the header).
  var trimmingCSV: String {
    var s = Substring(self)
    while let f = s.first, f == " " || f == "\t" || f == "\u{FEFF}" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    return String(s)
  }
}
