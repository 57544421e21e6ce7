import Foundation
import LedgerCore

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
  /// The longest text read from one element (and the longest remittance a line keeps, its
  /// `Ustrd` joined), in bytes: the bank CSV's field limit. ISO 20022 texts are at most 500
  /// characters; a longer one refuses the file rather than being cut, since a cut value can
  /// read as another one (`0…031.00` as `3.00`).
  public static let maxTextBytes = 64 * 1024

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
    // libxml2 and Foundation's XMLParser are handed only bytes that passed this check: an
    // invalid UTF-8 byte in a name traps inside XMLParser, and an entity it does not know
    // it drops silently.
    try XMLByteCheck.check(path: path)
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
          rule:
            "ends at line \(parser.lineNumber) before its document element closes (truncated file?); nothing was imported"
        )
      }
      let detail = Self.libxmlErrors[code].map { "\($0), libxml2 error \(code)" } ?? "libxml2 error \(code)"
      throw InputError(
        field: path,
        rule:
          "malformed XML at line \(parser.lineNumber), column \(parser.columnNumber) (\(detail)); nothing was imported")
    }
    guard handler.version != nil else {
      throw InputError(field: path, rule: "is empty or not an XML document; nothing was imported")
    }
    guard handler.closedDocument else {
      throw InputError(
        field: path, rule: "ends before its document element closes (truncated file?); nothing was imported")
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
    /// The element in hand has more text than `maxTextBytes`: reading its value refuses the file.
    var textTooLong = false
    /// The line the element in hand starts on.
    var textLine = 0

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
              rule:
                "unknown document '\(elementName)' in namespace '\(namespace)'; ledgerd reads camt.053.001.02 to camt.053.001.08; nothing was imported"
            ))
          return
        }
        version = index + 2
      }
      stack.append(elementName)
      text = ""
      textTooLong = false
      textLine = parser.lineNumber
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
      append(string)
    }

    /// A CDATA section is text like any other (`<Ustrd><![CDATA[A&B]]></Ustrd>` reads `A&B`).
    func parser(_ parser: XMLParser, foundCDATA block: Data) {
      append(String(decoding: block, as: UTF8.self))
    }

    /// Adds to the element's text, up to the limit; past it the text is marked, never cut
    /// and used.
    func append(_ string: String) {
      guard capturing, !textTooLong else { return }
      guard text.utf8.count + string.utf8.count <= Camt053Reader.maxTextBytes else {
        textTooLong = true
        text = ""
        return
      }
      text += string
    }

    /// Where the element in hand is, for messages: its line, and the entry it belongs to.
    func place(_ element: String) -> String {
      let within =
        ntryDepth != nil
        ? "entry \(entryIndex), which starts at line \(entry.line)"
        : "statement \(statementID.map { "'\($0)'" } ?? "header")"
      return "\(file): line \(textLine) (\(within)) \(element)"
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

    /// The text of the element that just closed, without surrounding white space; refuses
    /// the file when the text was longer than `maxTextBytes`.
    func value() throws -> String {
      guard !textTooLong else {
        throw InputError(
          field: place(stack.last ?? "?"),
          rule: "its text is longer than \(Camt053Reader.maxTextBytes) bytes, the most ledgerd reads from one element; "
            + "it never cuts a value it reads; nothing was imported")
      }
      let u = text.utf8
      func blank(_ b: UInt8) -> Bool { b == 32 || b == 9 || b == 10 || b == 13 }
      guard let first = u.first, let last = u.last, blank(first) || blank(last) else { return text }
      return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func parser(
      _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
    ) {
      guard failure == nil else { return }
      do {
        try endElement(elementName)
      } catch {
        fail(error)
        return
      }
      if elementName == "Stmt" && ntryDepth == nil { inStatement = false }
      stack.removeLast()
      text = ""
      textTooLong = false
      if stack.isEmpty { closedDocument = true }
    }

    /// Reads the value of the element that just closed into the statement, entry or detail
    /// in hand; the close of an entry hands its lines over.
    func endElement(_ elementName: String) throws {
      if inStatement && ntryDepth == nil {
        let depth = stack.count
        if elementName == "Id" && depth >= 2 && stack[depth - 2] == "Stmt" { statementID = try value() }
        if elementName == "IBAN" && depth >= 4 && stack[depth - 4] == "Stmt" && stack[depth - 3] == "Acct"
          && stack[depth - 2] == "Id"
        {
          accountIBAN = try value()
        }
        if elementName == "Id" && depth >= 5 && stack[depth - 5] == "Stmt" && stack[depth - 4] == "Acct"
          && stack[depth - 3] == "Id"
          && stack[depth - 2] == "Othr"
        {
          accountOther = try value()
        }
      }
      if let t = txDepth {
        let n = stack.count - t - 1
        switch elementName {
        case "Amt":
          let rank = amountRank()
          if rank != .max, rank <= (detail?.amountRank ?? .max) {
            detail?.amount = try value()
            detail?.amountRank = rank
          }
        case "CdtDbtInd" where n == 1: detail?.creditDebit = try value()
        case "AcctSvcrRef" where n == 2 && below(t, 0) == "Refs": detail?.servicerRef = try value()
        case "EndToEndId" where n == 2 && below(t, 0) == "Refs": detail?.endToEnd = try value()
        case "Ustrd" where n == 2 && below(t, 0) == "RmtInf":
          let v = try value()
          if !v.isEmpty { detail?.remittance.append(v) }
        case "Ref" where n == 4 && below(t, 0) == "RmtInf" && below(t, 1) == "Strd" && below(t, 2) == "CdtrRefInf":
          if detail?.reference == nil { detail?.reference = try value() }
        case "Nm" where (n == 3 || (n == 4 && below(t, 2) == "Pty")) && below(t, 0) == "RltdPties":
          switch below(t, 1) {
          case "Dbtr": detail?.debtorName = try value()
          case "Cdtr": detail?.creditorName = try value()
          default: break
          }
        case "IBAN" where n == 4 && below(t, 0) == "RltdPties" && below(t, 2) == "Id":
          switch below(t, 1) {
          case "DbtrAcct": detail?.debtorIBAN = try value()
          case "CdtrAcct": detail?.creditorIBAN = try value()
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
        case "Amt" where n == 1: entry.amount = try value()
        case "CdtDbtInd" where n == 1: entry.creditDebit = try value()
        case "RvslInd" where n == 1: entry.reversal = try value()
        case "Sts" where n == 1:
          let v = try value()
          if entry.status == nil, !v.isEmpty { entry.status = v }
        case "Cd" where n == 2 && below(e, 0) == "Sts": entry.status = try value()
        case "Dt" where n == 2, "DtTm" where n == 2:
          switch below(e, 0) {
          case "BookgDt": entry.bookingDate = try value()
          case "ValDt": entry.valueDate = try value()
          default: break
          }
        case "AcctSvcrRef" where n == 1: entry.servicerRef = try value()
        case "NtryRef" where n == 1: entry.entryRef = try value()
        case "AddtlNtryInf" where n == 1: entry.additionalInfo = try value()
        case "Ntry" where n == 0:
          ntryDepth = nil
          try finishEntry()
        default: break
        }
      }
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) {}

    /// Turns the entry in hand into lines and hands them over.
    func finishEntry() throws {
      let at =
        "\(file): line \(entry.line) (entry \(entryIndex)\(entry.servicerRef.map { ", AcctSvcrRef \($0)" } ?? ""))"
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
          rule:
            "has neither an IBAN nor Othr/Id; a line is keyed by its account and the bank's reference; nothing was imported"
        )
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
          throw InputError(
            field: "\(at) TxDtls \(n + 1) Amt", rule: "is in \(c.code); the entry is in \(currency.code)")
        }
        let amount = try Camt053Reader.amount(d.amount ?? "", currency: c, field: "\(at) TxDtls \(n + 1) Amt")
        let direction =
          try d.creditDebit.map { try Camt053Reader.direction($0, field: "\(at) TxDtls \(n + 1) CdtDbtInd") }
          ?? entryDirection
        signed.append((amount, direction))
      }
      if split {
        var total: Int64 = 0
        for (amount, direction) in signed {
          let (sum, overflow) = total.addingReportingOverflow(
            direction == .credit ? amount.minorUnits : -amount.minorUnits)
          guard !overflow else {
            throw InputError(field: "\(at) TxDtls", rule: "the details' amounts overflow; nothing was imported")
          }
          total = sum
        }
        let expected = entryDirection == .credit ? entryAmount.minorUnits : -entryAmount.minorUnits
        guard total == expected else {
          let net = Money(minorUnits: abs(total), currency: currency)
          throw InputError(
            field: "\(at) TxDtls",
            rule:
              "the \(parts.count) details net \(net) \(total < 0 ? "DBIT" : "CRDT") (each signed by its CdtDbtInd, else the entry's); the entry is \(entryAmount) \(entryDirection == .credit ? "CRDT" : "DBIT"); a batch booking's details must add up to its entry; nothing was imported"
          )
        }
      }
      for (n, d) in parts.enumerated() {
        let (amount, direction) = signed[n]
        let texts = split || details.count <= 1 ? d.remittance : details.flatMap(\.remittance)
        // Kept whole (the columns have no limit), within the limit of one element's text; a
        // card number a payer typed into the text, a name or the structured reference is
        // masked before anything sees it (ledgerd's own RF references never hold 13 digits
        // in a row, so matching is unaffected). Keys are not: see BankLineKey.
        let remittance = texts.joined(separator: " ")
        guard remittance.utf8.count <= Camt053Reader.maxTextBytes else {
          throw InputError(
            field: "\(at) RmtInf/Ustrd",
            rule:
              "its \(texts.count) texts joined are longer than \(Camt053Reader.maxTextBytes) bytes, the most a line's remittance "
              + "keeps; ledgerd never cuts a value it reads; nothing was imported")
        }
        let name = direction == .credit ? d.debtorName : d.creditorName
        var line = BankLine(
          lineKey: "", source: "camt053", statementID: statementID,
          accountIBAN: PayerIdentity.normalizedIBAN(accountIBAN),
          accountServicerRef: entry.servicerRef, bookingDate: booking?.iso8601, valueDate: valueDate?.iso8601,
          amount: amount,
          direction: direction, isReversal: reversal, status: status, reference: d.reference.map(CardNumberText.masked),
          remittance: texts.isEmpty ? nil : CardNumberText.masked(remittance),
          counterpartyName: name.map(CardNumberText.masked),
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
    68: "expected a name", 73: "expected '>'", 76: "opening and ending tag mismatch",
    77: "premature end of data in a tag",
  ]

  /// A camt amount: digits with an optional dot, never more decimals than the currency has.
  /// Leading zeros are read as such, however many (within `maxTextBytes`); a message quotes
  /// a long amount by its start and length only.
  static func amount(_ text: String, currency: Currency, field: String) throws -> Money {
    let shown = text.count > 40 ? "'\(text.prefix(24))…' (\(text.count) characters)" : "'\(text)'"
    guard !text.hasPrefix("-") else {
      throw InputError(field: field, rule: "\(shown) is negative; CdtDbtInd gives the sign")
    }
    let money: Money
    do {
      money = try Money.parse(text, currency: currency, field: field)
    } catch let error as InputError {
      throw InputError(field: error.field, rule: error.rule.replacingOccurrences(of: "'\(text)'", with: shown))
    }
    guard money.minorUnits > 0 else { throw InputError(field: field, rule: "\(shown) must be greater than zero") }
    return money
  }

  static func direction(_ text: String?, field: String) throws -> BankDirection {
    switch text {
    case "CRDT": return .credit
    case "DBIT": return .debit
    default: throw InputError(field: field, rule: "'\(text ?? "")' must be CRDT or DBIT")
    }
  }

  /// `2026-11-20`, the date of `2026-11-20T10:00:00+01:00`, or of `2026-11-20+01:00` (an
  /// `xs:date` may carry a time zone); anything else after the date (`2026-11-2099`) refuses
  /// it rather than being cut off.
  static func date(_ text: String, field: String) throws -> CivilDate {
    let u = Array(text.utf8)
    let day = u.count > 10 && "TZ+-".utf8.contains(u[10]) ? String(decoding: u[..<10], as: UTF8.self) : text
    return try CivilDate(iso8601: day, field: field)
  }
}

/// The pass over a statement's bytes that runs before any XML parser sees them, in one
/// plain loop over 1 MiB chunks (bounded memory, any file size). Foundation's `XMLParser`
/// traps on an invalid UTF-8 byte in an element or attribute name (the process dies, and
/// with it the nightly job), and libxml2 silently drops an entity it cannot expand; so a
/// file is refused (`InputError`, exit 65, with its line, column and byte offset and the
/// rule) when it has:
///
/// - a byte that is not UTF-8 (RFC 3629: overlong forms, surrogates, truncated sequences,
///   bytes that never appear), or a control character other than tab, CR and LF (XML 1.0
///   allows none, not even in a comment);
/// - a UTF-16 or UTF-32 byte-order mark, or an XML declaration naming another encoding than
///   UTF-8 (ISO 20022 messages are UTF-8);
/// - `<!DOCTYPE` or `<!ENTITY` anywhere, even inside a comment or a CDATA section (a
///   statement never has a DTD; one could declare entities that expand without bound);
/// - an entity reference other than the five predefined ones (`&amp;` `&lt;` `&gt;`
///   `&quot;` `&apos;`) and character references (`&#233;`, `&#xE9;`), in text and in
///   attribute values. Inside a CDATA section a `&` is a plain character, and comments and
///   processing instructions are skipped, as XML says.
///
/// What this leaves to libxml2 (well-formedness, tags, character references to characters
/// XML forbids) it refuses itself, with a parse error.
public struct XMLByteCheck {
  /// Where the bytes are: inside a comment, a CDATA section or a processing instruction the
  /// entity rule does not apply.
  enum Context { case markup, comment, cdata, instruction }

  /// The constructs found after a `<`, each with what it leads to.
  static let openers: [(bytes: [UInt8], name: String)] = [
    (Array("<!--".utf8), "comment"), (Array("<![CDATA[".utf8), "cdata"), (Array("<?".utf8), "instruction"),
    (Array("<!DOCTYPE".utf8), "doctype"), (Array("<!ENTITY".utf8), "entity"),
  ]
  /// The longest entity reference read (`#x10FFFF`).
  static let maxReferenceBytes = 8

  let path: String
  var utf8 = UTF8Validator()
  var context = Context.markup
  /// Bytes matched since the last `<` and the openers still possible (bit i: `openers[i]`);
  /// 0 when no `<` is being matched.
  var matched = 0
  var candidates = 0
  /// The end of the comment (`-->`), CDATA section (`]]>`) or instruction (`?>`) in hand:
  /// how many of its leading bytes were just seen.
  var closing = 0
  /// The name of the entity reference in hand after a `&`, or nil outside one.
  var reference: [UInt8]?
  var line = 1
  var lineStart = 0
  var offset = 0

  init(path: String) { self.path = path }

  /// Reads the file at `path` through the check; throws the first problem found.
  public static func check(path: String) throws {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      throw InputError(field: path, rule: "cannot be opened")
    }
    defer { try? handle.close() }
    var checker = XMLByteCheck(path: path)
    var first = true
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
      if first {
        try checker.checkStart(Array(chunk.prefix(1024)))
        first = false
      }
      try chunk.withUnsafeBytes { try checker.feed($0) }
    }
    try checker.finish()
  }

  /// The problem, placed: line, column (in bytes, from 1) and byte offset in the file.
  func refuse(_ rule: String, at position: Int? = nil) -> InputError {
    let at = position ?? offset
    return InputError(
      field: "\(path): line \(line), column \(at - lineStart + 1) (byte offset \(at))",
      rule: "\(rule); nothing was imported")
  }

  /// The byte-order mark and the XML declaration, from the file's first bytes.
  mutating func checkStart(_ head: [UInt8]) throws {
    if head.starts(with: [0x00, 0x00, 0xFE, 0xFF]) || head.starts(with: [0xFF, 0xFE, 0x00, 0x00]) {
      throw refuse("starts with a UTF-32 byte-order mark; a camt.053 statement is UTF-8 (ISO 20022)", at: 0)
    }
    if head.starts(with: [0xFE, 0xFF]) || head.starts(with: [0xFF, 0xFE]) {
      throw refuse("starts with a UTF-16 byte-order mark; a camt.053 statement is UTF-8 (ISO 20022)", at: 0)
    }
    if head.starts(with: [0x3C, 0x00]) || head.starts(with: [0x00, 0x3C]) {
      throw refuse(
        "looks like UTF-16 (a '<' with a NUL byte beside it); a camt.053 statement is UTF-8 (ISO 20022)", at: 0)
    }
    var bytes = head[...]
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
    guard bytes.starts(with: Array("<?xml".utf8)), bytes.count > 5,
      [9, 10, 13, 32].contains(bytes[bytes.startIndex + 5])
    else { return }
    let question = UInt8(ascii: "?")
    let close = UInt8(ascii: ">")
    // libxml2 refuses a declaration that does not end.
    guard
      let end = bytes.indices.first(where: {
        bytes[$0] == question && $0 + 1 < bytes.endIndex && bytes[$0 + 1] == close
      })
    else {
      return
    }
    let declaration = String(decoding: bytes[..<end], as: UTF8.self)
    guard let range = declaration.range(of: "encoding") else { return }
    var rest = declaration[range.upperBound...].drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
    guard rest.first == "=" else { return }
    rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
    guard let quote = rest.first, quote == "\"" || quote == "'" else { return }
    let name = rest.dropFirst().prefix { $0 != quote }
    guard ["utf-8", "utf8"].contains(name.lowercased()) else {
      let shown = name.count > 40 ? String(name.prefix(40)) + "…" : String(name)
      throw refuse(
        "the XML declaration names the encoding '\(shown)'; a camt.053 statement is UTF-8 (ISO 20022)",
        at: bytes.startIndex + range.lowerBound.utf16Offset(in: declaration))
    }
  }

  /// Checks the next chunk of bytes.
  mutating func feed(_ buffer: UnsafeRawBufferPointer) throws {
    for byte in buffer {
      defer { offset += 1 }
      // Most bytes are printable ASCII in markup with nothing in hand: nothing to do.
      if byte >= 0x20 && byte < 0x80 && byte != 0x3C && byte != 0x26 && matched == 0 && context == .markup
        && reference == nil
        && !utf8.inSequence
      {
        continue
      }
      if byte >= 0x80 || utf8.inSequence {
        if let problem = utf8.step(byte) {
          throw refuse("not UTF-8: \(problem); a camt.053 statement is UTF-8 (ISO 20022)")
        }
        // No construct below has a non-ASCII byte: whatever was being matched is over.
        if reference != nil { throw badReference(byte) }
        matched = 0
        closing = 0
        continue
      }
      if reference != nil {
        // Before the line count: a reference ended by a line break is placed on its line.
        try referenceByte(byte)
        continue
      }
      if byte < 0x20 {
        if byte == 10 {
          line += 1
          lineStart = offset + 1
        } else if byte != 9 && byte != 13 {
          throw refuse("a control character (byte \(UTF8Validator.hex(byte))) is not allowed in XML")
        }
      }
      if matched > 0, try matchOpener(byte) { continue }
      switch context {
      case .markup:
        if byte == UInt8(ascii: "&") {
          reference = []
        }
      case .comment: close(byte, repeated: UInt8(ascii: "-"))
      case .cdata: close(byte, repeated: UInt8(ascii: "]"))
      case .instruction:
        if byte == UInt8(ascii: "?") {
          closing = 1
        } else {
          if byte == UInt8(ascii: ">") && closing == 1 { context = .markup }
          closing = 0
        }
      }
      if byte == UInt8(ascii: "<") {
        matched = 1
        candidates = (1 << Self.openers.count) - 1
      }
    }
  }

  /// `-->` or `]]>`: two of `repeated` (or more) then `>` end the comment or CDATA section.
  mutating func close(_ byte: UInt8, repeated: UInt8) {
    if byte == repeated {
      closing = min(closing + 1, 2)
    } else {
      if byte == UInt8(ascii: ">") && closing == 2 { context = .markup }
      closing = 0
    }
  }

  /// The byte after `<…`: narrows the openers it may begin; returns true when it completed
  /// one (the byte is consumed), false when the byte is ordinary.
  mutating func matchOpener(_ byte: UInt8) throws -> Bool {
    var complete: String?
    for (i, opener) in Self.openers.enumerated() where candidates & (1 << i) != 0 {
      if matched < opener.bytes.count && opener.bytes[matched] == byte {
        if matched + 1 == opener.bytes.count { complete = opener.name }
      } else {
        candidates &= ~(1 << i)
      }
    }
    matched += 1
    if candidates == 0 { matched = 0 }
    guard let complete else { return false }
    matched = 0
    let start = offset + 1 - Self.openers.first { $0.name == complete }!.bytes.count
    switch complete {
    case "doctype":
      throw refuse(
        "has a document type declaration (<!DOCTYPE); a camt.053 statement has none, not even in a comment", at: start)
    case "entity":
      throw refuse(
        "has an entity declaration (<!ENTITY); a camt.053 statement has none, not even in a comment", at: start)
    default:
      // Openers only open in markup: `<!--` inside CDATA is text, `<?` in a comment too.
      guard context == .markup else { return false }
      context = complete == "comment" ? .comment : complete == "cdata" ? .cdata : .instruction
      closing = 0
      return true
    }
  }

  /// A byte of the entity reference in hand: its name up to `;`.
  mutating func referenceByte(_ byte: UInt8) throws {
    guard byte != UInt8(ascii: ";") else {
      let name = reference ?? []
      reference = nil
      guard Self.allowedReference(name) else { throw badReference(nil, name: name) }
      return
    }
    let isNameByte =
      (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
      || byte == UInt8(ascii: "#")
      || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
      || byte == UInt8(ascii: ":")
    guard isNameByte, (reference?.count ?? 0) < Self.maxReferenceBytes else { throw badReference(byte) }
    reference?.append(byte)
  }

  /// `amp`, `lt`, `gt`, `quot`, `apos`, `#` and decimal digits, `#x` and hex digits.
  static func allowedReference(_ name: [UInt8]) -> Bool {
    switch String(decoding: name, as: UTF8.self) {
    case "amp", "lt", "gt", "quot", "apos": return true
    default: break
    }
    guard name.first == UInt8(ascii: "#") else { return false }
    let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
    let isHex = { (b: UInt8) in isDigit(b) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66) }
    if name.count > 2, name[1] == UInt8(ascii: "x") { return name.dropFirst(2).allSatisfy(isHex) }
    return name.count > 1 && name.dropFirst().allSatisfy(isDigit)
  }

  /// An entity reference refused: an unknown name, or a `&` that starts none.
  func badReference(_ byte: UInt8?, name: [UInt8]? = nil) -> InputError {
    let read = name ?? reference ?? []
    let start = offset - read.count - 1
    let shown = String(decoding: read, as: UTF8.self)
    let next =
      byte.map { $0 >= 0x21 && $0 < 0x7F ? "'\(Character(Unicode.Scalar($0)))'" : UTF8Validator.hex($0) }
      ?? "the end of the file"
    let rule =
      name != nil
      ? "the entity reference '&\(shown);' is not one XML predefines"
      : "a '&' that does not begin an entity reference ('&\(shown)' then \(next))"
    return refuse(
      rule
        + "; a statement may use only &amp; &lt; &gt; &quot; &apos; and character references (&#233; &#xE9;); write '&' as &amp;",
      at: max(start, 0))
  }

  /// The end of the file: no character or reference may be left open.
  mutating func finish() throws {
    if utf8.inSequence { throw refuse("not UTF-8: \(utf8.truncatedAtEnd)") }
    if reference != nil { throw badReference(nil) }
  }
}
