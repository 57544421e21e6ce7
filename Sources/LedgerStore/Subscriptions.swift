import LedgerCore
import LedgerSQLite

/// A credit note: money given back to a customer as credit on the account.
public struct CreditNote: Encodable, Sendable, Equatable {
  public let id: Int64
  public let number: String
  public let accountID: Int64
  public let amount: Money
  public let reason: String
}

/// What a plan or add-on change did.
public struct SubscriptionChange: Encodable, Sendable {
  public let accountID: Int64
  /// In words, as the event says it.
  public var summary: String
  /// "now" or the date it takes effect (the period's end).
  public let effective: String
  /// The prorated invoice issued at once, if any.
  public var invoice: Invoice?
  /// The credit note issued at once, if any.
  public var creditNote: CreditNote?
  /// How the amount was prorated, if it was.
  public var prorated: ProratedAmount?
}

extension LedgerStore {
  // MARK: - Reading

  /// The account's subscription: plan, add-ons that run or ended after the last period
  /// invoiced began, billing anchor, how far it is invoiced, what is scheduled.
  public func subscription(account: Int64) throws -> SubscriptionState? {
    guard
      let row = try db.queryOne(
        """
        SELECT s.billing, s.collection_method, s.anchor_date, s.billed_until, s.renew_at, s.scheduled_plan_id,
          a.status, a.plan_id
        FROM subscriptions s JOIN accounts a ON a.id = s.account_id WHERE s.account_id = ?
        """, account)
    else { return nil }
    guard let plan = try plan(id: try row.int("plan_id")) else { return nil }
    let scheduled = try row.optionalInt("scheduled_plan_id").flatMap { try self.plan(id: $0) }
    return SubscriptionState(
      accountID: account, status: AccountStatus(rawValue: try row.string("status")) ?? .active,
      billing: BillingMode(rawValue: try row.string("billing")) ?? .manual,
      method: CollectionMethod(rawValue: try row.string("collection_method")) ?? .card, plan: plan,
      anchor: try CivilDate(iso8601: try row.string("anchor_date")),
      billedUntil: try row.optionalString("billed_until").map { try CivilDate(iso8601: $0) },
      renewAt: try row.optionalString("renew_at").map { try Instant(iso8601: $0) }, scheduledPlan: scheduled,
      addons: try addons(account: account, includeEnded: false))
  }

  /// The account's add-ons: those that run or will end (or every one, with `includeEnded`).
  public func addons(account: Int64, includeEnded: Bool) throws -> [Addon] {
    try db.query(
      """
      SELECT id, code, description, price_minor, currency, added_at, removed_at FROM account_addons
      WHERE account_id = ?1 AND (?2 OR removed_at IS NULL OR removed_at > ?3) ORDER BY added_at, id
      """, account, includeEnded, now
    ).map { row in
      Addon(
        id: try row.int("id"), code: try row.string("code"), name: try row.string("description"),
        price: Money(minorUnits: try row.int("price_minor"), currency: try Currency(code: try row.string("currency"))),
        addedAt: try Instant(iso8601: try row.string("added_at")),
        endsAt: try row.optionalString("removed_at").map { try Instant(iso8601: $0) })
    }
  }

  /// The invoice the scheduler issued for the account's period starting on `start`.
  public func invoice(account: Int64, periodStart start: CivilDate) throws -> Invoice? {
    try db.scalarText("SELECT number FROM invoices WHERE account_id = ? AND period_start = ?", account, start.iso8601)
      .flatMap { try invoice($0) }
  }

  func plan(id: Int64) throws -> Plan? {
    try db.queryOne("SELECT * FROM plans WHERE id = ?", id).map(plan(from:))
  }

  func requirePlan(_ code: String, field: String) throws -> Plan {
    guard let plan = try plan(code: code) else { throw NotFoundError(field: field, value: code) }
    return plan
  }

  func requireSubscription(_ account: Int64) throws -> SubscriptionState {
    _ = try requireAccount(account, field: "account")
    guard let s = try subscription(account: account) else {
      throw StateError(subject: "account \(account)", rule: "has no subscription row (`ledgerd check` lists it)")
    }
    return s
  }

