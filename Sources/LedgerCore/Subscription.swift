/// How an account's invoices come about.
public enum BillingMode: String, CaseIterable, Sendable, Codable {
  /// The scheduler issues each period's invoice (plan line and one line per add-on).
  case subscription
  /// Invoices are issued by hand only (`ledgerd invoice issue`).
  case manual

  public init(parsing raw: String, field: String = "--billing") throws {
    guard let mode = BillingMode(rawValue: raw) else {
      throw InputError(field: field, rule: "'\(raw)' must be one of subscription, manual")
    }
    self = mode
  }
}

/// How a mid-period change is billed.
public enum ProrationRule: String, CaseIterable, Sendable, Codable {
  /// By the days left in the period: an upgrade or an add-on is invoiced at once for them,
  /// rounded down; a plan or add-on ended at once (`--now`) is credited for them, rounded up.
  /// Neither rounding takes a cent from the customer.
  case byDay = "by_day"
  /// Nothing is invoiced or credited mid-period: changes are billed from the next period.
  case none
}

/// The rules of subscriptions, configurable beside the dunning rules.
public struct SubscriptionConfig: Sendable, Equatable {
  /// Days before a period starts that its invoice is issued (0: on its first day).
  public var renewalLeadDays = 0
  /// Days after a period's start that a transfer invoice for it falls due.
  public var transferTermsDays = 14
  public var proration = ProrationRule.byDay

  public init() {}
}

/// A span of days: `start` included, `end` excluded.
public struct DateSpan: Sendable, Equatable, Encodable, CustomStringConvertible {
  public let start: CivilDate
  public let end: CivilDate

  public init(start: CivilDate, end: CivilDate) {
    self.start = start
    self.end = end
  }

  public var days: Int { start.days(until: end) }

  enum CodingKeys: String, CodingKey { case start, end, days }
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(start.iso8601, forKey: .start)
    try c.encode(end.iso8601, forKey: .end)
    try c.encode(days, forKey: .days)
  }

  /// "2027-01-31 to 2027-02-27": the last day included, as an invoice line says it.
  public var description: String { "\(start) to \(end.adding(days: -1))" }
}

extension CivilDate {
  /// The date `months` later on `day` of that month, or on the month's last day when it is
  /// shorter (the 31st gives the 30th, the 28th or the 29th).
  public func addingMonths(_ months: Int, onDay day: Int) -> CivilDate {
    let index = year * 12 + (month - 1) + months
    let y = index >= 0 ? index / 12 : (index - 11) / 12
    let m = index - y * 12 + 1
    let d = min(day, CivilDate.daysIn(month: m, year: y))
    return CivilDate(daysSinceEpoch: (try? CivilDate(year: y, month: m, day: d))?.daysSinceEpoch ?? daysSinceEpoch)
  }
}

/// An account's periods: they start on the anchor and then every month (or year) on the
/// anchor's day, each computed from the anchor, so a period that started on the 28th of
/// February still leads to the 31st of March.
public struct BillingCycle: Sendable, Equatable {
  public let anchor: CivilDate
  public let period: BillingPeriod

  public init(anchor: CivilDate, period: BillingPeriod) {
    self.anchor = anchor
    self.period = period
  }

  var monthsPerPeriod: Int { period == .month ? 1 : 12 }

  /// The start of period `k` (0: the anchor's).
  public func start(_ k: Int) -> CivilDate { anchor.addingMonths(k * monthsPerPeriod, onDay: anchor.day) }

  /// The period `date` falls in; the first period for a date before the anchor.
  public func period(containing date: CivilDate) -> DateSpan {
    guard date >= anchor else { return DateSpan(start: start(0), end: start(1)) }
    let months = (date.year - anchor.year) * 12 + (date.month - anchor.month)
    var k = max(0, months / monthsPerPeriod)
    while k > 0 && start(k) > date { k -= 1 }
    while start(k + 1) <= date { k += 1 }
    return DateSpan(start: start(k), end: start(k + 1))
  }
}

/// A recurring extra of an account, billed as its own line each period.
public struct Addon: Sendable, Equatable, Encodable {
  public let id: Int64
  public let code: String
  public let name: String
  public let price: Money
  public let addedAt: Instant
  /// When it ends (it may lie ahead: removed at the period's end); nil while it runs.
  public let endsAt: Instant?

  public init(id: Int64, code: String, name: String, price: Money, addedAt: Instant, endsAt: Instant?) {
    self.id = id
    self.code = code
    self.name = name
    self.price = price
    self.addedAt = addedAt
    self.endsAt = endsAt
  }

