import LedgerCore
import LedgerSQLite

/// The plain-text accounting formats the journal is exported to, each checked by a tool
/// ledgerd did not write (`hledger check --strict`, `bean-check`).
public enum ExportFormat: String, CaseIterable, Sendable, Codable {
  case hledger, beancount

  /// The name of a ledger account, with the customer's sub-account for the two accounts
  /// kept per customer (what each owes, what each has in credit).
  func accountName(_ account: String, customer: Int64?) -> String {
    let base: [String]
    switch LedgerAccount(rawValue: account) {
    case .receivable: base = ["assets", "receivable"]
    case .bank: base = ["assets", "bank"]
    case .processorClearing: base = ["assets", "processor-clearing"]
    case .customerCredit: base = ["liabilities", "customer-credit"]
    case .revenue: base = ["income", "revenue"]
    case .badDebt: base = ["expenses", "bad-debt"]
    case .processorFees: base = ["expenses", "processor-fees"]
    case nil: base = ["equity", "unknown-" + account.filter { $0.isLetter || $0.isNumber }]
    }
    let perCustomer = account == LedgerAccount.receivable.rawValue || account == LedgerAccount.customerCredit.rawValue
    let parts = base + (perCustomer ? customer.map { ["acct-\($0)"] } ?? [] : [])
    switch self {
    case .hledger: return parts.joined(separator: ":")
    // Beancount: capitalised components under its five roots.
    case .beancount: return parts.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: ":")
    }
  }
}

/// What an export wrote.
public struct ExportSummary: Codable, Sendable {
  public let format: String
  public let from: String?
  public let to: String?
  public var entries = 0
  public var postings = 0
  public var accounts = 0
  public var balanceAssertions = 0
  /// The newest entry of the whole journal and its hash (`0008_journal_hash_chain.sql`):
  /// kept by an auditor, it proves later that nothing up to it changed.
  public var headEntry: Int64?
  public var headHash: String?
}

