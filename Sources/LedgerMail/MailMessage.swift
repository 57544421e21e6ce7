import LedgerCore

/// A mailbox: an address with an optional display name.
public struct MailAddress: Sendable, Equatable {
  public let address: String
  public let name: String?

  /// An address as stored on the account (already validated), and the name shown with it.
  public init(_ address: String, name: String? = nil) {
    self.address = address
    self.name = name
  }
}

/// A header value held a line break or another control character: writing it would let
/// its text start a header of its own.
public struct HeaderInjection: Error, CustomStringConvertible, Equatable {
  public let header: String
  public var description: String { "the \(header) header holds a line break or a control character; refused" }
}

/// An RFC 5322 message in plain text (`text/plain; charset=utf-8`, quoted-printable), its
/// headers in ASCII with RFC 2047 encoded-words wherever they hold other characters.
///
/// The whole message is 7-bit ASCII with CRLF line ends and lines of at most 78
/// characters, so it passes any relay and any sendmail unchanged, and French accents come
/// back intact when the reader decodes it.
public struct MailMessage: Sendable, Equatable {
  public var from: MailAddress
  public var to: MailAddress
  public var subject: String
  /// The text, lines separated by `\n`.
  public var body: String
  public var date: Instant
  /// `<…@…>`, stable for one outbox row so that a resend is recognisable.
  public var messageID: String
  /// Further headers, ASCII only (e.g. `Auto-Submitted`).
  public var extraHeaders: [(String, String)] = []

  /// A message to render; nothing is checked or encoded until `rendered()`.
  public init(from: MailAddress, to: MailAddress, subject: String, body: String, date: Instant, messageID: String) {
    self.from = from
    self.to = to
    self.subject = subject
    self.body = body
    self.date = date
    self.messageID = messageID
  }

  public static func == (a: MailMessage, b: MailMessage) -> Bool {
    a.from == b.from && a.to == b.to && a.subject == b.subject && a.body == b.body && a.date == b.date
      && a.messageID == b.messageID && a.extraHeaders.elementsEqual(b.extraHeaders, by: { $0 == $1 })
  }

  /// The message as sent: headers, an empty line, the body; CRLF line ends.
  public func rendered() throws -> String {
    for (name, value) in [("From", from.address), ("To", to.address), ("Message-ID", messageID)] + extraHeaders {
      try Self.refuseControls(value, header: name)
    }
    for (name, value) in [("From", from.name ?? ""), ("To", to.name ?? ""), ("Subject", subject)] {
      try Self.refuseControls(value, header: name)
    }
    var headers = [
      "From: " + Self.mailbox(from),
      "To: " + Self.mailbox(to),
      Self.unstructured("Subject", subject),
      "Date: " + Self.rfc5322Date(date),
      "Message-ID: " + messageID,
      "MIME-Version: 1.0",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: quoted-printable",
    ]
    headers += extraHeaders.map { "\($0.0): \($0.1)" }
    return headers.joined(separator: "\r\n") + "\r\n\r\n" + Self.quotedPrintable(body)
  }

