/// A value bound to, or read from, a statement. Money never travels as a floating-point
/// number in ledgerd, so there is no REAL case: amounts are `Int64` minor units.
public enum SQLValue: Sendable, Equatable, Hashable {
  case null
  case integer(Int64)
  case text(String)
  case blob([UInt8])
}

/// Something that can be bound as a statement parameter.
public protocol SQLBindable: Sendable {
  var sqlValue: SQLValue { get }
}

extension SQLValue: SQLBindable {
  public var sqlValue: SQLValue { self }
}
extension Int64: SQLBindable {
  public var sqlValue: SQLValue { .integer(self) }
}
extension Int: SQLBindable {
  public var sqlValue: SQLValue { .integer(Int64(self)) }
}
extension Int32: SQLBindable {
  public var sqlValue: SQLValue { .integer(Int64(self)) }
}
extension Bool: SQLBindable {
  public var sqlValue: SQLValue { .integer(self ? 1 : 0) }
}
extension String: SQLBindable {
  public var sqlValue: SQLValue { .text(self) }
}
extension Optional: SQLBindable where Wrapped: SQLBindable {
  public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}
