import LedgerCore

/// How often and how long an undelivered message is retried: exponential back-off from
/// `baseSeconds`, doubling after each failure up to `maxSeconds`, for at most `maxAttempts`
/// attempts in all. A message past the last attempt is marked failed, never dropped.
public struct RetryPolicy: Sendable, Equatable {
  public var maxAttempts: Int
  public var baseSeconds: Int
  public var maxSeconds: Int

  /// Defaults: 10 attempts, 1 minute doubling to at most 6 hours (about 17 hours in all).
  public init(maxAttempts: Int = 10, baseSeconds: Int = 60, maxSeconds: Int = 21_600) {
    self.maxAttempts = maxAttempts
    self.baseSeconds = baseSeconds
    self.maxSeconds = maxSeconds
  }

  /// The wait after the `failures`-th failed attempt (1-based): base, 2×base, 4×base, … capped.
  public func delay(afterFailures failures: Int) -> Int64 {
    let doublings = max(0, min(failures - 1, 40))
    let (product, overflow) = Int64(baseSeconds).multipliedReportingOverflow(by: Int64(1) << Int64(doublings))
    return overflow ? Int64(maxSeconds) : min(product, Int64(maxSeconds))
  }

  /// What to do after an attempt failed: the time of the next attempt, or nil when the
  /// message must be marked failed (a permanent refusal, or no attempt left).
  public func nextAttempt(afterFailures failures: Int, permanent: Bool, now: Instant) -> Instant? {
    guard !permanent, failures < maxAttempts else { return nil }
    return now.adding(seconds: delay(afterFailures: failures))
  }
}

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