  // MARK: - Starting and renewing

  /// Writes a new account's subscription: its first period starts on `anchor`, whose invoice
  /// the scheduler issues (on a paid plan billed by subscription).
  func startSubscription(
    account: Int64, plan: Plan, billing: BillingMode, method: CollectionMethod, anchor: CivilDate,
    config: DunningConfig
  ) throws {
    let renews = billing == .subscription && plan.price.minorUnits > 0
    try db.run(
      """
      INSERT INTO subscriptions (account_id, billing, collection_method, anchor_date, renew_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?)
      """, account, billing.rawValue, method.rawValue, anchor.iso8601,
      renews ? SubscriptionPolicy.renewalTime(periodStart: anchor, config: config).iso8601 : nil, now)
  }

  /// When the next period's invoice of any account is due to be issued.
  public func nextRenewalTime() throws -> Instant? {
    try db.scalarText("SELECT renew_at FROM subscriptions WHERE renew_at IS NOT NULL ORDER BY renew_at LIMIT 1")
      .map { try Instant(iso8601: $0) }
  }

  /// Accounts whose next period's invoice is due by `until`, soonest first.
  public func dueRenewals(until: Instant, limit: Int) throws -> [Int64] {
    try db.query(
      "SELECT account_id FROM subscriptions WHERE renew_at IS NOT NULL AND renew_at <= ? ORDER BY renew_at, account_id LIMIT ?",
      until.iso8601, limit
    ).map { try $0.int("account_id") }
  }

  /// Issues the account's next period's invoice, in the caller's transaction: a change
  /// scheduled for the period takes effect first, then the invoice (one line for the plan,
  /// one per add-on running when the period starts), then the subscription moves on to the
  /// next period. The invoice's period start is unique per account: a second renewal of
  /// the same period cannot be written.
  public func renew(account: Int64, config: DunningConfig, actor: Actor) throws -> RenewalOutcome {
    try write {
      let s = try requireSubscription(account)
      guard let due = s.renewAt, due <= clock.now(),
        let r = SubscriptionPolicy.renewal(s, at: clock.now(), config: config)
      else {
        try db.run("UPDATE subscriptions SET renew_at = NULL, updated_at = ? WHERE account_id = ?", now, account)
        return RenewalOutcome(accountID: account, invoiceID: nil, period: nil)
      }
      let startsAt = SubscriptionPolicy.startOfDay(r.period.start, config: config)
      if let scheduled = s.scheduledPlan {
        try db.run(
          "UPDATE accounts SET plan_id = ?, updated_at = ? WHERE id = ?", scheduled.id, now, account)
        try recordEvent(
          account: account, actor: actor, kind: "plan_changed",
          reason: "plan \(s.plan.code) → \(scheduled.code) from the period starting \(r.period.start), as asked before",
          data: ["from_plan": s.plan.code, "to_plan": scheduled.code])
        if scheduled.price.minorUnits == 0 {
          try endAddons(account: account, at: startsAt, reason: "plan_change")
        }
      }
      var invoiceID: Int64?
      if !r.lines.isEmpty {
        var draft = try InvoiceDraft(
          accountID: account, currency: r.plan.price.currency, lines: r.lines, issueDate: r.issueDate,
          dueDate: r.dueDate, method: s.method)
        draft.period = r.period
        let invoice = try issueInvoice(draft, actor: actor)
        invoiceID = invoice.id
        try recordEvent(
          account: account, invoice: invoice.id, actor: actor, kind: "subscription_renewed",
          reason: "period \(r.period) of plan \(r.plan.code) invoiced as \(invoice.number) (\(invoice.total)"
            + (r.lines.count > 1 ? ", with \(r.lines.count - 1) add-on(s)" : "") + ")",
          data: ["period_start": r.period.start.iso8601, "period_end": r.period.end.iso8601])
      }
      try db.run(
        """
        UPDATE subscriptions SET anchor_date = ?, billed_until = ?, renew_at = ?, scheduled_plan_id = NULL,
          scheduled_by = NULL, scheduled_at = NULL, updated_at = ? WHERE account_id = ?
        """, r.anchor.iso8601, r.period.end.iso8601, r.nextRenewAt?.iso8601, now, account)
      return RenewalOutcome(accountID: account, invoiceID: invoiceID, period: r.period)
    }
  }

