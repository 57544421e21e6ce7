import Foundation
import LedgerCore
import LedgerSQLite

/// An API key as staff see it: never the key itself, which is shown once at creation.
public struct APIKey: Codable, Sendable, Equatable {
  public let id: Int64
  public let name: String
  public let role: APIRole
  /// The one account a customer key acts for.
  public let accountID: Int64?
  /// The key's first characters, to tell keys apart.
  public let prefix: String
  public let createdAt: String
  public let revokedAt: String?
}

/// The first answer given to a POST under an Idempotency-Key.
public struct IdempotentAnswer: Sendable, Equatable {
  public let requestSHA256: String
  public let status: Int
  public let body: String

  public init(requestSHA256: String, status: Int, body: String) {
    self.requestSHA256 = requestSHA256
    self.status = status
    self.body = body
  }
}

/// One charge attempt of an account, with the reason it failed, for the API and dashboards.
public struct ChargeAttemptView: Codable, Sendable, Equatable {
  public let id: Int64
  public let createdAt: String
  public let resolvedAt: String?
  public let cardID: Int64
  public let card: String
  public let invoices: [String]
  public let amount: Money
  public let status: AttemptStatus
  public let rawCode: String?
  public let reason: DeclineReason?
  public let retryClass: RetryClass?
  public let processorRef: String?
}

/// Where an account stands in dunning: what it owes in dunning, since when, and until when.
public struct DunningView: Codable, Sendable, Equatable {
  public let accountID: Int64
  public let status: AccountStatus
  public let plan: String
  public let pastDueSince: String?
  public let graceDeadline: String?
  public let invoicesInDunning: Int64
  public let pausedInvoices: Int64
  public let transfersInClearing: Int64
  public let due: [Money]
}

/// A webhook event from the card processor, as kept (`processor_events`).
public struct ProcessorEvent: Sendable, Equatable {
  public let id: String
  public let type: String
  public let objectID: String?
  public let created: Int64
  public let attemptID: Int64?
  public let outcome: String?
  public let reference: String?
  public let rawCode: String?
  public let amount: Money?

  public init(
    id: String, type: String, objectID: String?, created: Int64, attemptID: Int64?, outcome: String?,
    reference: String?, rawCode: String?, amount: Money?
  ) {
    self.id = id
    self.type = type
    self.objectID = objectID
    self.created = created
    self.attemptID = attemptID
    self.outcome = outcome
    self.reference = reference
    self.rawCode = rawCode
    self.amount = amount
  }
}

extension LedgerStore {
  // MARK: - Keys

  /// Creates a key; the returned secret (`ldk_` and 43 characters) is the only copy.
  public func createAPIKey(name: String, role: APIRole, account: Int64?) throws -> (APIKey, secret: String) {
    let name = name.trimmingCharacters(in: .whitespaces)
    guard (1...64).contains(name.count), name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
      throw InputError(field: "name", rule: "'\(name)' must be 1 to 64 letters, digits, '-', '_' or '.'")
    }
    switch (role, account) {
    case (.customer, nil):
      throw InputError(field: "--account", rule: "a customer key acts for one account: name it")
    case (.staff, .some), (.read, .some):
      throw InputError(field: "--account", rule: "only a customer key is tied to an account")
    default: break
    }
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    let secret =
      "ldk_"
      + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(
        of: "/", with: "_"
      ).replacingOccurrences(of: "=", with: "")
    return try write {
      if let account { _ = try requireAccount(account, field: "--account") }
      guard try db.scalarInt("SELECT count(*) FROM api_keys WHERE name = ?", name) == 0 else {
        throw InputError(field: "name", rule: "a key named '\(name)' exists already")
      }
      try db.run(
        "INSERT INTO api_keys (name, role, account_id, prefix, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        name, role.rawValue, account, String(secret.prefix(10)), SHA256.hex(Array(secret.utf8)), now)
      let key = try requireAPIKey(id: db.lastInsertRowID)
      try recordEvent(
        account: account, actor: .staff, kind: "api_key_created",
        reason: "API key '\(name)' created with role \(role.rawValue)"
          + (account.map { " for account \($0)" } ?? ""))
      return (key, secret)
    }
  }

  /// Every key, revoked ones included, oldest first.
  public func apiKeys() throws -> [APIKey] {
    try db.query("SELECT * FROM api_keys ORDER BY id").map(apiKey(from:))
  }

