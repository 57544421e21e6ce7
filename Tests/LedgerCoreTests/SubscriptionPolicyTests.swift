import Testing

@testable import LedgerCore

/// The subscription rules as pure functions: periods from the anchor, the renewal's lines
/// and dates, and proration's rounding, which never takes a cent from the customer.
@Suite struct SubscriptionPolicyTests {
  func date(_ text: String) throws -> CivilDate { try CivilDate(iso8601: text) }
  let pro = Plan(id: 2, code: "pro", name: "Pro", price: Money(minorUnits: 1900, currency: .eur), period: .month)

  func state(_ plan: Plan, anchor: String, billedUntil: String? = nil, addons: [Addon] = []) throws
    -> SubscriptionState
  {
    SubscriptionState(
      accountID: 1, status: .active, billing: .subscription, method: .card, plan: plan, anchor: try date(anchor),
      billedUntil: try billedUntil.map(date), renewAt: nil, scheduledPlan: nil, addons: addons)
  }

  @Test(arguments: [
    ("2027-01-31", 1, "2027-02-28"), ("2028-01-31", 1, "2028-02-29"), ("2027-01-31", 2, "2027-03-31"),
    ("2027-01-31", 3, "2027-04-30"), ("2027-12-15", 1, "2028-01-15"), ("2027-03-31", -1, "2027-02-28"),
    ("2028-02-29", 12, "2029-02-28"), ("2028-02-29", 48, "2032-02-29"),
  ])
  func monthsAreAddedOnTheAnchorsDayOrTheMonthsLast(start: String, months: Int, expected: String) throws {
    let d = try date(start)
    #expect(d.addingMonths(months, onDay: d.day) == (try date(expected)))
  }

  @Test func periodsAreComputedFromTheAnchorNotFromTheLastPeriod() throws {
    let cycle = BillingCycle(anchor: try date("2027-01-31"), period: .month)
    let starts = (0..<5).map { cycle.start($0).iso8601 }
    #expect(starts == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"])
    let march = cycle.period(containing: try date("2027-03-15"))
    #expect(march == DateSpan(start: try date("2027-02-28"), end: try date("2027-03-31")))
    #expect(march.days == 31)
    #expect(cycle.period(containing: try date("2027-03-31")).start == (try date("2027-03-31")))
    #expect(cycle.period(containing: try date("2026-12-01")).start == (try date("2027-01-31")))
    let year = BillingCycle(anchor: try date("2028-02-29"), period: .year)
    #expect(year.period(containing: try date("2029-03-01")).start == (try date("2029-02-28")))
    #expect(year.period(containing: try date("2029-03-01")).end == (try date("2030-02-28")))
  }

