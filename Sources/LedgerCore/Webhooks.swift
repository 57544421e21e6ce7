/// One of the host's endpoints for ledgerd's webhooks, as listed. Its secret is not part of
/// it: the secret is shown once, when the endpoint is added.
public struct WebhookEndpoint: Codable, Sendable, Equatable {
  public let id: Int64
  public let url: String
  /// The webhook types sent there (`invoice.issued`, ...); empty: every type.
  public let eventTypes: [String]
  public let createdAt: String
  public let disabledAt: String?
  /// `enabled` or `disabled`.
  public let status: String

  public init(id: Int64, url: String, eventTypes: [String], createdAt: String, disabledAt: String?) {
    self.id = id
    self.url = url
    self.eventTypes = eventTypes
    self.createdAt = createdAt
    self.disabledAt = disabledAt
    self.status = disabledAt == nil ? "enabled" : "disabled"
  }
}

/// An endpoint just added, with the secret that signs its deliveries: the only time the
/// secret is shown.
public struct NewWebhookEndpoint: Codable, Sendable, Equatable {
  public let endpoint: WebhookEndpoint
  public let secret: String

  public init(endpoint: WebhookEndpoint, secret: String) {
    self.endpoint = endpoint
    self.secret = secret
  }
}

/// One delivery of one event to one endpoint, with where it stands.
public struct WebhookDelivery: Codable, Sendable, Equatable {
  public let id: Int64
  public let endpointID: Int64
  public let url: String
  public let eventID: Int64
  /// When the event happened (the payload's `timestamp`).
  public let eventAt: String
  public let type: String
  /// The `webhook-id` header of every attempt of this delivery.
  public let webhookID: String
  /// `pending`, `delivered` or `failed`.
  public let status: String
  public let attempts: Int
  public let nextAttemptAt: String
  public let lastAttemptAt: String?
  /// The endpoint's answer to the last attempt (`HTTP 503 ...`), or why there was none.
  public let lastResult: String?
  public let deliveredAt: String?

  public init(
    id: Int64, endpointID: Int64, url: String, eventID: Int64, eventAt: String, type: String, webhookID: String,
    status: String, attempts: Int, nextAttemptAt: String, lastAttemptAt: String?, lastResult: String?,
    deliveredAt: String?
  ) {
    self.id = id
    self.endpointID = endpointID
    self.url = url
    self.eventID = eventID
    self.eventAt = eventAt
    self.type = type
    self.webhookID = webhookID
    self.status = status
    self.attempts = attempts
    self.nextAttemptAt = nextAttemptAt
    self.lastAttemptAt = lastAttemptAt
    self.lastResult = lastResult
    self.deliveredAt = deliveredAt
  }

  /// The `webhook-id` of a delivery: the same for every attempt of it, and different for a
  /// delivery of another ledger, or of another event that took the same row ids after a
  /// backup was restored (the event's time tells them apart), so that a receiver may drop
  /// repeats by this id alone.
  public static func webhookID(ledgerID: String, deliveryID: Int64, eventID: Int64, eventAt: String) -> String {
    "msg_" + SHA256.hex(Array("\(ledgerID)/\(deliveryID)/\(eventID)/\(eventAt)".utf8)).prefix(32)
  }
}

/// A delivery due now, with what its request is built from: the endpoint and its secret,
/// and the event row, which never changes, so that every attempt sends the same body.
public struct DueWebhook: Sendable, Equatable {
  public let id: Int64
  public let endpointID: Int64
  public let url: String
  public let secret: String
  public let type: String
  public let webhookID: String
  /// Attempts made before this one.
  public let attempts: Int
  public let event: WebhookEvent

  public init(
    id: Int64, endpointID: Int64, url: String, secret: String, type: String, webhookID: String, attempts: Int,
    event: WebhookEvent
  ) {
    self.id = id
    self.endpointID = endpointID
    self.url = url
    self.secret = secret
    self.type = type
    self.webhookID = webhookID
    self.attempts = attempts
    self.event = event
  }
}

/// The event a webhook tells of, as recorded.
public struct WebhookEvent: Sendable, Equatable {
  public let id: Int64
  public let at: String
  public let accountID: Int64?
  public let invoiceID: Int64?
  public let invoiceNumber: String?
  public let actor: String
  public let kind: String
  public let reason: String
  /// The event's data: a JSON object, as stored.
  public let data: String

  public init(
    id: Int64, at: String, accountID: Int64?, invoiceID: Int64?, invoiceNumber: String?, actor: String, kind: String,
    reason: String, data: String
  ) {
    self.id = id
    self.at = at
    self.accountID = accountID
    self.invoiceID = invoiceID
    self.invoiceNumber = invoiceNumber
    self.actor = actor
    self.kind = kind
    self.reason = reason
    self.data = data
  }
}
