/// One line of an invoice being issued.
public struct InvoiceLineDraft: Sendable, Equatable {
  public let description: String
  public let kind: LineKind
  public let quantity: Int64
  public let unitAmount: Money

  public init(description: String, kind: LineKind = .other, quantity: Int64 = 1, unitAmount: Money) {
    self.description = description
    self.kind = kind
    self.quantity = quantity
    self.unitAmount = unitAmount
  }

  /// Parses a `--line` argument: `DESCRIPTION=AMOUNT` or `DESCRIPTION=AMOUNTxQUANTITY`,
  /// split at the last `=` so descriptions may contain one.
  public init(parsing text: String, currency: Currency, kind: LineKind = .other, field: String) throws {
    guard let eq = text.lastIndex(of: "=") else {
      throw InputError(field: field, rule: "'\(text)' must be DESCRIPTION=AMOUNT or DESCRIPTION=AMOUNTxQUANTITY")
    }
    let description = try Validate.text(String(text[..<eq]), field: "\(field) description", limit: 200)
    let priced = text[text.index(after: eq)...]
    var amountText = Substring(priced)
    var quantity: Int64 = 1
    if let x = priced.lastIndex(where: { $0 == "x" || $0 == "X" }) {
      amountText = priced[..<x]
      quantity = try Validate.quantity(String(priced[priced.index(after: x)...]), field: "\(field) quantity")
    }
    let unit = try Money.parsePositive(String(amountText), currency: currency, field: "\(field) amount")
    self.init(description: description, kind: kind, quantity: quantity, unitAmount: unit)
  }

  /// The line's amount, unit times quantity, within `Money.maximumMinorUnits`.
  public func amount() throws -> Money {
    let amount = try unitAmount.multiplied(by: quantity)
    try amount.checkBound(field: "amount")
    return amount
  }
}

/// An invoice ready to be written: lines checked, total computed, dates in order.
public struct InvoiceDraft: Sendable {
  public let accountID: Int64
  public let currency: Currency
  public let lines: [InvoiceLineDraft]
  public let issueDate: CivilDate
  public let dueDate: CivilDate
  public let method: CollectionMethod
  public let total: Money
  /// The subscription period it is the invoice of (issued by the scheduler), if any: one
  /// invoice per account and period start.
  public var period: DateSpan?

  public init(
    accountID: Int64, currency: Currency, lines: [InvoiceLineDraft], issueDate: CivilDate, dueDate: CivilDate,
    method: CollectionMethod
  ) throws {
    guard !lines.isEmpty else { throw InputError(field: "--line", rule: "an invoice needs at least one line") }
    guard lines.count <= 500 else { throw InputError(field: "--line", rule: "an invoice has at most 500 lines") }
    for (i, line) in lines.enumerated() {
      guard line.unitAmount.currency == currency else {
        throw InputError(
          field: "line \(i + 1)", rule: "is in \(line.unitAmount.currency.code), the invoice in \(currency.code)")
      }
      guard line.unitAmount.minorUnits > 0, (1...1_000_000).contains(line.quantity) else {
        throw InputError(
          field: "line \(i + 1)", rule: "needs an amount greater than zero and a quantity from 1 to 1000000")
      }
    }
    guard dueDate >= issueDate else {
      throw InputError(field: "--due", rule: "\(dueDate) is before the issue date \(issueDate)")
    }
    var total = Money.zero(currency)
    for (i, line) in lines.enumerated() {
      do {
        total = try total.adding(try line.amount())
      } catch let error as InputError {
        throw error.renamed("line \(i + 1)")
      }
    }
    try total.checkBound(field: "invoice total")
    self.accountID = accountID
    self.currency = currency
    self.lines = lines
    self.issueDate = issueDate
    self.dueDate = dueDate
    self.method = method
    self.total = total
  }
}

/// The journal entries that money movements post. Pure: the store writes what these return
/// in the same transaction as the change they record.
public enum Posting {
  /// Issuing an invoice: the customer owes its total (debit receivable), earned as revenue.
  public static func invoiceIssued(invoiceID: Int64, number: String, customer: Int64, total: Money) throws
    -> JournalEntry
  {
    try JournalEntry(
      kind: .invoiceIssued, memo: "invoice \(number) issued",
      lines: [
        .debit(.receivable, total, customer: customer, invoice: invoiceID),
        .credit(.revenue, total, customer: customer, invoice: invoiceID),
      ], invoiceID: invoiceID)
  }

  /// Voiding an invoice: the issue entry reversed.
  public static func invoiceVoided(invoiceID: Int64, number: String, customer: Int64, total: Money) throws
    -> JournalEntry
  {
    try invoiceIssued(invoiceID: invoiceID, number: number, customer: customer, total: total)
      .reversal(kind: .invoiceVoided, memo: "invoice \(number) voided")
  }
}

extension Posting {
  /// A card payment refunded at the processor: the money leaves the processor's balance and
  /// the revenue it earned is taken back. The invoice stays as it was; staff decide what
  /// else the refund means (a finding).
  public static func cardRefund(amount: Money, memo: String) throws -> JournalEntry {
    try JournalEntry(
      kind: .refund, memo: memo, lines: [.debit(.revenue, amount), .credit(.processorClearing, amount)])
  }
}
