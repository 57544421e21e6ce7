import LedgerCore

/// Amounts and dates as a customer reads them in their language. Money stays integer minor
/// units all the way: the digits are cut by the currency's exponent, never by arithmetic
/// on a floating-point value.
public enum LocaleFormat {
  /// `19,00 €` and `1 234,56 €` in French, `€19.00` and `€1,234.56` in English; a
  /// currency without a common symbol is written with its code (`19,00 CHF`, `CHF 19.00`).
  public static func money(_ money: Money, _ locale: CustomerLocale) -> String {
    let exponent = money.currency.exponent
    let negative = money.minorUnits < 0
    // The magnitude as decimal digits; Int64.min has no positive Int64, so go through UInt64.
    var digits = String(money.minorUnits.magnitude)
    if digits.count <= exponent { digits = String(repeating: "0", count: exponent - digits.count + 1) + digits }
    let whole = String(digits.dropLast(exponent))
    let fraction = String(digits.suffix(exponent))
    let groupSeparator = locale == .fr ? " " : ","
    let decimalSeparator = locale == .fr ? "," : "."
    var grouped = ""
    for (i, ch) in whole.enumerated() {
      if i > 0, (whole.count - i) % 3 == 0 { grouped += groupSeparator }
      grouped.append(ch)
    }
    let number = grouped + (exponent > 0 ? decimalSeparator + fraction : "")
    let sign = negative ? "-" : ""
    let symbol = symbols[money.currency.code]
    switch locale {
    case .fr: return sign + number + " " + (symbol ?? money.currency.code)
    case .en: return sign + (symbol.map { $0 + number } ?? money.currency.code + " " + number)
    }
  }

  static let symbols = ["EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"]

  /// `mercredi 11 novembre 2026` in French, `Wednesday 11 November 2026` in English.
  public static func date(_ date: CivilDate, _ locale: CustomerLocale) -> String {
    let weekday = weekdays[locale == .fr ? 0 : 1][date.isoWeekday - 1]
    let month = months[locale == .fr ? 0 : 1][date.month - 1]
    let day = locale == .fr && date.day == 1 ? "1er" : String(date.day)
    return "\(weekday) \(day) \(month) \(date.year)"
  }

  /// `novembre 2026`, `November 2026`: a card's expiry month.
  public static func month(month: Int, year: Int, _ locale: CustomerLocale) -> String {
    guard (1...12).contains(month) else { return "\(month)/\(year)" }
    return "\(months[locale == .fr ? 0 : 1][month - 1]) \(year)"
  }

  static let weekdays = [
    ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
  ]
  static let months = [
    [
      "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre",
      "décembre",
    ],
    [
      "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
      "December",
    ],
  ]
}