  enum CodingKeys: String, CodingKey {
    case id, code, name, price
    case addedAt = "added_at"
    case endsAt = "ends_at"
  }
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(id, forKey: .id)
    try c.encode(code, forKey: .code)
    try c.encode(name, forKey: .name)
    try c.encode(price, forKey: .price)
    try c.encode(addedAt.iso8601, forKey: .addedAt)
    try c.encodeIfPresent(endsAt?.iso8601, forKey: .endsAt)
  }

}

/// Everything the subscription rules read about one account.
public struct SubscriptionState: Sendable, Equatable {
  public var accountID: Int64
  public var status: AccountStatus
  public var billing: BillingMode
  public var method: CollectionMethod
  public var plan: Plan
  public var anchor: CivilDate
  public var billedUntil: CivilDate?
  public var renewAt: Instant?
  public var scheduledPlan: Plan?
  /// Add-ons that run now or ended after the last period invoiced began.
  public var addons: [Addon]

  public init(
    accountID: Int64, status: AccountStatus, billing: BillingMode, method: CollectionMethod, plan: Plan,
    anchor: CivilDate, billedUntil: CivilDate?, renewAt: Instant?, scheduledPlan: Plan?, addons: [Addon]
  ) {
    self.accountID = accountID
    self.status = status
    self.billing = billing
    self.method = method
    self.plan = plan
    self.anchor = anchor
    self.billedUntil = billedUntil
    self.renewAt = renewAt
    self.scheduledPlan = scheduledPlan
    self.addons = addons
  }

  public var cycle: BillingCycle { BillingCycle(anchor: anchor, period: plan.period) }
  /// Whether the scheduler invoices its periods: billed by subscription, open, on a paid plan.
  public var renews: Bool { billing == .subscription && status != .closed && plan.price.minorUnits > 0 }
}

/// The invoice of one period, as the rules decide it.
public struct Renewal: Sendable, Equatable {
  public let period: DateSpan
  /// The plan billed: the account's, or the one a change scheduled for this period.
  public let plan: Plan
  /// The anchor from this period on (a change to a plan of another length restarts it).
  public let anchor: CivilDate
  /// The invoice's lines; none on a free plan (the period is not invoiced).
  public let lines: [InvoiceLineDraft]
  public let issueDate: CivilDate
  public let dueDate: CivilDate
  /// When the next period's invoice is issued; nil when none is (a free plan).
  public let nextRenewAt: Instant?
}

/// What a renewal did: the invoice it issued (none on a free plan) and its period.
public struct RenewalOutcome: Sendable, Equatable {
  public let accountID: Int64
  public let invoiceID: Int64?
  public let period: DateSpan?

  public init(accountID: Int64, invoiceID: Int64?, period: DateSpan?) {
    self.accountID = accountID
    self.invoiceID = invoiceID
    self.period = period
  }
}

/// What a plan or add-on change bills.
public struct ProratedAmount: Sendable, Equatable {
  /// The amount, zero when nothing is owed either way.
  public let amount: Money
  /// The days it covers of the period running, out of that period's days.
  public let days: Int
  public let periodDays: Int
  /// Whole periods beyond the one running it also covers (invoiced ahead), billed in full.
  public let wholePeriods: Int
  /// The span it covers: from the change to the end of what has been invoiced.
  public let span: DateSpan
}

extension ProratedAmount: Encodable {
  /// "22 of 30 days", or "22 of 30 days and 1 whole period(s)".
  public var describedDays: String {
    "\(days) of \(periodDays) days" + (wholePeriods > 0 ? " and \(wholePeriods) whole period(s)" : "")
  }

  enum CodingKeys: String, CodingKey {
    case amount, days
    case periodDays = "period_days"
    case wholePeriods = "whole_periods"
    case span
  }
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(amount, forKey: .amount)
    try c.encode(days, forKey: .days)
    try c.encode(wholePeriods, forKey: .wholePeriods)
    try c.encode(periodDays, forKey: .periodDays)
    try c.encode(span, forKey: .span)
  }
}

/// The subscription rules: pure decisions over an account's subscription and the time.
public enum SubscriptionPolicy {
  /// The operator's calendar day at `t`.
  public static func localDate(_ t: Instant, config: DunningConfig) -> CivilDate {
    t.adding(seconds: Int64(config.collectionUTCOffsetSeconds)).date
  }

  /// The first instant of `date` in the operator's zone.
  public static func startOfDay(_ date: CivilDate, config: DunningConfig) -> Instant {
    Instant(date).adding(seconds: -Int64(config.collectionUTCOffsetSeconds))
  }