  /// Revokes a key by name or id: requests with it are refused from now on.
  public func revokeAPIKey(_ reference: String) throws -> APIKey {
    try write {
      let row =
        try Int64(reference).flatMap { try db.queryOne("SELECT * FROM api_keys WHERE id = ?", $0) }
        ?? db.queryOne("SELECT * FROM api_keys WHERE name = ?", reference)
      guard let row else { throw NotFoundError(field: "key", value: reference) }
      let key = try apiKey(from: row)
      guard key.revokedAt == nil else { throw StateError(subject: "key '\(key.name)'", rule: "is revoked already") }
      try db.run("UPDATE api_keys SET revoked_at = ? WHERE id = ?", now, key.id)
      try recordEvent(
        account: key.accountID, actor: .staff, kind: "api_key_revoked", reason: "API key '\(key.name)' revoked")
      return try requireAPIKey(id: key.id)
    }
  }

  /// The live key whose secret this is, if any.
  public func authenticate(secret: String) throws -> APIKey? {
    guard secret.hasPrefix("ldk_"), secret.utf8.count < 128 else { return nil }
    return try db.queryOne(
      "SELECT * FROM api_keys WHERE secret_sha256 = ? AND revoked_at IS NULL", SHA256.hex(Array(secret.utf8))
    ).map(apiKey(from:))
  }

  func requireAPIKey(id: Int64) throws -> APIKey {
    guard let row = try db.queryOne("SELECT * FROM api_keys WHERE id = ?", id) else {
      throw NotFoundError(field: "key", value: String(id))
    }
    return try apiKey(from: row)
  }

  func apiKey(from row: Row) throws -> APIKey {
    APIKey(
      id: try row.int("id"), name: try row.string("name"), role: APIRole(rawValue: try row.string("role")) ?? .read,
      accountID: try row.optionalInt("account_id"), prefix: try row.string("prefix"),
      createdAt: try row.string("created_at"), revokedAt: try row.optionalString("revoked_at"))
  }

  // MARK: - Idempotency

  /// The answer kept for this key's Idempotency-Key, if given within `window` seconds.
  public func idempotentAnswer(apiKey: Int64, key: String, window: Int64 = 86_400) throws -> IdempotentAnswer? {
    let since = Instant(secondsSinceEpoch: clock.now().secondsSinceEpoch - window).iso8601
    return try db.queryOne(
      "SELECT request_sha256, status, response FROM api_idempotency WHERE api_key_id = ? AND key = ? AND created_at >= ?",
      apiKey, key, since
    ).map {
      IdempotentAnswer(
        requestSHA256: try $0.string("request_sha256"), status: Int(try $0.int("status")),
        body: try $0.string("response"))
    }
  }

