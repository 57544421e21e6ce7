import LedgerCore

/// One outbox row, as the renderer needs it.
public struct OutboxItem: Sendable, Equatable {
  public let id: Int64
  public let key: String
  public let kind: String
  public let locale: CustomerLocale
  public let recipient: String
  public let data: [String: String]
  public let createdAt: Instant
  public let attempts: Int

  /// The row's fields, as the store read them.
  public init(
    id: Int64, key: String, kind: String, locale: CustomerLocale, recipient: String, data: [String: String],
    createdAt: Instant,
    attempts: Int
  ) {
    self.id = id
    self.key = key
    self.kind = kind
    self.locale = locale
    self.recipient = recipient
    self.data = data
    self.createdAt = createdAt
    self.attempts = attempts
  }
}

/// Who the messages come from and how their ids are made.
public struct Sender: Sendable, Equatable {
  public var address: String
  public var name: String?
  /// The right-hand side of every `Message-ID`.
  public var messageIDDomain: String

  /// The sender; the ids' domain defaults to the address's own.
  public init(address: String, name: String?, messageIDDomain: String? = nil) {
    self.address = address
    self.name = name
    self.messageIDDomain = messageIDDomain ?? address.split(separator: "@").last.map(String.init) ?? "ledgerd.invalid"
  }
}

/// Turns an outbox row into the message that is sent.
public enum Composer {
  /// The message for `item`. Its `Message-ID` depends on the outbox key only (`digest` is
  /// the key's SHA-256 in hex) and its `Date` on when the row was written, so a message
  /// resent after a crash is byte for byte the one sent before.
  public static func message(for item: OutboxItem, sender: Sender, keyDigest digest: String) throws -> MailMessage {
    let rendered = try MailTemplates.render(kind: item.kind, locale: item.locale, data: item.data)
    var message = MailMessage(
      from: MailAddress(sender.address, name: sender.name),
      to: MailAddress(item.recipient, name: item.data["name"]),
      subject: rendered.subject, body: rendered.body, date: item.createdAt,
      messageID: "<\(digest)@\(sender.messageIDDomain)>")
    message.extraHeaders = [
      ("Auto-Submitted", "auto-generated"),
      ("X-Ledgerd-Kind", item.kind),
    ]
    return message
  }
}
