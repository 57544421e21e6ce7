/// A customer account's standing.
public enum AccountStatus: String, CaseIterable, Sendable, Codable {
  case active
  /// A card invoice failed and its grace period runs.
  case pastDue = "past_due"
  /// Grace ran out; the account was moved to the free plan.
  case downgraded
  case closed
}

/// The language of a customer's emails.
public enum CustomerLocale: String, CaseIterable, Sendable, Codable {
  case fr, en

  public init(parsing raw: String, field: String = "--locale") throws {
    guard let locale = CustomerLocale(rawValue: raw) else {
      throw InputError(field: field, rule: "'\(raw)' must be one of fr, en")
    }
    self = locale
  }
}

/// How often a plan is billed.
public enum BillingPeriod: String, CaseIterable, Sendable, Codable {
  case month, year

  public init(parsing raw: String, field: String = "--period") throws {
    guard let period = BillingPeriod(rawValue: raw) else {
      throw InputError(field: field, rule: "'\(raw)' must be one of month, year")
    }
    self = period
  }
}

public enum InvoiceStatus: String, CaseIterable, Sendable, Codable {
  case open, paid, void
  /// Written off after the grace period; it can still be paid later.
  case uncollectible

  /// Whether money is still owed on an invoice in this state (the rest of its total is
  /// due), as the audit view `v_invoice_balances` says too.
  public var owesRest: Bool { self == .open || self == .uncollectible }
}

/// How an invoice is collected.
public enum CollectionMethod: String, CaseIterable, Sendable, Codable {
  /// Charged automatically to the account's cards.
  case card
  /// Paid by the customer by bank transfer quoting the invoice's payment reference.
  case transfer

  public init(parsing raw: String, field: String = "--method") throws {
    guard let method = CollectionMethod(rawValue: raw) else {
      throw InputError(field: field, rule: "'\(raw)' must be one of card, transfer")
    }
    self = method
  }
}

/// What kind of charge an invoice line is.
public enum LineKind: String, CaseIterable, Sendable, Codable {
  /// The plan's own price.
  case plan
  /// An add-on: removed when the account is downgraded.
  case addon
  case other
}

/// Who caused an event.
public enum Actor: String, CaseIterable, Sendable, Codable {
  case scheduler, customer, staff, reconciliation, system
}

/// The outcome of a charge attempt.
public enum AttemptStatus: String, CaseIterable, Sendable, Codable {
  /// Written and committed before the processor is called; resolved at start-up if a crash
  /// interrupted it.
  case pending, succeeded, declined, error
}

/// How a failed charge may be retried.
public enum RetryClass: String, Sendable, Codable {
  /// Retry on the dunning schedule.
  case soft
  /// Retry on the schedule, after a pause (the issuer flagged fraud).
  case softAfterPause = "soft_after_pause"
  /// Never retry on the same card; wait for a new or updated card.
  case hard
  /// Retry within hours: the failure was the processor's, not the card's.
  case transient
}

/// The normalized reason for a declined charge, from the processor's raw code.
public enum DeclineReason: String, CaseIterable, Sendable, Codable {
  case insufficientFunds = "insufficient_funds"
  case bankBlock = "bank_block"
  case suspectedFraud = "suspected_fraud"
  case expiredCard = "expired_card"
  case incorrectDetails = "incorrect_details"
  case lostOrStolen = "lost_or_stolen"
  case authenticationRequired = "authentication_required"
  case processingError = "processing_error"

  /// Maps a processor's raw decline code (every code of Stripe's published list of card
  /// decline codes, and the simulated processor's); unknown codes count as a bank block
  /// (soft), the cautious reading of "the issuer said no without saying why": retried on
  /// schedule, the customer asked to check with their bank.
  public init(rawCode: String) {
    switch rawCode.lowercased() {
    case "insufficient_funds", "withdrawal_count_limit_exceeded": self = .insufficientFunds
    case "do_not_honor", "transaction_not_allowed", "restricted_card", "generic_decline", "call_issuer",
      "card_not_supported", "currency_not_supported", "not_permitted", "service_not_allowed", "no_action_taken",
      "approve_with_id", "invalid_amount", "security_violation":
      self = .bankBlock
    case "card_velocity_exceeded", "fraud_alert", "issuer_fraud_alert": self = .suspectedFraud
    // The issuer replaced the card: the customer updates it, as for an expired one.
    case "expired_card", "new_account_information_available": self = .expiredCard
    case "incorrect_cvc", "incorrect_zip", "incorrect_number", "invalid_cvc", "invalid_number",
      "invalid_expiry_month", "invalid_expiry_year", "invalid_account", "incorrect_pin", "invalid_pin",
      "pin_try_exceeded", "offline_pin_required", "online_or_offline_pin_required", "testmode_decline",
      "live_mode_test_card":
      self = .incorrectDetails
    // Never retried on that card, and told in generic words (Stripe: do not tell the
    // customer more): a card reported lost or stolen, a suspected fraud the processor
    // blocked, an issuer's "do not try again", a payment the cardholder had stopped.
    case "lost_card", "stolen_card", "pickup_card", "fraudulent", "merchant_blacklist", "do_not_try_again",
      "revocation_of_all_authorizations", "revocation_of_authorization", "stop_payment_order":
      self = .lostOrStolen
    case "authentication_required": self = .authenticationRequired
    case "processing_error", "try_again_later", "timeout", "issuer_not_available", "reenter_transaction",
      "duplicate_transaction":
      self = .processingError
    default: self = .bankBlock
    }
  }

  public var retryClass: RetryClass {
    switch self {
    case .insufficientFunds, .bankBlock: return .soft
    case .suspectedFraud: return .softAfterPause
    case .expiredCard, .incorrectDetails, .lostOrStolen, .authenticationRequired: return .hard
    case .processingError: return .transient
    }
  }
}
