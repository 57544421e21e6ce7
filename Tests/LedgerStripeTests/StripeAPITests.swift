import Foundation
import LedgerCore
import Testing

@testable import LedgerStripe

/// What the adapter sends and how it reads each answer, without a network.
@Suite struct StripeAPITests {
  let request = ChargeRequest(
    key: "ldg_key_1", token: "pm_card_visa", amount: Money(minorUnits: 1900, currency: .eur),
    metadata: ChargeMetadata(ledgerID: "abc", attemptID: 7, accountID: 3, cardID: 4, invoiceIDs: [10, 11]),
    customer: "cus_A1")

  /// The body is the same bytes each time (a replay must be the same request), amounts in
  /// minor units, the currency in lower case, every value escaped.
  @Test func theChargeBodyIsStableAndEscaped() {
    let body = StripeAPI.chargeBody(request)
    #expect(body == StripeAPI.chargeBody(request))
    #expect(
      body
        == "amount=1900&currency=eur&customer=cus_A1&payment_method=pm_card_visa&payment_method_types%5B%5D=card"
        + "&off_session=true&confirm=true&metadata%5Bidempotency_key%5D=ldg_key_1&metadata%5Bledger_id%5D=abc"
        + "&metadata%5Bledger_attempt%5D=7&metadata%5Bledger_account%5D=3&metadata%5Bledger_card%5D=4"
        + "&metadata%5Bledger_invoices%5D=10%2C11")
    #expect(StripeAPI.escape("a b&c=d/é") == "a%20b%26c%3Dd%2F%C3%A9")
  }

  static func answer(_ status: Int, _ json: String) -> StripeAPI.Answer {
    StripeAPI.answer(status: status, body: Array(json.utf8))
  }

  @Test(arguments: [
    (200, #"{"id": "pi_1", "status": "succeeded", "latest_charge": "ch_1"}"#, "succeeded(reference: \"pi_1/ch_1\")"),
    (
      200, #"{"id": "pi_1", "status": "succeeded", "latest_charge": {"id": "ch_2", "object": "charge"}}"#,
      "succeeded(reference: \"pi_1/ch_2\")"
    ),
    (200, #"{"id": "pi_1", "status": "processing"}"#, "inProgress(reference: \"pi_1\")"),
    (200, #"{"id": "pi_1", "status": "requires_action"}"#, "declined(code: \"authentication_required\")"),
    (
      200,
      #"{"id": "pi_1", "status": "requires_payment_method", "last_payment_error": {"code": "card_declined", "decline_code": "lost_card"}}"#,
      "declined(code: \"lost_card\")"
    ),
    (200, #"{"id": "pi_1", "status": "canceled"}"#, "failed(code: \"canceled\")"),
    (
      402, #"{"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}}"#,
      "declined(code: \"insufficient_funds\")"
    ),
    (402, #"{"error": {"type": "card_error", "code": "expired_card"}}"#, "declined(code: \"expired_card\")"),
    (
      400, #"{"error": {"type": "invalid_request_error", "code": "resource_missing"}}"#,
      "failed(code: \"resource_missing\")"
    ),
  ])
  func eachAnswerHasItsOutcome(status: Int, json: String, outcome: String) {
    guard case .outcome(let got) = Self.answer(status, json) else {
      Issue.record("no outcome for \(status) \(json)")
      return
    }
    #expect(String(describing: got) == outcome)
  }

  /// What is not an outcome: a 429 is waited out, a 5xx or 409 left for lookup, an
  /// idempotency error or a refused key a defect (never quoting Stripe's message about
  /// the key), a 404 on a read "no such object".
  @Test func answersThatAreNotOutcomes() {
    #expect(Self.answer(429, #"{"error": {"type": "invalid_request_error", "code": "rate_limit"}}"#) == .rateLimited)
    guard case .unknown = Self.answer(500, #"{"error": {"type": "api_error"}}"#) else {
      Issue.record("500")
      return
    }
    guard case .unknown = Self.answer(409, "{}") else {
      Issue.record("409")
      return
    }
    guard case .unknown = Self.answer(200, "not json") else {
      Issue.record("200 without a PaymentIntent")
      return
    }
    guard case .defect(let why) = Self.answer(400, #"{"error": {"type": "idempotency_error", "message": "Keys…"}}"#)
    else {
      Issue.record("idempotency_error")
      return
    }
    #expect(why.contains("idempotency_error"))
    guard
      case .defect(let refused) = Self.answer(
        401, #"{"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****abcd"}}"#)
    else {
      Issue.record("401")
      return
    }
    #expect(!refused.contains("sk_test"))
    #expect(Self.answer(404, #"{"error": {"type": "invalid_request_error", "code": "resource_missing"}}"#) == .notFound)
  }

  /// A key prints as hidden, whatever prints it.
  @Test func theKeyNeverPrints() throws {
    let key = try StripeSecretKey(reading: "sk_test_abcdefgh12345678\n", source: "file")
    for text in [String(describing: key), String(reflecting: key), "\(key)", "\([key])"] {
      #expect(!text.contains("abcdefgh"), "\(text)")
    }
    #expect(throws: InputError.self) { try StripeSecretKey(reading: "pk_live_abc12345", source: "file") }
    #expect(throws: InputError.self) { try StripeSecretKey(reading: "sk_test_a b c d e", source: "file") }
  }

  /// A PaymentIntent's metadata gives back the ledger's charge (a replaced file takes it in).
  @Test func aPaymentIntentGivesBackTheLedgersCharge() throws {
    let body = StripeAPI.chargeBody(request)
    var metadata: [String: String] = [:]
    for pair in body.split(separator: "&") {
      let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? "" }
      if parts[0].hasPrefix("metadata[") { metadata[String(parts[0].dropFirst(9).dropLast())] = parts[1] }
    }
    let intent: [String: Any] = [
      "id": "pi_9", "status": "succeeded", "latest_charge": "ch_9", "amount": 1900, "currency": "eur",
      "metadata": metadata,
    ]
    let charge = try #require(StripeAPI.charge(ofIntent: intent))
    #expect(charge.key == "ldg_key_1")
    #expect(charge.metadata == request.metadata)
    #expect(charge.amount == request.amount)
    #expect(charge.outcome == .succeeded(reference: "pi_9/ch_9"))
  }
}
