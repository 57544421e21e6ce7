import Foundation
import LedgerCore
import LedgerEngine
import LedgerStore
import Logging

/// Stripe's webhook signing secrets: `$CREDENTIALS_DIRECTORY/stripe-webhook-secret` under
/// systemd, else the configured file; one `whsec_…` per line (two while a secret is rotated).
enum StripeWebhookSecrets {
  static func load(_ settings: APISettings) throws -> [String] {
    guard
      let file = try SecretFile.read(
        credential: "stripe-webhook-secret", path: settings.stripeWebhookSecretFile,
        field: "api.stripe_webhook_secret_file", environment: ProcessInfo.processInfo.environment)
    else { return [] }
    let path = file.source
    let secrets = file.text.split(whereSeparator: \.isNewline).map {
      $0.trimmingCharacters(in: .whitespaces)
    }.filter { !$0.isEmpty }
    guard !secrets.isEmpty, secrets.allSatisfy({ $0.hasPrefix("whsec_") && $0.utf8.count < 200 }) else {
      throw InputError(
        field: "api.stripe_webhook_secret_file", rule: "\(path) must hold Stripe signing secrets (whsec_…), one a line")
    }
    return secrets
  }
}

/// `Stripe-Signature`: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`, several `v1` while
/// a secret is rotated. Checked against every secret, within a tolerance of the real time.
enum StripeSignature {
  static let tolerance: Int64 = 300

  static func verify(header: String?, body: Data, secrets: [String], now: Int64) throws {
    guard let header, !header.isEmpty else {
      throw APIError.invalid("Stripe-Signature", "is missing: the event cannot be trusted")
    }
    var timestamp: Int64?
    var signatures: [String] = []
    for part in header.split(separator: ",") {
      let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      guard pair.count == 2 else { continue }
      if pair[0] == "t" { timestamp = Int64(pair[1]) }
      if pair[0] == "v1" { signatures.append(pair[1].lowercased()) }
    }
    guard let timestamp, !signatures.isEmpty else {
      throw APIError.invalid("Stripe-Signature", "must carry t= and at least one v1= signature")
    }
    guard abs(now - timestamp) <= tolerance else {
      throw APIError.invalid(
        "Stripe-Signature", "its timestamp is \(now - timestamp) s from now; more than \(tolerance) s is refused")
    }
    let signed = Array("\(timestamp).".utf8) + Array(body)
    for secret in secrets {
      let expected = Array(HMACSHA256.hex(key: Array(secret.utf8), message: signed).utf8)
      if signatures.contains(where: { HMACSHA256.equal(Array($0.utf8), expected) }) { return }
    }
    throw APIError.invalid("Stripe-Signature", "no v1 signature matches a configured signing secret")
  }
}

extension LedgerAPI {
  /// `POST /webhooks/stripe`: a signed event is kept once by its id, and applied: a
  /// PaymentIntent's outcome answers the pending attempt it names (the daemon records it at
  /// once), a refund is posted, a dispute recorded for staff. Anything unsigned, wrongly
  /// signed or too old is refused with 400 and changes nothing.
  func stripeWebhook(body: Data, signature: String?) async throws -> (status: Int, body: Data) {
    guard !stripeSecrets.isEmpty else {
      throw APIError.notFound(nil, "Stripe webhooks are not configured (api.stripe_webhook_secret_file)")
    }
    try StripeSignature.verify(
      header: signature, body: body, secrets: stripeSecrets, now: Int64(Date().timeIntervalSince1970))
    let logger = self.logger
    // Parsed where it is applied: the parsed event is not Sendable.
    let answer: [String: String] = try await database.run { store in
      let (id, type, created, object) = try Self.parse(body)
      if try store.hasProcessorEvent(id) { return ["received": id, "result": "duplicate"] }
      let result = try Self.apply(id: id, type: type, created: created, object: object, store: store, logger: logger)
      return ["received": id, "result": result]
    }
    return (200, try JSONEncoder().encode(answer))
  }

