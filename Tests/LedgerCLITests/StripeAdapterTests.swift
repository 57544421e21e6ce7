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
}