  /// Keeps the first answer to a POST, in the transaction of the change it made; answers
  /// older than `window` are dropped on the way.
  public func keepIdempotentAnswer(apiKey: Int64, key: String, answer: IdempotentAnswer, window: Int64 = 86_400)
    throws
  {
    let since = Instant(secondsSinceEpoch: clock.now().secondsSinceEpoch - window).iso8601
    _ = try db.run(
      "DELETE FROM api_idempotency WHERE api_key_id = ? AND key = ? AND created_at < ?", apiKey, key, since)
    _ = try db.run(
      """
      DELETE FROM api_idempotency WHERE (api_key_id, key) IN
        (SELECT api_key_id, key FROM api_idempotency WHERE created_at < ? LIMIT 100)
      """,
      since)
    try db.run(
      "INSERT INTO api_idempotency (api_key_id, key, request_sha256, status, response, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      apiKey, key, answer.requestSHA256, Int64(answer.status), answer.body, now)
  }

  // MARK: - Pages

  /// Accounts in id order after `after`, at most `limit`.
  public func accounts(status: AccountStatus?, after: Int64, limit: Int) throws -> [Account] {
    if let status {
      return try db.query(
        Self.accountSelect + " WHERE a.status = ? AND a.id > ? ORDER BY a.id LIMIT ?", status.rawValue, after,
        Int64(limit)
      ).map(account(from:))
    }
    return try db.query(Self.accountSelect + " WHERE a.id > ? ORDER BY a.id LIMIT ?", after, Int64(limit)).map(
      account(from:))
  }

  /// An account's invoices, newest first, before id `before` (without their lines).
  public func invoices(account: Int64, status: InvoiceStatus?, before: Int64, limit: Int) throws -> [Invoice] {
    if let status {
      return try db.query(
        Self.invoiceSelect + " WHERE i.account_id = ? AND i.status = ? AND i.id < ? ORDER BY i.id DESC LIMIT ?",
        account, status.rawValue, before, Int64(limit)
      ).map(invoice(from:))
    }
    return try db.query(
      Self.invoiceSelect + " WHERE i.account_id = ? AND i.id < ? ORDER BY i.id DESC LIMIT ?", account, before,
      Int64(limit)
    ).map(invoice(from:))
  }

  /// An account's charge attempts, newest first, before id `before`.
  public func chargeAttempts(account: Int64, before: Int64, limit: Int) throws -> [ChargeAttemptView] {
    try db.query(
      """
      SELECT c.id, c.created_at, c.resolved_at, c.card_id, k.brand || ' •••• ' || k.last4 AS card,
             (SELECT group_concat(i.number, ',') FROM charge_attempt_invoices ci JOIN invoices i ON i.id = ci.invoice_id
               WHERE ci.attempt_id = c.id) AS invoices,
             c.amount_minor, c.currency, c.status, c.raw_code, c.reason, c.processor_ref
      FROM charge_attempts c JOIN cards k ON k.id = c.card_id
      WHERE c.account_id = ? AND c.id < ? ORDER BY c.id DESC LIMIT ?
      """, account, before, Int64(limit)
    ).map { row in
      let reason = try row.optionalString("reason").flatMap(DeclineReason.init(rawValue:))
      return ChargeAttemptView(
        id: try row.int("id"), createdAt: try row.string("created_at"),
        resolvedAt: try row.optionalString("resolved_at"),
        cardID: try row.int("card_id"), card: try row.string("card"),
        invoices: (try row.optionalString("invoices") ?? "").split(separator: ",").map(String.init),
        amount: Money(
          minorUnits: try row.int("amount_minor"), currency: try Currency(code: try row.string("currency"))),
        status: AttemptStatus(rawValue: try row.string("status")) ?? .pending,
        rawCode: try row.optionalString("raw_code"),
        reason: reason, retryClass: reason?.retryClass, processorRef: try row.optionalString("processor_ref"))
    }
  }

  /// Where the account stands in dunning.
  public func dunning(account id: Int64) throws -> DunningView {
    try read {
      let account = try requireAccount(id, field: "account")
      let row = try db.queryOne(
        """
        SELECT min(dunning_started_at) AS since, min(grace_deadline) AS deadline, count(*) AS n,
               coalesce(sum(paused_at IS NOT NULL), 0) AS paused
        FROM invoices WHERE account_id = ? AND status = 'open' AND dunning_started_at IS NOT NULL
        """, id)
      let clearing =
        try db.scalarInt(
          """
          SELECT count(*) FROM transfer_declarations t JOIN invoices i ON i.id = t.invoice_id
          WHERE i.account_id = ? AND t.closed_at IS NULL
          """, id) ?? 0
      var due: [Money] = []
      for row in try db.query(
        Self.invoiceSelect + " WHERE i.account_id = ? AND i.status IN ('open', 'uncollectible')", id)
      {
        let invoice = try invoice(from: row)
        if let index = due.firstIndex(where: { $0.currency == invoice.due.currency }) {
          due[index] = Money(minorUnits: due[index].minorUnits + invoice.due.minorUnits, currency: invoice.due.currency)
        } else if invoice.due.minorUnits > 0 {
          due.append(invoice.due)
        }
      }
      return DunningView(
        accountID: id, status: account.status, plan: account.plan, pastDueSince: try row?.optionalString("since"),
        graceDeadline: try row?.optionalString("deadline"), invoicesInDunning: try row?.int("n") ?? 0,
        pausedInvoices: try row?.int("paused") ?? 0, transfersInClearing: clearing, due: due)
    }
  }

  // MARK: - Processor webhook events

  /// Keeps a processor event once: false when its id was kept already (a repeated delivery).
  public func keepProcessorEvent(_ event: ProcessorEvent) throws -> Bool {
    try write {
      try db.run(
        """
        INSERT INTO processor_events (event_id, type, object_id, created, received_at, attempt_id, outcome, reference,
                                      raw_code, amount_minor, currency, applied_at, result)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING
        """, event.id, event.type, event.objectID, event.created, now, event.attemptID, event.outcome, event.reference,
        event.rawCode, event.amount?.minorUnits, event.amount?.currency.code,
        event.attemptID == nil || event.outcome == nil ? now : nil,
        event.attemptID == nil || event.outcome == nil ? "nothing to apply" : nil) == 1
    }
  }
}

extension LedgerStore {
  /// The outcomes processor webhooks told of attempts still pending, by attempt: a final
  /// outcome before "processing". Events whose attempt is resolved (by its own answer, a
  /// lookup, or an earlier event) are marked applied on the way, with what the attempt became.
  public func processorEventOutcomes() throws -> [Int64: ChargeOutcome] {
    // Most ticks find none waiting: one read of a partial index, no write.
    guard try db.scalarInt("SELECT count(*) FROM processor_events WHERE applied_at IS NULL") ?? 0 > 0 else {
      return [:]
    }
    _ = try write {
      try db.run(
        """
        UPDATE processor_events SET applied_at = ?,
          result = 'attempt ' || attempt_id || ' ' || (SELECT status FROM charge_attempts c WHERE c.id = attempt_id)
        WHERE applied_at IS NULL AND attempt_id IS NOT NULL
          AND (SELECT status FROM charge_attempts c WHERE c.id = attempt_id) <> 'pending'
        """, now)
    }
    var outcomes: [Int64: ChargeOutcome] = [:]
    for row in try db.query(
      """
      SELECT attempt_id, outcome, reference, raw_code FROM processor_events
      WHERE applied_at IS NULL AND attempt_id IS NOT NULL AND outcome IS NOT NULL
      ORDER BY outcome = 'processing' DESC, created
      """)
    {
      let attempt = try row.int("attempt_id")
      let reference = try row.optionalString("reference") ?? ""
      let code = try row.optionalString("raw_code") ?? "unknown"
      switch try row.string("outcome") {
      case "succeeded": outcomes[attempt] = .succeeded(reference: reference)
      case "declined": outcomes[attempt] = .declined(code: code)
      case "failed": outcomes[attempt] = .failed(code: code)
      default: outcomes[attempt] = .inProgress(reference: reference)
      }
    }
    return outcomes
  }
}

/// What `/metrics` reads from the file at each scrape: the backlogs and states that other
/// processes change too (so no in-process counter could know them).
public struct LedgerFigures: Sendable {
  public var pendingAttempts: Int64 = 0
  public var accountsByStatus: [String: Int64] = [:]
  public var outboxBacklog: Int64 = 0
  public var webhookDeliveries: [String: Int64] = [:]
  public var bankLines: [String: Int64] = [:]
  public var processorEventsWaiting: Int64 = 0
}

extension LedgerStore {
  public func figures() throws -> LedgerFigures {
    try read {
      var figures = LedgerFigures()
      figures.pendingAttempts = try db.scalarInt("SELECT count(*) FROM charge_attempts WHERE status = 'pending'") ?? 0
      for row in try db.query("SELECT status, count(*) AS n FROM accounts GROUP BY status") {
        figures.accountsByStatus[try row.string("status")] = try row.int("n")
      }
      figures.outboxBacklog =
        try db.scalarInt("SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL") ?? 0
      for row in try db.query(
        "SELECT status, count(*) AS n FROM webhook_deliveries WHERE status <> 'delivered' GROUP BY status")
      {
        figures.webhookDeliveries[try row.string("status")] = try row.int("n")
      }
      for row in try db.query("SELECT match_status, count(*) AS n FROM bank_statement_lines GROUP BY match_status") {
        figures.bankLines[try row.string("match_status")] = try row.int("n")
      }
      figures.processorEventsWaiting =
        try db.scalarInt("SELECT count(*) FROM processor_events WHERE applied_at IS NULL") ?? 0
      return figures
    }
  }
}

extension LedgerStore {
  /// The attempt a charge at the processor belongs to: by the PaymentIntent or charge id it
  /// was recorded with (`pi_…/ch_…`).
  public func attempt(processorObject id: String) throws -> (id: Int64, account: Int64, amount: Money)? {
    try db.queryOne(
      """
      SELECT id, account_id, amount_minor, currency FROM charge_attempts
      WHERE processor_ref = ?1 OR processor_ref LIKE ?1 || '/%' OR processor_ref LIKE '%/' || ?1 ORDER BY id LIMIT 1
      """, id
    ).map {
      (
        try $0.int("id"), try $0.int("account_id"),
        Money(minorUnits: try $0.int("amount_minor"), currency: try Currency(code: try $0.string("currency")))
      )
    }
  }