extension LedgerStore {
  /// Writes the journal in `format` through `write`, one piece at a time (a stream: memory
  /// does not grow with the journal), from one read snapshot: the commodities with their
  /// decimals, every account, the balances before `from` as an opening entry, one
  /// transaction per entry dated `from`…`to` (its date, its id, its memo, one posting per
  /// line), and a balance assertion per account and currency at the end of the range,
  /// equal to the ledger's own balances, summed apart from the postings written.
  public func exportJournal(
    format: ExportFormat, from: CivilDate?, to: CivilDate?, write: (String) throws -> Void
  ) throws -> ExportSummary {
    var summary = ExportSummary(format: format.rawValue, from: from?.iso8601, to: to?.iso8601)
    let lower = from.map { $0.iso8601 } ?? ""
    // Entries are dated by their UTC day; the range ends with the last second of `to`.
    let upper = to.map { $0.adding(days: 1).iso8601 } ?? "9999"
    try read {
      let head = try db.queryOne("SELECT entry_id, hash FROM journal_hashes ORDER BY entry_id DESC LIMIT 1")
      summary.headEntry = try head?.int("entry_id")
      summary.headHash = try head?.string("hash")
      func amount(_ minor: Int64, _ currency: String) throws -> String {
        "\(Money(minorUnits: minor, currency: try Currency(code: currency)).amountString) \(currency)"
      }
      // The dates the directives stand on: the range's first day, else the journal's.
      let firstDay =
        try from?.iso8601 ?? db.scalarText("SELECT substr(min(at), 1, 10) FROM journal_entries") ?? "1970-01-01"
      let lastDay =
        try to?.iso8601 ?? db.scalarText("SELECT substr(max(at), 1, 10) FROM journal_entries WHERE at < ?", upper)
        ?? firstDay

      try write(header(format, summary: summary))
      for row in try db.query("SELECT DISTINCT currency FROM journal_lines ORDER BY currency") {
        let currency = try Currency(code: try row.string("currency"))
        let sample = Money(minorUnits: 100_000 * Int64(pow10(currency.exponent)), currency: currency).amountString
        switch format {
        case .hledger: try write("commodity \(sample) \(currency.code)\n")
        case .beancount: try write("\(firstDay) commodity \(currency.code)\n")
        }
      }
      try db.forEachRow(
        "SELECT DISTINCT ledger_account, CASE WHEN ledger_account IN ('receivable', 'customer_credit') THEN account_id END AS customer FROM journal_lines ORDER BY 1, 2"
      ) { row in
        let name = format.accountName(try row.string("ledger_account"), customer: try row.optionalInt("customer"))
        summary.accounts += 1
        switch format {
        case .hledger: try write("account \(name)\n")
        case .beancount: try write("\(firstDay) open \(name)\n")
        }
      }
      try write("\n")

      // What every account held before the range, as one balanced opening entry.
      if from != nil {
        var opening: [String] = []
        try db.forEachRow(
          """
          SELECT l.ledger_account, CASE WHEN l.ledger_account IN ('receivable', 'customer_credit') THEN l.account_id END AS customer,
            l.currency, sum(l.debit_minor) - sum(l.credit_minor) AS balance
          FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id WHERE e.at < ?
          GROUP BY 1, 2, 3 HAVING balance <> 0 ORDER BY 1, 2, 3
          """, lower
        ) { row in
          let name = format.accountName(try row.string("ledger_account"), customer: try row.optionalInt("customer"))
          opening.append("    \(name)  \(try amount(try row.int("balance"), try row.string("currency")))\n")
        }
        if !opening.isEmpty {
          switch format {
          case .hledger: try write("\(lower) opening balances (the journal before \(lower))\n")
          case .beancount: try write("\(lower) * \"opening balances (the journal before \(lower))\"\n")
          }
          for line in opening { try write(line) }
          try write("\n")
        }
      }

      // The entries of the range, in order, with their lines.
      var current: Int64?
      try db.forEachRow(
        """
        SELECT e.id, e.at, e.memo, l.ledger_account, l.account_id, l.currency, l.debit_minor - l.credit_minor AS amount
        FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id
        WHERE e.at >= ? AND e.at < ? ORDER BY e.id, l.id
        """, lower, upper
      ) { row in
        let id = try row.int("id")
        if current != id {
          if current != nil { try write("\n") }
          current = id
          summary.entries += 1
          let date = String(try row.string("at").prefix(10))
          let memo = try row.string("memo")
          switch format {
          case .hledger:
            // A ';' would start a comment: the description is the memo up to it otherwise.
            try write("\(date) (\(id)) \(memo.replacingOccurrences(of: ";", with: ","))\n")
          case .beancount:
            let quoted = memo.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            try write("\(date) * \"\(quoted)\"\n  entry: \(id)\n")
          }
        }
        let name = format.accountName(try row.string("ledger_account"), customer: try row.optionalInt("account_id"))
        try write("    \(name)  \(try amount(try row.int("amount"), try row.string("currency")))\n")
        summary.postings += 1
      }
      if current != nil { try write("\n") }

      // Every account's balance at the end of the range, from the ledger's own sums.
      let assertionDay: String
      switch format {
      case .hledger:
        assertionDay = lastDay
        try write("\(assertionDay) balance assertions: the ledger's own balances at the end of \(assertionDay)\n")
      case .beancount:
        // Beancount checks a balance at the start of its day: the day after the range.
        assertionDay = try CivilDate(iso8601: lastDay).adding(days: 1).iso8601
      }
      try db.forEachRow(
        """
        SELECT l.ledger_account, CASE WHEN l.ledger_account IN ('receivable', 'customer_credit') THEN l.account_id END AS customer,
          l.currency, sum(l.debit_minor) - sum(l.credit_minor) AS balance
        FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id WHERE e.at < ?
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """, upper
      ) { row in
        let name = format.accountName(try row.string("ledger_account"), customer: try row.optionalInt("customer"))
        let currency = try row.string("currency")
        let balance = try amount(try row.int("balance"), currency)
        switch format {
        case .hledger: try write("    \(name)  0 \(currency) = \(balance)\n")
        case .beancount: try write("\(assertionDay) balance \(name)  \(balance)\n")
        }
        summary.balanceAssertions += 1
      }
      try write("\n" + footer(format, summary: summary))
    }
    return summary
  }

  private func header(_ format: ExportFormat, summary: ExportSummary) -> String {
    let range = "\(summary.from ?? "the first entry") to \(summary.to ?? "the last entry")"
    switch format {
    case .hledger: return "; ledgerd journal, \(range); check it with: hledger check --strict -f FILE\n\n"
    case .beancount: return "; ledgerd journal, \(range); check it with: bean-check FILE\n\n"
    }
  }

  private func footer(_ format: ExportFormat, summary: ExportSummary) -> String {
    guard let entry = summary.headEntry, let hash = summary.headHash else { return "; journal head: no entry yet\n" }
    return "; journal head: entry \(entry), hash \(hash)\n"
  }
}

/// 10 to the power `n`, for small `n`.
private func pow10(_ n: Int) -> Int { (0..<n).reduce(1) { r, _ in r * 10 } }
