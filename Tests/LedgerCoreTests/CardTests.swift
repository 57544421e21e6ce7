import Testing

@testable import LedgerCore

@Suite("CardRules")
struct CardRulesTests {
  @Test(
    "Luhn check",
    arguments: [
      ("4242424242424242", true),
      ("4242424242424241", false),
      ("79927398713", true),
      ("79927398710", false),
      ("0", true),
      ("00", true),
      ("18", true),
      ("19", false),
      ("5555555555554444", true),
      ("378282246310005", true),
      ("4000056655665556", true),
      ("4222222222222", true),
      ("6011111111111117", true),
      ("", false),
      ("4242 4242 4242 4242", false),
      ("42424242424242a2", false),
    ])
  func luhn(digits: String, valid: Bool) {
    #expect(CardRules.luhnValid(digits) == valid)
  }

  @Test(
    "card numbers are refused as tokens",
    arguments: [
      "4242424242424242",  // 16 digits
      "4242-4242-4242-4242",  // dashes
      "4222222222222",  // 13 digits
      "378282246310005",  // 15 digits (Amex)
      "4242424242424242428",  // 19 digits
      "4242-4242-4242-4242-428",
      "42-42-42-42-42-42-42-42",
    ])
  func cardNumbersRefused(raw: String) throws {
    let digits = raw.filter { $0 != "-" }
    try #require(CardRules.luhnValid(digits), "fixture \(raw) must pass the Luhn check")
    let error = try #require(refusal { try CardRules.token(raw, field: "--token") })
    #expect(error.field == "--token")
    #expect(error.rule.contains("card number"))
    #expect(error.rule.contains("\(digits.count) digits"))
  }

  @Test("a card number with spaces is refused")
  func spacedCardNumberRefused() throws {
    #expect(refusal { try CardRules.token("4242 4242 4242 4242") } != nil)
  }

  @Test("a card number with spaces is refused as a card number")
  func spacedCardNumberRule() throws {
    // Spaces and dashes aside, it is a card number, and the operator is told so.
    let error = try #require(refusal { try CardRules.token("4242 4242 4242 4242") })
    #expect(error.rule.contains("card number"))
  }

  @Test(
    "digit strings that are not card numbers are accepted as tokens",
    arguments: [
      "4242424242424241",  // 16 digits, Luhn-invalid
      "424242424242",  // 12 digits, Luhn-valid but too short for a card number
      "42424242424242424242",  // 20 digits
      "123",
    ])
  func digitTokensAccepted(raw: String) throws {
    #expect(try CardRules.token(raw) == raw)
  }

  @Test(
    "processor tokens are accepted unchanged",
    arguments: [
      "tok_visa", "tok_1NZ3xYJd2eZvKYlo2CkWQeZz", "pm_card_mastercard", "card-123", "abc",
      String(repeating: "t", count: 255),
    ])
  func tokensAccepted(raw: String) throws {
    #expect(try CardRules.token(raw) == raw)
  }

  @Test(
    "tokens too short, too long, with spaces or control characters are refused",
    arguments: [
      "", "t", "tk", "tok visa", " tok_visa", "tok_visa ", "tok\tvisa", "tok_visa\n", "tok_vísa", "tok\u{7F}",
      String(repeating: "t", count: 256),
    ])
  func badTokens(raw: String) throws {
    let error = try #require(refusal { try CardRules.token(raw, field: "token") })
    #expect(error.field == "token")
    #expect(error.rule.contains("3 to 255 printable ASCII"))
  }

  @Test("last4 accepts exactly four ASCII digits", arguments: ["4242", "0000", "9999"])
  func last4Accepted(raw: String) throws {
    #expect(try CardRules.last4(raw) == raw)
  }

  @Test("last4 refuses anything else", arguments: ["", "424", "42424", "42a2", " 424", "42 2", "-424", "١٢٣٤", "４２４２"])
  func last4Refused(raw: String) throws {
    let error = try #require(refusal { try CardRules.last4(raw) })
    #expect(error.field == "--last4")
    #expect(error.rule.contains("exactly 4 digits"))
  }

  @Test(
    "brands parse case-insensitively",
    arguments: [
      ("visa", CardBrand.visa), ("Visa", .visa), ("VISA", .visa), ("mastercard", .mastercard),
      ("MasterCard", .mastercard),
      ("amex", .amex), ("discover", .discover), ("jcb", .jcb), ("diners", .diners), ("unionpay", .unionpay),
      ("CB", .cb),
      ("other", .other),
    ])
  func brands(raw: String, brand: CardBrand) throws {
    #expect(try CardRules.brand(raw) == brand)
  }

