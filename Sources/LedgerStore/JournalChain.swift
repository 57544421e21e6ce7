import LedgerCore
import LedgerSQLite

/// The journal's hash chain (`0008_journal_hash_chain.sql`): each entry's hash is SHA-256 of
/// the previous entry's hash (64 zeros before the first) followed by the entry's content.
/// The content is written here once, from the values as stored, and used by posting, by
/// the hashes computed after the migration, and by `check`: every field length-prefixed
/// (`<bytes>:<value>`), so that no memo can pass for another split of the fields.
enum JournalChain {
  /// The hash before the first entry.
  static let origin = String(repeating: "0", count: 64)

  /// One journal line as stored.
  struct Line {
    let ledgerAccount: String
    let currency: String
    let debitMinor: Int64
    let creditMinor: Int64
    let accountID: Int64?
    let invoiceID: Int64?
  }

  /// The hash of an entry whose predecessor's hash is `previous`.
  static func hash(
    previous: String, entryID: Int64, at: String, kind: String, memo: String, invoiceID: Int64?, paymentID: Int64?,
    lines: [Line]
  ) -> String {
    var bytes = [UInt8]()
    bytes.reserveCapacity(512)
    bytes.append(contentsOf: previous.utf8)
    // Appended in place: every entry posted is hashed.
    func decimal(_ value: Int64) {
      if value < 0 { bytes.append(UInt8(ascii: "-")) }
      var magnitude = value.magnitude
      let start = bytes.count
      repeat {
        bytes.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
        magnitude /= 10
      } while magnitude > 0
      bytes[start...].reverse()
    }
    func field(_ text: String) {
      decimal(Int64(text.utf8.count))
      bytes.append(UInt8(ascii: ":"))
      bytes.append(contentsOf: text.utf8)
    }
    func field(_ number: Int64?) {
      guard let number else { return field("") }
      // The length of its decimal text, then the text: what field(String(number)) writes.
      var magnitude = number.magnitude
      var length = number < 0 ? 2 : 1
      while magnitude >= 10 {
        magnitude /= 10
        length += 1
      }
      decimal(Int64(length))
      bytes.append(UInt8(ascii: ":"))
      decimal(number)
    }
    field(entryID)
    field(at)
    field(kind)
    field(memo)
    field(invoiceID)
    field(paymentID)
    field(Int64(lines.count))
    for line in lines {
      field(line.ledgerAccount)
      field(line.currency)
      field(line.debitMinor)
      field(line.creditMinor)
      field(line.accountID)
      field(line.invoiceID)
    }
    return SHA256.hex(bytes)
  }
}

/// What `verifyJournalChain` found: the entries read and the first that breaks the chain.
public struct JournalChainReport: Sendable {
  public var entries = 0
  /// The newest entry and its hash (nil for an empty journal).
  public var head: (entryID: Int64, hash: String)?
  /// The first problem, naming its entry; nil when the chain holds.
  public var firstBreak: String?
}

extension LedgerStore {
  /// The newest entry's hash, or the origin before any entry.
  func journalHead() throws -> String {
    try db.scalarText("SELECT hash FROM journal_hashes ORDER BY entry_id DESC LIMIT 1") ?? JournalChain.origin
  }

  /// Stores the hash of an entry just written, in the caller's transaction.
  func chain(entryID: Int64, at: String, entry: JournalEntry) throws {
    let lines = entry.lines.map {
      JournalChain.Line(
        ledgerAccount: $0.ledgerAccount.rawValue, currency: $0.signedAmount.currency.code, debitMinor: $0.debitMinor,
        creditMinor: $0.creditMinor, accountID: $0.customerAccountID, invoiceID: $0.invoiceID)
    }
    let hash = JournalChain.hash(
      previous: try journalHead(), entryID: entryID, at: at, kind: entry.kind.rawValue, memo: entry.memo,
      invoiceID: entry.invoiceID,
      paymentID: entry.paymentID, lines: lines)
    try db.run("INSERT INTO journal_hashes (entry_id, hash) VALUES (?, ?)", entryID, hash)
  }

