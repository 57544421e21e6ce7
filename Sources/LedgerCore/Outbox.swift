/// One outbox row: a customer message, with where its delivery stands.
public struct OutboxEntry: Codable, Sendable, Equatable {
  public let id: Int64
  public let key: String
  public let accountID: Int64
  public let invoice: String?
  public let kind: String
  public let locale: CustomerLocale
  public let recipient: String
  public let data: [String: String]
  public let createdAt: String
  public let attempts: Int
  public let nextAttemptAt: String
  public let deliveredAt: String?
  public let failedAt: String?
  public let lastError: String?

  /// `pending`, `delivered` or `failed`.
  public var status: String { deliveredAt != nil ? "delivered" : failedAt != nil ? "failed" : "pending" }

  enum CodingKeys: String, CodingKey {
    case id, key, accountID, invoice, kind, locale, recipient, data, createdAt, attempts, nextAttemptAt, deliveredAt,
      failedAt,
      lastError, status
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    id = try c.decode(Int64.self, forKey: .id)
    key = try c.decode(String.self, forKey: .key)
    accountID = try c.decode(Int64.self, forKey: .accountID)
    invoice = try c.decodeIfPresent(String.self, forKey: .invoice)
    kind = try c.decode(String.self, forKey: .kind)
    locale = try c.decode(CustomerLocale.self, forKey: .locale)
    recipient = try c.decode(String.self, forKey: .recipient)
    data = try c.decode([String: String].self, forKey: .data)
    createdAt = try c.decode(String.self, forKey: .createdAt)
    attempts = try c.decode(Int.self, forKey: .attempts)
    nextAttemptAt = try c.decode(String.self, forKey: .nextAttemptAt)
    deliveredAt = try c.decodeIfPresent(String.self, forKey: .deliveredAt)
    failedAt = try c.decodeIfPresent(String.self, forKey: .failedAt)
    lastError = try c.decodeIfPresent(String.self, forKey: .lastError)
  }

  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(id, forKey: .id)
    try c.encode(key, forKey: .key)
    try c.encode(accountID, forKey: .accountID)
    try c.encode(invoice, forKey: .invoice)
    try c.encode(kind, forKey: .kind)
    try c.encode(locale, forKey: .locale)
    try c.encode(recipient, forKey: .recipient)
    try c.encode(data, forKey: .data)
    try c.encode(createdAt, forKey: .createdAt)
    try c.encode(attempts, forKey: .attempts)
    try c.encode(nextAttemptAt, forKey: .nextAttemptAt)
    try c.encode(deliveredAt, forKey: .deliveredAt)
    try c.encode(failedAt, forKey: .failedAt)
    try c.encode(lastError, forKey: .lastError)
    try c.encode(status, forKey: .status)
  }

  public init(
    id: Int64, key: String, accountID: Int64, invoice: String?, kind: String, locale: CustomerLocale, recipient: String,
    data: [String: String], createdAt: String, attempts: Int, nextAttemptAt: String, deliveredAt: String?,
    failedAt: String?,
    lastError: String?
  ) {
    self.id = id
    self.key = key
    self.accountID = accountID
    self.invoice = invoice
    self.kind = kind
    self.locale = locale
    self.recipient = recipient
    self.data = data
    self.createdAt = createdAt
    self.attempts = attempts
    self.nextAttemptAt = nextAttemptAt
    self.deliveredAt = deliveredAt
    self.failedAt = failedAt
    self.lastError = lastError
  }

}

/// The outbox as the notifier sees it: the messages due, and what came of each delivery.
public protocol OutboxRepository: AnyObject {
  /// The one clock the ledger's times come from.
  var clock: LedgerClock { get }
  /// Undelivered messages due by `until`, oldest first.
  func dueOutbox(until: Instant, limit: Int) throws -> [OutboxEntry]
  /// When the next undelivered message is due.
  func nextOutboxAttempt() throws -> Instant?
  /// The message was handed over.
  func markOutboxDelivered(id: Int64) throws
  /// A delivery failed: tried again at `retryAt`, or given up (nil).
  func markOutboxAttemptFailed(id: Int64, error: String, retryAt: Instant?) throws
  /// Every message due by `now` waits until `retryAt` (the relay is down); how many.
  func postponeDueOutbox(now: Instant, until retryAt: Instant) throws -> Int
}
