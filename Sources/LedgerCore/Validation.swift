/// Input rules shared by every command that takes these fields. Each check returns the
/// cleaned value or throws an `InputError` naming the field and the rule.
public enum Validate {
  /// A customer's email address. It becomes a mail header, so anything that could inject
  /// a header (CR, LF, other control characters) or break address parsing is refused.
  public static func email(_ raw: String, field: String = "--email") throws -> String {
    let value = raw
    guard !value.isEmpty else { throw InputError(field: field, rule: "must not be empty") }
    guard value.utf8.count <= 254 else {
      throw InputError(field: field, rule: "is \(value.utf8.count) bytes long; an address has at most 254")
    }
    guard value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
      throw InputError(field: field, rule: "must be printable ASCII without spaces, tabs or line breaks")
    }
    try CardNumberText.refuse(value, field: field)
    let parts = value.split(separator: "@", omittingEmptySubsequences: false)
    guard parts.count == 2 else { throw InputError(field: field, rule: "'\(value)' must contain exactly one '@'") }
    let (local, domain) = (parts[0], parts[1])
    guard !local.isEmpty, local.utf8.count <= 64 else {
      throw InputError(field: field, rule: "the part before '@' must have 1 to 64 characters")
    }
    let forbidden = Set("()<>[]:;,\\\"")
    guard !value.contains(where: { forbidden.contains($0) }) else {
      throw InputError(field: field, rule: "must not contain any of ( ) < > [ ] : ; , \\ \"")
    }
    let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
    guard labels.count >= 2,
      labels.allSatisfy({ label in
        !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
          && label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" }
      })
    else {
      throw InputError(field: field, rule: "'\(domain)' is not a domain name (e.g. example.com)")
    }
    return value
  }

  /// A display name: 1 to 200 characters, no control characters (it too reaches headers).
  public static func displayName(_ raw: String, field: String = "--name") throws -> String {
    try text(raw, field: field, limit: 200)
  }

  /// Free text such as an invoice line or a reason: 1 to `limit` characters, trimmed, with
  /// no line breaks or other control characters.
  public static func text(_ raw: String, field: String, limit: Int = 500) throws -> String {
    let value = raw.trimmingSpaces
    guard !value.isEmpty else { throw InputError(field: field, rule: "must not be empty") }
    guard value.count <= limit else {
      throw InputError(field: field, rule: "has \(value.count) characters; at most \(limit)")
    }
    guard value.unicodeScalars.allSatisfy({ !($0.value < 0x20 || (0x7F...0x9F).contains($0.value)) }) else {
      throw InputError(field: field, rule: "must not contain line breaks or other control characters")
    }
    try CardNumberText.refuse(value, field: field)
    return value
  }

  /// A plan code: a lowercase letter, then up to 31 lowercase letters, digits, `-` or `_`.
  public static func planCode(_ raw: String, field: String = "code") throws -> String {
    let bytes = Array(raw.utf8)
    func ok(_ b: UInt8) -> Bool { (97...122).contains(b) || (48...57).contains(b) || b == 45 || b == 95 }
    guard (1...32).contains(bytes.count), (97...122).contains(bytes[0]), bytes.allSatisfy(ok) else {
      throw InputError(
        field: field,
        rule: "'\(raw)' must be 1 to 32 characters: a lowercase letter, then lowercase letters, digits, '-' or '_'")
    }
    return raw
  }

  /// A billing country: ISO 3166-1 alpha-2, upper case.
  public static func country(_ raw: String, field: String = "--country") throws -> String {
    guard raw.utf8.count == 2, raw.utf8.allSatisfy({ (65...90).contains($0) }) else {
      throw InputError(field: field, rule: "'\(raw)' must be an ISO 3166 country code of two capital letters (FR, DE)")
    }
    return raw
  }

  /// A postal code: 1 to 16 letters, digits, spaces or dashes.
  public static func postalCode(_ raw: String, field: String = "--postal-code") throws -> String {
    guard (1...16).contains(raw.count),
      raw.allSatisfy({ ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == " " || $0 == "-" })
    else {
      throw InputError(field: field, rule: "'\(raw)' must be 1 to 16 letters, digits, spaces or dashes")
    }
    return raw
  }

  /// A positive count (an invoice line's quantity).
  public static func quantity(_ raw: String, field: String) throws -> Int64 {
    guard raw.utf8.allSatisfy({ (48...57).contains($0) }), let q = Int64(raw), q > 0, q <= 1_000_000 else {
      throw InputError(field: field, rule: "'\(raw)' must be a whole number from 1 to 1000000")
    }
    return q
  }
}

extension String {
  var trimmingSpaces: String {
    var s = Substring(self)
    while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
    while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
    return String(s)
  }
}
