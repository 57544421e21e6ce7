import Foundation
import LedgerCore
import LedgerEngine
import LedgerStore

/// The type of a request field or query parameter: what the body parser checks and what
/// the OpenAPI document says, from one declaration.
enum FieldType: Sendable {
  case string(maxLength: Int)
  case integer(minimum: Int64, maximum: Int64)
  case boolean
  /// `{"minor": 1230, "currency": "EUR"}`: integer minor units and an ISO 4217 code.
  case money
  /// YYYY-MM-DD.
  case date
  case choice([String])
}

/// A field of a request body, or a query parameter.
struct Field: Sendable {
  let name: String
  let type: FieldType
  let required: Bool
  let summary: String

  init(_ name: String, _ type: FieldType, required: Bool = false, _ summary: String) {
    self.name = name
    self.type = type
    self.required = required
    self.summary = summary
  }
}

/// What a route answers with, for the OpenAPI document.
enum Answer: Sendable {
  case object(String)
  case page(String)
}

/// One route of the API: the handler, and what the OpenAPI document says of it.
struct Route: Sendable {
  let method: String
  /// OpenAPI form: `/v1/accounts/{account}`.
  let path: String
  let operationID: String
  let summary: String
  let query: [Field]
  let body: [Field]
  let answer: Answer
  let handler: @Sendable (Call) throws -> any Encodable & Sendable

  /// The path's parameters, in order.
  var parameters: [String] {
    path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
  }
}

/// One request as a handler sees it: the key, the parameters, the checked body, and the
/// ledger connection it runs on (inside the request's transaction for a POST).
struct Call {
  let store: LedgerStore
  let key: APIKey
  let parameters: [String: String]
  let query: [String: String]
  let body: [String: LedgerConfig.JSONValue]
  let config: LedgerConfig

  var billing: Billing { Billing(store: store, config: config.dunning) }
  var actor: Actor { key.role.actor }

  /// The decision of `APIAccess`, or 403.
  func allow(_ action: APIAction) throws {
    guard APIAccess.allows(role: key.role, account: key.accountID, action) else {
      switch (key.role, action) {
      case (.read, _): throw APIError.forbidden("a read key cannot change anything")
      case (.customer, .readAccount), (.customer, .customerChange):
        throw APIError.forbidden("this key acts for account \(key.accountID ?? 0) only")
      default: throw APIError.forbidden("only a staff key may do this")
      }
    }
  }

  /// The account a path names (`{account}`), after the access check.
  func account(_ action: (Int64) -> APIAction) throws -> Int64 {
    let id = try pathID("account")
    try allow(action(id))
    _ = try store.requireAccount(id, field: "account")
    return id
  }

  /// A path parameter that is an id.
  func pathID(_ name: String) throws -> Int64 {
    guard let text = parameters[name], let id = Int64(text), id > 0 else {
      throw APIError.notFound(name, "\(name): '\(parameters[name] ?? "")' is not an id")
    }
    return id
  }

  /// The invoice a path names, after the access check for its account.
  func invoice(_ action: (Int64) -> APIAction) throws -> Invoice {
    let reference = parameters["invoice"] ?? ""
    guard let invoice = try store.invoice(reference) else {
      throw APIError.notFound("invoice", "invoice: no invoice '\(reference)' in this ledger")
    }
    try allow(action(invoice.accountID))
    return invoice
  }

  /// The card a path names, after the access check for its account.
  func card(_ action: (Int64) -> APIAction) throws -> Card {
    let id = try pathID("card")
    guard let card = try store.card(id: id) else {
      throw APIError.notFound("card", "card: no card \(id) in this ledger")
    }
    try allow(action(card.accountID))
    return card
  }

  // MARK: Body fields (their types were checked against the route's fields)

  func string(_ name: String) -> String? {
    if case .string(let s)? = body[name] { return s }
    return nil
  }

  func requiredString(_ name: String) throws -> String {
    guard let s = string(name) else { throw APIError.invalid(name, "is required") }
    return s
  }