  /// A renewal that failed for this account alone is tried again at `retryAt`; the failure
  /// is an event, so the account's timeline says why no invoice came.
  public func postponeRenewal(account: Int64, retryAt: Instant, error: String, actor: Actor) throws {
    try db.run("UPDATE subscriptions SET renew_at = ? WHERE account_id = ?", retryAt.iso8601, account)
    try recordEvent(
      account: account, actor: actor, kind: "renewal_failed",
      reason: "the period's invoice could not be issued and is tried again at \(retryAt.iso8601): \(error)",
      data: ["retry_at": retryAt.iso8601])
  }

  // MARK: - Changes

  /// How the account is billed and collected from now on.
  public func setBilling(
    account: Int64, billing: BillingMode?, method: CollectionMethod?, actor: Actor, config: DunningConfig
  )
    throws
  {
    try write {
      let s = try requireSubscription(account)
      guard s.status != .closed else {
        throw StateError(subject: "account \(account)", rule: "is closed; its billing cannot change")
      }
      var changes: [String] = []
      if let method, method != s.method {
        try db.run("UPDATE subscriptions SET collection_method = ? WHERE account_id = ?", method.rawValue, account)
        changes.append("collection \(s.method.rawValue) → \(method.rawValue)")
      }
      if let billing, billing != s.billing {
        var next = s
        next.billing = billing
        // Switched on: billed from the period that starts after today (what runs now was
        // billed by hand, or not at all).
        let today = SubscriptionPolicy.localDate(clock.now(), config: config)
        let from = max(s.billedUntil ?? s.anchor, today > s.anchor ? s.cycle.period(containing: today).end : s.anchor)
        try db.run(
          "UPDATE subscriptions SET billing = ?, billed_until = ?, renew_at = ? WHERE account_id = ?", billing.rawValue,
          billing == .subscription ? from.iso8601 : s.billedUntil?.iso8601,
          billing == .subscription && next.renews
            ? SubscriptionPolicy.renewalTime(periodStart: from, config: config).iso8601 : nil, account)
        changes.append(
          "billing \(s.billing.rawValue) → \(billing.rawValue)"
            + (billing == .subscription ? " (periods invoiced from \(from))" : ""))
      }
      guard !changes.isEmpty else { return }
      try db.run("UPDATE subscriptions SET updated_at = ? WHERE account_id = ?", now, account)
      try recordEvent(account: account, actor: actor, kind: "billing_changed", reason: changes.joined(separator: "; "))
    }
  }

