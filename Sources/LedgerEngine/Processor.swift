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
}

extension PaymentProcessor {
  public func lookup(keys: [String]) async throws -> [ChargeOutcome?] {
    var answers: [ChargeOutcome?] = []
    for key in keys { answers.append(try await lookup(key: key)) }
    return answers
  }
}