  func bool(_ name: String) -> Bool? {
    if case .bool(let b)? = body[name] { return b }
    return nil
  }

  func date(_ name: String) throws -> CivilDate? {
    try string(name).map { try CivilDate(iso8601: $0, field: name) }
  }

  /// A positive amount within ledgerd's bound.
  func money(_ name: String) throws -> Money {
    guard case .object(let object)? = body[name], case .int(let minor)? = object["minor"],
      case .string(let code)? = object["currency"]
    else { throw APIError.invalid(name, "is required: {\"minor\": integer, \"currency\": \"EUR\"}") }
    let currency = try Currency(code: code, field: "\(name).currency")
    let money = Money(minorUnits: Int64(minor), currency: currency)
    try money.checkBound(field: "\(name).minor")
    guard money.minorUnits > 0 else { throw APIError.invalid("\(name).minor", "must be greater than zero") }
    return money
  }

  // MARK: Pages

  var limit: Int { query["limit"].flatMap(Int.init) ?? 20 }

  /// The cursor of a page: the id the previous page ended at.
  func cursor(default value: Int64) throws -> Int64 {
    guard let text = query["cursor"] else { return value }
    guard let id = Int64(text), id > 0 else {
      throw APIError.invalid("cursor", "'\(text)' is not a cursor this API gave")
    }
    return id
  }
}

/// A page of a list: `data`, whether more follow, and the cursor that fetches them.
struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
  let data: [Item]
  let hasMore: Bool
  let nextCursor: String?

  /// The page from `limit + 1` rows fetched; `id` gives each row's cursor.
  init(_ rows: [Item], limit: Int, id: (Item) -> Int64) {
    hasMore = rows.count > limit
    data = Array(rows.prefix(limit))
    nextCursor = hasMore ? data.last.map { String(id($0)) } : nil
  }
}

/// What `POST …/transfers` answers: the invoice and whether its clearing window holds it.
struct TransferAnswer: Encodable, Sendable {
  let invoice: Invoice
  let hold: String
  let windowEndsAt: String?
}

/// What `DELETE /v1/cards/{card}` answers.
struct CardRemoval: Encodable, Sendable {
  let removed: Card
  let newDefault: Card?
}

/// `GET …/explain`: the account, its timeline, and what happens next and when.
struct Explanation: Encodable, Sendable {
  let account: Account
  let timeline: [Event]
  let next: [String]
}

/// Every route of the API, in the order the OpenAPI document lists them.
enum Routes {
  static let pageQuery = [
    Field("limit", .integer(minimum: 1, maximum: 100), "At most this many items (default 20)."),
    Field("cursor", .string(maxLength: 32), "The `next_cursor` of the previous page."),
  ]