  /// Moves the account to plan `code`. An upgrade takes effect at once and its prorated
  /// difference is invoiced; a downgrade waits for the period's end, or with `immediately`
  /// takes effect now and its prorated difference becomes a credit note; a change between
  /// plans of different lengths or currencies waits for the period's end. Asking for the
  /// plan the account is on cancels a change scheduled for the period's end.
  public func changePlan(
    account: Int64, to code: String, immediately: Bool, reason: String?, actor: Actor, config: DunningConfig
  ) throws -> SubscriptionChange {
    let reason = try reason.map { try Validate.text($0, field: "--reason") }
    return try write {
      let s = try requireSubscription(account)
      let target = try requirePlan(code, field: "plan")
      guard s.status != .closed else {
        throw StateError(subject: "account \(account)", rule: "is closed; a closed account's plan cannot change")
      }
      let why = reason.map { ": \($0)" } ?? ""
      if target.id == s.plan.id {
        guard let scheduled = s.scheduledPlan else {
          throw StateError(subject: "account \(account)", rule: "is already on plan \(target.code)")
        }
        try clearScheduledPlan(account)
        // Add-ons that were to end with the plan keep running.
        try db.run(
          "UPDATE account_addons SET removed_at = NULL, removed_reason = NULL WHERE account_id = ? AND removed_reason = 'plan_change' AND removed_at > ?",
          account, now)
        let summary =
          "the change to plan \(scheduled.code) at the period's end is cancelled; the account stays on \(target.code)"
        try recordEvent(account: account, actor: actor, kind: "plan_change_cancelled", reason: summary + why)
        return SubscriptionChange(accountID: account, summary: summary, effective: "now")
      }
      let running = s.addons.filter { $0.endsAt == nil }
      if target.price.minorUnits > 0, let other = running.first(where: { $0.price.currency != target.price.currency }) {
        throw InputError(
          field: "plan",
          rule:
            "\(target.code) is billed in \(target.price.currency.code); the account's add-on \(other.code) is in \(other.price.currency.code) (remove it first)"
        )
      }
      let today = SubscriptionPolicy.localDate(clock.now(), config: config)
      let fromFree = s.plan.price.minorUnits == 0
      let sameTerms = s.plan.period == target.period && s.plan.price.currency == target.price.currency
      let upgrade = fromFree || (sameTerms && target.price.minorUnits >= s.plan.price.minorUnits)
      // Nothing invoiced yet: whatever the change, the first period's invoice bills it.
      let nothingInvoiced = s.billedUntil == nil && !fromFree
      if s.billing == .manual || nothingInvoiced || (upgrade && (sameTerms || fromFree)) || (immediately && sameTerms) {
        return try changePlanNow(s, to: target, today: today, why: why, actor: actor, config: config)
      }
      guard !immediately else {
        throw InputError(
          field: "--now",
          rule:
            "\(s.plan.code) and \(target.code) differ in period or currency: the change can only take effect at the period's end"
        )
      }
      // At the period's end: the renewal of the next period takes it in.
      let end = s.billedUntil ?? s.cycle.period(containing: today).end
      try db.run(
        "UPDATE subscriptions SET scheduled_plan_id = ?, scheduled_by = ?, scheduled_at = ?, updated_at = ? WHERE account_id = ?",
        target.id, actor.rawValue, now, now, account)
      if target.price.minorUnits == 0 {
        try endAddons(account: account, at: SubscriptionPolicy.startOfDay(end, config: config), reason: "plan_change")
      }
      let summary = "plan \(s.plan.code) → \(target.code) on \(end), at the end of the period invoiced"
      try recordEvent(
        account: account, actor: actor, kind: "plan_change_scheduled", reason: summary + why,
        data: ["from_plan": s.plan.code, "to_plan": target.code, "on": end.iso8601])
      return SubscriptionChange(accountID: account, summary: summary, effective: end.iso8601)
    }
  }

  /// A plan change that takes effect now, with its prorated invoice or credit note.
  func changePlanNow(
    _ s: SubscriptionState, to target: Plan, today: CivilDate, why: String, actor: Actor, config: DunningConfig
  ) throws -> SubscriptionChange {
    let account = s.accountID
    try db.run(
      "UPDATE accounts SET plan_id = ?, previous_plan_id = NULL, updated_at = ? WHERE id = ?", target.id, now, account)
    try clearScheduledPlan(account)
    var change = SubscriptionChange(
      accountID: account, summary: "plan \(s.plan.code) → \(target.code) now", effective: "now")
    var next = s
    next.plan = target
    next.scheduledPlan = nil
    let fromFree = s.plan.price.minorUnits == 0
    if s.billing == .manual {
      // Invoiced by hand: nothing is billed here.
    } else if fromFree && target.price.minorUnits > 0 {
      if next.anchor > today {
        // The first period has not begun: it is billed on the new plan when it does.
        next.renewAt = SubscriptionPolicy.renewalTime(periodStart: next.anchor, config: config)
      } else if s.plan.period == target.period,
        let p = try SubscriptionPolicy.prorate(
          target.price, s, today: today, credit: false, fromFree: true, config: config)
      {
        // The rest of the period running, then renewals from its end.
        try bill(
          &change, p, description: "\(target.name) (\(target.period.rawValue))", kind: .plan, s, today, config, actor)
        next.billedUntil = p.span.end
        next.renewAt = SubscriptionPolicy.renewalTime(periodStart: p.span.end, config: config)
      } else {
        // A plan of another length, or no proration: a first period starts today, billed
        // in full by the scheduler now.
        next.anchor = today
        next.billedUntil = today
        next.renewAt = SubscriptionPolicy.startOfDay(today, config: config)
      }
    } else {
      let difference = target.price.minorUnits - s.plan.price.minorUnits
      let money = Money(minorUnits: abs(difference), currency: s.plan.price.currency)
      if difference > 0, let p = try SubscriptionPolicy.prorate(money, s, today: today, credit: false, config: config) {
        try bill(
          &change, p, description: "\(target.name) (\(target.period.rawValue)) from \(s.plan.name)", kind: .plan, s,
          today, config, actor)
      } else if difference < 0,
        let p = try SubscriptionPolicy.prorate(money, s, today: today, credit: true, config: config)
      {
        try credit(&change, p, reason: "\(s.plan.name) → \(target.name)", account: account, actor: actor)
      }
      if target.price.minorUnits == 0 {
        if let note = try endAddonsNow(s, today: today, reason: "plan_change", actor: actor, config: config) {
          change.summary += "; add-ons ended, \(note.amount) credited as \(note.number)"
        }
        next.renewAt = nil
      }
    }
    try db.run(
      "UPDATE subscriptions SET anchor_date = ?, billed_until = ?, renew_at = ?, updated_at = ? WHERE account_id = ?",
      next.anchor.iso8601, next.billedUntil?.iso8601, next.renewAt?.iso8601, now, account)
    if s.status == .downgraded, target.price.minorUnits > 0 {
      try db.run("UPDATE accounts SET status = 'active' WHERE id = ? AND status = 'downgraded'", account)
      change.summary += "; the account is active again"
    }
    try recordEvent(
      account: account, invoice: change.invoice?.id, actor: actor, kind: "plan_changed", reason: change.summary + why,
      data: ["from_plan": s.plan.code, "to_plan": target.code])
    return change
  }

