import LedgerCore

/// The scheduler's repositories in memory: what a second backend implements, kept small.
/// A write runs on a copy of the book and keeps it only if it returns; money is counted per
/// invoice (no journal), which is all the scheduler reads of it.
final class MemoryLedger: SchedulerRepository {
  struct Invoice {
    let id: Int64
    let number: String
    let accountID: Int64
    let total: Money
    var paid: Int64 = 0
    var status: InvoiceStatus = .open
    var state: CollectionState
    var next: ScheduledAction?
    var inFlight = false
  }

  struct Card {
    let id: Int64
    let accountID: Int64
    let token: String
    let expiry: CardExpiry
    var isDefault: Bool
    var status: CardStatus = .active
  }

  struct Attempt {
    let id: Int64
    let key: String
    let accountID: Int64
    let cardID: Int64
    let amount: Money
    let createdAt: Instant
    let invoices: [(id: Int64, amount: Int64)]
    var status: AttemptStatus = .pending
    var reason: DeclineReason?
    var processorRef: String?
  }

  struct Book {
    var plans: [String: Plan] = [:]
    var accounts: [Int64: (status: AccountStatus, plan: String)] = [:]
    var cards: [Int64: Card] = [:]
    var invoices: [Int64: Invoice] = [:]
    var attempts: [Int64: Attempt] = [:]
    var events: [(account: Int64?, invoice: Int64?, kind: String, reason: String)] = []
    var notices: [String: (account: Int64, kind: String, data: [String: String])] = [:]
    var nextID: Int64 = 1
  }

  let clock: LedgerClock
  let createdAt: Instant
  var book = Book()

  init(clock: LedgerClock) {
    self.clock = clock
    self.createdAt = clock.now()
    for (id, code, price) in [(Int64(1), "free", Int64(0)), (2, "pro", 1900)] {
      book.plans[code] = Plan(
        id: id, code: code, name: code, price: Money(minorUnits: price, currency: .eur), period: .month)
    }
  }

  private func newID() -> Int64 {
    defer { book.nextID += 1 }
    return book.nextID
  }

  // MARK: - Setting up a book

  func addAccount(plan: String = "pro") -> Int64 {
    let id = newID()
    book.accounts[id] = (.active, plan)
    return id
  }

  func addCard(account: Int64, token: String, expiry: String = "12/2030") throws -> Int64 {
    let id = newID()
    let first = !book.cards.values.contains { $0.accountID == account && $0.status != .removed }
    book.cards[id] = Card(
      id: id, accountID: account, token: token, expiry: try CardExpiry(parsing: expiry), isDefault: first)
    return id
  }

  /// A card invoice of `minor` cents, issued now and due today, scheduled by the policy.
  func issue(account: Int64, minor: Int64, config: DunningConfig) throws -> Int64 {
    let id = newID()
    let now = clock.now()
    book.invoices[id] = Invoice(
      id: id, number: "M-\(id)", accountID: account, total: Money(minorUnits: minor, currency: .eur),
      state: CollectionState(method: .card, issuedAt: now, dueDate: now.date, hasUsableCard: false))
    var cards: [Int64: CardAvailability] = [:]
    try saveSchedule(
      invoiceID: id,
      collectionState(invoiceID: id, config: config, cards: &cards).flatMap { DunningPolicy.next($0, config: config) })
    return id
  }

  // MARK: - LedgerTransactions

  func read<T>(_ body: () throws -> T) throws -> T { try body() }

  func write<T>(_ body: () throws -> T) throws -> T {
    let saved = book
    do {
      return try body()
    } catch {
      book = saved
      throw error
    }
  }

  func isolated<T>(_ body: () throws -> T) throws -> T { try write(body) }
  func isOwnFailure(_ error: Error) -> Bool { error is InputError || error is NotFoundError || error is StateError }
  func isFatal(_ error: Error) -> Bool { false }

  // MARK: - CollectionRepository