  @Test("every brand parses from its raw value")
  func allBrands() throws {
    for brand in CardBrand.allCases {
      #expect(try CardRules.brand(brand.rawValue) == brand)
      #expect(try CardRules.brand(brand.rawValue.uppercased()) == brand)
    }
  }

  @Test(
    "unknown brands are refused, listing the known ones",
    arguments: ["maestro", "", "master card", "visa ", "american express"])
  func unknownBrands(raw: String) throws {
    let error = try #require(refusal { try CardRules.brand(raw, field: "brand") })
    #expect(error.field == "brand")
    for brand in CardBrand.allCases {
      #expect(error.rule.contains(brand.rawValue))
    }
  }

  @Test("CardStatus raw values")
  func statusRawValues() {
    #expect(CardStatus.needsUpdate.rawValue == "needs_update")
    #expect(CardStatus(rawValue: "needs_update") == .needsUpdate)
    #expect(CardStatus(rawValue: "active") == .active)
    #expect(CardStatus(rawValue: "removed") == .removed)
    #expect(CardStatus(rawValue: "needsUpdate") == nil)
  }
}

@Suite("CardExpiry")
struct CardExpiryTests {
  @Test(
    "valid expiries",
    arguments: [
      ("09/2028", 9, 2028), ("9/2028", 9, 2028), ("9/28", 9, 2028), ("09/28", 9, 2028), ("12/2100", 12, 2100),
      ("01/2000", 1, 2000), ("1/00", 1, 2000), ("12/99", 12, 2099),
    ])
  func valid(text: String, month: Int, year: Int) throws {
    let expiry = try CardExpiry(parsing: text)
    #expect(expiry.month == month)
    #expect(expiry.year == year)
  }

  @Test(
    "malformed expiries are refused with the format rule",
    arguments: [
      "ab/cd", "", "/", "09", "092028", "09-2028", "09/2028/1", "009/2028", "09/202", "09/20288", "09/", "/2028",
      "+9/28", "9/+28", " 9/28", "9/28 ", "٠٩/٢٨",
    ])
  func malformed(text: String) throws {
    let error = try #require(refusal { try CardExpiry(parsing: text) })
    #expect(error.field == "--expiry")
    #expect(error.rule.contains("not an expiry"))
  }

  @Test(
    "months and years out of range are refused",
    arguments: ["13/2028", "00/2028", "0/28", "09/1999", "09/2101", "99/99"])
  func outOfRange(text: String) throws {
    let error = try #require(refusal { try CardExpiry(parsing: text, field: "expiry") })
    #expect(error.field == "expiry")
    #expect(error.rule.contains("not a month"))
  }

  @Test("init(month:year:) checks its ranges")
  func memberwise() throws {
    #expect(try CardExpiry(month: 1, year: 2000) == CardExpiry(parsing: "01/2000"))
    #expect(refusal { try CardExpiry(month: 0, year: 2028) } != nil)
    #expect(refusal { try CardExpiry(month: 13, year: 2028) } != nil)
    #expect(refusal { try CardExpiry(month: 6, year: 1999) } != nil)
    #expect(refusal { try CardExpiry(month: 6, year: 2101) } != nil)
  }

  @Test("a card is good through the last day of its expiry month")
  func isExpiredBoundary() throws {
    let expiry = try CardExpiry(parsing: "11/2026")
    #expect(!expiry.isExpired(on: try CivilDate(iso8601: "2026-11-30")))
    #expect(!expiry.isExpired(on: try CivilDate(iso8601: "2026-11-01")))
    #expect(!expiry.isExpired(on: try CivilDate(iso8601: "2026-10-31")))
    #expect(!expiry.isExpired(on: try CivilDate(iso8601: "2025-12-31")))
    #expect(expiry.isExpired(on: try CivilDate(iso8601: "2026-12-01")))
    #expect(expiry.isExpired(on: try CivilDate(iso8601: "2027-01-01")))
    #expect(expiry.isExpired(on: try CivilDate(iso8601: "2027-10-15")))
    // December rolls into the next year.
    let december = try CardExpiry(parsing: "12/2026")
    #expect(!december.isExpired(on: try CivilDate(iso8601: "2026-12-31")))
    #expect(december.isExpired(on: try CivilDate(iso8601: "2027-01-01")))
  }

