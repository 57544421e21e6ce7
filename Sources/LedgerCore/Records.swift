extension Money: Codable {
  private enum CodingKeys: String, CodingKey { case minor, currency, amount }

  /// Encoded as `{"minor": 1230, "currency": "EUR", "amount": "12.30"}`: the integer for
  /// programs, the decimal text for people, never a floating-point number.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(minorUnits, forKey: .minor)
    try c.encode(currency.code, forKey: .currency)
    try c.encode(amountString, forKey: .amount)
  }

  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    self.init(
      minorUnits: try c.decode(Int64.self, forKey: .minor),
      currency: try Currency(code: try c.decode(String.self, forKey: .currency)))
  }
}

/// A plan customers subscribe to.
public struct Plan: Codable, Sendable, Equatable {
  public let id: Int64
  public let code: String
  public let name: String
  public let price: Money
  public let period: BillingPeriod

  public init(id: Int64, code: String, name: String, price: Money, period: BillingPeriod) {
    self.id = id
    self.code = code
    self.name = name
    self.price = price
    self.period = period
  }
}

/// A customer account.
public struct Account: Codable, Sendable, Equatable {
  public let id: Int64
  public let email: String
  public let name: String
  public let locale: CustomerLocale
  public let plan: String
  public let status: AccountStatus
  public let createdAt: String

  public init(
    id: Int64, email: String, name: String, locale: CustomerLocale, plan: String, status: AccountStatus,
    createdAt: String
  ) {
    self.id = id
    self.email = email
    self.name = name
    self.locale = locale
    self.plan = plan
    self.status = status
    self.createdAt = createdAt
  }
}

/// A payment card as the processor's token plus what is shown to the customer.
public struct Card: Codable, Sendable, Equatable {
  public let id: Int64
  public let accountID: Int64
  public let token: String
  public let brand: CardBrand
  public let last4: String
  public let expiry: String
  public let postalCode: String?
  public let country: String?
  public let status: CardStatus
  public let isDefault: Bool
  public let createdAt: String

  public init(
    id: Int64, accountID: Int64, token: String, brand: CardBrand, last4: String, expiry: String, postalCode: String?,
    country: String?, status: CardStatus, isDefault: Bool, createdAt: String
  ) {
    self.id = id
    self.accountID = accountID
    self.token = token
    self.brand = brand
    self.last4 = last4
    self.expiry = expiry
    self.postalCode = postalCode
    self.country = country
    self.status = status
    self.isDefault = isDefault
    self.createdAt = createdAt
  }
}

public struct InvoiceLine: Codable, Sendable, Equatable {
  public let position: Int64
  public let kind: LineKind
  public let description: String
  public let quantity: Int64
  public let unitAmount: Money
  public let amount: Money

  public init(position: Int64, kind: LineKind, description: String, quantity: Int64, unitAmount: Money, amount: Money) {
    self.position = position
    self.kind = kind
    self.description = description
    self.quantity = quantity
    self.unitAmount = unitAmount
    self.amount = amount
  }
}

/// An invoice with what has been paid against it.
public struct Invoice: Codable, Sendable, Equatable {
  public let id: Int64
  public let number: String
  public let accountID: Int64
  public let status: InvoiceStatus
  public let method: CollectionMethod
  public let paymentReference: String?
  public let issueDate: String
  public let dueDate: String
  public let total: Money
  public let paid: Money
  public let due: Money
  public let paused: Bool
  public let graceDeadline: String?
  public let voidReason: String?
  public var lines: [InvoiceLine]

  public init(
    id: Int64, number: String, accountID: Int64, status: InvoiceStatus, method: CollectionMethod,
    paymentReference: String?,
    issueDate: String, dueDate: String, total: Money, paid: Money, due: Money, paused: Bool, graceDeadline: String?,
    voidReason: String?, lines: [InvoiceLine]
  ) {
    self.id = id
    self.number = number
    self.accountID = accountID
    self.status = status
    self.method = method
    self.paymentReference = paymentReference
    self.issueDate = issueDate
    self.dueDate = dueDate
    self.total = total
    self.paid = paid
    self.due = due
    self.paused = paused
    self.graceDeadline = graceDeadline
    self.voidReason = voidReason
    self.lines = lines
  }
}

/// One event of an account's history.
public struct Event: Codable, Sendable, Equatable {
  public let id: Int64
  public let at: String
  public let accountID: Int64?
  public let invoice: String?
  public let actor: Actor
  public let kind: String
  public let reason: String

  public init(id: Int64, at: String, accountID: Int64?, invoice: String?, actor: Actor, kind: String, reason: String) {
    self.id = id
    self.at = at
    self.accountID = accountID
    self.invoice = invoice
    self.actor = actor
    self.kind = kind
    self.reason = reason
  }
}
