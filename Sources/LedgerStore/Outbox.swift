import Foundation
import LedgerCore
import LedgerSQLite

extension OutboxEntry {
  init(row: Row) throws {
    let object = try? JSONSerialization.jsonObject(with: Data(try row.string("data").utf8)) as? [String: Any]
    self.init(
      id: try row.int("id"), key: try row.string("key"), accountID: try row.int("account_id"),
      invoice: try row.optionalString("invoice"),
      kind: try row.string("kind"), locale: CustomerLocale(rawValue: try row.string("locale")) ?? .fr,
      recipient: try row.string("recipient"),
      data: (object ?? [:]).compactMapValues { $0 as? String }, createdAt: try row.string("created_at"),
      attempts: Int(try row.int("attempts")), nextAttemptAt: try row.string("next_attempt_at"),
      deliveredAt: try row.optionalString("delivered_at"), failedAt: try row.optionalString("failed_at"),
      lastError: try row.optionalString("last_error"))
  }
}

/// The outbox's SQL is the notifier's repository.
extension LedgerStore: OutboxRepository {}

/// Which outbox rows to list.
public enum OutboxFilter: String, Sendable, CaseIterable {
  case all, pending, delivered, failed
}

extension LedgerStore {
  static let outboxSelect = """
    SELECT o.id, o.key, o.account_id, i.number AS invoice, o.kind, o.locale, o.recipient, o.data, o.created_at, o.attempts,
      o.next_attempt_at, o.delivered_at, o.failed_at, o.last_error
    FROM outbox o LEFT JOIN invoices i ON i.id = o.invoice_id
    """

  /// Messages waiting for delivery whose next attempt is due by `until`, oldest first.
  public func dueOutbox(until: Instant, limit: Int) throws -> [OutboxEntry] {
    try db.query(
      Self.outboxSelect + """
         WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.id LIMIT ?
        """, until.iso8601, limit
    ).map(OutboxEntry.init(row:))
  }

  /// When the next undelivered message is due (nil: nothing waits).
  public func nextOutboxAttempt() throws -> Instant? {
    try db.scalarText(
      "SELECT next_attempt_at FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL ORDER BY next_attempt_at LIMIT 1"
    ).map { try Instant(iso8601: $0) }
  }

  /// The outbox, newest first.
  public func outbox(_ filter: OutboxFilter = .all, limit: Int = 1_000) throws -> [OutboxEntry] {
    let condition: String
    switch filter {
    case .all: condition = "1"
    case .pending: condition = "o.delivered_at IS NULL AND o.failed_at IS NULL"
    case .delivered: condition = "o.delivered_at IS NOT NULL"
    case .failed: condition = "o.failed_at IS NOT NULL AND o.delivered_at IS NULL"
    }
    return try db.query(Self.outboxSelect + " WHERE \(condition) ORDER BY o.id DESC LIMIT ?", limit).map(
      OutboxEntry.init(row:))
  }

  /// One outbox row by id.
  public func outboxEntry(id: Int64) throws -> OutboxEntry {
    guard let row = try db.queryOne(Self.outboxSelect + " WHERE o.id = ?", id) else {
      throw NotFoundError(field: "message", value: String(id))
    }
    return try OutboxEntry(row: row)
  }

  /// The transport accepted the message: it leaves the queue. Called only after the
  /// hand-off, so a crash in between resends it (with the same Message-ID) rather than
  /// losing it.
  public func markOutboxDelivered(id: Int64) throws {
    try write {
      _ = try db.run(
        "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 WHERE id = ? AND delivered_at IS NULL", now, id)
    }
  }

  /// An attempt failed: the message waits until `retryAt`, or, with none, is marked failed
  /// with the reason. It stays in the table either way.
  public func markOutboxAttemptFailed(id: Int64, error: String, retryAt: Instant?) throws {
    let text = String(error.prefix(1_000))
    try write {
      if let retryAt {
        _ = try db.run(
          "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ? AND delivered_at IS NULL",
          retryAt.iso8601, text, id)
      } else {
        _ = try db.run(
          "UPDATE outbox SET attempts = attempts + 1, failed_at = ?, last_error = ? WHERE id = ? AND delivered_at IS NULL",
          now, text, id)
      }
    }
  }

  /// The transport itself failed: every other message due by `now` waits until `retryAt`
  /// too, without an attempt counted against it. Returns how many.
  public func postponeDueOutbox(now: Instant, until retryAt: Instant) throws -> Int {
    try write {
      try db.run(
        "UPDATE outbox SET next_attempt_at = ? WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?",
        retryAt.iso8601, now.iso8601)
    }
  }

  /// Puts a failed message back in the queue (staff fixed the address or the relay).
  public func retryOutbox(id: Int64) throws -> OutboxEntry {
    try write {
      let entry = try outboxEntry(id: id)
      guard entry.status == "failed" else {
        throw StateError(subject: "message \(id)", rule: "is \(entry.status); only a failed message can be retried")
      }
      _ = try db.run("UPDATE outbox SET failed_at = NULL, attempts = 0, next_attempt_at = ? WHERE id = ?", now, id)
      return try outboxEntry(id: id)
    }
  }
}
