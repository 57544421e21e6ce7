import Foundation
import LedgerCore

/// What ledgerd sends to Stripe and how it reads the answers: pure functions, no I/O, so
/// that every answer's meaning is tested without a network.
///
/// A charge is one call: `POST /v1/payment_intents` with `confirm=true` and
/// `off_session=true` creates the PaymentIntent and confirms it at once. One call means
/// one idempotency key covers the whole charge: there is no PaymentIntent created but
/// never confirmed to clean up after a crash between two calls, and a lost answer is
/// resolved by sending the very same request again under the same key.
public enum StripeAPI {
  /// The API version ledgerd is written against (`Stripe-Version`), so that a change of
  /// the account's default version never changes what the adapter reads.
  public static let version = "2024-06-20"

  /// The form body of a charge. Its bytes depend only on the request, so the same attempt
  /// sent again (a lookup by replay) is the same request to Stripe, which answers a
  /// different body under a used key with an `idempotency_error`.
  public static func chargeBody(_ request: ChargeRequest) -> String {
    let m = request.metadata
    var fields: [(String, String)] = [
      ("amount", String(request.amount.minorUnits)),
      ("currency", request.amount.currency.code.lowercased()),
    ]
    if let customer = request.customer { fields.append(("customer", customer)) }
    fields += [
      ("payment_method", request.token),
      ("payment_method_types[]", "card"),
      ("off_session", "true"),
      ("confirm", "true"),
      ("metadata[idempotency_key]", request.key),
      ("metadata[ledger_id]", m.ledgerID),
      ("metadata[ledger_attempt]", String(m.attemptID)),
      ("metadata[ledger_account]", String(m.accountID)),
      ("metadata[ledger_card]", String(m.cardID)),
      ("metadata[ledger_invoices]", m.invoiceIDs.map(String.init).joined(separator: ",")),
    ]
    return form(fields)
  }

  /// `application/x-www-form-urlencoded`, every byte but the unreserved ones escaped.
  public static func form(_ fields: [(String, String)]) -> String {
    fields.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
  }

  static func escape(_ text: String) -> String {
    var out = ""
    for byte in text.utf8 {
      switch byte {
      case 48...57, 65...90, 97...122, 45, 46, 95, 126: out.unicodeScalars.append(Unicode.Scalar(byte))
      default: out += "%" + String(format: "%02X", byte)
      }
    }
    return out
  }

  /// What one HTTP answer means for a charge.
  public enum Answer: Equatable, Sendable {
    /// An outcome to record.
    case outcome(ChargeOutcome)
    /// 429: the request was not processed; wait and send it again under the same key.
    case rateLimited
    /// No usable answer (a 5xx, a conflict): the charge may or may not exist; the
    /// attempt stays pending and is looked up.
    case unknown(String)
    /// A defect of the ledger's own (an idempotency error, a refused key): the attempt
    /// stays pending for staff.
    case defect(String)
    /// 404 on a read: no such object.
    case notFound
  }

  /// Reads the answer to a charge (or to reading one PaymentIntent).
  public static func answer(status: Int, body: [UInt8]) -> Answer {
    let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
    switch status {
    case 200..<300:
      guard let object, let outcome = outcome(ofIntent: object) else {
        return .unknown("HTTP \(status) without a PaymentIntent Stripe's answers have")
      }
      return .outcome(outcome)
    case 429:
      return .rateLimited
    case 500...:
      return .unknown("HTTP \(status) from Stripe\(errorSummary(object))")
    default:
      break
    }
    let error = object?["error"] as? [String: Any]
    let type = error?["type"] as? String
    let code = error?["code"] as? String
    let declineCode = error?["decline_code"] as? String
    switch (status, type) {
    case (402, _), (_, "card_error"?):
      // The card was refused: the issuer's decline code when there is one (Stripe's
      // `decline_code`), else the error's own code (`expired_card`, `incorrect_cvc`,
      // `authentication_required`…).
      return .outcome(.declined(code: declineCode ?? code ?? "card_declined"))
    case (_, "idempotency_error"?):
      return .defect("Stripe refused the idempotency key (idempotency_error)\(errorSummary(object))")
    case (401, _), (403, _):
      // Stripe's message quotes part of the key: not repeated.
      return .defect("Stripe refused the API key or its permissions (HTTP \(status))")
    case (404, _):
      return .notFound
    case (409, _):
      // Another request with the same key is still being processed.
      return .unknown("HTTP 409 from Stripe\(errorSummary(object))")
    default:
      // Stripe refused the request as such (400: an unknown payment method, a parameter):
      // nothing was charged; the attempt ends as a processing error.
      return .outcome(.failed(code: code ?? "invalid_request"))
    }
  }