  /// The attempt a PaymentIntent's metadata names, if it is this ledger's and the key matches.
  public func attempt(id: Int64, key: String) throws -> (account: Int64, amount: Money)? {
    try db.queryOne(
      "SELECT account_id, amount_minor, currency FROM charge_attempts WHERE id = ? AND idempotency_key = ?", id, key
    ).map {
      (
        try $0.int("account_id"),
        Money(minorUnits: try $0.int("amount_minor"), currency: try Currency(code: try $0.string("currency")))
      )
    }
  }

  /// Keeps a refund told by the processor: the part of `refundedTotal` (the charge's
  /// refunds so far) not yet recorded is posted as a refund entry, an event tells staff, and
  /// the event is kept under its id. A repeated or older event posts nothing.
  public func recordProcessorRefund(
    event: ProcessorEvent, charge: String, refundedTotal: Money, attempt: (id: Int64, account: Int64)?
  ) throws -> String {
    try write {
      if try hasProcessorEvent(event.id) { return "duplicate" }
      let before =
        try db.scalarInt(
          "SELECT coalesce(max(amount_minor), 0) FROM processor_events WHERE type = 'charge.refunded' AND object_id = ?",
          charge) ?? 0
      let increment = refundedTotal.minorUnits - before
      let result: String
      if increment > 0 {
        let amount = Money(minorUnits: increment, currency: refundedTotal.currency)
        _ = try post(try Posting.cardRefund(amount: amount, memo: "refund of \(amount) on \(charge) (\(event.id))"))
        try recordEvent(
          account: attempt?.account, actor: .system, kind: "payment_refunded",
          reason:
            "the processor refunded \(amount) of charge \(charge) (refunded in all: \(refundedTotal)); for staff: decide whether the invoice is owed again",
          data: ["charge": charge, "event": event.id, "attempt_id": attempt.map { String($0.id) } ?? ""])
        result = "refund of \(amount) posted"
      } else {
        result = "refund already recorded"
      }
      try db.run(
        """
        INSERT INTO processor_events (event_id, type, object_id, created, received_at, amount_minor, currency, applied_at, result)
        VALUES (?, 'charge.refunded', ?, ?, ?, ?, ?, ?, ?)
        """, event.id, charge, event.created, now, max(before, refundedTotal.minorUnits), refundedTotal.currency.code,
        now, result)
      return result
    }
  }