  static func refuseControls(_ value: String, header: String) throws {
    if value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || (0x80...0x9F).contains($0.value) })
    {
      throw HeaderInjection(header: header)
    }
  }

  // MARK: - Headers

  /// `Name <address>`, the name quoted or encoded as it needs.
  static func mailbox(_ mailbox: MailAddress) -> String {
    guard let name = mailbox.name, !name.isEmpty else { return "<\(mailbox.address)>" }
    return phrase(name) + " <\(mailbox.address)>"
  }

  /// A display name: plain when it is only atoms, a quoted string when it holds ASCII
  /// specials, encoded-words when it holds anything beyond ASCII.
  static func phrase(_ text: String) -> String {
    if text.unicodeScalars.allSatisfy({ $0.isASCII }) {
      let atext = Set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~ ".unicodeScalars)
      if text.unicodeScalars.allSatisfy({ atext.contains($0) }), text.first != " ", text.last != " ", text.count <= 60 {
        return text
      }
      if text.count <= 60 {
        return "\"" + text.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
      }
    }
    return encodedWords(text).joined(separator: "\r\n ")
  }

  /// An unstructured header (Subject), folded; encoded-words when it holds non-ASCII.
  static func unstructured(_ name: String, _ text: String) -> String {
    if text.unicodeScalars.allSatisfy({ $0.isASCII }) {
      // Fold at spaces so no line passes 78 characters.
      var lines: [String] = []
      var line = name + ":"
      for word in text.split(separator: " ", omittingEmptySubsequences: false) {
        if line.count + 1 + word.count > 78, line.count > name.count + 1 {
          lines.append(line)
          line = ""
        }
        line += " " + word
      }
      lines.append(line)
      return lines.joined(separator: "\r\n")
    }
    return name + ": " + encodedWords(text).joined(separator: "\r\n ")
  }

  /// RFC 2047 `=?utf-8?B?…?=` words of at most 75 characters, each holding whole characters.
  static func encodedWords(_ text: String) -> [String] {
    var words: [String] = []
    var chunk: [UInt8] = []
    for character in text {
      let bytes = Array(String(character).utf8)
      if chunk.count + bytes.count > 45, !chunk.isEmpty {
        words.append("=?utf-8?B?" + Base64.encode(chunk) + "?=")
        chunk = []
      }
      chunk += bytes
    }
    if !chunk.isEmpty || words.isEmpty { words.append("=?utf-8?B?" + Base64.encode(chunk) + "?=") }
    return words
  }

  /// `Mon, 23 Nov 2026 10:00:00 +0000`.
  public static func rfc5322Date(_ instant: Instant) -> String {
    let date = instant.date
    let seconds = instant.secondsSinceEpoch - Instant(date).secondsSinceEpoch
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : String(n) }
    return "\(days[date.isoWeekday - 1]), \(date.day) \(months[date.month - 1]) \(date.year) "
      + "\(two(seconds / 3600)):\(two(seconds % 3600 / 60)):\(two(seconds % 60)) +0000"
  }

  // MARK: - Body

  /// Quoted-printable (RFC 2045) of the UTF-8 text, CRLF line ends, lines of at most 76
  /// characters with soft breaks. A line's leading `.` is encoded too, so that no relay or
  /// sendmail can take it for the end of the message.
  public static func quotedPrintable(_ text: String) -> String {
    var out = ""
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    for (index, line) in lines.enumerated() {
      if index == lines.count - 1, line.isEmpty { break }
      let bytes = Array(line.utf8)
      var current = ""
      for (i, byte) in bytes.enumerated() {
        let last = i == bytes.count - 1
        let literal =
          (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=") && !(i == 0 && byte == UInt8(ascii: ".")))
          || ((byte == 32 || byte == 9) && !last)
        let piece = literal ? String(UnicodeScalar(byte)) : "=" + hex(byte)
        if current.count + piece.count > 75 {
          out += current + "=\r\n"
          current = ""
        }
        current += piece
      }
      out += current + "\r\n"
    }
    return out
  }

  static func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
  }
}

/// Base64 (RFC 4648) for encoded-words and AUTH PLAIN, without Foundation.
public enum Base64 {
  static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  /// The padded Base64 text of `bytes`.
  public static func encode(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i < bytes.count {
      let b0 = bytes[i]
      let b1 = i + 1 < bytes.count ? bytes[i + 1] : 0
      let b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
      out.append(alphabet[Int(b0 >> 2)])
      out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
      out.append(i + 1 < bytes.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
      out.append(i + 2 < bytes.count ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
      i += 3
    }
    return String(decoding: out, as: UTF8.self)
  }
}

extension String {
  func replacingAll(_ target: String, with replacement: String) -> String {
    split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
  }
}
