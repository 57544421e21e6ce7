import Testing

@testable import LedgerCore

@Suite("InvoiceLineDraft(parsing:)")
struct InvoiceLineDraftTests {
  @Test(
    "lines parse into description, unit amount and quantity",
    arguments: [
      ("Pro plan=19.00", "Pro plan", Int64(1900), Int64(1)),
      ("Domain=12.00x3", "Domain", 1200, 3),
      ("Domain=12.00X3", "Domain", 1200, 3),
      ("a=b=1.00", "a=b", 100, 1),
      ("Setup fee = extra=5", "Setup fee = extra", 500, 1),
      ("Box=5.5x2", "Box", 550, 2),
      ("  Support  =0.01", "Support", 1, 1),
      ("Seats=3.00x1000000", "Seats", 300, 1_000_000),
      ("x=1.00x2", "x", 100, 2),
      ("Tax 5% = VAT=0.05", "Tax 5% = VAT", 5, 1),
      ("Café crème=3.20", "Café crème", 320, 1),
    ])
  func parses(text: String, description: String, unit: Int64, quantity: Int64) throws {
    let line = try InvoiceLineDraft(parsing: text, currency: .eur, field: "line 1")
    #expect(line.description == description)
    #expect(line.unitAmount == eur(unit))
    #expect(line.quantity == quantity)
    #expect(line.kind == .other)
    #expect(try line.amount() == eur(unit * quantity))
  }

  @Test("the kind is kept")
  func kind() throws {
    let line = try InvoiceLineDraft(parsing: "Backup=4.00", currency: .eur, kind: .addon, field: "line 2")
    #expect(line.kind == .addon)
    #expect(line == InvoiceLineDraft(description: "Backup", kind: .addon, quantity: 1, unitAmount: eur(400)))
  }

  @Test("amounts follow the currency's exponent")
  func currencyExponent() throws {
    let yen = try InvoiceLineDraft(parsing: "Plan=1200x2", currency: .jpy, field: "line 1")
    #expect(yen.unitAmount == Money(minorUnits: 1200, currency: .jpy))
    #expect(try yen.amount() == Money(minorUnits: 2400, currency: .jpy))
    let dinar = try InvoiceLineDraft(parsing: "Plan=1.234", currency: .kwd, field: "line 1")
    #expect(dinar.unitAmount == Money(minorUnits: 1234, currency: .kwd))

    let yenDecimals = try #require(
      refusal { try InvoiceLineDraft(parsing: "Plan=12.5", currency: .jpy, field: "line 3") })
    #expect(yenDecimals.field == "line 3 amount")
    #expect(yenDecimals.rule.contains("decimals"))
    let eurDecimals = try #require(
      refusal { try InvoiceLineDraft(parsing: "Plan=1.234", currency: .eur, field: "line 1") })
    #expect(eurDecimals.field == "line 1 amount")
    #expect(eurDecimals.rule.contains("decimals"))
  }

  @Test("a missing '=' is refused with the line's field")
  func missingEquals() throws {
    let error = try #require(
      refusal { try InvoiceLineDraft(parsing: "Pro plan 19.00", currency: .eur, field: "line 2") })
    #expect(error.field == "line 2")
    #expect(error.rule.contains("DESCRIPTION=AMOUNT"))
    #expect(refusal { try InvoiceLineDraft(parsing: "", currency: .eur, field: "line 1") }?.field == "line 1")
  }

  @Test(
    "bad amounts are refused under '<field> amount'",
    arguments: [
      "Pro=", "Pro=abc", "Pro=19,00", "Pro=-19.00", "Pro=0", "Pro=0.00", "Pro= 19.00", "Pro=19.00 ", "Pro=x3",
      "Pro=+19",
    ])
  func badAmount(text: String) throws {
    let error = try #require(refusal { try InvoiceLineDraft(parsing: text, currency: .eur, field: "line 4") })
    #expect(error.field == "line 4 amount")
  }

  @Test(
    "bad quantities are refused under '<field> quantity'",
    arguments: [
      "Pro=1.00x0", "Pro=1.00x", "Pro=1.00x-1", "Pro=1.00xa", "Pro=1.00x1000001", "Pro=1.00x1.5", "Pro=1.00x 2",
      "Pro=1.00x3x",
    ])
  func badQuantity(text: String) throws {
    let error = try #require(refusal { try InvoiceLineDraft(parsing: text, currency: .eur, field: "line 5") })
    #expect(error.field == "line 5 quantity")
    #expect(error.rule.contains("1 to 1000000"))
  }

  @Test(
    "bad descriptions are refused under '<field> description'",
    arguments: [
      "=1.00", "   =1.00", "Pro\nBcc=1.00", "Pro\tplan\u{7}=1.00", String(repeating: "d", count: 201) + "=1.00",
    ])
  func badDescription(text: String) throws {
    let error = try #require(refusal { try InvoiceLineDraft(parsing: text, currency: .eur, field: "line 6") })
    #expect(error.field == "line 6 description")
  }

  @Test("a 200-character description is accepted")
  func longDescription() throws {
    let description = String(repeating: "d", count: 200)
    #expect(
      try InvoiceLineDraft(parsing: description + "=1.00", currency: .eur, field: "line 1").description == description)
  }

  @Test("a line amount beyond the bound is an error")
  func lineOverflow() throws {
    let line = try InvoiceLineDraft(parsing: "Big=600000000.00x2", currency: .eur, field: "line 1")
    let error = try #require(refusal { try line.amount() })
    #expect(error.rule.contains("1200000000.00 EUR is beyond the limit of 1000000000.00 EUR"))
  }
}

