import Foundation
import LedgerCore
import LedgerSQLite

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// Reads an ISO 20022 camt.053 bank-to-customer statement (versions 02 to 08) as a stream:
/// Foundation's `XMLParser` (libxml2's SAX parser) is fed the file in chunks from an
/// `InputStream`, and each transaction is handed over as soon as its entry closes, so a
/// statement of any size is read in bounded memory.
///
/// One `BankLine` per `TxDtls`, or per `Ntry` without details. The line key (`BankLineKey`)
/// is `acct:<account>:ref:<AcctSvcrRef>`, the account being `Acct/Id/IBAN` or else
/// `Acct/Id/Othr/Id` (with `/<n>` for the n-th of several `TxDtls`, or the detail's own
/// `Refs/AcctSvcrRef` when it has one); without a bank reference it is
/// `acct:<account>:sha256:<hash of the line's fields>:<n>`, n counting identical lines in
/// the file. The statement's id is never part of it.
public final class Camt053Reader {
  /// The namespaces read: `urn:iso:std:iso:20022:tech:xsd:camt.053.001.02` to `.08`.
  public static let namespaces = (2...8).map { "urn:iso:std:iso:20022:tech:xsd:camt.053.001.0\($0)" }

  let path: String
  /// Set once the document element has been seen: the version number (2 to 8).
  public private(set) var version: Int?

  /// A reader of the file at `path`; nothing is opened until `read`.
  public init(path: String) {
    self.path = path
  }

  /// Reads the file, calling `body` for each line in document order. A malformed,
  /// truncated or unknown document throws an `InputError` naming the file and the place.
  public func read(_ body: @escaping (BankLine) throws -> Void) throws {
    try refuseDocumentTypeDeclaration()
    guard let stream = InputStream(fileAtPath: path) else {
      throw InputError(field: path, rule: "cannot be opened")
    }
    let handler = Handler(file: path, body: body)
    let parser = XMLParser(stream: stream)
    parser.shouldProcessNamespaces = true
    parser.shouldResolveExternalEntities = false
    parser.delegate = handler
    handler.parser = parser
    let ok = parser.parse()
    version = handler.version
    if let error = handler.failure { throw error }
    guard ok else {
      let code = (parser.parserError as NSError?)?.code ?? 0
      // libxml2: 5 document end, 77 tag not finished: the input stopped too early.
      if handler.version != nil, !handler.closedDocument, [5, 77].contains(code) {
        throw InputError(
          field: path,
          rule: "ends at line \(parser.lineNumber) before its document element closes (truncated file?); nothing was imported")
      }
      let detail = Self.libxmlErrors[code].map { "\($0), libxml2 error \(code)" } ?? "libxml2 error \(code)"
      throw InputError(
        field: path, rule: "malformed XML at line \(parser.lineNumber), column \(parser.columnNumber) (\(detail)); nothing was imported")
    }
    guard handler.version != nil else { throw InputError(field: path, rule: "is empty or not an XML document; nothing was imported") }
    guard handler.closedDocument else {
      throw InputError(field: path, rule: "ends before its document element closes (truncated file?); nothing was imported")
    }
  }