  @Test(
    "lastDay is the month's last day",
    arguments: [
      ("02/2028", "2028-02-29"), ("02/2026", "2026-02-28"), ("02/2100", "2100-02-28"), ("02/2000", "2000-02-29"),
      ("11/2026", "2026-11-30"), ("12/2026", "2026-12-31"), ("04/2030", "2030-04-30"),
    ])
  func lastDay(text: String, day: String) throws {
    let expiry = try CardExpiry(parsing: text)
    #expect(expiry.lastDay.iso8601 == day)
    #expect(!expiry.isExpired(on: expiry.lastDay))
    #expect(expiry.isExpired(on: expiry.lastDay.adding(days: 1)))
  }

  @Test("description is MM/YYYY")
  func description() throws {
    #expect(try CardExpiry(parsing: "9/28").description == "09/2028")
    #expect(try CardExpiry(parsing: "11/2026").description == "11/2026")
  }
}

@Suite("CardPolicy")
struct CardPolicyTests {
  static let today = try! CivilDate(iso8601: "2026-11-23")
  static let valid = try! CardExpiry(parsing: "09/2028")
  static let thisMonth = try! CardExpiry(parsing: "11/2026")
  static let expired = try! CardExpiry(parsing: "10/2026")

  func card(
    _ id: Int64, _ status: CardStatus = .active, _ expiry: CardExpiry = CardPolicyTests.valid, isDefault: Bool = false
  ) -> CardSummary {
    CardSummary(id: id, status: status, expiry: expiry, isDefault: isDefault)
  }

  @Test("successor: the oldest active card that has not expired")
  func successorOldestUnexpired() {
    let cards = [card(1, .active, Self.expired), card(2, .needsUpdate), card(3), card(4)]
    #expect(CardPolicy.successor(among: cards, on: Self.today) == 3)
    #expect(CardPolicy.successor(among: [card(5), card(6)], on: Self.today) == 5)
    // A card expiring this month has not expired yet.
    #expect(
      CardPolicy.successor(among: [card(1, .active, Self.expired), card(2, .active, Self.thisMonth)], on: Self.today)
        == 2)
  }

  @Test("successor: else the oldest active card, expired or not")
  func successorOldestActive() {
    let cards = [card(1, .needsUpdate), card(2, .active, Self.expired), card(3, .active, Self.expired)]
    #expect(CardPolicy.successor(among: cards, on: Self.today) == 2)
  }

  @Test("successor: none when no card is active")
  func successorNone() {
    #expect(CardPolicy.successor(among: [], on: Self.today) == nil)
    #expect(CardPolicy.successor(among: [card(1, .needsUpdate), card(2, .removed)], on: Self.today) == nil)
    #expect(CardPolicy.successor(among: [card(1, .needsUpdate, isDefault: true)], on: Self.today) == nil)
  }

  @Test("successor depends on the date")
  func successorDate() throws {
    let cards = [card(1, .active, Self.thisMonth), card(2)]
    #expect(CardPolicy.successor(among: cards, on: Self.today) == 1)
    #expect(CardPolicy.successor(among: cards, on: try CivilDate(iso8601: "2026-12-01")) == 2)
  }

  @Test("becomesDefault: only when no remaining card is default")
  func becomesDefault() {
    #expect(CardPolicy.becomesDefault(existing: []))
    #expect(CardPolicy.becomesDefault(existing: [card(1), card(2)]))
    #expect(CardPolicy.becomesDefault(existing: [card(1, .removed, isDefault: true)]))
    #expect(!CardPolicy.becomesDefault(existing: [card(1), card(2, isDefault: true)]))
    // A default card that needs an update or has expired is still the default.
    #expect(!CardPolicy.becomesDefault(existing: [card(1, .needsUpdate, isDefault: true)]))
    #expect(!CardPolicy.becomesDefault(existing: [card(1, .active, Self.expired, isDefault: true)]))
  }

  @Test("chargeOrder: the default first, then the others oldest first")
  func chargeOrder() {
    let cards = [card(1), card(2), card(3, isDefault: true), card(4)]
    #expect(CardPolicy.chargeOrder(cards, on: Self.today) == [3, 1, 2, 4])
    #expect(CardPolicy.chargeOrder([card(1, isDefault: true), card(2)], on: Self.today) == [1, 2])
    #expect(CardPolicy.chargeOrder([card(7), card(5)], on: Self.today) == [7, 5])
    #expect(CardPolicy.chargeOrder([], on: Self.today) == [])
  }

  @Test("chargeOrder skips expired cards and cards that need an update or were removed")
  func chargeOrderSkips() {
    let cards = [
      card(1, .active, Self.expired), card(2, .needsUpdate), card(3, .active, Self.thisMonth), card(4, .removed),
      card(5, .active, Self.expired, isDefault: true), card(6),
    ]
    #expect(CardPolicy.chargeOrder(cards, on: Self.today) == [3, 6])
    #expect(CardPolicy.chargeOrder([card(1, .needsUpdate, isDefault: true), card(2)], on: Self.today) == [2])
    #expect(CardPolicy.chargeOrder([card(1, .active, Self.expired)], on: Self.today) == [])
    // Next month, the card expiring this month drops out.
    #expect(CardPolicy.chargeOrder(cards, on: Self.today.adding(days: 8)) == [6])
  }
}

