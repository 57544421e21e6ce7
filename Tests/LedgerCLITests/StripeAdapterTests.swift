import Foundation
import LedgerCore
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The Stripe adapter driven through the built binary against the tests' own Stripe-shaped
/// server (`Tests/Tools/stripetool.py`): every answer Stripe gives, faults included.
@Suite struct StripeAdapterTests {
  /// Every decline code of Stripe's published list, with the reason and retry class the
  /// ledger must give it (SPEC's table), written out here rather than read from the code.
  static let declines: [(code: String, reason: String, retry: String)] = [
    ("insufficient_funds", "insufficient_funds", "soft"),
    ("withdrawal_count_limit_exceeded", "insufficient_funds", "soft"),
    ("do_not_honor", "bank_block", "soft"), ("transaction_not_allowed", "bank_block", "soft"),
    ("restricted_card", "bank_block", "soft"), ("generic_decline", "bank_block", "soft"),
    ("call_issuer", "bank_block", "soft"), ("card_not_supported", "bank_block", "soft"),
    ("currency_not_supported", "bank_block", "soft"), ("not_permitted", "bank_block", "soft"),
    ("service_not_allowed", "bank_block", "soft"), ("no_action_taken", "bank_block", "soft"),
    ("approve_with_id", "bank_block", "soft"), ("invalid_amount", "bank_block", "soft"),
    ("security_violation", "bank_block", "soft"),
    ("card_velocity_exceeded", "suspected_fraud", "soft_after_pause"),
    ("fraud_alert", "suspected_fraud", "soft_after_pause"),
    ("issuer_fraud_alert", "suspected_fraud", "soft_after_pause"),
    ("expired_card", "expired_card", "hard"), ("new_account_information_available", "expired_card", "hard"),
    ("incorrect_cvc", "incorrect_details", "hard"), ("incorrect_zip", "incorrect_details", "hard"),
    ("incorrect_number", "incorrect_details", "hard"), ("invalid_cvc", "incorrect_details", "hard"),
    ("invalid_number", "incorrect_details", "hard"), ("invalid_expiry_month", "incorrect_details", "hard"),
    ("invalid_expiry_year", "incorrect_details", "hard"), ("invalid_account", "incorrect_details", "hard"),
    ("incorrect_pin", "incorrect_details", "hard"), ("invalid_pin", "incorrect_details", "hard"),
    ("pin_try_exceeded", "incorrect_details", "hard"), ("offline_pin_required", "incorrect_details", "hard"),
    ("online_or_offline_pin_required", "incorrect_details", "hard"),
    ("testmode_decline", "incorrect_details", "hard"), ("live_mode_test_card", "incorrect_details", "hard"),
    ("lost_card", "lost_or_stolen", "hard"), ("stolen_card", "lost_or_stolen", "hard"),
    ("pickup_card", "lost_or_stolen", "hard"), ("fraudulent", "lost_or_stolen", "hard"),
    ("merchant_blacklist", "lost_or_stolen", "hard"), ("do_not_try_again", "lost_or_stolen", "hard"),
    ("revocation_of_all_authorizations", "lost_or_stolen", "hard"),
    ("revocation_of_authorization", "lost_or_stolen", "hard"), ("stop_payment_order", "lost_or_stolen", "hard"),
    ("authentication_required", "authentication_required", "hard"),
    ("processing_error", "processing_error", "transient"), ("try_again_later", "processing_error", "transient"),
    ("issuer_not_available", "processing_error", "transient"),
    ("reenter_transaction", "processing_error", "transient"),
    ("duplicate_transaction", "processing_error", "transient"),
    // A code Stripe may add one day: the documented safe default.
    ("some_future_code", "bank_block", "soft"),
  ]

