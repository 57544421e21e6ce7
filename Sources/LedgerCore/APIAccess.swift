/// What an API key may do: its role, and for a customer key the one account it acts for.
public enum APIRole: String, CaseIterable, Sendable, Codable {
  /// A host's dashboard acting for one customer: that customer's own actions on that account.
  case customer
  /// What the command line can do.
  case staff
  /// Reads only.
  case read

  /// Who the events a key causes name as their actor. A read key changes nothing.
  public var actor: Actor { self == .customer ? .customer : .staff }
}

/// An action the API offers, by what it touches; the decision is `APIAccess.allows`.
public enum APIAction: Sendable, Equatable {
  /// Reading anything of one account (its cards, invoices, attempts, timeline, dunning).
  case readAccount(Int64)
  /// Reading lists that span accounts.
  case readAll
  /// What a customer does on their own account: cards, default, "payment not registered",
  /// "I paid by transfer", their plan, their contact details.
  case customerChange(Int64)
  /// What only staff do: opening accounts, voiding, resuming, recording payments.
  case staffChange
}

/// The access rule, a pure decision over the key and the action.
public enum APIAccess {
  public static func allows(role: APIRole, account: Int64?, _ action: APIAction) -> Bool {
    switch (role, action) {
    case (.staff, _): return true
    case (.read, .readAccount), (.read, .readAll): return true
    case (.read, _): return false
    case (.customer, .readAccount(let id)), (.customer, .customerChange(let id)): return id == account
    case (.customer, _): return false
    }
  }
}
