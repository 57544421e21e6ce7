/// Card brands ledgerd displays. The brand is display data only; the processor decides.
public enum CardBrand: String, CaseIterable, Sendable, Codable {
  case visa, mastercard, amex, discover, jcb, diners, unionpay, cb, other
}

/// Where a card stands for charging.
public enum CardStatus: String, Sendable, Codable {
  /// Can be charged (if not past its expiry month).
  case active
  /// A hard decline said this card cannot be charged until the customer updates it.
  case needsUpdate = "needs_update"
  /// Removed by the customer or staff; kept for history.
  case removed
}

/// A card's expiry: the card works through the last day of this month.
public struct CardExpiry: Hashable, Sendable, CustomStringConvertible {
  public let month: Int
  public let year: Int

  public init(month: Int, year: Int, field: String = "--expiry") throws {
    guard (1...12).contains(month), (2000...2100).contains(year) else {
      throw InputError(field: field, rule: "\(month)/\(year) is not a month (MM/YYYY, month 1 to 12)")
    }
    self.month = month
    self.year = year
  }

  /// Parses `MM/YYYY` (or `MM/YY`, read as 20YY).
  public init(parsing text: String, field: String = "--expiry") throws {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, (1...2).contains(parts[0].count), [2, 4].contains(parts[1].count),
      parts.allSatisfy({ $0.utf8.allSatisfy { (48...57).contains($0) } }),
      let m = Int(parts[0]), let y = Int(parts[1])
    else {
      throw InputError(field: field, rule: "'\(text)' is not an expiry (MM/YYYY, e.g. 09/2028)")
    }
    try self.init(month: m, year: parts[1].count == 2 ? 2000 + y : y, field: field)
  }

  /// True once the expiry month is over: a card expiring 11/2026 is still good on 2026-11-30.
  public func isExpired(on date: CivilDate) -> Bool {
    (year, month) < (date.year, date.month)
  }

  /// The last day the card can be charged.
  public var lastDay: CivilDate {
    // month and year were validated at construction, so this date exists.
    (try? CivilDate(year: year, month: month, day: CivilDate.daysIn(month: month, year: year)))
      ?? CivilDate(daysSinceEpoch: 0)
  }

  public var description: String { (month < 10 ? "0" : "") + "\(month)/\(year)" }
}

/// Rules for the card fields a processor gives us. ledgerd stores tokens and display data
/// only; a card number or CVC must never reach the database.
public enum CardRules {
  /// A processor token: 3 to 255 printable ASCII characters. A token that holds anything
  /// that looks like a card number (see `CardNumberText`), alone or inside it
  /// (`tok_4242424242424242`, `4242.4242.4242.4242`), is refused.
  public static func token(_ raw: String, field: String = "--token") throws -> String {
    // The card-number test comes first so that a number typed with spaces or dashes is
    // refused for what it is.
    try CardNumberText.refuse(raw, field: field)
    guard (3...255).contains(raw.utf8.count),
      raw.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
    else {
      throw InputError(field: field, rule: "a processor token has 3 to 255 printable ASCII characters without spaces")
    }
    return raw
  }

  /// A card at Stripe is its PaymentMethod: `pm_` and then letters, digits or underscores
  /// (Stripe's test methods read `pm_card_visa`), 4 to 255 characters in all.
  public static func paymentMethod(_ raw: String, field: String = "--token") throws -> String {
    let token = try self.token(raw, field: field)
    guard Self.wellFormed(token, prefix: "pm_", extra: 95) else {
      throw InputError(
        field: field,
        rule:
          "'\(token)' is not a Stripe PaymentMethod id (pm_ then letters, digits or underscores); with the Stripe processor a card's token is its PaymentMethod"
      )
    }
    return token
  }

  /// The account's customer at Stripe: `cus_` and then letters and digits, 5 to 255
  /// characters in all.
  public static func processorCustomer(_ raw: String, field: String = "--processor-customer") throws -> String {
    guard Self.wellFormed(raw, prefix: "cus_", extra: nil) else {
      throw InputError(
        field: field,
        rule: "'\(raw.prefix(64))' is not a Stripe customer id (cus_ then letters and digits, at most 255)")
    }
    return raw
  }

