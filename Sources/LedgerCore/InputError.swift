/// A refused input: names the field and the rule it broke, so the operator can fix it.
///
/// Every command maps this to a non-zero exit with nothing written.
public struct InputError: Error, CustomStringConvertible, Equatable, Sendable {
  /// The field as the user knows it (`--amount`, `line 2 amount`, `token`).
  public var field: String
  /// What is wrong, as a rule ("must be greater than zero").
  public var rule: String

  public init(field: String, rule: String) {
    self.field = field
    self.rule = rule
  }

  /// The same error, reported under another field name (for example with a line number).
  public func renamed(_ field: String) -> InputError { InputError(field: field, rule: rule) }

  public var description: String { "\(field): \(rule)" }
}

/// A request that is well-formed but refers to something that does not exist or is in the
/// wrong state (an unknown account, voiding a paid invoice).
public struct NotFoundError: Error, CustomStringConvertible, Equatable, Sendable {
  public var field: String
  public var value: String
  public init(field: String, value: String) {
    self.field = field
    self.value = value
  }
  public var description: String { "\(field): no \(field.trimmingLeadingDashes) '\(value)' in this ledger" }
}

/// An operation refused because of the current state of the ledger.
public struct StateError: Error, CustomStringConvertible, Equatable, Sendable {
  public var subject: String
  public var rule: String
  public init(subject: String, rule: String) {
    self.subject = subject
    self.rule = rule
  }
  public var description: String { "\(subject): \(rule)" }
}

extension String {
  var trimmingLeadingDashes: String { String(drop { $0 == "-" }) }
}