  /// Invoices a prorated amount at once (nothing when it rounds to zero).
  func bill(
    _ change: inout SubscriptionChange, _ p: ProratedAmount, description: String, kind: LineKind,
    _ s: SubscriptionState, _ today: CivilDate, _ config: DunningConfig, _ actor: Actor
  ) throws {
    change.prorated = p
    guard p.amount.minorUnits > 0 else { return }
    let invoice = try issueProrated(
      account: s.accountID, method: s.method, amount: p.amount,
      description: "\(description), \(p.span) (\(p.describedDays))", kind: kind, today: today,
      config: config, actor: actor)
    change.invoice = invoice
    change.summary += "; \(p.amount) invoiced for \(p.span) as \(invoice.number)"
  }

  /// Credits a prorated amount at once as a credit note (nothing when it is zero).
  func credit(_ change: inout SubscriptionChange, _ p: ProratedAmount, reason: String, account: Int64, actor: Actor)
    throws
  {
    change.prorated = p
    guard p.amount.minorUnits > 0 else { return }
    let note = try issueCreditNote(
      account: account, amount: p.amount, reason: "\(reason), \(p.span) (\(p.describedDays))",
      actor: actor)
    change.creditNote = note
    change.summary += "; \(p.amount) credited for \(p.span) as \(note.number)"
  }

