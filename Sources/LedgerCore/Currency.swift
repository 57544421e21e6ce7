/// An ISO 4217 currency with the number of decimal places of its minor unit.
public struct Currency: Hashable, Sendable, CustomStringConvertible, Codable {
  /// The three-letter code (`EUR`).
  public let code: String
  /// Digits after the decimal separator: EUR 2, JPY 0, KWD 3.
  public let exponent: Int

  private init(code: String, exponent: Int) {
    self.code = code
    self.exponent = exponent
  }

  /// Looks up an active ISO 4217 code; unknown or malformed codes are refused.
  public init(code: String, field: String = "currency") throws {
    guard code.count == 3, code.utf8.allSatisfy({ (65...90).contains($0) }) else {
      throw InputError(field: field, rule: "'\(code)' is not an ISO 4217 code (three capital letters, e.g. EUR)")
    }
    guard let exponent = Currency.exponents[code] else {
      throw InputError(field: field, rule: "'\(code)' is not a known ISO 4217 currency")
    }
    self.init(code: code, exponent: exponent)
  }

  public static let eur = Currency(code: "EUR", exponent: 2)

  public var description: String { code }

  public init(from decoder: Decoder) throws {
    let code = try decoder.singleValueContainer().decode(String.self)
    try self.init(code: code)
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(code)
  }

  /// Active ISO 4217 currencies (List One) and their minor-unit exponents. Funds codes,
  /// precious metals and the testing code are not payable currencies and are left out.
  static let exponents: [String: Int] = {
    var table: [String: Int] = [:]
    let two = """
      AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN \
      BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS \
      GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR \
      LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD \
      PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN \
      SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG
      """
    let zero = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF"
    let three = "BHD IQD JOD KWD LYD OMR TND"
    for (list, exponent) in [(two, 2), (zero, 0), (three, 3)] {
      for code in list.split(whereSeparator: { $0 == " " || $0 == "\n" }) { table[String(code)] = exponent }
    }
    return table
  }()
}
