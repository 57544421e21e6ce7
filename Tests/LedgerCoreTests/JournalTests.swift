import Testing

@testable import LedgerCore

/// Runs `body`, expecting an `UnbalancedEntry`.
func unbalanced<R>(
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> R
) -> UnbalancedEntry? {
  do {
    let value = try body()
    Issue.record("expected UnbalancedEntry, got \(value)", sourceLocation: sourceLocation)
    return nil
  } catch let error as UnbalancedEntry {
    return error
  } catch {
    Issue.record("expected UnbalancedEntry, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    return nil
  }
}

@Suite("JournalLine")
struct JournalLineTests {
  @Test("debits are positive, credits negative")
  func sides() {
    let debit = JournalLine.debit(.receivable, eur(1230), customer: 7, invoice: 42)
    #expect(debit.ledgerAccount == .receivable)
    #expect(debit.signedAmount == eur(1230))
    #expect(debit.debitMinor == 1230)
    #expect(debit.creditMinor == 0)
    #expect(debit.customerAccountID == 7)
    #expect(debit.invoiceID == 42)

    let credit = JournalLine.credit(.revenue, eur(1230))
    #expect(credit.signedAmount == eur(-1230))
    #expect(credit.debitMinor == 0)
    #expect(credit.creditMinor == 1230)
    #expect(credit.customerAccountID == nil)
    #expect(credit.invoiceID == nil)
  }

  @Test("ledger account raw values")
  func rawValues() {
    #expect(LedgerAccount.processorClearing.rawValue == "processor_clearing")
    #expect(LedgerAccount.badDebt.rawValue == "bad_debt")
    #expect(LedgerAccount.customerCredit.rawValue == "customer_credit")
    #expect(LedgerAccount.processorFees.rawValue == "processor_fees")
    #expect(JournalKind.invoiceIssued.rawValue == "invoice_issued")
    #expect(JournalKind.invoiceVoided.rawValue == "invoice_voided")
    #expect(JournalKind.cardPayment.rawValue == "card_payment")
    #expect(JournalKind.writeOff.rawValue == "write_off")
    #expect(JournalKind.processorFee.rawValue == "processor_fee")
  }
}

@Suite("JournalEntry")
struct JournalEntryTests {
  @Test("a balanced entry is accepted with its fields")
  func balanced() throws {
    let lines: [JournalLine] = [
      .debit(.processorClearing, eur(1900)), .credit(.receivable, eur(1900), customer: 3, invoice: 9),
    ]
    let entry = try JournalEntry(kind: .cardPayment, memo: "card payment", lines: lines, invoiceID: 9, paymentID: 11)
    #expect(entry.kind == .cardPayment)
    #expect(entry.memo == "card payment")
    #expect(entry.lines == lines)
    #expect(entry.invoiceID == 9)
    #expect(entry.paymentID == 11)
  }

  @Test("several lines on each side balance by their sum")
  func manyLines() throws {
    let entry = try JournalEntry(
      kind: .cardPayment, memo: "payment with fee",
      lines: [
        .debit(.processorClearing, eur(1842)), .debit(.processorFees, eur(58)), .credit(.receivable, eur(1000)),
        .credit(.receivable, eur(900)),
      ])
    #expect(entry.lines.map(\.debitMinor).reduce(0, +) == entry.lines.map(\.creditMinor).reduce(0, +))
    #expect(entry.invoiceID == nil)
    #expect(entry.paymentID == nil)
  }

  @Test("an unbalanced entry is refused with the currency and the imbalance")
  func unbalancedEntry() throws {
    let error = try #require(
      unbalanced {
        try JournalEntry(
          kind: .cardPayment, memo: "m", lines: [.debit(.bank, eur(1900)), .credit(.receivable, eur(1800))])
      })
    #expect(error.reason.contains("EUR"))
    #expect(error.reason.contains("1.00 EUR"))
    #expect(error.description.hasPrefix("journal entry refused: "))

    // Two debits and no credit.
    #expect(
      unbalanced { try JournalEntry(kind: .refund, memo: "m", lines: [.debit(.bank, eur(1)), .debit(.bank, eur(1))]) }
        != nil)
    // Off by one minor unit.
    #expect(
      unbalanced {
        try JournalEntry(
          kind: .refund, memo: "m", lines: [.debit(.bank, eur(1000)), .credit(.customerCredit, eur(999))])
      } != nil)
  }

  @Test("fewer than two lines are refused")
  func tooFewLines() throws {
    let single = try #require(
      unbalanced { try JournalEntry(kind: .refund, memo: "m", lines: [.debit(.bank, eur(100))]) })
    #expect(single.reason.contains("at least two lines"))
    let none = try #require(unbalanced { try JournalEntry(kind: .refund, memo: "m", lines: []) })
    #expect(none.reason.contains("at least two lines"))
  }

  @Test("a zero line is refused even when the entry balances")
  func zeroLine() throws {
    let error = try #require(
      unbalanced {
        try JournalEntry(
          kind: .refund, memo: "m",
          lines: [.debit(.bank, eur(100)), .credit(.receivable, eur(100)), .debit(.bank, eur(0))])
      })
    #expect(error.reason.contains("bank"))
    #expect(
      unbalanced {
        try JournalEntry(kind: .refund, memo: "m", lines: [.debit(.bank, eur(0)), .credit(.revenue, eur(0))])
      } != nil)
  }

  @Test("a line of Int64.min is refused (it cannot be negated)")
  func minLine() throws {
    #expect(
      unbalanced {
        try JournalEntry(kind: .refund, memo: "m", lines: [.debit(.bank, eur(.min)), .debit(.bank, eur(.min))])
      } != nil)
    // credit(Int64.min) wraps to Int64.min rather than trapping, and is refused too.
    #expect(JournalLine.credit(.bank, eur(.min)).signedAmount.minorUnits == .min)
    #expect(
      unbalanced {
        try JournalEntry(kind: .refund, memo: "m", lines: [.credit(.bank, eur(.min)), .credit(.bank, eur(.min))])
      } != nil)
  }

  @Test("totals that overflow are refused instead of trapping")
  func overflow() throws {
    let error = try #require(
      unbalanced {
        try JournalEntry(
          kind: .refund, memo: "m",
          lines: [
            .debit(.bank, eur(.max)), .debit(.bank, eur(1)), .credit(.revenue, eur(.max)), .credit(.revenue, eur(1)),
          ])
      })
    #expect(error.reason.contains("overflows"))
    let max = try JournalEntry(
      kind: .refund, memo: "m", lines: [.debit(.bank, eur(.max)), .credit(.revenue, eur(.max))])
    #expect(max.lines[0].debitMinor == .max)
    #expect(max.lines[1].creditMinor == .max)
  }

  @Test("multi-currency entries balance per currency")
  func multiCurrency() throws {
    let entry = try JournalEntry(
      kind: .transferPayment, memo: "two currencies",
      lines: [
        .debit(.bank, eur(1000)), .credit(.receivable, eur(1000)), .debit(.bank, usd(500)),
        .credit(.receivable, usd(500)),
      ])
    #expect(entry.lines.count == 4)

    let error = try #require(
      unbalanced {
        try JournalEntry(
          kind: .transferPayment, memo: "usd off",
          lines: [
            .debit(.bank, eur(1000)), .credit(.receivable, eur(1000)), .debit(.bank, usd(500)),
            .credit(.receivable, usd(400)),
          ])
      })
    #expect(error.reason.contains("USD"))
    #expect(!error.reason.contains("EUR"))

    // The same total in two currencies is not a balance.
    #expect(
      unbalanced {
        try JournalEntry(kind: .refund, memo: "m", lines: [.debit(.bank, eur(500)), .credit(.bank, usd(500))])
      } != nil)
  }

  @Test("a reversal swaps debits and credits and keeps everything else")
  func reversal() throws {
    let original = try JournalEntry(
      kind: .cardPayment, memo: "paid",
      lines: [
        .debit(.processorClearing, eur(1842)), .debit(.processorFees, eur(58)),
        .credit(.receivable, eur(1900), customer: 4, invoice: 21),
      ], invoiceID: 21, paymentID: 33)
    let reversed = try original.reversal(kind: .reversal, memo: "payment reversed")
    #expect(reversed.kind == .reversal)
    #expect(reversed.memo == "payment reversed")
    #expect(reversed.invoiceID == 21)
    #expect(reversed.paymentID == 33)
    #expect(reversed.lines.count == original.lines.count)
    for (a, b) in zip(original.lines, reversed.lines) {
      #expect(a.ledgerAccount == b.ledgerAccount)
      #expect(a.debitMinor == b.creditMinor)
      #expect(a.creditMinor == b.debitMinor)
      #expect(a.signedAmount.minorUnits == -b.signedAmount.minorUnits)
      #expect(a.signedAmount.currency == b.signedAmount.currency)
      #expect(a.customerAccountID == b.customerAccountID)
      #expect(a.invoiceID == b.invoiceID)
    }
    // Reversing twice gives the original lines back.
    let twice = try reversed.reversal(kind: original.kind, memo: original.memo)
    #expect(twice == original)
  }
}

