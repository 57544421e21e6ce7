import Foundation
import Testing

@testable import LedgerCore

@Suite("Money.parse and parsePositive")
struct MoneyParseTests {
  @Test(
    "valid amounts give exact minor units",
    arguments: [
      ("12.30", "EUR", Int64(1230)),
      ("12.3", "EUR", 1230),
      ("12", "EUR", 1200),
      ("0.05", "EUR", 5),
      ("0.5", "EUR", 50),
      ("007.50", "EUR", 750),
      ("1200", "JPY", 1200),
      ("0", "JPY", 0),
      ("1.234", "KWD", 1234),
      ("1.2", "KWD", 1200),
      ("1", "KWD", 1000),
      ("0.001", "KWD", 1),
      ("1000000000.00", "EUR", Money.maximumMinorUnits),
      ("100000000000", "JPY", Money.maximumMinorUnits),
      ("100000000.000", "KWD", Money.maximumMinorUnits),
      ("-1000000000", "EUR", -Money.maximumMinorUnits),
      ("00000000000000000000000001.00", "EUR", 100),
    ])
  func parsesValid(text: String, code: String, minor: Int64) throws {
    let currency = try Currency(code: code)
    let money = try Money.parse(text, currency: currency)
    #expect(money.minorUnits == minor)
    #expect(money.currency == currency)
  }

  @Test(
    "positive amounts pass parsePositive",
    arguments: [
      ("12.30", "EUR", Int64(1230)),
      ("0.01", "EUR", 1),
      ("1200", "JPY", 1200),
      ("1.234", "KWD", 1234),
      ("1000000000.00", "EUR", Money.maximumMinorUnits),
    ])
  func parsePositiveAccepts(text: String, code: String, minor: Int64) throws {
    let money = try Money.parsePositive(text, currency: try Currency(code: code))
    #expect(money.minorUnits == minor)
  }

  @Test("too many decimals are refused, naming the decimals and the currency's rule")
  func tooManyDecimals() throws {
    let eurError = try #require(refusal { try Money.parse("12.345", currency: .eur) })
    #expect(eurError.field == "amount")
    #expect(eurError.rule.contains("decimals"))
    #expect(eurError.rule.contains("EUR"))
    #expect(eurError.rule.contains("at most 2 decimals"))

    let jpyError = try #require(refusal { try Money.parse("12.5", currency: .jpy, field: "--price") })
    #expect(jpyError.field == "--price")
    #expect(jpyError.rule.contains("no decimals"))
    #expect(jpyError.rule.contains("JPY"))

    let kwdError = try #require(refusal { try Money.parse("1.2345", currency: .kwd) })
    #expect(kwdError.rule.contains("at most 3 decimals"))

    // Trailing zeros still count as decimals the currency does not have.
    #expect(refusal { try Money.parse("12.300", currency: .eur) } != nil)
    #expect(refusal { try Money.parse("1200.0", currency: .jpy) } != nil)
  }

  @Test(
    "malformed amounts are refused with the field and a format rule",
    arguments: [
      "", "abc", "12,30", "1e3", " 12", "12 ", "+12", "12.", ".5", "1.2.3", "--1", "-", "-.5", "- 5",
      "1 000", "1_000", "0x10", "١٢", "１２", "12.3a", "NaN", "Infinity", "12-", "1-2",
    ])
  func malformed(text: String) throws {
    let error = try #require(refusal { try Money.parse(text, currency: .eur, field: "--amount") })
    #expect(error.field == "--amount")
    #expect(error.rule.contains("is not an amount"))
    #expect(refusal { try Money.parsePositive(text, currency: .eur) } != nil)
  }

  @Test("negative amounts parse but are not positive")
  func negative() throws {
    let money = try Money.parse("-5.00", currency: .eur)
    #expect(money.minorUnits == -500)
    #expect(try Money.parse("-0.05", currency: .eur).minorUnits == -5)
    #expect(try Money.parse("-1200", currency: .jpy).minorUnits == -1200)

    let error = try #require(refusal { try Money.parsePositive("-5.00", currency: .eur, field: "--price") })
    #expect(error.field == "--price")
    #expect(error.rule.contains("greater than zero"))
  }

