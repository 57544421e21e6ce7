/// An amount of money: integer minor units of one ISO 4217 currency.
///
/// There is no floating point anywhere money flows. Arithmetic reports overflow and
/// currency mismatches as errors instead of trapping or rounding.
public struct Money: Hashable, Sendable, CustomStringConvertible {
  /// The amount in the currency's minor unit (cents for EUR, yen for JPY, fils for KWD).
  public let minorUnits: Int64
  public let currency: Currency

  public init(minorUnits: Int64, currency: Currency) {
    self.minorUnits = minorUnits
    self.currency = currency
  }

  public static func zero(_ currency: Currency) -> Money { Money(minorUnits: 0, currency: currency) }

  /// The largest amount ledgerd takes in, in minor units, for any one amount it is given
  /// (a price, an invoice line with its quantity, an invoice's total, a payment, a
  /// statement entry, a settlement row): 100,000,000,000 minor units, i.e. one billion EUR
  /// (10^9.00), 100 billion JPY, 100 million KWD. Far above any real bill, and small enough
  /// that the ledger's sums (a balance, the trial balance, an account's credit) stay
  /// within `Int64` until some 92 million amounts at this maximum have been booked.
  public static let maximumMinorUnits: Int64 = 100_000_000_000

  /// The bound as text in `currency`, for error messages.
  public static func maximum(in currency: Currency) -> Money {
    Money(minorUnits: maximumMinorUnits, currency: currency)
  }

  /// Whether the amount is within ledgerd's bound, either sign.
  public var isWithinBound: Bool { minorUnits.magnitude <= UInt64(Self.maximumMinorUnits) }

  /// Throws when the amount is beyond ledgerd's bound, naming `field`.
  public func checkBound(field: String) throws {
    guard isWithinBound else {
      throw InputError(
        field: field,
        rule:
          "\(amountString) \(currency.code) is beyond the limit of \(Money.maximum(in: currency)) for one amount (ledgerd's bound, so that no total it computes can overflow)"
      )
    }
  }

  /// Parses a decimal amount written with a dot: `12.30` in EUR is 1230 minor units.
  ///
  /// Refused, each with the rule it breaks: an empty string, anything but digits and one
  /// dot (no sign other than a leading `-`, no exponent, no thousands separator, no comma),
  /// more decimals than the currency has, and a value beyond `maximumMinorUnits` (either
  /// sign).
  public static func parse(_ text: String, currency: Currency, field: String = "amount") throws -> Money {
    var digits = Substring(text)
    let negative = digits.first == "-"
    if negative { digits = digits.dropFirst() }
    let parts = digits.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    let whole = parts[0]
    let fraction = parts.count > 1 ? parts[1] : nil
    func isDigits(_ s: Substring) -> Bool { !s.isEmpty && s.utf8.allSatisfy { (48...57).contains($0) } }
    guard isDigits(whole), fraction.map(isDigits) ?? true else {
      throw InputError(
        field: field,
        rule: "'\(text)' is not an amount (write digits with an optional '.' and decimals, e.g. 12.30)")
    }
    if let fraction, fraction.count > currency.exponent {
      let allowed = currency.exponent == 0 ? "no decimals" : "at most \(currency.exponent) decimals"
      throw InputError(
        field: field, rule: "'\(text)' has \(fraction.count) decimals; \(currency.code) allows \(allowed)")
    }
    let tooLarge = InputError(
      field: field,
      rule:
        "'\(text)' is beyond the limit of \(Money.maximum(in: currency)) for one amount (ledgerd's bound, so that no total it computes can overflow)"
    )
    var value: Int64 = 0
    let padded =
      Array((fraction ?? "").utf8) + Array(repeating: UInt8(48), count: currency.exponent - (fraction?.count ?? 0))
    for byte in Array(whole.utf8) + padded {
      // Leading zeros are read as such; any other digit past the bound refuses the amount
      // before it can overflow.
      value = value * 10 + Int64(byte - 48)
      if value > maximumMinorUnits { throw tooLarge }
    }
    return Money(minorUnits: negative ? -value : value, currency: currency)
  }

  /// Parses an amount that must be strictly positive (what a customer owes or pays).
  public static func parsePositive(_ text: String, currency: Currency, field: String = "amount") throws -> Money {
    let money = try parse(text, currency: currency, field: field)
    guard money.minorUnits > 0 else {
      throw InputError(field: field, rule: "'\(text)' must be greater than zero")
    }
    return money
  }

  /// The amount as a plain decimal string with the currency's decimals (`12.30`, `-0.05`, `1200`).
  public var amountString: String {
    let magnitude = minorUnits.magnitude
    let sign = minorUnits < 0 ? "-" : ""
    guard currency.exponent > 0 else { return sign + String(magnitude) }
    var divisor: UInt64 = 1
    for _ in 0..<currency.exponent { divisor *= 10 }
    let fraction = String(magnitude % divisor)
    let padding = String(repeating: "0", count: currency.exponent - fraction.count)
    return "\(sign)\(magnitude / divisor).\(padding)\(fraction)"
  }

  /// `12.30 EUR`.
  public var description: String { "\(amountString) \(currency.code)" }

  private func sameCurrency(_ other: Money) throws {
    guard currency == other.currency else {
      throw InputError(field: "currency", rule: "cannot combine \(currency.code) with \(other.currency.code)")
    }
  }

  public func adding(_ other: Money) throws -> Money {
    try sameCurrency(other)
    let (sum, overflow) = minorUnits.addingReportingOverflow(other.minorUnits)
    guard !overflow else { throw InputError(field: "amount", rule: "total of \(self) and \(other) overflows") }
    return Money(minorUnits: sum, currency: currency)
  }

  public func subtracting(_ other: Money) throws -> Money {
    try sameCurrency(other)
    let (difference, overflow) = minorUnits.subtractingReportingOverflow(other.minorUnits)
    guard !overflow else { throw InputError(field: "amount", rule: "\(self) minus \(other) overflows") }
    return Money(minorUnits: difference, currency: currency)
  }

  public func multiplied(by quantity: Int64) throws -> Money {
    let (product, overflow) = minorUnits.multipliedReportingOverflow(by: quantity)
    guard !overflow else { throw InputError(field: "amount", rule: "\(self) × \(quantity) overflows") }
    return Money(minorUnits: product, currency: currency)
  }

  /// The sum of `amounts`, all in `currency`.
  public static func sum(_ amounts: [Money], currency: Currency) throws -> Money {
    try amounts.reduce(.zero(currency)) { try $0.adding($1) }
  }
}
