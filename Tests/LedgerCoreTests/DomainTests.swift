import Testing

@testable import LedgerCore

@Suite("DeclineReason")
struct DeclineReasonTests {
  /// Every raw code listed in `DeclineReason.init(rawCode:)`.
  static let mapping: [(String, DeclineReason)] = [
    ("insufficient_funds", .insufficientFunds),
    ("do_not_honor", .bankBlock),
    ("transaction_not_allowed", .bankBlock),
    ("restricted_card", .bankBlock),
    ("generic_decline", .bankBlock),
    ("card_velocity_exceeded", .suspectedFraud),
    ("fraud_alert", .suspectedFraud),
    ("issuer_fraud_alert", .suspectedFraud),
    ("expired_card", .expiredCard),
    ("incorrect_cvc", .incorrectDetails),
    ("incorrect_zip", .incorrectDetails),
    ("incorrect_number", .incorrectDetails),
    ("invalid_cvc", .incorrectDetails),
    ("invalid_number", .incorrectDetails),
    ("lost_card", .lostOrStolen),
    ("stolen_card", .lostOrStolen),
    ("pickup_card", .lostOrStolen),
    ("fraudulent", .lostOrStolen),
    ("authentication_required", .authenticationRequired),
    ("processing_error", .processingError),
    ("try_again_later", .processingError),
    ("timeout", .processingError),
    ("issuer_not_available", .processingError),
    // The rest of Stripe's published card decline codes.
    ("withdrawal_count_limit_exceeded", .insufficientFunds),
    ("call_issuer", .bankBlock), ("card_not_supported", .bankBlock), ("currency_not_supported", .bankBlock),
    ("not_permitted", .bankBlock), ("service_not_allowed", .bankBlock), ("no_action_taken", .bankBlock),
    ("approve_with_id", .bankBlock), ("invalid_amount", .bankBlock), ("security_violation", .bankBlock),
    ("new_account_information_available", .expiredCard),
    ("invalid_expiry_month", .incorrectDetails), ("invalid_expiry_year", .incorrectDetails),
    ("invalid_account", .incorrectDetails), ("incorrect_pin", .incorrectDetails), ("invalid_pin", .incorrectDetails),
    ("pin_try_exceeded", .incorrectDetails), ("offline_pin_required", .incorrectDetails),
    ("online_or_offline_pin_required", .incorrectDetails), ("testmode_decline", .incorrectDetails),
    ("live_mode_test_card", .incorrectDetails),
    ("merchant_blacklist", .lostOrStolen), ("do_not_try_again", .lostOrStolen),
    ("revocation_of_all_authorizations", .lostOrStolen), ("revocation_of_authorization", .lostOrStolen),
    ("stop_payment_order", .lostOrStolen),
    ("reenter_transaction", .processingError), ("duplicate_transaction", .processingError),
  ]

  @Test("every raw code maps to its reason", arguments: DeclineReasonTests.mapping)
  func mapsRawCode(raw: String, reason: DeclineReason) {
    #expect(DeclineReason(rawCode: raw) == reason)
  }

  @Test("raw codes are read case-insensitively", arguments: DeclineReasonTests.mapping)
  func caseInsensitive(raw: String, reason: DeclineReason) {
    #expect(DeclineReason(rawCode: raw.uppercased()) == reason)
    #expect(DeclineReason(rawCode: raw.prefix(1).uppercased() + raw.dropFirst()) == reason)
  }

  @Test("every reason is reachable from some raw code")
  func everyReasonReachable() {
    let reached = Set(Self.mapping.map(\.1))
    #expect(reached == Set(DeclineReason.allCases))
  }

  @Test(
    "unknown codes count as a soft bank block",
    arguments: [
      "", "unknown", "card_declined", "insufficient funds", " insufficient_funds", "insufficient_funds ", "51", "fraud",
    ])
  func unknown(raw: String) {
    let reason = DeclineReason(rawCode: raw)
    #expect(reason == .bankBlock)
    #expect(reason.retryClass == .soft)
  }