  /// Walks the journal in order, entry by entry with its lines (a stream: memory does not
  /// grow with the journal), handing each to `body` with its stored hash (nil: none).
  func forEachJournalEntry(
    _ body: (
      _ id: Int64, _ at: String, _ kind: String, _ memo: String, _ invoiceID: Int64?, _ paymentID: Int64?,
      _ lines: [JournalChain.Line], _ storedHash: String?
    ) throws -> Void
  ) throws {
    var current: (id: Int64, at: String, kind: String, memo: String, invoice: Int64?, payment: Int64?, hash: String?)?
    var lines: [JournalChain.Line] = []
    func flush() throws {
      if let c = current { try body(c.id, c.at, c.kind, c.memo, c.invoice, c.payment, lines, c.hash) }
      lines = []
    }
    try db.forEachRow(
      """
      SELECT e.id, e.at, e.kind, e.memo, e.invoice_id AS entry_invoice, e.payment_id, h.hash,
        l.ledger_account, l.currency, l.debit_minor, l.credit_minor, l.account_id, l.invoice_id
      FROM journal_entries e LEFT JOIN journal_hashes h ON h.entry_id = e.id LEFT JOIN journal_lines l ON l.entry_id = e.id
      ORDER BY e.id, l.id
      """
    ) { row in
      let id = try row.int("id")
      if current?.id != id {
        try flush()
        current = (
          id, try row.string("at"), try row.string("kind"), try row.string("memo"),
          try row.optionalInt("entry_invoice"),
          try row.optionalInt("payment_id"), try row.optionalString("hash")
        )
      }
      if let account = try row.optionalString("ledger_account") {
        lines.append(
          JournalChain.Line(
            ledgerAccount: account, currency: try row.string("currency"), debitMinor: try row.int("debit_minor"),
            creditMinor: try row.int("credit_minor"), accountID: try row.optionalInt("account_id"),
            invoiceID: try row.optionalInt("invoice_id")))
      }
    }
    try flush()
  }

  /// Computes the hashes of entries that have none, in order, each chained to the one before
  /// (the entries posted before migration 0008); in the caller's write transaction. Returns
  /// how many. An entry without a hash after one with a hash is left alone: that is not a
  /// ledger from before the chain, and `check` reports it.
  func chainUnhashedEntries() throws -> Int {
    guard try db.scalarInt("SELECT count(*) FROM journal_hashes") == 0,
      try db.scalarInt("SELECT count(*) FROM journal_entries") ?? 0 > 0
    else { return 0 }
    var previous = JournalChain.origin
    var hashes: [(Int64, String)] = []
    try forEachJournalEntry { id, at, kind, memo, invoice, payment, lines, _ in
      previous = JournalChain.hash(
        previous: previous, entryID: id, at: at, kind: kind, memo: memo, invoiceID: invoice, paymentID: payment,
        lines: lines)
      hashes.append((id, previous))
    }
    for (id, hash) in hashes { try db.run("INSERT INTO journal_hashes (entry_id, hash) VALUES (?, ?)", id, hash) }
    return hashes.count
  }

  /// Recomputes the chain from the first entry and compares it with the stored hashes:
  /// the first entry whose stored hash differs (its content, or an entry before it, was
  /// changed after it was written), that has none, or a hash whose entry is gone.
  public func verifyJournalChain() throws -> JournalChainReport {
    var report = JournalChainReport()
    var previous = JournalChain.origin
    try read {
      try forEachJournalEntry { id, at, kind, memo, invoice, payment, lines, stored in
        report.entries += 1
        let expected = JournalChain.hash(
          previous: previous, entryID: id, at: at, kind: kind, memo: memo, invoiceID: invoice, paymentID: payment,
          lines: lines)
        if report.firstBreak == nil {
          if stored == nil {
            report.firstBreak = "journal entry \(id) has no hash: it was written without ledgerd"
          } else if stored != expected {
            report.firstBreak =
              "journal entry \(id) does not match its hash: the entry or its lines were changed after it was written"
              + " (or an entry before it was removed)"
          }
        }
        // The chain goes on from what is stored, so that one changed entry is named once.
        previous = stored ?? expected
        report.head = (id, previous)
      }
      if report.firstBreak == nil,
        let orphan = try db.scalarInt(
          "SELECT min(entry_id) FROM journal_hashes WHERE entry_id NOT IN (SELECT id FROM journal_entries)")
      {
        report.firstBreak = "journal entry \(orphan) has a hash but is gone: it was removed after it was written"
      }
    }
    return report
  }
}