  func dueActions(until: Instant, limit: Int) throws -> [DueAction] {
    book.invoices.values
      .filter { $0.status == .open && !$0.inFlight && ($0.next.map { $0.at <= until } ?? false) }
      .sorted { ($0.next!.at, $0.id) < ($1.next!.at, $1.id) }
      .prefix(limit)
      .map {
        DueAction(
          invoiceID: $0.id, number: $0.number, accountID: $0.accountID, currency: $0.total.currency,
          due: Money(minorUnits: $0.total.minorUnits - $0.paid, currency: $0.total.currency), action: $0.next!.action,
          at: $0.next!.at)
      }
  }

  func nextActionTime() throws -> Instant? {
    book.invoices.values.filter { $0.status == .open && !$0.inFlight }.compactMap(\.next?.at).min()
  }

  func collection(invoiceID: Int64) throws -> CollectionRecord? {
    guard let i = book.invoices[invoiceID], i.status == .open else { return nil }
    var state = i.state
    state.hasUsableCard = false
    state.cardUsableAgainAt = nil
    return CollectionRecord(
      invoiceID: i.id, number: i.number, accountID: i.accountID,
      due: Money(minorUnits: i.total.minorUnits - i.paid, currency: i.total.currency), paymentReference: nil,
      accountPlan: book.accounts[i.accountID]?.plan ?? "", state: state)
  }

  func saveCollection(invoiceID: Int64, _ state: CollectionState) throws {
    guard book.invoices[invoiceID]?.status == .open else { return }
    book.invoices[invoiceID]?.state = state
  }

  func collectionState(invoiceID: Int64, config: DunningConfig, cards: inout [Int64: CardAvailability]) throws
    -> CollectionState?
  {
    guard var state = try collection(invoiceID: invoiceID)?.state, let account = book.invoices[invoiceID]?.accountID
    else { return nil }
    let availability = try cards[account] ?? chargeOptions(account: account, config: config).availability
    cards[account] = availability
    state.hasUsableCard = !availability.chargeable.isEmpty
    state.cardUsableAgainAt = availability.chargeable.isEmpty ? availability.limitedUntil : nil
    return state
  }

  func saveSchedule(invoiceID: Int64, _ next: ScheduledAction?) throws {
    book.invoices[invoiceID]?.next = next
    book.invoices[invoiceID]?.inFlight = false
  }

  func scheduleChargeNow(_ invoiceIDs: [Int64]) throws {
    for id in invoiceIDs where book.invoices[id]?.status == .open && book.invoices[id]?.state.pausedSince == nil {
      book.invoices[id]?.next = ScheduledAction(.charge, at: clock.now())
      book.invoices[id]?.inFlight = false
    }
  }

  func scheduledCardInvoiceIDs(account: Int64) throws -> [Int64] {
    book.invoices.values.filter { $0.accountID == account && $0.status == .open && !$0.inFlight }.map(\.id).sorted()
  }

  func hasPendingAttempt(invoiceID: Int64) throws -> Bool {
    book.attempts.values.contains { $0.status == .pending && $0.invoices.contains { $0.id == invoiceID } }
  }

  // This book has no subscriptions: its invoices are issued by the tests.
  func nextRenewalTime() throws -> Instant? { nil }
  func dueRenewals(until: Instant, limit: Int) throws -> [Int64] { [] }
  func renew(account: Int64, config: DunningConfig, actor: Actor) throws -> RenewalOutcome {
    RenewalOutcome(accountID: account, invoiceID: nil, period: nil)
  }
  func postponeRenewal(account: Int64, retryAt: Instant, error: String, actor: Actor) throws {}

  func postponeFailedStep(_ due: DueAction, retryAt: Instant, error: String, actor: Actor) throws {
    book.invoices[due.invoiceID]?.next = ScheduledAction(due.action, at: retryAt)
    try recordEvent(
      account: due.accountID, invoice: due.invoiceID, actor: actor, kind: "step_failed", reason: error, data: [:])
  }

  func markPastDue(account: Int64, actor: Actor) throws {
    guard book.accounts[account]?.status == .active else { return }
    book.accounts[account]?.status = .pastDue
    try recordEvent(
      account: account, invoice: nil, actor: actor, kind: "account_past_due", reason: "a payment failed", data: [:])
  }