@Suite("Posting")
struct PostingTests {
  @Test("issuing an invoice debits receivable and credits revenue")
  func invoiceIssued() throws {
    let entry = try Posting.invoiceIssued(invoiceID: 42, number: "2026-000042", customer: 7, total: eur(2300))
    #expect(entry.kind == .invoiceIssued)
    #expect(entry.memo == "invoice 2026-000042 issued")
    #expect(entry.invoiceID == 42)
    #expect(entry.paymentID == nil)
    #expect(
      entry.lines == [
        .debit(.receivable, eur(2300), customer: 7, invoice: 42),
        .credit(.revenue, eur(2300), customer: 7, invoice: 42),
      ])
    #expect(entry.lines[0].debitMinor == 2300)
    #expect(entry.lines[1].creditMinor == 2300)
  }

  @Test("voiding an invoice reverses the issue entry")
  func invoiceVoided() throws {
    let total = Money(minorUnits: 1200, currency: .jpy)
    let entry = try Posting.invoiceVoided(invoiceID: 42, number: "2026-000042", customer: 7, total: total)
    #expect(entry.kind == .invoiceVoided)
    #expect(entry.memo == "invoice 2026-000042 voided")
    #expect(entry.invoiceID == 42)
    #expect(
      entry.lines == [
        .credit(.receivable, total, customer: 7, invoice: 42),
        .debit(.revenue, total, customer: 7, invoice: 42),
      ])
    let issued = try Posting.invoiceIssued(invoiceID: 42, number: "2026-000042", customer: 7, total: total)
    for (a, b) in zip(issued.lines, entry.lines) {
      #expect(a.signedAmount.minorUnits == -b.signedAmount.minorUnits)
    }
  }

  @Test("a zero total cannot be posted")
  func zeroTotal() {
    #expect(unbalanced { try Posting.invoiceIssued(invoiceID: 1, number: "n", customer: 1, total: eur(0)) } != nil)
    #expect(unbalanced { try Posting.invoiceVoided(invoiceID: 1, number: "n", customer: 1, total: eur(0)) } != nil)
  }
}
