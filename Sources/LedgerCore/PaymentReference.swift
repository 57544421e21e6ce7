/// An ISO 11649 structured creditor reference (`RF29 INV0 0004 2`): what a customer quotes
/// on a bank transfer. Two check digits (ISO 7064 mod 97-10) catch mistyped references.
public struct PaymentReference: Hashable, Sendable, CustomStringConvertible {
  /// The compact form: `RF`, two check digits, then 1 to 21 letters or digits.
  public let compact: String

  /// Builds the reference for `body` (1 to 21 letters or digits), computing its check digits.
  public init(body: String) throws {
    guard body.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
      throw InputError(field: "reference", rule: "a creditor reference body has 1 to 21 letters or digits")
    }
    let upper = body.uppercased()
    guard (1...21).contains(upper.count) else {
      throw InputError(field: "reference", rule: "a creditor reference body has 1 to 21 letters or digits")
    }
    let remainder = PaymentReference.mod97(upper + "RF00")
    let check = 98 - remainder
    compact = "RF" + (check < 10 ? "0" : "") + String(check) + upper
  }

  /// Reads a reference as a customer may have typed it: spaces and case are ignored, and a
  /// missing `RF` prefix is tolerated when what remains still carries valid check digits.
  public init(parsing text: String, field: String = "--reference") throws {
    let cleaned = text.uppercased().filter { $0 != " " && $0 != "-" }
    let candidate = cleaned.hasPrefix("RF") ? cleaned : "RF" + cleaned
    guard candidate.count >= 5, candidate.count <= 25,
      candidate.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }),
      candidate.dropFirst(2).prefix(2).allSatisfy(\.isNumber),
      // Check digits run from 02 to 98; 00, 01 and 99 are never generated.
      let check = Int(candidate.dropFirst(2).prefix(2)), (2...98).contains(check),
      PaymentReference.mod97(String(candidate.dropFirst(4)) + String(candidate.prefix(4))) == 1
    else {
      throw InputError(
        field: field, rule: "'\(text)' is not a valid RF creditor reference (its check digits do not match)")
    }
    compact = candidate
  }

  /// Grouped by four for printing on an invoice: `RF29 INV0 0004 2`.
  public var printed: String {
    var groups: [String] = []
    var rest = Substring(compact)
    while !rest.isEmpty {
      groups.append(String(rest.prefix(4)))
      rest = rest.dropFirst(4)
    }
    return groups.joined(separator: " ")
  }

  public var description: String { compact }

  /// ISO 7064 mod 97-10 over letters mapped to 10...35, computed digit by digit.
  static func mod97(_ text: String) -> Int {
    var remainder = 0
    for ch in text.unicodeScalars {
      let value: Int
      switch ch.value {
      case 48...57: value = Int(ch.value - 48)
      case 65...90: value = Int(ch.value - 55)
      default: return -1
      }
      if value >= 10 {
        remainder = (remainder * 100 + value) % 97
      } else {
        remainder = (remainder * 10 + value) % 97
      }
    }
    return remainder
  }
}