  func writeOffAndDowngrade(invoiceID: Int64, toPlan: String) throws -> (
    fromPlan: String, toPlan: String, addonsRemoved: [String]
  ) {
    guard let invoice = book.invoices[invoiceID], invoice.status == .open,
      let account = book.accounts[invoice.accountID]
    else {
      throw NotFoundError(field: "invoice", value: String(invoiceID))
    }
    guard book.plans[toPlan] != nil else { throw NotFoundError(field: "downgrade_plan", value: toPlan) }
    book.invoices[invoiceID]?.status = .uncollectible
    book.invoices[invoiceID]?.next = nil
    book.accounts[invoice.accountID] = (.downgraded, toPlan)
    return (account.plan, toPlan, [])
  }

  func closeTransferDeclaration(invoiceID: Int64, outcome: String) throws -> (
    id: Int64, sentOn: CivilDate, reference: String
  )? { nil }

  func plan(code: String) throws -> Plan? { book.plans[code] }

  // MARK: - AttemptRepository

  func ledgerID() throws -> String { "memory" }
  func identityCreatedAt() throws -> Instant { createdAt }
  func newestAttemptTime() throws -> Instant? { book.attempts.values.map(\.createdAt).max() }
  func hasAttempt(key: String) throws -> Bool { book.attempts.values.contains { $0.key == key } }

  func adoptAttempt(
    key: String, account: Int64, card: Int64, amount: Money, invoiceIDs: [Int64], source: String, actor: Actor
  ) throws -> AttemptAdoption {
    try hasAttempt(key: key) ? .known : .foreign("a book in memory has no charges elsewhere")
  }

  func processorEventOutcomes() throws -> [Int64: ChargeOutcome] { [:] }

  func pendingAttempts() throws -> [PendingAttempt] {
    book.attempts.values.filter { $0.status == .pending }.sorted { $0.id < $1.id }.map(pending)
  }

  private func pending(_ a: Attempt) -> PendingAttempt {
    PendingAttempt(
      id: a.id, key: a.key, accountID: a.accountID, cardID: a.cardID, token: book.cards[a.cardID]?.token ?? "",
      cardLabel: "visa •••• 4242", amount: a.amount, invoiceIDs: a.invoices.map(\.id), sentAt: a.createdAt,
      processorRef: a.processorRef)
  }

  func processorCustomer(account: Int64) throws -> String? { nil }

  func noteProcessorReference(_ attempt: PendingAttempt, reference: String) throws {
    book.attempts[attempt.id]?.processorRef = reference
  }

  func chargeOptions(account: Int64, config: DunningConfig) throws -> (
    cards: [ChargeCard], availability: CardAvailability
  ) {
    let now = clock.now()
    let cards = book.cards.values.filter { $0.accountID == account && $0.status != .removed }.sorted { $0.id < $1.id }
    var charges: [Int64: [Instant]] = [:]
    for a in book.attempts.values where a.status != .error { charges[a.cardID, default: []].append(a.createdAt) }
    let availability = CardPolicy.availability(
      cards.map { CardSummary(id: $0.id, status: $0.status, expiry: $0.expiry, isDefault: $0.isDefault) },
      charges: charges, now: now,
      config: config)
    let chargeable = availability.chargeable.compactMap { id in
      book.cards[id].map {
        ChargeCard(id: $0.id, token: $0.token, brand: .visa, last4: "4242", isDefault: $0.isDefault)
      }
    }
    return (chargeable, availability)
  }

  func openBalances(_ ids: [Int64]) throws -> [(id: Int64, dueMinor: Int64)] {
    ids.compactMap { id in
      guard let i = book.invoices[id], i.status == .open, i.state.pausedSince == nil else { return nil }
      return (id, i.total.minorUnits - i.paid)
    }
  }