  /// Keeps a dispute told by the processor as a finding for staff.
  public func recordProcessorDispute(
    event: ProcessorEvent, charge: String, amount: Money, reason: String, account: Int64?
  ) throws -> String {
    try write {
      if try hasProcessorEvent(event.id) { return "duplicate" }
      try recordEvent(
        account: account, actor: .system, kind: "payment_disputed",
        reason:
          "the cardholder disputed \(amount) of charge \(charge) (\(reason)); for staff: answer it at the processor",
        data: ["charge": charge, "event": event.id])
      try db.run(
        """
        INSERT INTO processor_events (event_id, type, object_id, created, received_at, amount_minor, currency, applied_at, result)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'dispute recorded for staff')
        """, event.id, event.type, charge, event.created, now, amount.minorUnits, amount.currency.code, now)
      return "dispute recorded for staff"
    }
  }

  /// The refunded total of `charge` that Stripe's webhooks posted to the journal (the
  /// largest `amount_refunded` told), or nil when none was.
  public func refundPostedFromWebhook(charge: String) throws -> Money? {
    try db.queryOne(
      """
      SELECT amount_minor, currency FROM processor_events
      WHERE type = 'charge.refunded' AND object_id = ? ORDER BY amount_minor DESC LIMIT 1
      """, charge
    ).map { Money(minorUnits: try $0.int("amount_minor"), currency: try Currency(code: try $0.string("currency"))) }
  }

  /// Whether a processor event id was kept already.
  public func hasProcessorEvent(_ id: String) throws -> Bool {
    try db.scalarInt("SELECT count(*) FROM processor_events WHERE event_id = ?", id) ?? 0 > 0
  }
}