  @Test("zero is refused by parsePositive in every spelling", arguments: ["0", "0.00", "0.0", "-0", "000", "-0.00"])
  func zeroIsNotPositive(text: String) throws {
    #expect(try Money.parse(text, currency: .eur).minorUnits == 0)
    let error = try #require(refusal { try Money.parsePositive(text, currency: .eur) })
    #expect(error.field == "amount")
    #expect(error.rule.contains("greater than zero"))
  }

  @Test(
    "values beyond ledgerd's bound are refused, naming the bound",
    arguments: [
      ("1000000000.01", "EUR"),
      ("100000000001", "JPY"),
      ("100000000.001", "KWD"),
      ("-1000000000.01", "EUR"),
      ("92233720368547758.08", "EUR"),
      ("92233720368547758.1", "EUR"),
      ("92233720368547759", "EUR"),
      ("99999999999999999999", "EUR"),
      ("99999999999999999999", "JPY"),
      ("9223372036854775808", "JPY"),
      ("9223372036854775.808", "KWD"),
      ("-92233720368547758.09", "EUR"),
      ("100000000000000000000000000000000000000", "EUR"),
    ])
  func overflow(text: String, code: String) throws {
    let currency = try Currency(code: code)
    let error = try #require(refusal { try Money.parse(text, currency: currency) })
    #expect(error.field == "amount")
    #expect(error.rule.contains("beyond the limit of \(Money.maximum(in: currency))"))
  }

  @Test("the bound is accepted and nothing above it, either sign")
  func boundary() throws {
    #expect(try Money.parse("1000000000.00", currency: .eur).minorUnits == Money.maximumMinorUnits)
    #expect(refusal { try Money.parse("1000000000.01", currency: .eur) } != nil)
    #expect(try Money.parse("-1000000000.00", currency: .eur).minorUnits == -Money.maximumMinorUnits)
    #expect(refusal { try Money.parse("-1000000000.01", currency: .eur) } != nil)
    // The bound keeps a sum of 92 million of them within Int64.
    #expect(Int64.max / Money.maximumMinorUnits >= 92_000_000)
  }

  @Test(
    "parse is the inverse of amountString",
    arguments: [
      Int64(0), 1, 5, 10, 99, 100, 1230, -1, -5, -1230, 123_456_789, Money.maximumMinorUnits, -Money.maximumMinorUnits,
    ])
  func roundTrip(minor: Int64) throws {
    for currency in [Currency.eur, .jpy, .kwd] {
      let money = Money(minorUnits: minor, currency: currency)
      #expect(try Money.parse(money.amountString, currency: currency) == money)
    }
  }
}

@Suite("Money formatting")
struct MoneyFormattingTests {
  @Test(
    "amountString and description",
    arguments: [
      (Int64(1230), "EUR", "12.30"),
      (5, "EUR", "0.05"),
      (50, "EUR", "0.50"),
      (0, "EUR", "0.00"),
      (-5, "EUR", "-0.05"),
      (-1230, "EUR", "-12.30"),
      (100, "EUR", "1.00"),
      (1200, "JPY", "1200"),
      (0, "JPY", "0"),
      (-1200, "JPY", "-1200"),
      (1234, "KWD", "1.234"),
      (5, "KWD", "0.005"),
      (1000, "KWD", "1.000"),
      (-1, "KWD", "-0.001"),
      (Int64.max, "EUR", "92233720368547758.07"),
      (Int64.min, "EUR", "-92233720368547758.08"),
      (Int64.max, "JPY", "9223372036854775807"),
      (Int64.max, "KWD", "9223372036854775.807"),
    ])
  func format(minor: Int64, code: String, expected: String) throws {
    let currency = try Currency(code: code)
    let money = Money(minorUnits: minor, currency: currency)
    #expect(money.amountString == expected)
    #expect(money.description == "\(expected) \(code)")
  }

  @Test("zero is zero in its currency")
  func zero() {
    #expect(Money.zero(.jpy) == Money(minorUnits: 0, currency: .jpy))
    #expect(Money.zero(.eur).description == "0.00 EUR")
    #expect(Money.zero(.eur) != Money.zero(.jpy))
  }
}