  func beginAttempt(
    account: Int64, card: ChargeCard, amount: Money, invoices: [(id: Int64, amount: Int64)], key: String, actor: Actor
  ) throws -> Int64 {
    let id = newID()
    let now = clock.now()
    book.attempts[id] = Attempt(
      id: id, key: key, accountID: account, cardID: card.id, amount: amount, createdAt: now, invoices: invoices)
    for invoice in invoices {
      book.invoices[invoice.id]?.inFlight = true
      book.invoices[invoice.id]?.next = nil
      if let state = book.invoices[invoice.id]?.state {
        book.invoices[invoice.id]?.state =
          DunningPolicy.apply(.chargeSent, to: state, at: now, config: DunningConfig.chargedWhenDue).state
      }
    }
    return id
  }

  func recordChargeSucceeded(
    _ attempt: PendingAttempt, processorRef: String, actor: Actor, config: DunningConfig,
    earlierDecline: EarlierDecline?
  ) throws -> PaymentRecord {
    book.attempts[attempt.id]?.status = .succeeded
    var left = attempt.amount.minorUnits
    var paid: [Int64] = []
    for id in attempt.invoiceIDs where left > 0 {
      guard let i = book.invoices[id], i.status == .open || i.status == .uncollectible else { continue }
      let part = min(left, i.total.minorUnits - i.paid)
      left -= part
      book.invoices[id]?.paid += part
      book.invoices[id]?.inFlight = false
      if book.invoices[id]!.paid == i.total.minorUnits {
        book.invoices[id]?.status = .paid
        book.invoices[id]?.next = nil
        paid.append(id)
      }
    }
    if book.accounts[attempt.accountID]?.status == .pastDue,
      !book.invoices.values.contains(where: {
        $0.accountID == attempt.accountID && $0.status == .open && $0.state.dunningStartedAt != nil
      })
    {
      book.accounts[attempt.accountID]?.status = .active
    }
    try recordEvent(
      account: attempt.accountID, invoice: attempt.invoiceIDs.first, actor: actor, kind: "payment_received",
      reason: "payment of \(attempt.amount) by card", data: [:])
    try queueNotice(
      key: "payment_received:\(attempt.id)", account: attempt.accountID, invoice: nil, kind: "payment_received",
      data: [:])
    let allocated = Money(minorUnits: attempt.amount.minorUnits - left, currency: attempt.amount.currency)
    return PaymentRecord(
      paymentID: attempt.id, amount: attempt.amount, paidInvoices: paid.map { "M-\($0)" }, paidInvoiceIDs: paid,
      allocated: allocated,
      credit: Money(minorUnits: left, currency: attempt.amount.currency))
  }

  func recordChargeFailed(
    _ attempt: PendingAttempt, status: AttemptStatus, rawCode: String, reason: DeclineReason, actor: Actor
  )
    throws
  {
    book.attempts[attempt.id]?.status = status
    book.attempts[attempt.id]?.reason = reason
    try recordEvent(
      account: attempt.accountID, invoice: attempt.invoiceIDs.first, actor: actor, kind: "charge_declined",
      reason: "\(reason.rawValue) (\(rawCode))", data: [:])
    if reason.retryClass == .hard, book.cards[attempt.cardID]?.status == .active {
      book.cards[attempt.cardID]?.status = .needsUpdate
    }
  }

  // MARK: - NoticeRepository

  func recordEvent(account: Int64?, invoice: Int64?, actor: Actor, kind: String, reason: String, data: [String: String])
    throws
  {
    book.events.append((account, invoice, kind, reason))
  }

  func queueNotice(key: String, account: Int64, invoice: Int64?, kind: String, data: [String: String]) throws {
    if book.notices[key] == nil { book.notices[key] = (account, kind, data) }
  }

  func queueCardExpiryNotices(daysAhead: Int) throws -> Int {
    let today = clock.now().date
    var queued = 0
    for card in book.cards.values where card.isDefault && card.status == .active {
      guard card.expiry.lastDay.adding(days: -daysAhead) <= today, !card.expiry.isExpired(on: today) else { continue }
      let key = "card_expiring:\(card.id):\(card.expiry)"
      if book.notices[key] == nil {
        try queueNotice(key: key, account: card.accountID, invoice: nil, kind: "card_expiring", data: [:])
        queued += 1
      }
    }
    return queued
  }
}
