/// What a processor answered about a charge.
public enum ChargeOutcome: Sendable, Equatable {
  /// The money was taken; `reference` is the processor's id for the charge.
  case succeeded(reference: String)
  /// The issuer refused; `code` is the processor's raw decline code.
  case declined(code: String)
  /// The processor failed to process it (its fault, not the card's).
  case failed(code: String)
}

/// The answer did not come back: the charge may or may not have happened. The attempt
/// stays pending and is resolved later by asking about its idempotency key.
public struct ProcessorUnreachable: Error, CustomStringConvertible {
  public let reason: String
  public init(_ reason: String) { self.reason = reason }
  public var description: String { "processor unreachable: \(reason)" }
}

/// A card processor. Implementations must deduplicate on the idempotency key: charging
/// the same key twice returns the first outcome and takes the money once.
public protocol PaymentProcessor: Sendable {
  /// Charges the request's amount to the card behind its token, keeping its metadata with
  /// the charge.
  func charge(_ request: ChargeRequest) async throws -> ChargeOutcome
  /// What happened to the charge made with `key`, or nil if the processor never got it.
  func lookup(key: String) async throws -> ChargeOutcome?
  /// The same for many keys at once (recovery after a restart asks about every pending
  /// attempt); the default asks one key at a time.
  func lookup(keys: [String]) async throws -> [ChargeOutcome?]
  /// The charges asked for by the ledger `ledgerID` (its metadata) since `since`, with
  /// their keys, metadata and outcomes: what a ledger that lost some of its history (a
  /// replaced or restored file) takes back in at start-up.
  func charges(ledgerID: String, since: Instant) async throws -> [ProcessorCharge]
}

/// What the ledger tells the processor about a charge, kept with it (Stripe: the
/// PaymentIntent's metadata): which ledger, account, card and invoices it is for.
public struct ChargeMetadata: Sendable, Equatable, Codable {
  public let ledgerID: String
  public let attemptID: Int64
  public let accountID: Int64
  public let cardID: Int64
  public let invoiceIDs: [Int64]

  public init(ledgerID: String, attemptID: Int64, accountID: Int64, cardID: Int64, invoiceIDs: [Int64]) {
    self.ledgerID = ledgerID
    self.attemptID = attemptID
    self.accountID = accountID
    self.cardID = cardID
    self.invoiceIDs = invoiceIDs
  }
}

/// A charge as the processor has it.
public struct ProcessorCharge: Sendable, Equatable {
  public let key: String
  public let amount: Money
  public let metadata: ChargeMetadata
  public let outcome: ChargeOutcome

  public init(key: String, amount: Money, metadata: ChargeMetadata, outcome: ChargeOutcome) {
    self.key = key
    self.amount = amount
    self.metadata = metadata
    self.outcome = outcome
  }
}

/// One charge to make.
public struct ChargeRequest: Sendable, Equatable {
  public let key: String
  public let token: String
  public let amount: Money
  public let metadata: ChargeMetadata

  public init(key: String, token: String, amount: Money, metadata: ChargeMetadata) {
    self.key = key
    self.token = token
    self.amount = amount
    self.metadata = metadata
  }
}

extension PaymentProcessor {
  public func lookup(keys: [String]) async throws -> [ChargeOutcome?] {
    var answers: [ChargeOutcome?] = []
    for key in keys { answers.append(try await lookup(key: key)) }
    return answers
  }
}
