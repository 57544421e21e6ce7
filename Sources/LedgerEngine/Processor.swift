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
  /// Makes each charge of `requests`, with at most `maxInFlight` of them at the processor at
  /// once; each result in the order asked (a failure: no answer came back). The default
  /// calls `charge(key:token:amount:)` for each, starting the next as one ends.
  func charge(_ requests: [ChargeRequest], maxInFlight: Int) async -> [Result<ChargeOutcome, any Error>]
  /// What happened to the charge made with `key`, or nil if the processor never got it.
  func lookup(key: String) async throws -> ChargeOutcome?
  /// The same for many keys at once (recovery after a restart asks about every pending
  /// attempt); the default asks one key at a time.
  func lookup(keys: [String]) async throws -> [ChargeOutcome?]
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

extension PaymentProcessor {
  public func charge(_ requests: [ChargeRequest], maxInFlight: Int) async -> [Result<ChargeOutcome, any Error>] {
    await eachInFlight(requests, maxInFlight: maxInFlight) { request in
      try await self.charge(key: request.key, token: request.token, amount: request.amount)
    }
  }

  public func lookup(keys: [String]) async throws -> [ChargeOutcome?] {
    var answers: [ChargeOutcome?] = []
    for key in keys { answers.append(try await lookup(key: key)) }
    return answers
  }
}

/// Runs `call` for each request, at most `maxInFlight` at once (the next starts as one
/// ends); the results in the order of `requests`.
func eachInFlight(
  _ requests: [ChargeRequest], maxInFlight: Int, _ call: @escaping @Sendable (ChargeRequest) async throws -> ChargeOutcome
) async -> [Result<ChargeOutcome, any Error>] {
  var results = [Result<ChargeOutcome, any Error>?](repeating: nil, count: requests.count)
  await withTaskGroup(of: (Int, Result<ChargeOutcome, any Error>).self) { group in
    var next = 0
    func launch(_ i: Int) {
      let request = requests[i]
      group.addTask {
        do { return (i, .success(try await call(request))) } catch { return (i, .failure(error)) }
      }
    }
    while next < min(max(maxInFlight, 1), requests.count) {
      launch(next)
      next += 1
    }
    while let (i, result) = await group.next() {
      results[i] = result
      if next < requests.count {
        launch(next)
        next += 1
      }
    }
  }
  return results.map { $0 ?? .failure(ProcessorUnreachable("no answer")) }
}