  /// The event's id, type, creation time and object.
  static func parse(_ body: Data) throws -> (String, String, Int64, [String: Any]) {
    guard let event = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
      let id = event["id"] as? String, !id.isEmpty, id.utf8.count <= 255,
      let type = event["type"] as? String,
      let object = (event["data"] as? [String: Any])?["object"] as? [String: Any]
    else {
      throw APIError.invalid("body", "is not a Stripe event (id, type, data.object)")
    }
    return (id, type, (event["created"] as? NSNumber)?.int64Value ?? 0, object)
  }

  static func apply(
    id: String, type: String, created: Int64, object: [String: Any], store: LedgerStore, logger: Logger
  ) throws -> String {
    func string(_ key: String, _ from: [String: Any] = object) -> String? { from[key] as? String }
    func money(_ amountKey: String) throws -> Money? {
      guard let minor = (object[amountKey] as? NSNumber)?.int64Value, let code = string("currency") else { return nil }
      return Money(minorUnits: minor, currency: try Currency(code: code.uppercased()))
    }
    let plain = ProcessorEvent(
      id: id, type: type, objectID: string("id"), created: created, attemptID: nil, outcome: nil, reference: nil,
      rawCode: nil, amount: nil)
    switch type {
    case "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.processing",
      "payment_intent.canceled":
      let metadata = object["metadata"] as? [String: Any] ?? [:]
      guard let intent = string("id"), string("ledger_id", metadata) == (try store.read { try store.ledgerID() }),
        let attemptID = string("ledger_attempt", metadata).flatMap(Int64.init),
        let key = string("idempotency_key", metadata),
        let attempt = try store.attempt(id: attemptID, key: key)
      else {
        _ = try store.keepProcessorEvent(plain)
        return "not a charge of this ledger"
      }
      guard let amount = try money("amount"), amount == attempt.amount else {
        logger.critical(
          "Stripe event \(id) names attempt \(attemptID) with another amount than the attempt's \(attempt.amount); not applied"
        )
        _ = try store.keepProcessorEvent(plain)
        return "amount differs from the attempt's; not applied"
      }
      let outcome: (String, String?, String?)
      switch type {
      case "payment_intent.succeeded":
        let charge =
          string("latest_charge") ?? ((object["latest_charge"] as? [String: Any]).flatMap { string("id", $0) })
        outcome = ("succeeded", charge.map { "\(intent)/\($0)" } ?? intent, nil)
      case "payment_intent.processing":
        outcome = ("processing", intent, nil)
      case "payment_intent.canceled":
        outcome = ("failed", nil, "canceled")
      default:
        let error = object["last_payment_error"] as? [String: Any] ?? [:]
        let code = string("decline_code", error) ?? string("code", error) ?? "generic_decline"
        outcome = (
          string("type", error) == "card_error" || error["decline_code"] != nil ? "declined" : "failed", nil, code
        )
      }
      let kept = try store.keepProcessorEvent(
        ProcessorEvent(
          id: id, type: type, objectID: intent, created: created, attemptID: attemptID, outcome: outcome.0,
          reference: outcome.1, rawCode: outcome.2, amount: amount))
      return kept ? "attempt \(attemptID): \(outcome.0)" : "duplicate"
    case "charge.refunded":
      guard let charge = string("id"), let refunded = try money("amount_refunded") else {
        throw APIError.invalid("data.object", "a charge.refunded event needs id, amount_refunded and currency")
      }
      let attempt =
        try store.attempt(processorObject: charge)
        ?? string("payment_intent").flatMap { try? store.attempt(processorObject: $0) }
      return try store.recordProcessorRefund(
        event: plain, charge: charge, refundedTotal: refunded, attempt: attempt.map { ($0.id, $0.account) })
    case "charge.dispute.created":
      guard let charge = string("charge"), let amount = try money("amount") else {
        throw APIError.invalid("data.object", "a charge.dispute.created event needs charge, amount and currency")
      }
      let attempt =
        try store.attempt(processorObject: charge)
        ?? string("payment_intent").flatMap { try? store.attempt(processorObject: $0) }
      return try store.recordProcessorDispute(
        event: plain, charge: charge, amount: amount, reason: string("reason") ?? "no reason given",
        account: attempt?.account)
    default:
      _ = try store.keepProcessorEvent(plain)
      return "ignored"
    }
  }
}
