import LedgerCore

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
  /// Charges `amount` to the card behind `token`.
  func charge(key: String, token: String, amount: Money) async throws -> ChargeOutcome
  /// What happened to the charge made with `key`, or nil if the processor never got it.
  func lookup(key: String) async throws -> ChargeOutcome?
  /// The same for many keys at once (recovery after a restart asks about every pending
  /// attempt); the default asks one key at a time.
  func lookup(keys: [String]) async throws -> [ChargeOutcome?]
  /// Makes, without a call of their own, the charges of `requests` that this processor
  /// answers without waiting, at most `maxInFlight` of them at the processor at once; what
  /// came of each, in the order asked, and nil for a request that needs a call of its own
  /// (`charge(key:token:amount:)`). The default makes none this way.
  func chargeAtOnce(_ requests: [ChargeRequest], maxInFlight: Int) async -> [ImmediateAnswer?]
}

/// One charge to make.
public struct ChargeRequest: Sendable, Equatable {
  public let key: String
  public let token: String
  public let amount: Money

  public init(key: String, token: String, amount: Money) {
    self.key = key
    self.token = token
    self.amount = amount
  }
}

/// What came of a charge made by `chargeAtOnce`.
public enum ImmediateAnswer: Sendable, Equatable {
  case outcome(ChargeOutcome)
  /// No answer came back (the charge may or may not have happened), and why.
  case noAnswer(String)
}

extension PaymentProcessor {
  public func chargeAtOnce(_ requests: [ChargeRequest], maxInFlight: Int) async -> [ImmediateAnswer?] {
    Array(repeating: nil, count: requests.count)
  }

  public func lookup(keys: [String]) async throws -> [ChargeOutcome?] {
    var answers: [ChargeOutcome?] = []
    for key in keys { answers.append(try await lookup(key: key)) }
    return answers
  }
}