  /// `prefix` followed by at least one ASCII letter or digit (or the byte `extra`), 255
  /// bytes at most.
  static func wellFormed(_ raw: String, prefix: String, extra: UInt8?) -> Bool {
    guard raw.hasPrefix(prefix), raw.utf8.count > prefix.utf8.count, raw.utf8.count <= 255 else { return false }
    return raw.utf8.dropFirst(prefix.utf8.count).allSatisfy {
      (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == extra
    }
  }

  /// The Luhn (mod 10) check used by card numbers.
  public static func luhnValid(_ digits: String) -> Bool {
    var sum = 0
    for (i, byte) in digits.utf8.reversed().enumerated() {
      guard (48...57).contains(byte) else { return false }
      var d = Int(byte - 48)
      if i % 2 == 1 {
        d *= 2
        if d > 9 { d -= 9 }
      }
      sum += d
    }
    return !digits.isEmpty && sum % 10 == 0
  }

  /// The last four digits shown to the customer.
  public static func last4(_ raw: String, field: String = "--last4") throws -> String {
    guard raw.utf8.count == 4, raw.utf8.allSatisfy({ (48...57).contains($0) }) else {
      throw InputError(field: field, rule: "'\(raw)' must be exactly 4 digits")
    }
    return raw
  }

  public static func brand(_ raw: String, field: String = "--brand") throws -> CardBrand {
    guard let brand = CardBrand(rawValue: raw.lowercased()) else {
      throw InputError(
        field: field, rule: "'\(raw)' is not one of \(CardBrand.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return brand
  }
}

/// Card numbers hidden in text. A run is a maximal sequence of ASCII digits in which two
/// digits may be parted by one space, dot or dash (`4242 4242-4242.4242`); a run of 13 to 19
/// digits that passes the Luhn check looks like a card number (a primary account number).
/// Runs are maximal, so a longer number (a 25-digit IBAN tail, a 20-digit bank reference)
/// is never cut into a card-number-sized piece. Operator input that holds one is refused;
/// text that arrives from outside (statements, processor reports) is masked instead.
public enum CardNumberText {
  /// The card-number-looking runs of `text`, as ranges of its UTF-8 bytes.
  public static func runs(in text: String) -> [Range<Int>] {
    let bytes = Array(text.utf8)
    var found: [Range<Int>] = []
    var i = 0
    while i < bytes.count {
      guard isDigit(bytes[i]) else {
        i += 1
        continue
      }
      let start = i
      var digits = [bytes[i]]
      var end = i + 1
      while end < bytes.count {
        if isDigit(bytes[end]) {
          digits.append(bytes[end])
          end += 1
        } else if isSeparator(bytes[end]), end + 1 < bytes.count, isDigit(bytes[end + 1]) {
          end += 1
        } else {
          break
        }
      }
      if (13...19).contains(digits.count), CardRules.luhnValid(String(decoding: digits, as: UTF8.self)) {
        found.append(start..<end)
      }
      i = end
    }
    return found
  }

  /// Whether `text` holds something that looks like a card number.
  public static func contains(_ text: String) -> Bool {
    // Most text has no run of 13 digits at all: a quick count first.
    var digits = 0
    for b in text.utf8 where isDigit(b) { digits += 1 }
    return digits >= 13 && !runs(in: text).isEmpty
  }

  /// The first card-number-looking run of `text`, described without its number: its count
  /// of digits and its last four (`16 digits, ending 4242`); nil when there is none.
  public static func describeFirst(in text: String) -> String? {
    guard contains(text), let run = runs(in: text).first else { return nil }
    let digits = Array(text.utf8)[run].filter(isDigit)
    return "\(digits.count) digits, ending \(String(decoding: digits.suffix(4), as: UTF8.self))"
  }

  /// Refuses operator input that holds a card number, saying where without repeating it.
  public static func refuse(_ text: String, field: String) throws {
    guard let found = describeFirst(in: text) else { return }
    throw InputError(
      field: field,
      rule:
        "holds what looks like a card number (\(found), passing the Luhn check); ledgerd never stores a card number, the processor keeps it"
    )
  }

  /// `text` with every digit of each card-number-looking run but the last four replaced by
  /// `*`, separators kept (`4242 4242 4242 4242` becomes `**** **** **** 4242`).
  public static func masked(_ text: String) -> String {
    guard contains(text) else { return text }
    var bytes = Array(text.utf8)
    for run in runs(in: text) { mask(&bytes, run) }
    return String(decoding: bytes, as: UTF8.self)
  }

  static func mask(_ bytes: inout [UInt8], _ run: Range<Int>) {
    var keep = 4
    for k in run.reversed() where isDigit(bytes[k]) {
      if keep > 0 {
        keep -= 1
      } else {
        bytes[k] = UInt8(ascii: "*")
      }
    }
  }

  @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
  @inline(__always) static func isSeparator(_ b: UInt8) -> Bool { b == 32 || b == 46 || b == 45 }
}

/// What the default-card rules need to know about a card.
public struct CardSummary: Sendable, Equatable {
  public let id: Int64
  public let status: CardStatus
  public let expiry: CardExpiry
  public let isDefault: Bool
  public init(id: Int64, status: CardStatus, expiry: CardExpiry, isDefault: Bool) {
    self.id = id
    self.status = status
    self.expiry = expiry
    self.isDefault = isDefault
  }
}

/// The default-card and card-order rules of the seeds: "we always charge the default card
/// if possible; other cards are used if the primary cannot be charged."
public enum CardPolicy {
  /// The card to make default when the current default is removed: the oldest remaining
  /// active card that has not expired, else the oldest active one, else none.
  /// `cards` are the account's cards in order of creation, the removed one excluded.
  public static func successor(among cards: [CardSummary], on date: CivilDate) -> Int64? {
    let active = cards.filter { $0.status == .active }
    return (active.first { !$0.expiry.isExpired(on: date) } ?? active.first)?.id
  }

  /// Whether a newly added card becomes the default: the first active card does on its own.
  public static func becomesDefault(existing cards: [CardSummary]) -> Bool {
    !cards.contains { $0.isDefault && $0.status != .removed }
  }

  /// The cards to try, in order, in one charge round: the default, then the other usable
  /// cards, oldest first. Expired cards and cards needing an update are skipped.
  public static func chargeOrder(_ cards: [CardSummary], on date: CivilDate) -> [Int64] {
    let usable = cards.filter { $0.status == .active && !$0.expiry.isExpired(on: date) }
    return usable.filter(\.isDefault).map(\.id) + usable.filter { !$0.isDefault }.map(\.id)
  }

  /// Which of an account's cards can be charged at `now`, in charge order, once the card
  /// network's limit is applied; and, for the cards left out only because of that limit,
  /// when the first of them can be charged again. `charges` holds, per card id, the times
  /// of the attempts that count toward the limit (pending, succeeded or declined).
  public static func availability(
    _ cards: [CardSummary], charges: [Int64: [Instant]], now: Instant, config: DunningConfig
  ) -> CardAvailability {
    var chargeable: [Int64] = []
    var limitedUntil: Instant?
    for id in chargeOrder(cards, on: now.date) {
      let from = CardLimit.chargeableFrom(charges: charges[id] ?? [], now: now, config: config)
      if from <= now {
        chargeable.append(id)
      } else if let card = cards.first(where: { $0.id == id }), !card.expiry.isExpired(on: from.date) {
        // A card that will have expired by then is no help.
        limitedUntil = min(limitedUntil ?? from, from)
      }
    }
    return CardAvailability(chargeable: chargeable, limitedUntil: limitedUntil)
  }
}

/// What an account's cards allow at one moment.
public struct CardAvailability: Sendable, Equatable {
  /// The cards that can be charged now, in charge order.
  public var chargeable: [Int64]
  /// The earliest moment a card left out only because of the network's limit can be
  /// charged again; nil when no card is held back that way.
  public var limitedUntil: Instant?

  public init(chargeable: [Int64], limitedUntil: Instant?) {
    self.chargeable = chargeable
    self.limitedUntil = limitedUntil
  }
}

/// The card network's rule: no card is charged more than `maxChargesPerCard` times in
/// `cardChargeWindowDays`. Attempts pending, succeeded or declined count; an attempt that
/// never reached the issuer (a processing error) does not.
public enum CardLimit {
  /// When a card whose counted attempts were made at `charges` (any order; those already
  /// out of the window are ignored) can be charged: `now` if it is under the limit, else
  /// the moment enough of them have left the window, which is always after `now`.
  public static func chargeableFrom(charges: [Instant], now: Instant, config: DunningConfig) -> Instant {
    let window = Int64(config.cardChargeWindowDays) * 86_400
    let windowStart = now.adding(seconds: -window)
    let recent = charges.filter { $0 > windowStart }.sorted()
    let limit = max(config.maxChargesPerCard, 1)
    guard recent.count >= limit else { return now }
    // Under the limit once at most `limit - 1` remain: when the one that many places from
    // the newest leaves the window (an attempt made at t counts until t + window).
    return recent[recent.count - limit].adding(seconds: window)
  }
}