  static let all: [Route] = [
    Route(
      method: "GET", path: "/v1/accounts", operationID: "listAccounts", summary: "List accounts (staff, read).",
      query: pageQuery + [Field("status", .choice(["active", "past_due", "downgraded", "closed"]), "Only these.")],
      body: [], answer: .page("Account")
    ) { call in
      try call.allow(.readAll)
      let status = call.query["status"].flatMap(AccountStatus.init(rawValue:))
      let rows = try call.store.accounts(status: status, after: try call.cursor(default: 0), limit: call.limit + 1)
      return Page(rows, limit: call.limit) { $0.id }
    },
    Route(
      method: "POST", path: "/v1/accounts", operationID: "createAccount",
      summary: "Open an account with its subscription (staff).", query: [],
      body: [
        Field("email", .string(maxLength: 254), required: true, "Where the customer's emails go."),
        Field("name", .string(maxLength: 200), required: true, "The customer's display name."),
        Field("locale", .choice(["fr", "en"]), "Language of the emails (default fr)."),
        Field("plan", .string(maxLength: 64), "The plan's code (default free)."),
        Field("billing", .choice(["subscription", "manual"]), "Who issues invoices (default subscription)."),
        Field("method", .choice(["card", "transfer"]), "How invoices are collected (default card)."),
        Field("anchor", .date, "The first period's start (default today)."),
        Field("processor_customer", .string(maxLength: 255), "The customer at Stripe (`cus_…`)."),
      ], answer: .object("Account")
    ) { call in
      try call.allow(.staffChange)
      let email = try Validate.email(try call.requiredString("email"), field: "email")
      let name = try Validate.displayName(try call.requiredString("name"), field: "name")
      let locale = try CustomerLocale(parsing: call.string("locale") ?? "fr")
      let mode = try BillingMode(parsing: call.string("billing") ?? "subscription")
      let method = try CollectionMethod(parsing: call.string("method") ?? "card")
      let anchor = try call.date("anchor")
      let customer = try call.string("processor_customer").map { try CardRules.processorCustomer($0) }
      let account = try call.billing.addAccount(
        email: email, name: name, locale: locale, planCode: call.string("plan") ?? "free", billing: mode,
        method: method, anchor: anchor, actor: call.actor)
      if let customer { try call.store.setProcessorCustomer(account.id, customer: customer, actor: call.actor) }
      return account
    },
    Route(
      method: "GET", path: "/v1/accounts/{account}", operationID: "getAccount", summary: "Read an account.",
      query: [], body: [], answer: .object("Account")
    ) { call in
      try call.store.requireAccount(try call.account(APIAction.readAccount), field: "account")
    },
    Route(
      method: "POST", path: "/v1/accounts/{account}", operationID: "updateAccount",
      summary: "Change an account's email, name or language (the customer, staff).", query: [],
      body: [
        Field("email", .string(maxLength: 254), "Where the customer's emails go."),
        Field("name", .string(maxLength: 200), "The customer's display name."),
        Field("locale", .choice(["fr", "en"]), "Language of the emails."),
      ], answer: .object("Account")
    ) { call in
      let id = try call.account(APIAction.customerChange)
      let email = try call.string("email").map { try Validate.email($0, field: "email") }
      let name = try call.string("name").map { try Validate.displayName($0, field: "name") }
      let locale = try call.string("locale").map { try CustomerLocale(parsing: $0) }
      guard email != nil || name != nil || locale != nil else {
        throw APIError.invalid("email", "give at least one of email, name, locale")
      }
      return try call.store.updateAccount(id, email: email, name: name, locale: locale, actor: call.actor)
    },
    Route(
      method: "POST", path: "/v1/accounts/{account}/plan", operationID: "changePlan",
      summary: "Change the account's plan, prorated; a downgraded customer re-takes a plan (the customer, staff).",
      query: [],
      body: [
        Field("plan", .string(maxLength: 64), required: true, "The new plan's code."),
        Field("immediately", .boolean, "A downgrade now with a credit note, not at the period's end."),
        Field("reason", .string(maxLength: 500), "Why, for the event."),
      ], answer: .object("SubscriptionChange")
    ) { call in
      let id = try call.account(APIAction.customerChange)
      return try call.billing.changePlan(
        account: id, to: try call.requiredString("plan"), immediately: call.bool("immediately") ?? false,
        reason: call.string("reason"), actor: call.actor)
    },
    Route(
      method: "GET", path: "/v1/accounts/{account}/cards", operationID: "listCards",
      summary: "The account's cards, oldest first.", query: [], body: [], answer: .page("Card")
    ) { call in
      let id = try call.account(APIAction.readAccount)
      return Page(try call.store.cards(account: id), limit: Int.max - 1) { $0.id }
    },
    Route(
      method: "POST", path: "/v1/accounts/{account}/cards", operationID: "addCard",
      summary:
        "Save a card the processor tokenized; the first becomes the default, and due card invoices are charged at once.",
      query: [],
      body: [
        Field(
          "token", .string(maxLength: 255), required: true, "The processor's token (Stripe: `pm_…`); never a number."),
        Field(
          "brand", .choice(CardBrand.allCases.map(\.rawValue)), required: true, "The card's brand, for display."),
        Field("last4", .string(maxLength: 4), required: true, "The last four digits, for display."),
        Field("expiry", .string(maxLength: 7), required: true, "MM/YYYY."),
        Field("postal_code", .string(maxLength: 16), "Billing postal code."),
        Field("country", .string(maxLength: 2), "Billing country, ISO 3166 alpha-2."),
      ], answer: .object("Card")
    ) { call in
      let id = try call.account(APIAction.customerChange)
      let card = NewCard(
        token: try call.config.cardToken(try call.requiredString("token"), field: "token"),
        brand: try CardRules.brand(try call.requiredString("brand")),
        last4: try CardRules.last4(try call.requiredString("last4")),
        expiry: try CardExpiry(parsing: try call.requiredString("expiry")),
        postalCode: try call.string("postal_code").map { try Validate.postalCode($0, field: "postal_code") },
        country: try call.string("country").map { try Validate.country($0, field: "country") })
      if call.config.processorKind == .stripe, try call.store.processorCustomer(account: id) == nil {
        throw APIError.invalid(
          "token", "account \(id) has no Stripe customer: a PaymentMethod is charged under its customer; set it first")
      }
      return try call.billing.addCard(account: id, card, actor: call.actor)
    },
    Route(
      method: "POST", path: "/v1/cards/{card}/default", operationID: "makeCardDefault",
      summary: "Make a card its account's default; due card invoices are charged at once.", query: [], body: [],
      answer: .object("Card")
    ) { call in
      let card = try call.card(APIAction.customerChange)
      return try call.billing.setDefaultCard(card.id, actor: call.actor)
    },
    Route(
      method: "DELETE", path: "/v1/cards/{card}", operationID: "removeCard",
      summary: "Remove a card; removing the default promotes the next active card.", query: [], body: [],
      answer: .object("CardRemoval")
    ) { call in
      let card = try call.card(APIAction.customerChange)
      let (removed, promoted) = try call.billing.removeCard(card.id, actor: call.actor)
      return CardRemoval(removed: removed, newDefault: promoted)
    },
    Route(
      method: "GET", path: "/v1/accounts/{account}/invoices", operationID: "listInvoices",
      summary: "The account's invoices, newest first (without their lines).",
      query: pageQuery + [Field("status", .choice(["open", "paid", "void", "uncollectible"]), "Only these.")],
      body: [], answer: .page("Invoice")
    ) { call in
      let id = try call.account(APIAction.readAccount)
      let status = call.query["status"].flatMap(InvoiceStatus.init(rawValue:))
      let rows = try call.store.invoices(
        account: id, status: status, before: try call.cursor(default: .max), limit: call.limit + 1)
      return Page(rows, limit: call.limit) { $0.id }
    },
    Route(
      method: "GET", path: "/v1/invoices/{invoice}", operationID: "getInvoice",
      summary: "An invoice with its lines, by number (INV-000042) or id.", query: [], body: [],
      answer: .object("Invoice")
    ) { call in
      try call.invoice(APIAction.readAccount)
    },
    Route(
      method: "POST", path: "/v1/invoices/{invoice}/pause", operationID: "pauseInvoice",
      summary:
        "\"Payment not registered\": collection paused at once (no reminder, retry or downgrade), with a proof.",
      query: [], body: [Field("proof", .string(maxLength: 500), required: true, "Receipt number, file name…")],
      answer: .object("Invoice")
    ) { call in
      let invoice = try call.invoice(APIAction.customerChange)
      return try call.billing.pause(
        invoice.number, proof: try Validate.text(try call.requiredString("proof"), field: "proof"), actor: call.actor)
    },
    Route(
      method: "POST", path: "/v1/invoices/{invoice}/resume", operationID: "resumeInvoice",
      summary: "Resume a paused invoice's collection; its grace clock goes on (staff).", query: [], body: [],
      answer: .object("Invoice")
    ) { call in
      try call.allow(.staffChange)
      return try call.billing.resume(try call.invoice(APIAction.readAccount).number, actor: call.actor)
    },
    Route(
      method: "POST", path: "/v1/invoices/{invoice}/void", operationID: "voidInvoice",
      summary: "Void an invoice nothing was paid on (staff).", query: [],
      body: [Field("reason", .string(maxLength: 500), required: true, "Why, for the event.")],
      answer: .object("Invoice")
    ) { call in
      try call.allow(.staffChange)
      return try call.billing.voidInvoice(
        try call.invoice(APIAction.readAccount).number,
        reason: try Validate.text(try call.requiredString("reason"), field: "reason"), actor: call.actor)
    },
    Route(
      method: "POST", path: "/v1/invoices/{invoice}/transfers", operationID: "declareTransfer",
      summary: "\"I paid by transfer\": the invoice waits for clearing (3 business days from the send date).",
      query: [],
      body: [
        Field("amount", .money, required: true, "What was sent."),
        Field("sent_on", .date, required: true, "The day it was sent."),
        Field("bank_reference", .string(maxLength: 140), required: true, "The reference quoted on the transfer."),
      ], answer: .object("TransferAnswer")
    ) { call in
      let invoice = try call.invoice(APIAction.customerChange)
      guard let sentOn = try call.date("sent_on") else { throw APIError.invalid("sent_on", "is required") }
      let (updated, hold) = try call.billing.declareTransfer(
        invoice.number, amount: try call.money("amount"), sentOn: sentOn,
        bankReference: try Validate.text(
          try call.requiredString("bank_reference"), field: "bank_reference", limit: 140),
        actor: call.actor)
      return TransferAnswer(invoice: updated, hold: hold.name, windowEndsAt: hold.windowEndsAt?.iso8601)
    },
    Route(
      method: "POST", path: "/v1/invoices/{invoice}/payments", operationID: "recordPayment",
      summary: "Record money received outside the card flow (staff).", query: [],
      body: [
        Field("amount", .money, required: true, "What was received."),
        Field("method", .choice(["transfer"]), "How (default transfer)."),
        Field("bank_reference", .string(maxLength: 140), "The bank's reference."),
        Field("received_on", .date, "The day it arrived (default today)."),
      ], answer: .object("PaymentRecord")
    ) { call in
      try call.allow(.staffChange)
      let invoice = try call.invoice(APIAction.readAccount)
      return try call.billing.recordPayment(
        invoice.number, amount: try call.money("amount"), method: call.string("method") ?? "transfer",
        bankReference: try call.string("bank_reference").map {
          try Validate.text($0, field: "bank_reference", limit: 140)
        },
        receivedOn: try call.date("received_on") ?? call.store.clock.now().date, actor: call.actor)
    },
    Route(
      method: "GET", path: "/v1/accounts/{account}/charge_attempts", operationID: "listChargeAttempts",
      summary: "The account's charge attempts, newest first, with the reason each failed.", query: pageQuery, body: [],
      answer: .page("ChargeAttempt")
    ) { call in
      let id = try call.account(APIAction.readAccount)
      let rows = try call.store.chargeAttempts(
        account: id, before: try call.cursor(default: .max), limit: call.limit + 1)
      return Page(rows, limit: call.limit) { $0.id }
    },
    Route(
      method: "GET", path: "/v1/accounts/{account}/explain", operationID: "explainAccount",
      summary: "The account's timeline, and what happens next and when.", query: [], body: [],
      answer: .object("Explanation")
    ) { call in
      let id = try call.account(APIAction.readAccount)
      return try call.store.read {
        Explanation(
          account: try call.store.requireAccount(id, field: "account"), timeline: try call.store.events(account: id),
          next: try call.store.subscriptionOutlook(account: id, config: call.config.dunning)
            + call.store.upcoming(account: id, config: call.config.dunning))
      }
    },
    Route(
      method: "GET", path: "/v1/accounts/{account}/dunning", operationID: "getDunning",
      summary: "Where the account stands in dunning: since when, until when, what is due.", query: [], body: [],
      answer: .object("Dunning")
    ) { call in
      try call.store.dunning(account: try call.account(APIAction.readAccount))
    },
  ]
}