  /// The outcome a PaymentIntent's status says.
  public static func outcome(ofIntent intent: [String: Any]) -> ChargeOutcome? {
    guard let id = intent["id"] as? String, let status = intent["status"] as? String else { return nil }
    switch status {
    case "succeeded":
      // Current versions give `latest_charge` as an id; an expanded one is an object.
      let charge =
        (intent["latest_charge"] as? String) ?? ((intent["latest_charge"] as? [String: Any])?["id"] as? String)
      return .succeeded(reference: charge.map { "\(id)/\($0)" } ?? id)
    case "processing", "requires_capture":
      return .inProgress(reference: id)
    case "requires_action", "requires_confirmation":
      // Off-session, the customer is not there to authenticate: the hard decline.
      return .declined(code: "authentication_required")
    case "requires_payment_method":
      guard let error = intent["last_payment_error"] as? [String: Any] else {
        return .failed(code: "requires_payment_method")
      }
      return .declined(
        code: (error["decline_code"] as? String) ?? (error["code"] as? String) ?? "card_declined")
    case "canceled":
      return .failed(code: "canceled")
    default:
      return nil
    }
  }

  /// The request a PaymentIntent was made for, read back from its metadata (a ledger that
  /// lost its history takes these in at start-up).
  public static func charge(ofIntent intent: [String: Any]) -> ProcessorCharge? {
    guard let metadata = intent["metadata"] as? [String: Any],
      let key = metadata["idempotency_key"] as? String,
      let ledgerID = metadata["ledger_id"] as? String,
      let attempt = (metadata["ledger_attempt"] as? String).flatMap({ Int64($0) }),
      let account = (metadata["ledger_account"] as? String).flatMap({ Int64($0) }),
      let card = (metadata["ledger_card"] as? String).flatMap({ Int64($0) }),
      let amount = intent["amount"] as? Int,
      let currency = try? Currency(code: ((intent["currency"] as? String) ?? "").uppercased()),
      let outcome = outcome(ofIntent: intent)
    else { return nil }
    let invoices = ((metadata["ledger_invoices"] as? String) ?? "").split(separator: ",").compactMap { Int64($0) }
    return ProcessorCharge(
      key: key, amount: Money(minorUnits: Int64(amount), currency: currency),
      metadata: ChargeMetadata(
        ledgerID: ledgerID, attemptID: attempt, accountID: account, cardID: card, invoiceIDs: invoices),
      outcome: outcome)
  }

  /// The idempotency key a PaymentIntent was made under, from its metadata.
  public static func key(ofIntent intent: [String: Any]) -> String? {
    (intent["metadata"] as? [String: Any])?["idempotency_key"] as? String
  }

  /// ": <type>/<code>: <message>" of an error body, for logs; never the request.
  static func errorSummary(_ object: [String: Any]?) -> String {
    guard let error = object?["error"] as? [String: Any] else { return "" }
    let parts = [error["type"] as? String, error["code"] as? String].compactMap { $0 }
    let message = (error["message"] as? String).map { String($0.prefix(200)) }
    return ": " + ([parts.joined(separator: "/")] + [message].compactMap { $0 }).joined(separator: ": ")
  }
}
