/// The ledger's chart of accounts. Customer accounts appear as a sub-ledger: lines on
/// `receivable` and `customerCredit` carry the customer account (and invoice) they concern.
public enum LedgerAccount: String, CaseIterable, Sendable, Codable {
  /// What customers owe on issued invoices.
  case receivable
  /// Income recognised when an invoice is issued.
  case revenue
  /// Card money the processor has collected but not yet paid out.
  case processorClearing = "processor_clearing"
  /// Money in the bank account (transfers, payouts).
  case bank
  /// Written-off receivables.
  case badDebt = "bad_debt"
  /// Money customers paid beyond what they owed, held for their next invoices.
  case customerCredit = "customer_credit"
  /// The processor's fees.
  case processorFees = "processor_fees"
}

extension LedgerAccount {
  /// The accounts kept per customer (the sub-ledger): what each one owes, has written off
  /// and holds as credit. The others are kept per currency only.
  public var isCustomerSubLedger: Bool { self == .receivable || self == .customerCredit || self == .badDebt }
}

/// What a journal entry records.
public enum JournalKind: String, CaseIterable, Sendable, Codable {
  case invoiceIssued = "invoice_issued"
  case invoiceVoided = "invoice_voided"
  case cardPayment = "card_payment"
  case transferPayment = "transfer_payment"
  case writeOff = "write_off"
  case creditApplied = "credit_applied"
  case refund
  case processorFee = "processor_fee"
  case reversal
  /// The processor paying its balance out to the bank: bank / processor clearing.
  case payout
}

/// One line of an entry: a debit or a credit, never both, on one ledger account.
public struct JournalLine: Sendable, Equatable {
  public let ledgerAccount: LedgerAccount
  /// Positive for a debit, negative for a credit.
  public let signedAmount: Money
  public let customerAccountID: Int64?
  public let invoiceID: Int64?

  public static func debit(_ account: LedgerAccount, _ amount: Money, customer: Int64? = nil, invoice: Int64? = nil)
    -> JournalLine
  {
    JournalLine(ledgerAccount: account, signedAmount: amount, customerAccountID: customer, invoiceID: invoice)
  }

  public static func credit(_ account: LedgerAccount, _ amount: Money, customer: Int64? = nil, invoice: Int64? = nil)
    -> JournalLine
  {
    JournalLine(
      ledgerAccount: account, signedAmount: Money(minorUnits: 0 &- amount.minorUnits, currency: amount.currency),
      customerAccountID: customer, invoiceID: invoice)
  }

  public var debitMinor: Int64 { max(signedAmount.minorUnits, 0) }
  public var creditMinor: Int64 { signedAmount.minorUnits < 0 ? -signedAmount.minorUnits : 0 }
}

/// Why an entry was refused before anything was written.
public struct UnbalancedEntry: Error, CustomStringConvertible, Equatable, Sendable {
  public let reason: String
  public var description: String { "journal entry refused: \(reason)" }
}

/// A balanced double-entry journal entry. It can only be built balanced: every currency's
/// debits equal its credits, there are at least two lines, and no line is zero.
public struct JournalEntry: Sendable, Equatable {
  public let kind: JournalKind
  public let memo: String
  public let lines: [JournalLine]
  public let invoiceID: Int64?
  public let paymentID: Int64?

  public init(kind: JournalKind, memo: String, lines: [JournalLine], invoiceID: Int64? = nil, paymentID: Int64? = nil)
    throws
  {
    guard lines.count >= 2 else { throw UnbalancedEntry(reason: "an entry needs at least two lines") }
    var totals: [Currency: Int64] = [:]
    for line in lines {
      guard line.signedAmount.minorUnits != 0, line.signedAmount.minorUnits != .min else {
        throw UnbalancedEntry(reason: "a line on \(line.ledgerAccount.rawValue) has amount \(line.signedAmount)")
      }
      let (sum, overflow) = totals[line.signedAmount.currency, default: 0].addingReportingOverflow(
        line.signedAmount.minorUnits)
      guard !overflow else { throw UnbalancedEntry(reason: "the lines' total overflows") }
      totals[line.signedAmount.currency] = sum
    }
    if let (currency, imbalance) = totals.first(where: { $0.value != 0 }) {
      throw UnbalancedEntry(
        reason: "\(currency.code) lines do not sum to zero (off by \(Money(minorUnits: imbalance, currency: currency)))"
      )
    }
    self.kind = kind
    self.memo = memo
    self.lines = lines
    self.invoiceID = invoiceID
    self.paymentID = paymentID
  }

  /// The entry that undoes this one: every line with its side swapped.
  public func reversal(kind: JournalKind, memo: String) throws -> JournalEntry {
    try JournalEntry(
      kind: kind, memo: memo,
      lines: lines.map {
        JournalLine(
          ledgerAccount: $0.ledgerAccount,
          signedAmount: Money(minorUnits: -$0.signedAmount.minorUnits, currency: $0.signedAmount.currency),
          customerAccountID: $0.customerAccountID, invoiceID: $0.invoiceID)
      }, invoiceID: invoiceID, paymentID: paymentID)
  }
}