  /// When the invoice of the period starting on `start` is issued.
  public static func renewalTime(periodStart start: CivilDate, config: DunningConfig) -> Instant {
    startOfDay(start.adding(days: -config.subscriptions.renewalLeadDays), config: config)
  }

  /// The account's next period and its invoice, or nil when nothing renews (manual
  /// billing, a closed account). A change scheduled for the period's end takes effect in
  /// it; on a free plan the period has no invoice and nothing renews after it.
  public static func renewal(_ s: SubscriptionState, at now: Instant, config: DunningConfig) -> Renewal? {
    guard s.billing == .subscription, s.status != .closed else { return nil }
    let start = s.billedUntil ?? s.anchor
    let plan = s.scheduledPlan ?? s.plan
    let anchor = plan.period == s.plan.period ? s.anchor : start
    let period = BillingCycle(anchor: anchor, period: plan.period).period(containing: start)
    let today = localDate(now, config: config)
    guard plan.price.minorUnits > 0 else {
      return Renewal(
        period: period, plan: plan, anchor: anchor, lines: [], issueDate: today, dueDate: today, nextRenewAt: nil)
    }
    // Add-ons that run in the period and were not billed before it: every one added before
    // its end (one added after the period's invoice was prorated for it) and not ended by
    // its start.
    let startsAt = startOfDay(period.start, config: config)
    let endsAt = startOfDay(period.end, config: config)
    let addons = s.addons.filter {
      $0.addedAt < endsAt && ($0.endsAt.map { $0 > startsAt } ?? true) && $0.price.currency == plan.price.currency
    }
    var lines = [
      InvoiceLineDraft(
        description: "\(plan.name) (\(plan.period.rawValue)), \(period)", kind: .plan, unitAmount: plan.price)
    ]
    lines += addons.map {
      InvoiceLineDraft(description: "\($0.name), \(period)", kind: .addon, unitAmount: $0.price)
    }
    let due =
      s.method == .card ? period.start : period.start.adding(days: config.subscriptions.transferTermsDays)
    return Renewal(
      period: period, plan: plan, anchor: anchor, lines: lines, issueDate: today, dueDate: max(due, today),
      nextRenewAt: renewalTime(periodStart: period.end, config: config))
  }

  /// What a change of `perPeriod` (the new price less the old, or the old less the new)
  /// from `today` to the end of what is invoiced comes to, by the days left: rounded down
  /// when the customer pays it, up when they are credited. From a free plan (`fromFree`),
  /// what is left of the period running. Nil when the rule bills nothing mid-period or
  /// nothing invoiced runs past today (the next period's invoice will bill the change).
  public static func prorate(
    _ perPeriod: Money, _ s: SubscriptionState, today: CivilDate, credit: Bool, fromFree: Bool = false,
    config: DunningConfig
  ) throws -> ProratedAmount? {
    guard config.subscriptions.proration == .byDay, s.billing == .subscription, today >= s.anchor else { return nil }
    let period = s.cycle.period(containing: today)
    let end = fromFree ? period.end : (s.billedUntil ?? today)
    guard end > today else { return nil }
    let span = DateSpan(start: today, end: end)
    // The current period by its days left; each whole period invoiced beyond it (a
    // renewal issued ahead) in full.
    let days = min(end, period.end).days(since: today)
    var amount = try prorated(perPeriod, days: days, of: period.days, roundUp: credit)
    var next = period
    var whole = 0
    while next.end < end {
      next = s.cycle.period(containing: next.end)
      amount = try amount.adding(perPeriod)
      whole += 1
    }
    return ProratedAmount(amount: amount, days: days, periodDays: period.days, wholePeriods: whole, span: span)
  }

  /// `amount × days ÷ of`, rounded down or up to the minor unit, in integers.
  public static func prorated(_ amount: Money, days: Int, of total: Int, roundUp: Bool) throws -> Money {
    precondition(total > 0 && days >= 0)
    let (product, overflow) = amount.minorUnits.multipliedReportingOverflow(by: Int64(days))
    guard !overflow else { throw InputError(field: "amount", rule: "\(amount) × \(days) days is out of range") }
    let (q, r) = product.quotientAndRemainder(dividingBy: Int64(total))
    return Money(minorUnits: q + (roundUp && r > 0 ? 1 : 0), currency: amount.currency)
  }
}

extension CivilDate {
  /// Days from `other` to this date.
  public func days(since other: CivilDate) -> Int { other.days(until: self) }
}