  /// Adds a recurring add-on, billed from now: its prorated price for the rest of what is
  /// invoiced is invoiced at once. Adding one whose end is scheduled keeps it instead.
  public func addAddon(
    account: Int64, code: String, name: String, price: Money, reason: String?, actor: Actor, config: DunningConfig
  ) throws -> SubscriptionChange {
    let code = try Validate.planCode(code, field: "code")
    let name = try Validate.displayName(name, field: "--name")
    let reason = try reason.map { try Validate.text($0, field: "--reason") }
    guard price.minorUnits > 0 else { throw InputError(field: "--price", rule: "must be greater than zero") }
    try price.checkBound(field: "--price")
    return try write {
      let s = try requireSubscription(account)
      guard s.status != .closed else {
        throw StateError(subject: "account \(account)", rule: "is closed; add-ons cannot be added")
      }
      guard s.plan.price.minorUnits > 0 else {
        throw StateError(
          subject: "account \(account)", rule: "is on the free plan; add-ons go with a paid plan (choose one first)")
      }
      guard price.currency == s.plan.price.currency else {
        throw InputError(
          field: "--currency",
          rule:
            "the add-on is in \(price.currency.code); the account's plan \(s.plan.code) is billed in \(s.plan.price.currency.code)"
        )
      }
      let why = reason.map { ": \($0)" } ?? ""
      if let ending = s.addons.first(where: { $0.code == code }) {
        guard let end = ending.endsAt else {
          throw StateError(subject: "account \(account)", rule: "already has add-on \(code)")
        }
        try db.run("UPDATE account_addons SET removed_at = NULL, removed_reason = NULL WHERE id = ?", ending.id)
        let summary = "add-on \(code) kept: its end on \(end.date) is cancelled"
        try recordEvent(account: account, actor: actor, kind: "addon_kept", reason: summary + why)
        return SubscriptionChange(accountID: account, summary: summary, effective: "now")
      }
      try db.run(
        "INSERT INTO account_addons (account_id, code, description, price_minor, currency, added_at) VALUES (?, ?, ?, ?, ?, ?)",
        account, code, name, price.minorUnits, price.currency.code, now)
      var change = SubscriptionChange(
        accountID: account, summary: "add-on \(code) (\(name), \(price) per \(s.plan.period.rawValue)) added",
        effective: "now")
      let today = SubscriptionPolicy.localDate(clock.now(), config: config)
      if s.renews, let p = try SubscriptionPolicy.prorate(price, s, today: today, credit: false, config: config) {
        try bill(&change, p, description: name, kind: .addon, s, today, config, actor)
      }
      try recordEvent(
        account: account, invoice: change.invoice?.id, actor: actor, kind: "addon_added", reason: change.summary + why,
        data: ["code": code])
      return change
    }
  }

  /// Ends an add-on at the end of the period invoiced, or now with a credit note for the
  /// days left (`immediately`).
  public func removeAddon(
    account: Int64, code: String, immediately: Bool, reason: String?, actor: Actor, config: DunningConfig
  ) throws -> SubscriptionChange {
    let reason = try reason.map { try Validate.text($0, field: "--reason") }
    return try write {
      let s = try requireSubscription(account)
      guard s.status != .closed else {
        throw StateError(subject: "account \(account)", rule: "is closed; its add-ons have ended")
      }
      let why = reason.map { ": \($0)" } ?? ""
      guard let addon = s.addons.first(where: { $0.code == code }) else {
        if let ended = try addons(account: account, includeEnded: true).last(where: { $0.code == code }),
          let end = ended.endsAt
        {
          throw StateError(subject: "add-on \(code)", rule: "is already removed: it ended on \(end.date)")
        }
        throw NotFoundError(field: "addon", value: code)
      }
      if let end = addon.endsAt {
        throw StateError(subject: "add-on \(code)", rule: "is already removed: it ends on \(end.date)")
      }
      let today = SubscriptionPolicy.localDate(clock.now(), config: config)
      if !immediately && s.renews, let end = s.billedUntil {
        let at = SubscriptionPolicy.startOfDay(max(end, today), config: config)
        try db.run(
          "UPDATE account_addons SET removed_at = ?, removed_reason = 'removed' WHERE id = ?", at.iso8601, addon.id)
        let summary = "add-on \(code) ends on \(at.date), at the end of the period invoiced"
        try recordEvent(account: account, actor: actor, kind: "addon_removal_scheduled", reason: summary + why)
        return SubscriptionChange(accountID: account, summary: summary, effective: at.date.iso8601)
      }
      try db.run("UPDATE account_addons SET removed_at = ?, removed_reason = 'removed' WHERE id = ?", now, addon.id)
      var change = SubscriptionChange(accountID: account, summary: "add-on \(code) removed now", effective: "now")
      if s.renews, let p = try SubscriptionPolicy.prorate(addon.price, s, today: today, credit: true, config: config) {
        try credit(&change, p, reason: "\(addon.name) removed", account: account, actor: actor)
      }
      try recordEvent(
        account: account, actor: actor, kind: "addon_removed", reason: change.summary + why, data: ["code": code])
      return change
    }
  }