@Suite("CardLimit and CardPolicy.availability")
struct CardLimitTests {
  static let now = try! Instant(iso8601: "2026-11-10T12:00:00Z")
  static func config(max: Int, days: Int) -> DunningConfig {
    var c = DunningConfig()
    c.maxChargesPerCard = max
    c.cardChargeWindowDays = days
    return c
  }
  static func ago(days: Int, hours: Int = 0) -> Instant {
    now.adding(days: -days).adding(seconds: -Int64(hours) * 3600)
  }

  @Test("under the limit: chargeable now; at it: when enough charges have left the window")
  func chargeableFrom() {
    let c = Self.config(max: 2, days: 30)
    #expect(CardLimit.chargeableFrom(charges: [], now: Self.now, config: c) == Self.now)
    #expect(CardLimit.chargeableFrom(charges: [Self.ago(days: 3)], now: Self.now, config: c) == Self.now)
    // Two in the window: free when the older leaves it, 30 days after it was made.
    #expect(
      CardLimit.chargeableFrom(charges: [Self.ago(days: 1), Self.ago(days: 3)], now: Self.now, config: c)
        == Self.ago(days: 3).adding(days: 30))
    // Three in the window: two must leave; the second oldest decides.
    let three = [Self.ago(days: 20), Self.ago(days: 2), Self.ago(days: 10)]
    #expect(CardLimit.chargeableFrom(charges: three, now: Self.now, config: c) == Self.ago(days: 10).adding(days: 30))
    // Charges already out of the window do not count; one made exactly a window ago is out.
    #expect(
      CardLimit.chargeableFrom(
        charges: [Self.ago(days: 30), Self.ago(days: 31), Self.ago(days: 1)], now: Self.now, config: c) == Self.now)
  }

  @Test("the moment it frees up is always after now, and the card is chargeable then")
  func freesUpLater() {
    let c = Self.config(max: 3, days: 5)
    let charges = (0..<7).map { Self.ago(days: 0, hours: $0 * 11) }
    let from = CardLimit.chargeableFrom(charges: charges, now: Self.now, config: c)
    #expect(from > Self.now)
    #expect(CardLimit.chargeableFrom(charges: charges, now: from, config: c) == from)
    #expect(
      CardLimit.chargeableFrom(charges: charges, now: from.adding(seconds: -1), config: c) > from.adding(seconds: -1))
  }

  @Test("availability: charge order without the limited card, and when it is free again")
  func availability() throws {
    let c = Self.config(max: 1, days: 30)
    let expiry = try CardExpiry(month: 12, year: 2030)
    let cards = [
      CardSummary(id: 1, status: .active, expiry: expiry, isDefault: false),
      CardSummary(id: 2, status: .active, expiry: expiry, isDefault: true),
      CardSummary(id: 3, status: .needsUpdate, expiry: expiry, isDefault: false),
    ]
    let all = CardPolicy.availability(cards, charges: [:], now: Self.now, config: c)
    #expect(all == CardAvailability(chargeable: [2, 1], limitedUntil: nil))
    let one = CardPolicy.availability(cards, charges: [2: [Self.ago(days: 4)]], now: Self.now, config: c)
    #expect(one == CardAvailability(chargeable: [1], limitedUntil: Self.ago(days: 4).adding(days: 30)))
    let none = CardPolicy.availability(
      cards, charges: [1: [Self.ago(days: 1)], 2: [Self.ago(days: 4)], 3: []], now: Self.now, config: c)
    #expect(none == CardAvailability(chargeable: [], limitedUntil: Self.ago(days: 4).adding(days: 30)))
    // A card that will have expired when its window frees up is no help.
    let expiring = [CardSummary(id: 4, status: .active, expiry: try CardExpiry(month: 11, year: 2026), isDefault: true)]
    #expect(
      CardPolicy.availability(expiring, charges: [4: [Self.ago(days: 4)]], now: Self.now, config: c)
        == CardAvailability(chargeable: [], limitedUntil: nil))
  }
}