  /// One charge per decline code (and per other answer Stripe gives a charge): each is
  /// recorded with Stripe's raw code, the ledger's reason and its retry class; a success
  /// keeps the PaymentIntent and charge ids; every request carried the attempt's key as
  /// `Idempotency-Key` and named the attempt in its metadata.
  @Test func everyAnswerToAChargeIsRecordedWithItsReason() throws {
    let w = try Workspace()
    let server = try StripeServer(w, key: Workspace.stripeTestKey())
    try w.useStripe(server)
    var expected: [String: (code: String, reason: String, retry: String)] = [:]
    var names: [String: String] = [:]
    for (n, decline) in Self.declines.enumerated() {
      let id = String(try w.stripeAccount("D\(n)", token: "pm_decline_\(decline.code)"))
      expected[id] = decline
      names[id] = "D\(n)"
    }
    // Codes Stripe gives without a decline_code, and the other statuses of a charge.
    let others: [(token: String, code: String, reason: String, retry: String)] = [
      ("pm_code_expired_card", "expired_card", "expired_card", "hard"),
      ("pm_code_incorrect_cvc", "incorrect_cvc", "incorrect_details", "hard"),
      ("pm_auth_required", "authentication_required", "authentication_required", "hard"),
      ("pm_requires_action", "authentication_required", "authentication_required", "hard"),
      ("pm_nosuchmethod", "resource_missing", "processing_error", "transient"),
    ]
    for (n, other) in others.enumerated() {
      let id = String(try w.stripeAccount("O\(n)", token: other.token))
      expected[id] = (other.code, other.reason, other.retry)
      names[id] = "O\(n)"
    }
    let paying = String(try w.stripeAccount("Paying", token: "pm_card_visa"))
    names[paying] = "Paying"
    let run = try w.runDue()
    #expect(run.status == 0, "\(run.stderr)")

    let rows = try w.sqlite(
      "SELECT account_id, status, raw_code, reason, idempotency_key, id, coalesce(processor_ref, '') FROM charge_attempts ORDER BY id"
    ).stdout.split(separator: "\n").map { $0.split(separator: "|", omittingEmptySubsequences: false).map(String.init) }
    #expect(rows.count == expected.count + 1)
    let charges = try server.charges()
    for row in rows {
      if row[0] == paying {
        #expect(row[1] == "succeeded")
        #expect(row[6].hasPrefix("pi_") && row[6].contains("/ch_"), "the reference names the PaymentIntent and charge")
      } else {
        let want = try #require(expected[row[0]])
        #expect(row[1] == (want.code == "resource_missing" ? "error" : "declined"), "\(want.code)")
        #expect(row[2] == want.code, "account \(row[0])")
        #expect(row[3] == want.reason, "\(want.code)")
        #expect(DeclineReason(rawValue: row[3])?.retryClass.rawValue == want.retry, "\(want.code)")
      }
      // The request carried the attempt's key, its customer, and named the attempt.
      let sent = charges.filter { $0["idempotency_key"] as? String == row[4] }
      #expect(sent.count <= 1)
      for charge in sent {
        let metadata = charge["metadata"] as? [String: Any] ?? [:]
        #expect(metadata["ledger_attempt"] as? String == row[5])
        #expect(metadata["idempotency_key"] as? String == row[4])
        #expect(charge["customer"] as? String == "cus_" + (names[row[0]] ?? "?"))
      }
    }
    #expect(charges.filter { $0["status"] as? String == "succeeded" }.count == 1)
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// A charge whose answer did not come back (the connection lost after the charge, a 500
  /// before or after it, an answer slower than the timeout) stays pending, here while
  /// Stripe is briefly unavailable too; the next run sends the same request under the same
  /// key and records the one charge Stripe made. (A 500 before the charge leaves nothing
  /// kept under the key: the same run's look sends it again and it is made then.)
  @Test(arguments: [
    (#"{"lose_next": 1, "unavailable_replays_next": 1}"#, true),
    (#"{"fail_after_charge_next": 1, "unavailable_replays_next": 1}"#, true),
    (#"{"delay_next": 1, "delay_ms": 4000, "unavailable_replays_next": 1}"#, true),
    (#"{"fail_next": 1}"#, false),
  ])
  func anUnansweredChargeIsSentAgainUnderItsKey(fault: String, pendingAfterFirstRun: Bool) throws {
    let w = try Workspace()
    let server = try StripeServer(w, key: Workspace.stripeTestKey())
    try w.useStripe(server)
    try w.stripeAccount("Lost", token: "pm_ok_lost")
    try server.control(fault)
    let first = try w.runDue()
    #expect(first.status == 0, "\(first.stderr)")
    #expect(first.stderr.contains("has no answer"), "\(first.stderr)")
    #expect(try w.value("SELECT status FROM charge_attempts") == (pendingAfterFirstRun ? "pending" : "succeeded"))
    #expect(try server.charges().count == 1)
    let key = try w.value("SELECT idempotency_key FROM charge_attempts")

    let second = try w.runDue()
    #expect(second.status == 0, "\(second.stderr)")
    #expect(try w.value("SELECT count(*) || ' ' || min(status) FROM charge_attempts") == "1 succeeded")
    #expect(try w.value("SELECT count(*) FROM payments") == "1")
    let charges = try server.charges()
    #expect(charges.count == 1 && charges[0]["idempotency_key"] as? String == key)
    #expect(
      try w.value("SELECT processor_ref FROM charge_attempts")
        == "\(charges[0]["payment_intent"] ?? "")/\(charges[0]["id"] ?? "")")
    let log = try String(contentsOfFile: server.log, encoding: .utf8)
    #expect(log.split(separator: "\n").filter { $0.contains(key) }.count >= 2, "the key was sent again")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// The same key with another body (the card's PaymentMethod changed while the answer was
  /// lost) is refused by Stripe as an idempotency error: a defect, logged loudly, the
  /// attempt left pending and nothing charged again. Three days later, past Stripe's
  /// 24 hours, the customer's PaymentIntents are listed and the charge is found by the key
  /// in its metadata: recorded once, never made twice.
  @Test func anIdempotencyErrorIsADefectAndListingFindsTheChargeDaysLater() throws {
    let w = try Workspace()
    w.useRealTime()
    let server = try StripeServer(w, key: Workspace.stripeTestKey())
    try w.useStripe(server)
    let account = try w.stripeAccount("Changed", token: "pm_ok_changed")
    try server.control(#"{"lose_next": 1, "unavailable_replays_next": 1}"#)
    #expect(try w.runDue().status == 0)
    #expect(try w.value("SELECT status FROM charge_attempts") == "pending")
    try w.ok(["card", "update", String(account), "--token", "pm_ok_replaced"])

    let refused = try w.runDue()
    #expect(refused.status == 0, "\(refused.stderr)")
    #expect(refused.stderr.contains("critical") && refused.stderr.contains("idempotency_error"), "\(refused.stderr)")
    #expect(try w.value("SELECT status FROM charge_attempts") == "pending")
    #expect(try server.answered("400") >= 1)
    #expect(try server.charges().count == 1)

    w.useRealTime(plus: 3 * 86_400)
    let later = try w.runDue()
    #expect(later.status == 0, "\(later.stderr)")
    #expect(try w.value("SELECT count(*) || ' ' || min(status) FROM charge_attempts") == "1 succeeded")
    #expect(try w.value("SELECT status FROM invoices") == "paid")
    #expect(try server.charges().count == 1)
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// Stripe's 429 is neither a decline nor a lost answer: the call waits and goes again
  /// under the same key until the work is done, no attempt counted more than once. Kept
  /// under Stripe's rate, the adapter is never refused.
  @Test func tooManyRequestsAreWaitedOutAndTheConfiguredRateKeptTo() throws {
    let w = try Workspace()
    let server = try StripeServer(w, key: Workspace.stripeTestKey())
    try server.control(#"{"rate_limit_per_second": 3}"#)
    try w.useStripe(server, processor: #""max_requests_per_second": 50, "max_in_flight": 8"#)
    for n in 0..<12 { try w.stripeAccount("Busy\(n)", token: "pm_ok_busy\(n)") }
    let run = try w.runDue()
    #expect(run.status == 0, "\(run.stderr)")
    #expect(try server.answered("429") > 0, "the server's limit was passed")
    #expect(run.stderr.contains("429"))
    #expect(
      try w.value("SELECT count(*) || ' ' || min(status) || ' ' || max(status) FROM charge_attempts")
        == "12 succeeded succeeded")
    #expect(Set(try server.charges().compactMap { $0["idempotency_key"] as? String }).count == 12)

    // Under the limit: 2 calls a second against Stripe's 5 (room for a busy machine's
    // stalls), never a 429; the busy run's last calls are let out of Stripe's window first.
    try server.control(#"{"rate_limit_per_second": 5}"#)
    usleep(1_200_000)
    let refusedBefore = try server.answered("429")
    try w.useStripe(server, processor: #""max_requests_per_second": 2, "max_in_flight": 8"#)
    for n in 0..<6 { try w.stripeAccount("Calm\(n)", token: "pm_ok_calm\(n)") }
    let start = Date()
    let calm = try w.runDue()
    #expect(calm.status == 0, "\(calm.stderr)")
    #expect(try server.answered("429") == refusedBefore)
    #expect(Date().timeIntervalSince(start) >= 2.0, "six calls at 2 a second take 2.5 s at least")
    #expect(try w.value("SELECT count(*) FROM charge_attempts WHERE status = 'succeeded'") == "18")
    #expect(try w.ledgerd(["check"]).status == 0)
  }
}