  /// Closes an account: nothing renews and its add-ons end. Refused while it has open
  /// invoices (void or settle them first).
  public func closeAccount(_ account: Int64, reason: String, actor: Actor) throws -> Account {
    let reason = try Validate.text(reason, field: "--reason")
    return try write {
      let before = try requireAccount(account, field: "account")
      guard before.status != .closed else { throw StateError(subject: "account \(account)", rule: "is already closed") }
      let open = try db.query(
        "SELECT number FROM invoices WHERE account_id = ? AND status = 'open' ORDER BY id LIMIT 5", account
      ).map { try $0.string("number") }
      guard open.isEmpty else {
        throw StateError(
          subject: "account \(account)",
          rule: "has open invoices (\(open.joined(separator: ", "))); void or settle them first")
      }
      try db.run("UPDATE accounts SET status = 'closed', updated_at = ? WHERE id = ?", now, account)
      try db.run(
        "UPDATE subscriptions SET renew_at = NULL, scheduled_plan_id = NULL, scheduled_by = NULL, scheduled_at = NULL, updated_at = ? WHERE account_id = ?",
        now, account)
      try endAddons(account: account, at: clock.now(), reason: "closed")
      try recordEvent(account: account, actor: actor, kind: "account_closed", reason: "account closed: \(reason)")
      return try requireAccount(account)
    }
  }

  // MARK: - Helpers

  /// After a restored plan: the add-ons the downgrade ended run again, and renewals go on
  /// from the end of the period the paid invoice covered. Their names.
  func restoreAddonsAndRenewals(_ account: Int64, config: DunningConfig) throws -> [String] {
    let ended = try db.query(
      """
      SELECT code, description, price_minor, currency FROM account_addons
      WHERE account_id = ?1 AND removed_reason = 'downgrade'
        AND removed_at = (SELECT max(removed_at) FROM account_addons WHERE account_id = ?1 AND removed_reason = 'downgrade')
        AND NOT EXISTS (SELECT 1 FROM account_addons l WHERE l.account_id = ?1 AND l.code = account_addons.code AND l.removed_at IS NULL)
      ORDER BY id
      """, account)
    var names: [String] = []
    for row in ended {
      try db.run(
        "INSERT INTO account_addons (account_id, code, description, price_minor, currency, added_at) VALUES (?, ?, ?, ?, ?, ?)",
        account, try row.string("code"), try row.string("description"), try row.int("price_minor"),
        try row.string("currency"), now)
      names.append(try row.string("description"))
    }
    guard let s = try subscription(account: account), s.renews else { return names }
    let today = SubscriptionPolicy.localDate(clock.now(), config: config)
    let from = max(s.billedUntil ?? s.anchor, today >= s.anchor ? s.cycle.period(containing: today).end : s.anchor)
    try db.run(
      "UPDATE subscriptions SET billed_until = ?, renew_at = ?, updated_at = ? WHERE account_id = ?", from.iso8601,
      SubscriptionPolicy.renewalTime(periodStart: from, config: config).iso8601, now, account)
    return names
  }

  func clearScheduledPlan(_ account: Int64) throws {
    try db.run(
      "UPDATE subscriptions SET scheduled_plan_id = NULL, scheduled_by = NULL, scheduled_at = NULL WHERE account_id = ?",
      account)
  }

  /// Ends every add-on running at `at` (or ending later) at `at`; their names.
  @discardableResult
  func endAddons(account: Int64, at: Instant, reason: String) throws -> [String] {
    let names = try db.query(
      "SELECT description FROM account_addons WHERE account_id = ? AND (removed_at IS NULL OR removed_at > ?) ORDER BY id",
      account, at.iso8601
    ).map { try $0.string("description") }
    try db.run(
      "UPDATE account_addons SET removed_at = ?1, removed_reason = ?2 WHERE account_id = ?3 AND (removed_at IS NULL OR removed_at > ?1)",
      at.iso8601, reason, account)
    return names
  }

