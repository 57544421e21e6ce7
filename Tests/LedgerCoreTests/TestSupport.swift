import Testing

@testable import LedgerCore

/// Runs `body`, expecting it to throw an `InputError`; records an issue and returns nil
/// when it returns normally or throws anything else.
func refusal<R>(
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> R
) -> InputError? {
  do {
    let value = try body()
    Issue.record("expected an InputError, got \(value)", sourceLocation: sourceLocation)
    return nil
  } catch let error as InputError {
    return error
  } catch {
    Issue.record("expected an InputError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
    return nil
  }
}

extension Currency {
  static let jpy = try! Currency(code: "JPY")
  static let kwd = try! Currency(code: "KWD")
  static let usd = try! Currency(code: "USD")
}

func eur(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .eur) }
func usd(_ minor: Int64) -> Money { Money(minorUnits: minor, currency: .usd) }