@Suite("Money arithmetic")
struct MoneyArithmeticTests {
  @Test("adding, subtracting and multiplying in one currency")
  func arithmetic() throws {
    #expect(try eur(1230).adding(eur(70)) == eur(1300))
    #expect(try eur(1230).subtracting(eur(1300)) == eur(-70))
    #expect(try eur(1230).multiplied(by: 3) == eur(3690))
    #expect(try eur(1230).multiplied(by: 0) == eur(0))
    #expect(try eur(1230).multiplied(by: -2) == eur(-2460))
    #expect(try eur(Int64.max - 1).adding(eur(1)) == eur(.max))
    #expect(try eur(Int64.min + 1).subtracting(eur(1)) == eur(.min))
  }

  @Test("sum of amounts")
  func sum() throws {
    #expect(try Money.sum([eur(100), eur(250), eur(-50)], currency: .eur) == eur(300))
    #expect(try Money.sum([], currency: .jpy) == Money.zero(.jpy))
    let mismatch = try #require(refusal { try Money.sum([eur(100), usd(100)], currency: .eur) })
    #expect(mismatch.field == "currency")
    let overflow = try #require(refusal { try Money.sum([eur(.max), eur(1)], currency: .eur) })
    #expect(overflow.rule.contains("overflows"))
  }

  @Test("overflow is an error, never a trap or a wrap")
  func overflow() throws {
    let add = try #require(refusal { try eur(.max).adding(eur(1)) })
    #expect(add.field == "amount")
    #expect(add.rule.contains("overflows"))

    let addNegative = try #require(refusal { try eur(.min).adding(eur(-1)) })
    #expect(addNegative.rule.contains("overflows"))

    let subtract = try #require(refusal { try eur(.min).subtracting(eur(1)) })
    #expect(subtract.field == "amount")
    #expect(subtract.rule.contains("overflows"))
    #expect(refusal { try eur(0).subtracting(eur(.min)) } != nil)

    let multiply = try #require(refusal { try eur(.max).multiplied(by: 2) })
    #expect(multiply.field == "amount")
    #expect(multiply.rule.contains("overflows"))
    #expect(refusal { try eur(.min).multiplied(by: -1) } != nil)
    #expect(refusal { try eur(4_611_686_018_427_387_904).multiplied(by: 2) } != nil)
    #expect(try eur(4_611_686_018_427_387_903).multiplied(by: 2) == eur(9_223_372_036_854_775_806))
  }

  @Test("combining currencies is refused")
  func currencyMismatch() throws {
    let add = try #require(refusal { try eur(100).adding(usd(100)) })
    #expect(add.field == "currency")
    #expect(add.rule.contains("EUR"))
    #expect(add.rule.contains("USD"))
    let subtract = try #require(refusal { try usd(100).subtracting(eur(100)) })
    #expect(subtract.field == "currency")
    #expect(subtract.rule.contains("USD"))
    // Even zero amounts of different currencies do not mix.
    #expect(refusal { try Money.zero(.eur).adding(Money.zero(.jpy)) } != nil)
  }
}