  /// Ends the running add-ons now, with one credit note for their days left.
  func endAddonsNow(_ s: SubscriptionState, today: CivilDate, reason: String, actor: Actor, config: DunningConfig)
    throws -> CreditNote?
  {
    var total: Money?
    var names: [String] = []
    for addon in s.addons {
      if s.renews, let p = try SubscriptionPolicy.prorate(addon.price, s, today: today, credit: true, config: config) {
        total = try (total ?? Money.zero(p.amount.currency)).adding(p.amount)
      }
      names.append(addon.name)
    }
    try endAddons(account: s.accountID, at: clock.now(), reason: reason)
    guard let total, total.minorUnits > 0 else { return nil }
    return try issueCreditNote(
      account: s.accountID, amount: total, reason: "add-ons ended with the plan: \(names.joined(separator: ", "))",
      actor: actor)
  }

  /// A prorated invoice, issued now and due today (card) or after the transfer terms.
  func issueProrated(
    account: Int64, method: CollectionMethod, amount: Money, description: String, kind: LineKind, today: CivilDate,
    config: DunningConfig, actor: Actor
  ) throws -> Invoice {
    let draft = try InvoiceDraft(
      accountID: account, currency: amount.currency,
      lines: [InvoiceLineDraft(description: String(description.prefix(200)), kind: kind, unitAmount: amount)],
      issueDate: today,
      dueDate: method == .card ? today : today.adding(days: config.subscriptions.transferTermsDays), method: method)
    return try issueInvoice(draft, actor: actor)
  }

  /// A credit note: revenue given back as credit on the account (a reversal of revenue into
  /// customer credit), which the account's next invoice consumes.
  public func issueCreditNote(account: Int64, amount: Money, reason: String, actor: Actor) throws -> CreditNote {
    let id = (try db.scalarInt("SELECT coalesce(max(id), 0) + 1 FROM credit_notes")) ?? 1
    let digits = String(id)
    let number = "CN-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    let reason = String(reason.prefix(500))
    let entry = try post(
      try JournalEntry(
        kind: .reversal, memo: "credit note \(number): \(reason)",
        lines: [.debit(.revenue, amount), .credit(.customerCredit, amount, customer: account)]))
    try db.run(
      """
      INSERT INTO credit_notes (id, number, account_id, amount_minor, currency, reason, entry_id, actor, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      """, id, number, account, amount.minorUnits, amount.currency.code, reason, entry, actor.rawValue, now)
    try recordEvent(
      account: account, actor: actor, kind: "credit_note_issued",
      reason: "credit note \(number) of \(amount) to the account's credit: \(reason)", data: ["number": number])
    return CreditNote(id: id, number: number, accountID: account, amount: amount, reason: reason)
  }
}

extension LedgerStore {
  /// What the account's subscription does next, in words: the next period's invoice and
  /// what it will bill, a change waiting for the period's end, add-ons ending.
  public func subscriptionOutlook(account: Int64, config: DunningConfig) throws -> [String] {
    guard let s = try subscription(account: account) else { return [] }
    var lines: [String] = []
    if s.billing == .manual {
      lines.append("invoiced by hand: no invoice is issued by the scheduler")
    }
    if let at = s.renewAt, let r = SubscriptionPolicy.renewal(s, at: at, config: config) {
      if r.lines.isEmpty {
        lines.append("plan \(r.plan.code) from \(r.period.start): nothing more to invoice")
      } else {
        let total = try Money.sum(r.lines.map { try $0.amount() }, currency: r.plan.price.currency)
        lines.append(
          "period \(r.period) invoiced on \(at.iso8601.prefix(16).replacingOccurrences(of: "T", with: " ")): "
            + r.lines.map {
              "\($0.description.components(separatedBy: ", ").first ?? "") \($0.unitAmount.amountString)"
            }
            .joined(separator: " + ") + " = \(total) (\(s.method.rawValue))")
      }
    } else if s.billing == .subscription && s.status != .closed && s.plan.price.minorUnits == 0 {
      lines.append("on the free plan: nothing is invoiced; `ledgerd account plan \(account) CODE` takes a paid plan")
    }
    if let scheduled = s.scheduledPlan {
      lines.append(
        "plan \(s.plan.code) → \(scheduled.code) when the period invoiced ends (\(s.billedUntil?.iso8601 ?? "?"))")
    }
    for addon in s.addons {
      if let end = addon.endsAt { lines.append("add-on \(addon.code) (\(addon.name)) ends on \(end.date)") }
    }
    return lines
  }
}