  @Test func aRenewalBillsThePlanAndTheAddonsRunningInThePeriod() throws {
    let added = Instant(try date("2027-02-10"), hour: 9)
    let addons = [
      Addon(
        id: 1, code: "backups", name: "Extra backups", price: Money(minorUnits: 500, currency: .eur), addedAt: added,
        endsAt: nil),
      Addon(
        id: 2, code: "dns", name: "DNS", price: Money(minorUnits: 200, currency: .eur), addedAt: added,
        endsAt: Instant(try date("2027-03-31"))),
    ]
    var config = DunningConfig()
    let s = try state(pro, anchor: "2027-01-31", billedUntil: "2027-03-31", addons: addons)
    let r = try #require(SubscriptionPolicy.renewal(s, at: Instant(try date("2027-03-31")), config: config))
    #expect(r.period == DateSpan(start: try date("2027-03-31"), end: try date("2027-04-30")))
    #expect(r.lines.map(\.unitAmount.minorUnits) == [1900, 500])  // DNS ended when the period began
    #expect(r.lines.map(\.kind) == [.plan, .addon])
    #expect(r.dueDate == (try date("2027-03-31")))
    #expect(r.nextRenewAt == Instant(try date("2027-04-30")))
    // Issued five days ahead, in the operator's zone (UTC+02:00: midnight there is 22:00 UTC).
    config.subscriptions.renewalLeadDays = 5
    config.collectionUTCOffsetSeconds = 2 * 3600
    #expect(
      SubscriptionPolicy.renewalTime(periodStart: try date("2027-04-30"), config: config)
        == (try Instant(iso8601: "2027-04-24T22:00:00Z")))
    // A transfer invoice falls due after the terms; a free plan invoices nothing.
    var transfer = s
    transfer.method = .transfer
    #expect(
      SubscriptionPolicy.renewal(transfer, at: Instant(try date("2027-03-31")), config: DunningConfig())?.dueDate
        == (try date("2027-04-14")))
    var free = s
    free.scheduledPlan = Plan(id: 1, code: "free", name: "Free", price: .zero(.eur), period: .month)
    let freeRenewal = try #require(
      SubscriptionPolicy.renewal(free, at: Instant(try date("2027-03-31")), config: config))
    #expect(freeRenewal.lines.isEmpty)
    #expect(freeRenewal.nextRenewAt == nil)
  }

  @Test(arguments: [
    // amount, days, of, charged (rounded down), credited (rounded up)
    (1000, 20, 30, 666, 667), (500, 13, 30, 216, 217), (1000, 9, 30, 300, 300), (1900, 20, 31, 1225, 1226),
    (1, 1, 31, 0, 1), (1900, 31, 31, 1900, 1900), (0, 10, 30, 0, 0),
  ])
  func prorationRoundsInTheCustomersFavour(amount: Int64, days: Int, of total: Int, down: Int64, up: Int64) throws {
    let money = Money(minorUnits: amount, currency: .eur)
    #expect(try SubscriptionPolicy.prorated(money, days: days, of: total, roundUp: false).minorUnits == down)
    #expect(try SubscriptionPolicy.prorated(money, days: days, of: total, roundUp: true).minorUnits == up)
  }

  @Test func prorationCoversWhatIsInvoicedAndNothingBeforeTheFirstPeriod() throws {
    let config = DunningConfig()
    let difference = Money(minorUnits: 1000, currency: .eur)
    // Nothing invoiced yet: the first period's invoice will bill the change.
    #expect(
      try SubscriptionPolicy.prorate(
        difference, try state(pro, anchor: "2027-04-01"), today: try date("2027-04-11"), credit: false,
        config: config) == nil)
    // April invoiced: 20 of its 30 days.
    let april = try #require(
      try SubscriptionPolicy.prorate(
        difference, try state(pro, anchor: "2027-04-01", billedUntil: "2027-05-01"), today: try date("2027-04-11"),
        credit: false, config: config))
    #expect(april.amount.minorUnits == 666)
    #expect(april.days == 20 && april.periodDays == 30 && april.wholePeriods == 0)
    // May invoiced ahead as well: the whole of May on top.
    let ahead = try #require(
      try SubscriptionPolicy.prorate(
        difference, try state(pro, anchor: "2027-04-01", billedUntil: "2027-06-01"), today: try date("2027-04-11"),
        credit: true, config: config))
    #expect(ahead.amount.minorUnits == 667 + 1000 && ahead.wholePeriods == 1)
    // From the free plan: the rest of the period running, whatever was invoiced before.
    let retaken = try #require(
      try SubscriptionPolicy.prorate(
        pro.price, try state(pro, anchor: "2027-03-01", billedUntil: "2027-03-01"), today: try date("2027-03-12"),
        credit: false, fromFree: true, config: config))
    #expect(retaken.amount.minorUnits == 1225)
    var none = config
    none.subscriptions.proration = .none
    #expect(
      try SubscriptionPolicy.prorate(
        difference, try state(pro, anchor: "2027-04-01", billedUntil: "2027-05-01"), today: try date("2027-04-11"),
        credit: false, config: none) == nil)
  }
}
