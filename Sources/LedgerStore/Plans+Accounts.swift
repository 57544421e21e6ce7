import LedgerCore
import LedgerSQLite

extension LedgerStore {
  // MARK: - Plans

  /// Adds a paid plan. Its code must be new; `free` exists from the start.
  public func addPlan(code: String, name: String, price: Money, period: BillingPeriod) throws -> Plan {
    let code = try Validate.planCode(code, field: "code")
    let name = try Validate.displayName(name, field: "--name")
    guard price.minorUnits > 0 else {
      throw InputError(
        field: "--price", rule: "a paid plan's price must be greater than zero (the free plan exists already)")
    }
    return try write {
      if try db.scalarInt("SELECT id FROM plans WHERE code = ?", code) != nil {
        throw InputError(field: "code", rule: "a plan with code '\(code)' already exists")
      }
      try db.run(
        "INSERT INTO plans (code, name, price_minor, currency, period, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        code, name, price.minorUnits, price.currency.code, period.rawValue, now)
      try recordEvent(
        account: nil, actor: .staff, kind: "plan_added", reason: "plan \(code) added at \(price) per \(period.rawValue)"
      )
      return Plan(id: db.lastInsertRowID, code: code, name: name, price: price, period: period)
    }
  }

  public func plans() throws -> [Plan] {
    try db.query("SELECT * FROM plans ORDER BY id").map(plan(from:))
  }

  public func plan(code: String) throws -> Plan? {
    try db.queryOne("SELECT * FROM plans WHERE code = ?", code).map(plan(from:))
  }

  func plan(from row: Row) throws -> Plan {
    Plan(
      id: try row.int("id"), code: try row.string("code"), name: try row.string("name"),
      price: Money(minorUnits: try row.int("price_minor"), currency: try Currency(code: try row.string("currency"))),
      period: BillingPeriod(rawValue: try row.string("period")) ?? .month)
  }

  // MARK: - Accounts

  /// Opens a customer account on a plan (the free plan unless told otherwise), with its
  /// subscription: billed by the scheduler from `anchor` (default today), or by hand.
  public func addAccount(
    email: String, name: String, locale: CustomerLocale, planCode: String, actor: Actor,
    billing: BillingMode = .subscription, method: CollectionMethod = .card, anchor: CivilDate? = nil,
    config: DunningConfig = DunningConfig()
  ) throws
    -> Account
  {
    let email = try Validate.email(email)
    let name = try Validate.displayName(name)
    let today = SubscriptionPolicy.localDate(clock.now(), config: config)
    if let anchor, anchor < today {
      throw InputError(
        field: "--anchor", rule: "\(anchor) is before today (\(today)); the first period starts today or later")
    }
    return try write {
      guard let plan = try plan(code: planCode) else { throw NotFoundError(field: "--plan", value: planCode) }
      let at = now
      try db.run(
        "INSERT INTO accounts (email, name, locale, plan_id, status, created_at, updated_at) VALUES (?, ?, ?, ?, 'active', ?, ?)",
        email, name, locale.rawValue, plan.id, at, at)
      let id = db.lastInsertRowID
      let start = anchor ?? today
      try startSubscription(account: id, plan: plan, billing: billing, method: method, anchor: start, config: config)
      try recordEvent(
        account: id, actor: actor, kind: "account_created",
        reason: "account opened on plan \(plan.code)"
          + (billing == .subscription && plan.price.minorUnits > 0
            ? ", billed per \(plan.period.rawValue) from \(start) by \(method.rawValue)"
            : billing == .manual ? ", invoiced by hand" : ""))
      return Account(id: id, email: email, name: name, locale: locale, plan: plan.code, status: .active, createdAt: at)
    }
  }

  /// Changes an account's email, name or language. The address and the name end up in
  /// mail headers, so they pass the same checks as at opening (no line break, one `@`, a
  /// bounded length). Messages not yet delivered follow the new address.
  public func updateAccount(_ id: Int64, email: String?, name: String?, locale: CustomerLocale?, actor: Actor) throws
    -> Account
  {
    guard email != nil || name != nil || locale != nil else {
      throw InputError(field: "--email", rule: "give at least one of --email, --name, --locale, --billing, --method")
    }
    let email = try email.map { try Validate.email($0) }
    let name = try name.map { try Validate.displayName($0) }
    return try write {
      let before = try requireAccount(id, field: "account")
      try db.run(
        "UPDATE accounts SET email = coalesce(?, email), name = coalesce(?, name), locale = coalesce(?, locale), updated_at = ? WHERE id = ?",
        email, name, locale?.rawValue, now, id)
      if let email, email != before.email {
        try db.run("UPDATE outbox SET recipient = ? WHERE account_id = ? AND delivered_at IS NULL", email, id)
      }
      var changes: [String] = []
      if let email, email != before.email { changes.append("email \(before.email) → \(email)") }
      if let name, name != before.name { changes.append("name \(before.name) → \(name)") }
      if let locale, locale != before.locale { changes.append("locale \(before.locale.rawValue) → \(locale.rawValue)") }
      try recordEvent(
        account: id, actor: actor, kind: "account_updated",
        reason: changes.isEmpty ? "account saved unchanged" : changes.joined(separator: "; "))
      return try requireAccount(id)
    }
  }

  public func account(id: Int64) throws -> Account? {
    try db.queryOne(Self.accountSelect + " WHERE a.id = ?", id).map(account(from:))
  }

  /// The account, or a `NotFoundError` naming `field`.
  public func requireAccount(_ id: Int64, field: String = "--account") throws -> Account {
    guard let account = try account(id: id) else { throw NotFoundError(field: field, value: String(id)) }
    return account
  }

  public func accounts(status: AccountStatus? = nil) throws -> [Account] {
    try
      (status.map { try db.query(Self.accountSelect + " WHERE a.status = ?1 ORDER BY a.id", $0.rawValue) }
      ?? db.query(Self.accountSelect + " ORDER BY a.id")).map(account(from:))
  }

  static let accountSelect = """
    SELECT a.id, a.email, a.name, a.locale, p.code AS plan, a.status, a.created_at
    FROM accounts a JOIN plans p ON p.id = a.plan_id
    """

  func account(from row: Row) throws -> Account {
    Account(
      id: try row.int("id"), email: try row.string("email"), name: try row.string("name"),
      locale: CustomerLocale(rawValue: try row.string("locale")) ?? .en, plan: try row.string("plan"),
      status: AccountStatus(rawValue: try row.string("status")) ?? .active, createdAt: try row.string("created_at"))
  }

  /// The account's customer at the card processor (Stripe: `cus_…`), if it has one.
  public func processorCustomer(account id: Int64) throws -> String? {
    try db.queryOne("SELECT processor_customer FROM accounts WHERE id = ?", id)?.optionalString("processor_customer")
  }

  /// Sets (or, with nil, clears) the account's customer at the card processor; its cards
  /// are charged under that customer from now on.
  public func setProcessorCustomer(_ id: Int64, customer: String?, actor: Actor) throws {
    let customer = try customer.map { try CardRules.processorCustomer($0) }
    try write {
      _ = try requireAccount(id, field: "account")
      let before = try processorCustomer(account: id)
      guard before != customer else { return }
      try db.run("UPDATE accounts SET processor_customer = ?, updated_at = ? WHERE id = ?", customer, now, id)
      try recordEvent(
        account: id, actor: actor, kind: "processor_customer_set",
        reason: "processor customer \(before ?? "none") → \(customer ?? "none")")
    }
  }

  /// An account's balance per currency, from the journal's sub-ledgers. What it owes is what
  /// its invoices have due, written-off ones included (an uncollectible invoice is still
  /// owed and can be paid later): the same rule as `Invoice.due` and `v_invoice_balances`.
  public struct Balance: Codable, Sendable, Equatable {
    /// What the account owes on its invoices: `receivable` plus `writtenOff`.
    public let owed: Money
    /// What it owes on open invoices (the journal's receivable).
    public let receivable: Money
    /// What it still owes on written-off invoices (moved to bad debt, not yet recovered).
    public let writtenOff: Money
    /// Credit held from overpayments.
    public let credit: Money
  }

  public func balances(account: Int64) throws -> [Balance] {
    try db.query(
      "SELECT currency, owed_minor, receivable_minor, written_off_minor, credit_minor FROM v_account_balances WHERE account_id = ?",
      account
    )
    .map { row in
      let currency = try Currency(code: try row.string("currency"))
      return Balance(
        owed: Money(minorUnits: try row.int("owed_minor"), currency: currency),
        receivable: Money(minorUnits: try row.int("receivable_minor"), currency: currency),
        writtenOff: Money(minorUnits: try row.int("written_off_minor"), currency: currency),
        credit: Money(minorUnits: try row.int("credit_minor"), currency: currency))
    }
  }
}