  /// A statement never has a DTD. One that declares entities could expand them without
  /// bound (an "entity bomb") or reach outside the file, so a `<!DOCTYPE` in the prolog (the
  /// bytes before the document element) refuses the file before it is parsed.
  func refuseDocumentTypeDeclaration() throws {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw InputError(field: path, rule: "cannot be opened") }
    defer { try? handle.close() }
    let head = Array((try? handle.read(upToCount: 64 * 1024)) ?? Data())
    let doctype = Array("<!DOCTYPE".utf8)
    var i = 0
    while i < head.count {
      if head[i] == UInt8(ascii: "<") {
        if head[i...].starts(with: doctype) {
          throw InputError(field: path, rule: "has a document type declaration (<!DOCTYPE); a camt.053 statement has none; nothing was imported")
        }
        // The document element: the prolog is over.
        if i + 1 < head.count, head[i + 1] != UInt8(ascii: "?"), head[i + 1] != UInt8(ascii: "!") { return }
      }
      i += 1
    }
  }

  /// The SAX callbacks: a stack of element names, and the fields of the entry in hand.
  final class Handler: NSObject, XMLParserDelegate {
    let file: String
    let body: (BankLine) throws -> Void
    weak var parser: XMLParser?
    var failure: Error?
    var version: Int?
    var closedDocument = false

    var stack: [String] = []
    var text = ""
    var capturing = false

    // Statement level.
    var statementID: String?
    var accountIBAN: String?
    var accountOther: String?
    var inStatement = false
    // Entry level.
    var entry = EntryFields()
    var details: [DetailFields] = []
    var detail: DetailFields?
    var entryIndex = 0
    /// Where the entry and the transaction detail in hand sit in `stack`.
    var ntryDepth: Int?
    var txDepth: Int?
    var seenFallbackKeys: [String: Int] = [:]

    struct EntryFields {
      var line = 0
      var amount: String?
      var currency: String?
      var creditDebit: String?
      var reversal: String?
      var status: String?
      var bookingDate: String?
      var valueDate: String?
      var servicerRef: String?
      var entryRef: String?
      var additionalInfo: String?
    }

    struct DetailFields {
      var amount: String?
      var currency: String?
      var creditDebit: String?
      var servicerRef: String?
      var endToEnd: String?
      var reference: String?
      var remittance: [String] = []
      var debtorName: String?
      var debtorIBAN: String?
      var creditorName: String?
      var creditorIBAN: String?
      var amountRank = Int.max
    }

    init(file: String, body: @escaping (BankLine) throws -> Void) {
      self.file = file
      self.body = body
    }

    func fail(_ error: Error) {
      guard failure == nil else { return }
      failure = error
      parser?.abortParsing()
    }

    func parser(
      _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName qName: String?,
      attributes attributeDict: [String: String] = [:]
    ) {
      guard failure == nil else { return }
      if stack.isEmpty {
        let namespace = namespaceURI ?? attributeDict["xmlns"] ?? ""
        guard elementName == "Document", let index = Camt053Reader.namespaces.firstIndex(of: namespace) else {
          fail(
            InputError(
              field: file,
              rule: "unknown document '\(elementName)' in namespace '\(namespace)'; ledgerd reads camt.053.001.02 to camt.053.001.08; nothing was imported"
            ))
          return
        }
        version = index + 2
      }
      stack.append(elementName)
      text = ""
      capturing = true
      switch elementName {
      case "Stmt":
        inStatement = true
        statementID = nil
        accountIBAN = nil
        accountOther = nil
      case "Ntry" where inStatement && ntryDepth == nil:
        ntryDepth = stack.count - 1
        entry = EntryFields(line: parser.lineNumber)
        details = []
        entryIndex += 1
      case "TxDtls" where ntryDepth != nil && txDepth == nil:
        txDepth = stack.count - 1
        detail = DetailFields()
      case "Amt":
        if let ccy = attributeDict["Ccy"] {
          if let n = ntryDepth, stack.count - n - 1 == 1 {
            entry.currency = ccy
          } else if txDepth != nil {
            let rank = amountRank()
            if rank < (detail?.amountRank ?? .max) { detail?.currency = ccy }
          }
        }
      default: break
      }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
      guard capturing, text.utf8.count < 64 * 1024 else { return }
      text += string
    }

    /// The k-th element below the element at `base` in the stack.
    @inline(__always) func below(_ base: Int, _ k: Int) -> String { stack[base + 1 + k] }

    /// Which amount of a transaction detail wins: `TxDtls/Amt` (v04+), then the transaction
    /// amount, then the instructed amount (v02, v03).
    func amountRank() -> Int {
      guard let t = txDepth else { return .max }
      switch stack.count - t - 1 {
      case 1: return 0
      case 3 where below(t, 0) == "AmtDtls": return below(t, 1) == "TxAmt" ? 1 : below(t, 1) == "InstdAmt" ? 2 : .max
      default: return .max
      }
    }

    /// The text of the element that just closed, without surrounding white space.
    func value() -> String {
      let u = text.utf8
      func blank(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }
      guard let first = u.first, let last = u.last, blank(first) || blank(last) else { return text }
      return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
      guard failure == nil else { return }
      if inStatement && ntryDepth == nil {
        let depth = stack.count
        if elementName == "Id" && depth >= 2 && stack[depth - 2] == "Stmt" { statementID = value() }
        if elementName == "IBAN" && depth >= 4 && stack[depth - 4] == "Stmt" && stack[depth - 3] == "Acct" && stack[depth - 2] == "Id" {
          accountIBAN = value()
        }
        if elementName == "Id" && depth >= 5 && stack[depth - 5] == "Stmt" && stack[depth - 4] == "Acct" && stack[depth - 3] == "Id"
          && stack[depth - 2] == "Othr"
        {
          accountOther = value()
        }
      }
      if let t = txDepth {
        let n = stack.count - t - 1
        switch elementName {
        case "Amt":
          let rank = amountRank()
          if rank != .max, rank <= (detail?.amountRank ?? .max) {
            detail?.amount = value()
            detail?.amountRank = rank
          }
        case "CdtDbtInd" where n == 1: detail?.creditDebit = value()
        case "AcctSvcrRef" where n == 2 && below(t, 0) == "Refs": detail?.servicerRef = value()
        case "EndToEndId" where n == 2 && below(t, 0) == "Refs": detail?.endToEnd = value()
        case "Ustrd" where n == 2 && below(t, 0) == "RmtInf":
          let v = value()
          if !v.isEmpty { detail?.remittance.append(v) }
        case "Ref" where n == 4 && below(t, 0) == "RmtInf" && below(t, 1) == "Strd" && below(t, 2) == "CdtrRefInf":
          if detail?.reference == nil { detail?.reference = value() }
        case "Nm" where (n == 3 || (n == 4 && below(t, 2) == "Pty")) && below(t, 0) == "RltdPties":
          switch below(t, 1) {
          case "Dbtr": detail?.debtorName = value()
          case "Cdtr": detail?.creditorName = value()
          default: break
          }
        case "IBAN" where n == 4 && below(t, 0) == "RltdPties" && below(t, 2) == "Id":
          switch below(t, 1) {
          case "DbtrAcct": detail?.debtorIBAN = value()
          case "CdtrAcct": detail?.creditorIBAN = value()
          default: break
          }
        case "TxDtls" where n == 0:
          if let d = detail { details.append(d) }
          detail = nil
          txDepth = nil
        default: break
        }
      } else if let e = ntryDepth {
        let n = stack.count - e - 1
        switch elementName {
        case "Amt" where n == 1: entry.amount = value()
        case "CdtDbtInd" where n == 1: entry.creditDebit = value()
        case "RvslInd" where n == 1: entry.reversal = value()
        case "Sts" where n == 1:
          let v = value()
          if entry.status == nil, !v.isEmpty { entry.status = v }
        case "Cd" where n == 2 && below(e, 0) == "Sts": entry.status = value()
        case "Dt" where n == 2, "DtTm" where n == 2:
          switch below(e, 0) {
          case "BookgDt": entry.bookingDate = value()
          case "ValDt": entry.valueDate = value()
          default: break
          }
        case "AcctSvcrRef" where n == 1: entry.servicerRef = value()
        case "NtryRef" where n == 1: entry.entryRef = value()
        case "AddtlNtryInf" where n == 1: entry.additionalInfo = value()
        case "Ntry" where n == 0:
          ntryDepth = nil
          do { try finishEntry() } catch { fail(error) }
        default: break
        }
      }
      if elementName == "Stmt" && ntryDepth == nil { inStatement = false }
      stack.removeLast()
      text = ""
      if stack.isEmpty { closedDocument = true }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {}

    /// Turns the entry in hand into lines and hands them over.
    func finishEntry() throws {
      let at = "\(file): line \(entry.line) (entry \(entryIndex)\(entry.servicerRef.map { ", AcctSvcrRef \($0)" } ?? ""))"
      guard let ccy = entry.currency, let amountText = entry.amount else {
        throw InputError(field: at, rule: "an entry without Amt and its Ccy attribute; nothing was imported")
      }
      let currency = try Currency(code: ccy, field: "\(at) Amt@Ccy")
      let entryAmount = try Camt053Reader.amount(amountText, currency: currency, field: "\(at) Amt")
      let entryDirection = try Camt053Reader.direction(entry.creditDebit, field: "\(at) CdtDbtInd")
      let reversal: Bool
      switch entry.reversal?.lowercased() {
      case nil, "false", "0": reversal = false
      case "true", "1": reversal = true
      case let other?: throw InputError(field: "\(at) RvslInd", rule: "'\(other)' must be true or false")
      }
      let status: BookingStatus
      switch entry.status?.uppercased() {
      case "BOOK": status = .booked
      case "PDNG", "INFO", "FUTR": status = .pending
      case let other: throw InputError(field: "\(at) Sts", rule: "'\(other ?? "")' must be BOOK, PDNG, INFO or FUTR")
      }
      let booking = try entry.bookingDate.map { try Camt053Reader.date($0, field: "\(at) BookgDt") }
      let valueDate = try entry.valueDate.map { try Camt053Reader.date($0, field: "\(at) ValDt") }
      guard status == .pending || booking != nil else {
        throw InputError(field: "\(at) BookgDt", rule: "a booked entry needs a booking date")
      }
      // Several details each with an amount become several lines; otherwise the entry is one.
      guard let account = BankLineKey.account(accountIBAN) ?? BankLineKey.account(accountOther) else {
        throw InputError(
          field: "\(at) Stmt \(statementID ?? "")/Acct/Id",
          rule: "has neither an IBAN nor Othr/Id; a line is keyed by its account and the bank's reference; nothing was imported")
      }
      let split = details.count > 1 && details.allSatisfy { $0.amount != nil }
      let parts: [DetailFields] = split ? details : [details.first ?? DetailFields()]
      // A batch booking's details, each signed by its own CdtDbtInd (else the entry's), must
      // add up to the entry, or money would be recorded that the account never received.
      var signed: [(Money, BankDirection)] = []
      for (n, d) in parts.enumerated() {
        guard split else {
          signed.append((entryAmount, entryDirection))
          continue
        }
        let c = try Currency(code: d.currency ?? ccy, field: "\(at) TxDtls \(n + 1) Amt@Ccy")
        guard c == currency else {
          throw InputError(field: "\(at) TxDtls \(n + 1) Amt", rule: "is in \(c.code); the entry is in \(currency.code)")
        }
        let amount = try Camt053Reader.amount(d.amount ?? "", currency: c, field: "\(at) TxDtls \(n + 1) Amt")
        let direction = try d.creditDebit.map { try Camt053Reader.direction($0, field: "\(at) TxDtls \(n + 1) CdtDbtInd") } ?? entryDirection
        signed.append((amount, direction))
      }
      if split {
        var total: Int64 = 0
        for (amount, direction) in signed {
          let (sum, overflow) = total.addingReportingOverflow(direction == .credit ? amount.minorUnits : -amount.minorUnits)
          guard !overflow else { throw InputError(field: "\(at) TxDtls", rule: "the details' amounts overflow; nothing was imported") }
          total = sum
        }
        let expected = entryDirection == .credit ? entryAmount.minorUnits : -entryAmount.minorUnits
        guard total == expected else {
          let net = Money(minorUnits: abs(total), currency: currency)
          throw InputError(
            field: "\(at) TxDtls",
            rule: "the \(parts.count) details net \(net) \(total < 0 ? "DBIT" : "CRDT") (each signed by its CdtDbtInd, else the entry's); the entry is \(entryAmount) \(entryDirection == .credit ? "CRDT" : "DBIT"); a batch booking's details must add up to its entry; nothing was imported")
        }
      }
      for (n, d) in parts.enumerated() {
        let (amount, direction) = signed[n]
        let remittance = split || details.count <= 1 ? d.remittance : details.flatMap(\.remittance)
        var line = BankLine(
          lineKey: "", source: "camt053", statementID: statementID, accountIBAN: PayerIdentity.normalizedIBAN(accountIBAN),
          accountServicerRef: entry.servicerRef, bookingDate: booking?.iso8601, valueDate: valueDate?.iso8601, amount: amount,
          direction: direction, isReversal: reversal, status: status, reference: d.reference.map { String($0.prefix(140)) },
          remittance: remittance.isEmpty ? nil : String(remittance.joined(separator: " ").prefix(500)),
          counterpartyName: direction == .credit ? d.debtorName : d.creditorName,
          counterpartyIBAN: PayerIdentity.normalizedIBAN(direction == .credit ? d.debtorIBAN : d.creditorIBAN))
        if let ref = d.servicerRef, split, !ref.isEmpty, ref != entry.servicerRef {
          line.lineKey = BankLineKey.reference(account: account, ref: ref)
        } else if let ref = entry.servicerRef, !ref.isEmpty {
          line.lineKey = BankLineKey.reference(account: account, ref: ref + (split ? "/\(n + 1)" : ""))
        } else {
          let fields = [account] + line.identityFields + [entry.entryRef ?? "", d.endToEnd ?? ""]
          let hash = SHA256.hex(Array(fields.joined(separator: "\u{1F}").utf8))
          let seen = seenFallbackKeys[hash, default: 0] + 1
          seenFallbackKeys[hash] = seen
          line.lineKey = BankLineKey.fallback(account: account, hash: hash, occurrence: seen)
        }
        line.lineKey = try BankLineKey.checked(line.lineKey, field: "\(at) AcctSvcrRef")
        try body(line)
      }
    }
  }

  /// Words for the libxml2 errors a damaged statement usually raises.
  static let libxmlErrors: [Int: String] = [
    4: "document is empty", 5: "extra content at the end of the document", 9: "invalid character",
    23: "'&' not followed by an entity name", 26: "undefined entity", 38: "attribute without a value",
    39: "attribute value not quoted", 41: "unescaped '<' in an attribute value", 64: "XML declaration not well-formed",
    68: "expected a name", 73: "expected '>'", 76: "opening and ending tag mismatch", 77: "premature end of data in a tag",
  ]

  /// A camt amount: digits with an optional dot, never more decimals than the currency has.
  static func amount(_ text: String, currency: Currency, field: String) throws -> Money {
    guard !text.hasPrefix("-") else { throw InputError(field: field, rule: "'\(text)' is negative; CdtDbtInd gives the sign") }
    let money = try Money.parse(text, currency: currency, field: field)
    guard money.minorUnits > 0 else { throw InputError(field: field, rule: "'\(text)' must be greater than zero") }
    return money
  }

  static func direction(_ text: String?, field: String) throws -> BankDirection {
    switch text {
    case "CRDT": return .credit
    case "DBIT": return .debit
    default: throw InputError(field: field, rule: "'\(text ?? "")' must be CRDT or DBIT")
    }
  }

  /// `2026-11-20` or the date of `2026-11-20T10:00:00+01:00`.
  static func date(_ text: String, field: String) throws -> CivilDate {
    try CivilDate(iso8601: String(text.prefix(10)), field: field)
  }
}