  @Test(
    "retry classes",
    arguments: [
      (DeclineReason.insufficientFunds, RetryClass.soft), (.bankBlock, .soft), (.suspectedFraud, .softAfterPause),
      (.expiredCard, .hard), (.incorrectDetails, .hard), (.lostOrStolen, .hard), (.authenticationRequired, .hard),
      (.processingError, .transient),
    ])
  func retryClass(reason: DeclineReason, retry: RetryClass) {
    #expect(reason.retryClass == retry)
  }

  @Test("raw codes map to the expected retry class end to end")
  func rawToRetry() {
    #expect(DeclineReason(rawCode: "stolen_card").retryClass == .hard)
    #expect(DeclineReason(rawCode: "fraud_alert").retryClass == .softAfterPause)
    #expect(DeclineReason(rawCode: "fraudulent").retryClass == .hard)
    #expect(DeclineReason(rawCode: "timeout").retryClass == .transient)
    #expect(DeclineReason(rawCode: "do_not_honor").retryClass == .soft)
  }

  @Test("stored raw values")
  func rawValues() {
    #expect(DeclineReason.allCases.count == 8)
    #expect(DeclineReason.insufficientFunds.rawValue == "insufficient_funds")
    #expect(DeclineReason.bankBlock.rawValue == "bank_block")
    #expect(DeclineReason.suspectedFraud.rawValue == "suspected_fraud")
    #expect(DeclineReason.expiredCard.rawValue == "expired_card")
    #expect(DeclineReason.incorrectDetails.rawValue == "incorrect_details")
    #expect(DeclineReason.lostOrStolen.rawValue == "lost_or_stolen")
    #expect(DeclineReason.authenticationRequired.rawValue == "authentication_required")
    #expect(DeclineReason.processingError.rawValue == "processing_error")
    #expect(RetryClass.softAfterPause.rawValue == "soft_after_pause")
  }
}

@Suite("Domain enums")
struct DomainEnumTests {
  @Test("locales parse exactly")
  func locales() throws {
    #expect(try CustomerLocale(parsing: "fr") == .fr)
    #expect(try CustomerLocale(parsing: "en") == .en)
    for bad in ["FR", "de", "", "fr "] {
      let error = try #require(refusal { try CustomerLocale(parsing: bad) })
      #expect(error.field == "--locale")
      #expect(error.rule.contains("fr, en"))
    }
  }

  @Test("billing periods parse exactly")
  func periods() throws {
    #expect(try BillingPeriod(parsing: "month") == .month)
    #expect(try BillingPeriod(parsing: "year") == .year)
    for bad in ["Month", "monthly", "week", ""] {
      let error = try #require(refusal { try BillingPeriod(parsing: bad, field: "period") })
      #expect(error.field == "period")
      #expect(error.rule.contains("month, year"))
    }
  }

  @Test("collection methods parse exactly")
  func methods() throws {
    #expect(try CollectionMethod(parsing: "card") == .card)
    #expect(try CollectionMethod(parsing: "transfer") == .transfer)
    for bad in ["Card", "sepa", "", "bank"] {
      let error = try #require(refusal { try CollectionMethod(parsing: bad) })
      #expect(error.field == "--method")
      #expect(error.rule.contains("card, transfer"))
    }
  }

  @Test("stored raw values")
  func rawValues() {
    #expect(AccountStatus.pastDue.rawValue == "past_due")
    #expect(AccountStatus.allCases.map(\.rawValue) == ["active", "past_due", "downgraded", "closed"])
    #expect(InvoiceStatus.allCases.map(\.rawValue) == ["open", "paid", "void", "uncollectible"])
    #expect(LineKind.allCases.map(\.rawValue) == ["plan", "addon", "other"])
    #expect(AttemptStatus.allCases.map(\.rawValue) == ["pending", "succeeded", "declined", "error"])
    #expect(Actor.allCases.map(\.rawValue) == ["scheduler", "customer", "staff", "reconciliation", "system"])
  }
}
