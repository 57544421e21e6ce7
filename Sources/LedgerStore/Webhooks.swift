import Foundation
import LedgerCore
import LedgerSQLite

/// Which webhook deliveries to list.
public enum WebhookDeliveryFilter: String, Sendable, CaseIterable {
  case all, pending, delivered, failed
}

/// The host's webhook endpoints and the deliveries to them (`0017_http_api.sql`). The
/// deliveries themselves are written by a trigger on `events`, in the transaction of the
/// change, so a change and its webhooks are committed together or not at all; here they
/// are read, and their attempts recorded.
extension LedgerStore {
  // MARK: - Endpoints

  /// Subscribes `url` to the webhook types `eventTypes` (none: every type). Returns the
  /// endpoint and its new secret (`whsec_` and 32 random bytes in base64), which signs
  /// every delivery and is not shown again.
  public func addWebhookEndpoint(url: String, eventTypes: [String]) throws -> NewWebhookEndpoint {
    let url = try Self.checkWebhookURL(url)
    return try write {
      let known = try webhookTypes()
      var types: [String] = []
      for type in eventTypes where !types.contains(type) {
        guard known.contains(type) else {
          throw InputError(
            field: "--event", rule: "'\(type)' is not a webhook type; one of \(known.joined(separator: ", "))")
        }
        types.append(type)
      }
      var random = SystemRandomNumberGenerator()
      let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &random) }
      let secret = "whsec_" + Data(bytes).base64EncodedString()
      var json: [UInt8] = [UInt8(ascii: "[")]
      for (i, type) in types.enumerated() {
        if i > 0 { json.append(UInt8(ascii: ",")) }
        Self.appendJSONString(type, to: &json)
      }
      json.append(UInt8(ascii: "]"))
      try db.run(
        "INSERT INTO webhook_endpoints (url, secret, event_types, created_at) VALUES (?, ?, ?, ?)", url, secret,
        String(decoding: json, as: UTF8.self), now)
      return NewWebhookEndpoint(endpoint: try webhookEndpoint(id: db.lastInsertRowID), secret: secret)
    }
  }

  /// The webhook types there are (`invoice.issued`, ...), in order.
  public func webhookTypes() throws -> [String] {
    try db.query("SELECT DISTINCT type FROM webhook_event_types ORDER BY type").map { try $0.string("type") }
  }

  /// Every endpoint, oldest first.
  public func webhookEndpoints() throws -> [WebhookEndpoint] {
    try db.query("SELECT id, url, event_types, created_at, disabled_at FROM webhook_endpoints ORDER BY id").map(
      Self.endpoint(from:))
  }

  /// One endpoint by id.
  public func webhookEndpoint(id: Int64) throws -> WebhookEndpoint {
    guard
      let row = try db.queryOne(
        "SELECT id, url, event_types, created_at, disabled_at FROM webhook_endpoints WHERE id = ?", id)
    else { throw NotFoundError(field: "endpoint", value: String(id)) }
    return try Self.endpoint(from: row)
  }

  /// Stops sending to an endpoint: no delivery is written for it from now on, and those
  /// still waiting are marked failed (`endpoint disabled`), visible but not sent. Disabling
  /// a disabled endpoint changes nothing.
  public func disableWebhookEndpoint(id: Int64) throws -> WebhookEndpoint {
    try write {
      let endpoint = try webhookEndpoint(id: id)
      guard endpoint.disabledAt == nil else { return endpoint }
      let at = now
      _ = try db.run("UPDATE webhook_endpoints SET disabled_at = ? WHERE id = ?", at, id)
      _ = try db.run(
        "UPDATE webhook_deliveries SET status = 'failed', last_result = 'endpoint disabled' WHERE endpoint_id = ? AND status = 'pending'",
        id)
      return try webhookEndpoint(id: id)
    }
  }

  /// Sends to a disabled endpoint again: the events recorded from now on get deliveries.
  /// What was recorded while it was disabled is not sent, and the deliveries disabling
  /// failed stay failed (`webhook retry` sends one). Enabling an enabled one changes nothing.
  public func enableWebhookEndpoint(id: Int64) throws -> WebhookEndpoint {
    try write {
      let endpoint = try webhookEndpoint(id: id)
      guard endpoint.disabledAt != nil else { return endpoint }
      _ = try db.run("UPDATE webhook_endpoints SET disabled_at = NULL WHERE id = ?", id)
      return try webhookEndpoint(id: id)
    }
  }

  static func endpoint(from row: Row) throws -> WebhookEndpoint {
    let types = try? JSONSerialization.jsonObject(with: Data(try row.string("event_types").utf8)) as? [String]
    return WebhookEndpoint(
      id: try row.int("id"), url: try row.string("url"), eventTypes: types ?? [],
      createdAt: try row.string("created_at"), disabledAt: try row.optionalString("disabled_at"))
  }

  /// `text` if it is a URL ledgerd may POST its webhooks to: `https://`, or `http://` to this
  /// machine only (`localhost`, `127.x.x.x`, `[::1]`), since a signed body still travels in
  /// the clear; printable ASCII, no user name or password, no fragment.
  static func checkWebhookURL(_ text: String) throws -> String {
    func refuse(_ rule: String) -> InputError { InputError(field: "URL", rule: "'\(text.prefix(200))' \(rule)") }
    guard !text.isEmpty, text.utf8.count <= 2_048 else { throw refuse("must be 1 to 2048 characters") }
    guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
      throw refuse("must be printable ASCII without spaces (percent-encode the rest)")
    }
    guard let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased(),
      let host = parts.host, !host.isEmpty
    else { throw refuse("is not an absolute URL (https://host/path)") }
    guard parts.user == nil && parts.password == nil else {
      throw refuse("must not carry a user name or password: the signature tells the receiver who sent it")
    }
    guard parts.fragment == nil else { throw refuse("must not have a fragment (#...)") }
    switch scheme {
    case "https": break
    case "http":
      guard isLoopback(host) else {
        throw refuse("must use https: http is only for an endpoint on this machine (localhost, 127.0.0.1, [::1])")
      }
    default: throw refuse("must use https (or http to this machine)")
    }
    return text
  }

  static func isLoopback(_ host: String) -> Bool {
    let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
    if host == "localhost" || host == "::1" { return true }
    let parts = host.split(separator: ".", omittingEmptySubsequences: false)
    return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
  }

  /// Whether an error means another process held the write lock for the whole wait (not a
  /// wait cut short by shutdown): the same write can be tried again later.
  public static func isBusy(_ error: Error) -> Bool {
    if let busy = error as? WriteLockBusy { return !busy.stoppedWaiting }
    return (error as? SQLiteError)?.isBusy ?? false
  }

  // MARK: - Deliveries

  static let deliverySelect = """
    SELECT d.id, d.endpoint_id, w.url, d.event_id, e.at AS event_at, d.type, d.status, d.attempts, d.next_attempt_at,
      d.last_attempt_at, d.last_result, d.delivered_at
    FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN events e ON e.id = d.event_id
    """

  func delivery(from row: Row) throws -> WebhookDelivery {
    let id = try row.int("id")
    let eventID = try row.int("event_id")
    let eventAt = try row.string("event_at")
    return WebhookDelivery(
      id: id, endpointID: try row.int("endpoint_id"), url: try row.string("url"), eventID: eventID, eventAt: eventAt,
      type: try row.string("type"),
      webhookID: WebhookDelivery.webhookID(
        ledgerID: try ledgerID(), deliveryID: id, eventID: eventID, eventAt: eventAt),
      status: try row.string("status"), attempts: Int(try row.int("attempts")),
      nextAttemptAt: try row.string("next_attempt_at"), lastAttemptAt: try row.optionalString("last_attempt_at"),
      lastResult: try row.optionalString("last_result"), deliveredAt: try row.optionalString("delivered_at"))
  }

  /// Deliveries, newest first.
  public func webhookDeliveries(_ filter: WebhookDeliveryFilter = .all, limit: Int = 1_000) throws
    -> [WebhookDelivery]
  {
    let condition = filter == .all ? "1" : "d.status = '\(filter.rawValue)'"
    return try db.query(Self.deliverySelect + " WHERE \(condition) ORDER BY d.id DESC LIMIT ?", limit).map(
      delivery(from:))
  }

  /// One delivery by id.
  public func webhookDelivery(id: Int64) throws -> WebhookDelivery {
    guard let row = try db.queryOne(Self.deliverySelect + " WHERE d.id = ?", id) else {
      throw NotFoundError(field: "delivery", value: String(id))
    }
    return try delivery(from: row)
  }

  /// Deliveries to enabled endpoints due by `until`, oldest first, with what their requests
  /// are built from.
  public func dueWebhooks(until: Instant, limit: Int) throws -> [DueWebhook] {
    let ledger = try ledgerID()
    return try db.query(
      """
      SELECT d.id, d.endpoint_id, w.url, w.secret, d.type, d.attempts, e.id AS event_id, e.at, e.account_id,
        e.invoice_id, i.number AS invoice_number, e.actor, e.kind, e.reason, e.data
      FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN events e ON e.id = d.event_id
        LEFT JOIN invoices i ON i.id = e.invoice_id
      WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.disabled_at IS NULL
      ORDER BY d.next_attempt_at, d.id LIMIT ?
      """, until.iso8601, limit
    ).map { row in
      let id = try row.int("id")
      let event = WebhookEvent(
        id: try row.int("event_id"), at: try row.string("at"), accountID: try row.optionalInt("account_id"),
        invoiceID: try row.optionalInt("invoice_id"), invoiceNumber: try row.optionalString("invoice_number"),
        actor: try row.string("actor"), kind: try row.string("kind"), reason: try row.string("reason"),
        data: try row.string("data"))
      return DueWebhook(
        id: id, endpointID: try row.int("endpoint_id"), url: try row.string("url"), secret: try row.string("secret"),
        type: try row.string("type"),
        webhookID: WebhookDelivery.webhookID(ledgerID: ledger, deliveryID: id, eventID: event.id, eventAt: event.at),
        attempts: Int(try row.int("attempts")), event: event)
    }
  }

  /// When the next waiting delivery to an enabled endpoint is due (nil: none waits).
  public func nextWebhookAttempt() throws -> Instant? {
    try db.scalarText(
      """
      SELECT d.next_attempt_at FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id
      WHERE d.status = 'pending' AND w.disabled_at IS NULL ORDER BY d.next_attempt_at LIMIT 1
      """
    ).map { try Instant(iso8601: $0) }
  }

  /// The endpoint answered 2xx. Recorded only after the answer, so a crash in between sends
  /// the delivery again (with the same `webhook-id`) rather than losing it.
  public func markWebhookDelivered(id: Int64, result: String) throws {
    try write {
      let at = now
      _ = try db.run(
        """
        UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1, last_attempt_at = ?, delivered_at = ?,
          last_result = ?
        WHERE id = ? AND status = 'pending'
        """, at, at, String(result.prefix(1_000)), id)
    }
  }

  /// An attempt failed: the delivery waits until `retryAt`, or, with none, is marked failed.
  /// It stays in the table either way, with the endpoint's answer.
  public func markWebhookAttemptFailed(id: Int64, result: String, retryAt: Instant?) throws {
    try write {
      let text = String(result.prefix(1_000))
      if let retryAt {
        _ = try db.run(
          """
          UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?, next_attempt_at = ?, last_result = ?
          WHERE id = ? AND status = 'pending'
          """, now, retryAt.iso8601, text, id)
      } else {
        _ = try db.run(
          """
          UPDATE webhook_deliveries SET status = 'failed', attempts = attempts + 1, last_attempt_at = ?, last_result = ?
          WHERE id = ? AND status = 'pending'
          """, now, text, id)
      }
    }
  }

  /// The endpoint is down: its other deliveries due now wait until `retryAt` too, without
  /// an attempt counted against them (they were not tried). Returns how many.
  @discardableResult
  public func postponeWebhooks(ids: [Int64], until retryAt: Instant) throws -> Int {
    guard !ids.isEmpty else { return 0 }
    return try write {
      var count = 0
      for id in ids {
        count += try db.run(
          "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at < ?",
          retryAt.iso8601, id, retryAt.iso8601)
      }
      return count
    }
  }

  /// Sends a waiting or failed delivery at once (staff fixed the endpoint), its attempts
  /// kept: a failed one that fails again is marked failed again.
  public func retryWebhookDelivery(id: Int64) throws -> WebhookDelivery {
    try write {
      let delivery = try webhookDelivery(id: id)
      guard delivery.status != "delivered" else {
        throw StateError(
          subject: "delivery \(id)", rule: "was delivered at \(delivery.deliveredAt ?? "?"); nothing to retry")
      }
      let endpoint = try webhookEndpoint(id: delivery.endpointID)
      if let disabled = endpoint.disabledAt {
        throw StateError(
          subject: "delivery \(id)",
          rule: "its endpoint \(endpoint.id) was disabled at \(disabled); nothing is sent there")
      }
      _ = try db.run("UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ? WHERE id = ?", now, id)
      return try webhookDelivery(id: id)
    }
  }
}
