/// What a processor answered about a charge.
public enum ChargeOutcome: Sendable, Equatable {
  /// The money was taken; `reference` is the processor's id for the charge.
  case succeeded(reference: String)
  /// The issuer refused; `code` is the processor's raw decline code.
  case declined(code: String)
  /// The processor failed to process it (its fault, not the card's).
  case failed(code: String)
  /// The processor has the charge and has not finished it (Stripe: `processing`);
  /// `reference` is its id, kept on the attempt, which stays pending and is asked about
  /// again by that id.
  case inProgress(reference: String)
}

/// The answer did not come back: the charge may or may not have happened. The attempt
/// stays pending and is resolved later by asking about its idempotency key.
public struct ProcessorUnreachable: Error, CustomStringConvertible {
  public let reason: String
  public init(_ reason: String) { self.reason = reason }
  public var description: String { "processor unreachable: \(reason)" }
}

/// The processor refused a request as a defect of the ledger's own (Stripe: an
/// `idempotency_error`, a key it does not accept): not an answer about the card. The
/// attempt stays pending for staff, and the defect is logged loudly; `reason` never holds
/// a secret.
public struct ProcessorDefect: Error, CustomStringConvertible {
  public let reason: String
  public init(_ reason: String) { self.reason = reason }
  public var description: String { "processor defect: \(reason)" }
}

/// A card processor. Implementations must deduplicate on the idempotency key: charging
/// the same key twice returns the first outcome and takes the money once.
public protocol PaymentProcessor: Sendable {
  /// Charges the request's amount to the card behind its token, keeping its metadata with
  /// the charge.
  func charge(_ request: ChargeRequest) async throws -> ChargeOutcome
  /// What happened to a charge sent earlier whose answer the ledger does not have, or nil
  /// if the processor never got it. `now` is the ledger's time.
  func lookup(_ charge: ChargeLookup, now: Instant) async throws -> ChargeOutcome?
  /// The same for many charges at once (recovery after a restart asks about every pending
  /// attempt), each answer on its own: one the processor cannot give now (an error) leaves
  /// that attempt pending and the others are still recorded. The default asks one at a time.
  func lookup(_ charges: [ChargeLookup], now: Instant) async -> [Result<ChargeOutcome?, any Error>]
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
  /// The account's customer at the processor (Stripe: `cus_…`), when it has one.
  public let customer: String?

  public init(key: String, token: String, amount: Money, metadata: ChargeMetadata, customer: String? = nil) {
    self.key = key
    self.token = token
    self.amount = amount
    self.metadata = metadata
    self.customer = customer
  }
}

/// A charge sent earlier whose answer the ledger lacks: the request as it was sent (a
/// processor may send it again under its key), when the attempt began, and the
/// processor's id for it if one came back (Stripe: the PaymentIntent of a `processing`
/// answer).
public struct ChargeLookup: Sendable, Equatable {
  public let request: ChargeRequest
  public let sentAt: Instant
  public let reference: String?

  public init(request: ChargeRequest, sentAt: Instant, reference: String?) {
    self.request = request
    self.sentAt = sentAt
    self.reference = reference
  }

  public var key: String { request.key }
}

extension PaymentProcessor {
  public func lookup(_ charges: [ChargeLookup], now: Instant) async -> [Result<ChargeOutcome?, any Error>] {
    var answers: [Result<ChargeOutcome?, any Error>] = []
    for charge in charges {
      do {
        answers.append(.success(try await lookup(charge, now: now)))
      } catch {
        answers.append(.failure(error))
      }
    }
    return answers
  }
}