@Suite("Money and Currency Codable")
struct MoneyCodableTests {
  func json<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }

  @Test("Money encodes minor units, currency code and decimal text")
  func encodeShape() throws {
    #expect(try json(eur(1230)) == #"{"amount":"12.30","currency":"EUR","minor":1230}"#)
    #expect(try json(eur(-5)) == #"{"amount":"-0.05","currency":"EUR","minor":-5}"#)
    #expect(try json(Money(minorUnits: 1200, currency: .jpy)) == #"{"amount":"1200","currency":"JPY","minor":1200}"#)
    #expect(
      try json(eur(.max)) == #"{"amount":"92233720368547758.07","currency":"EUR","minor":9223372036854775807}"#)
  }

  @Test("Money decodes from minor units and currency", arguments: [Int64(1230), -5, 0, .max, .min])
  func roundTrip(minor: Int64) throws {
    for currency in [Currency.eur, .jpy, .kwd] {
      let money = Money(minorUnits: minor, currency: currency)
      let data = try JSONEncoder().encode(money)
      #expect(try JSONDecoder().decode(Money.self, from: data) == money)
    }
  }

  @Test("decoding ignores the amount text and refuses unknown currencies")
  func decode() throws {
    let decoded = try JSONDecoder().decode(
      Money.self, from: Data(#"{"minor": 1230, "currency": "KWD"}"#.utf8))
    #expect(decoded == Money(minorUnits: 1230, currency: .kwd))
    #expect(decoded.amountString == "1.230")
    #expect(throws: InputError.self) {
      try JSONDecoder().decode(Money.self, from: Data(#"{"minor": 1, "currency": "XYZ"}"#.utf8))
    }
    #expect(throws: InputError.self) {
      try JSONDecoder().decode(Money.self, from: Data(#"{"minor": 1, "currency": "eur"}"#.utf8))
    }
    #expect(throws: (any Error).self) {
      try JSONDecoder().decode(Money.self, from: Data(#"{"minor": 1.5, "currency": "EUR"}"#.utf8))
    }
    #expect(throws: (any Error).self) {
      try JSONDecoder().decode(Money.self, from: Data(#"{"amount": "12.30", "currency": "EUR"}"#.utf8))
    }
  }

  @Test("Currency is encoded as its code")
  func currencyCodable() throws {
    #expect(try json(Currency.jpy) == #""JPY""#)
    #expect(try json([Currency.eur, .kwd]) == #"["EUR","KWD"]"#)
    let decoded = try JSONDecoder().decode([Currency].self, from: Data(#"["KWD","JPY"]"#.utf8))
    #expect(decoded == [.kwd, .jpy])
    #expect(decoded.map(\.exponent) == [3, 0])
    #expect(throws: InputError.self) { try JSONDecoder().decode(Currency.self, from: Data(#""CLF""#.utf8)) }
  }

  @Test("Plan encodes its price as a Money object")
  func planShape() throws {
    let plan = Plan(id: 1, code: "pro", name: "Pro", price: eur(1900), period: .month)
    #expect(
      try json(plan)
        == #"{"code":"pro","id":1,"name":"Pro","period":"month","price":{"amount":"19.00","currency":"EUR","minor":1900}}"#
    )
    let back = try JSONDecoder().decode(Plan.self, from: try JSONEncoder().encode(plan))
    #expect(back == plan)
  }
}

@Suite("Currency")
struct CurrencyTests {
  @Test(
    "known codes and their exponents",
    arguments: [
      ("EUR", 2), ("USD", 2), ("GBP", 2), ("CHF", 2), ("JPY", 0), ("KRW", 0), ("ISK", 0), ("CLP", 0),
      ("XOF", 0), ("KWD", 3), ("BHD", 3), ("TND", 3), ("OMR", 3), ("ZWG", 2), ("XCG", 2),
    ])
  func known(code: String, exponent: Int) throws {
    let currency = try Currency(code: code)
    #expect(currency.code == code)
    #expect(currency.exponent == exponent)
    #expect(currency.description == code)
  }

  @Test("the static EUR is the looked-up EUR")
  func staticEUR() throws {
    #expect(try Currency(code: "EUR") == Currency.eur)
    #expect(Currency.eur.exponent == 2)
  }

  @Test(
    "unknown or malformed codes are refused under the given field",
    arguments: [
      "CLF", "XYZ", "XTS", "XAU", "eur", "Eur", "EURO", "EU", "", "E1R", " EU", "EUR ", "ÉUR", "€",
    ])
  func refused(code: String) throws {
    let error = try #require(refusal { try Currency(code: code, field: "--currency") })
    #expect(error.field == "--currency")
    #expect(error.rule.contains("ISO 4217"))
    let defaultField = try #require(refusal { try Currency(code: code) })
    #expect(defaultField.field == "currency")
  }

  @Test("well-formed but unknown codes get the 'not known' rule")
  func unknownRule() throws {
    let error = try #require(refusal { try Currency(code: "XYZ", field: "x") })
    #expect(error.rule.contains("not a known"))
    let malformed = try #require(refusal { try Currency(code: "eur", field: "x") })
    #expect(malformed.rule.contains("three capital letters"))
  }

  @Test("every code in the table is three capital letters with exponent 0, 2 or 3")
  func tableShape() {
    #expect(Currency.exponents.count > 150)
    for (code, exponent) in Currency.exponents {
      #expect(code.utf8.count == 3 && code.utf8.allSatisfy { (65...90).contains($0) }, "\(code)")
      #expect([0, 2, 3].contains(exponent), "\(code)")
    }
  }
}