@Suite("InvoiceDraft")
struct InvoiceDraftTests {
  static let issue = try! CivilDate(iso8601: "2026-11-23")
  static let due = try! CivilDate(iso8601: "2026-12-07")

  func line(_ unit: Money, quantity: Int64 = 1, kind: LineKind = .other) -> InvoiceLineDraft {
    InvoiceLineDraft(description: "item", kind: kind, quantity: quantity, unitAmount: unit)
  }

  func draft(
    _ lines: [InvoiceLineDraft], currency: Currency = .eur, issue: CivilDate = InvoiceDraftTests.issue,
    due: CivilDate = InvoiceDraftTests.due, method: CollectionMethod = .card
  ) throws -> InvoiceDraft {
    try InvoiceDraft(accountID: 5, currency: currency, lines: lines, issueDate: issue, dueDate: due, method: method)
  }

  @Test("the total is the sum of quantity times unit amount")
  func total() throws {
    let invoice = try draft(
      [
        line(eur(1900), kind: .plan), line(eur(1200), quantity: 3, kind: .addon), line(eur(1)),
        line(eur(5), quantity: 7),
      ],
      method: .transfer)
    #expect(invoice.total == eur(1900 + 3600 + 1 + 35))
    #expect(invoice.total.amountString == "55.36")
    #expect(invoice.accountID == 5)
    #expect(invoice.currency == .eur)
    #expect(invoice.lines.count == 4)
    #expect(invoice.lines.map(\.kind) == [.plan, .addon, .other, .other])
    #expect(invoice.issueDate == Self.issue)
    #expect(invoice.dueDate == Self.due)
    #expect(invoice.method == .transfer)
  }

  @Test("totals from parsed lines")
  func parsedTotal() throws {
    let lines = try ["Pro plan=19.00", "Domain=12.00x3", "a=b=1.00"].enumerated().map {
      try InvoiceLineDraft(parsing: $1, currency: .eur, field: "line \($0 + 1)")
    }
    #expect(try draft(lines).total == eur(1900 + 3600 + 100))
    let yen = try InvoiceLineDraft(parsing: "Plan=1200x3", currency: .jpy, field: "line 1")
    #expect(try draft([yen], currency: .jpy).total == Money(minorUnits: 3600, currency: .jpy))
  }

  @Test("the due date may be the issue date")
  func dueOnIssue() throws {
    #expect(try draft([line(eur(100))], due: Self.issue).dueDate == Self.issue)
  }

  @Test("an invoice without lines is refused")
  func empty() throws {
    let error = try #require(refusal { try draft([]) })
    #expect(error.field == "--line")
    #expect(error.rule.contains("at least one line"))
  }

  @Test("at most 500 lines")
  func lineLimit() throws {
    #expect(try draft(Array(repeating: line(eur(1)), count: 500)).total == eur(500))
    let error = try #require(refusal { try draft(Array(repeating: line(eur(1)), count: 501)) })
    #expect(error.field == "--line")
    #expect(error.rule.contains("500"))
  }

  @Test("a due date before the issue date is refused")
  func dueBeforeIssue() throws {
    let error = try #require(refusal { try draft([line(eur(100))], due: Self.issue.adding(days: -1)) })
    #expect(error.field == "--due")
    #expect(error.rule.contains("2026-11-22"))
    #expect(error.rule.contains("2026-11-23"))
  }

  @Test("lines in another currency are refused, naming the line")
  func mixedCurrency() throws {
    let error = try #require(refusal { try draft([line(eur(100)), line(usd(100))]) })
    #expect(error.field == "line 2")
    #expect(error.rule == "is in USD, the invoice in EUR")
    let whole = try #require(refusal { try draft([line(eur(100))], currency: .jpy) })
    #expect(whole.field == "line 1")
    #expect(whole.rule == "is in EUR, the invoice in JPY")
    // The currency is checked before the total, so a mismatch is reported even when
    // an earlier line would overflow.
    let first = try #require(refusal { try draft([line(eur(.max), quantity: 2), line(usd(1))]) })
    #expect(first.field == "line 2")
    #expect(first.rule.contains("the invoice in EUR"))
  }

  @Test("a line or a total beyond the bound is refused, naming the line or the total")
  func totalOverflow() throws {
    let bound = Money.maximumMinorUnits
    let big = try #require(refusal { try draft([line(eur(1)), line(eur(bound + 1))]) })
    #expect(big.field == "line 2")
    #expect(big.rule.contains("beyond the limit"))
    let product = try #require(refusal { try draft([line(eur(100)), line(eur(.max / 2 + 1), quantity: 2)]) })
    #expect(product.field == "line 2")
    #expect(product.rule.contains("overflows"))
    #expect(try draft([line(eur(bound - 1)), line(eur(1))]).total == eur(bound))
    let total = try #require(refusal { try draft([line(eur(bound)), line(eur(1))]) })
    #expect(total.field == "invoice total")
    #expect(total.rule.contains("beyond the limit"))
  }
}
