import Foundation
import LedgerCore
import LedgerSQLite

extension LedgerStore {
  // MARK: - Schedule

  /// The state the dunning policy decides on, for an open invoice. Whether a card is
  /// usable is the charge round's own answer (`chargeableCards`), the network's limit
  /// included.
  public func collectionState(invoiceID: Int64, config: DunningConfig) throws -> CollectionState? {
    var cards: [Int64: CardAvailability] = [:]
    return try collectionState(invoiceID: invoiceID, config: config, cards: &cards)
  }

  /// The same, for several invoices in a row: `cards` keeps each account's card
  /// availability for the next invoice of the same account. Only for reads between which
  /// no card and no charge attempt changes (saving schedules in between is fine).
  public func collectionState(invoiceID: Int64, config: DunningConfig, cards known: inout [Int64: CardAvailability])
    throws
    -> CollectionState?
  {
    // The lean read: every rescheduling makes it, so it leaves out what only messages need
    // (number, what is owed, the account's plan).
    guard
      let row = try db.queryOne(Self.stateSelect + " FROM invoices i WHERE i.id = ?1 AND i.status = 'open'", invoiceID)
    else { return nil }
    var state = try Self.state(from: row)
    let accountID = try row.int("account_id")
    let cards = try known[accountID] ?? cardAvailability(account: accountID, config: config).availability
    known[accountID] = cards
    state.hasUsableCard = !cards.chargeable.isEmpty
    state.cardUsableAgainAt = cards.chargeable.isEmpty ? cards.limitedUntil : nil
    return state
  }

  /// The columns of an invoice's collection state.
  static let stateSelect = """
    SELECT i.account_id, i.collection_method, i.created_at, i.due_date, i.dunning_started_at, i.grace_deadline, i.paused_seconds,
      i.paused_at, i.last_charge_at, i.last_failure, i.retries_done, i.reminders_sent, i.charge_requested_at, i.due_reminder_sent,
      (SELECT window_ends_at FROM transfer_declarations t WHERE t.invoice_id = i.id AND t.closed_at IS NULL) AS window_end
    """

  /// The collection state in a row of `stateSelect`, without card availability.
  static func state(from row: Row) throws -> CollectionState {
    func instant(_ column: String) throws -> Instant? {
      try row.optionalString(column).map { try Instant(iso8601: $0) }
    }
    var s = CollectionState(
      method: CollectionMethod(rawValue: try row.string("collection_method")) ?? .card,
      issuedAt: try Instant(iso8601: try row.string("created_at")),
      dueDate: try CivilDate(iso8601: try row.string("due_date")), hasUsableCard: false)
    s.dunningStartedAt = try instant("dunning_started_at")
    s.graceDeadline = try instant("grace_deadline")
    s.pausedSeconds = try row.int("paused_seconds")
    s.pausedSince = try instant("paused_at")
    s.transferWindowEndsAt = try instant("window_end")
    s.lastChargeAt = try instant("last_charge_at")
    s.lastFailure = try row.optionalString("last_failure").flatMap(DeclineReason.init(rawValue:))
    s.retriesDone = Int(try row.int("retries_done"))
    s.remindersSent = Int(try row.int("reminders_sent"))
    s.chargeRequestedAt = try instant("charge_requested_at")
    s.dueReminderSent = try row.bool("due_reminder_sent")
    return s
  }

  /// An open invoice's collection state with what messages about it name, for a
  /// transition (`DunningPolicy.apply`). Card availability is not read (`hasUsableCard` is
  /// false): no transition depends on it, and `collectionState` adds it for the policy.
  public func collection(invoiceID: Int64) throws -> CollectionRecord? {
    guard
      let row = try db.queryOne(
        Self.stateSelect + """
          , i.number, i.currency, i.payment_reference,
            i.total_minor - (SELECT coalesce(sum(a.amount_minor), 0) FROM payment_allocations a WHERE a.invoice_id = i.id) AS due_minor,
            (SELECT p.code FROM accounts a JOIN plans p ON p.id = a.plan_id WHERE a.id = i.account_id) AS plan_code
          FROM invoices i WHERE i.id = ?1 AND i.status = 'open'
          """, invoiceID)
    else { return nil }
    let s = try Self.state(from: row)
    let currency = try Currency(code: try row.string("currency"))
    return CollectionRecord(
      invoiceID: invoiceID, number: try row.string("number"), accountID: try row.int("account_id"),
      due: Money(minorUnits: try row.int("due_minor"), currency: currency),
      paymentReference: try row.optionalString("payment_reference"),
      accountPlan: try row.optionalString("plan_code") ?? "", state: s)
  }

  /// Saves an open invoice's collection state after a transition. The transfer window is
  /// the declaration's own row (`declareTransfer`, `closeTransferDeclaration`).
  public func saveCollection(invoiceID: Int64, _ s: CollectionState) throws {
    try db.run(
      """
      UPDATE invoices SET dunning_started_at = ?1, grace_deadline = ?2, paused_seconds = ?3, paused_at = ?4, last_charge_at = ?5,
        last_failure = ?6, retries_done = ?7, reminders_sent = ?8, charge_requested_at = ?9, due_reminder_sent = ?10
      WHERE id = ?11 AND status = 'open'
      """, s.dunningStartedAt?.iso8601, s.graceDeadline?.iso8601, s.pausedSeconds, s.pausedSince?.iso8601,
      s.lastChargeAt?.iso8601,
      s.lastFailure?.rawValue, s.retriesDone, s.remindersSent, s.chargeRequestedAt?.iso8601, s.dueReminderSent,
      invoiceID)
  }

  /// Saves what the policy decided for an invoice (nil: nothing scheduled).
  public func saveSchedule(invoiceID: Int64, _ next: ScheduledAction?) throws {
    try db.run(
      // An unchanged schedule is not written again: no page dirtied, no index entry moved.
      "UPDATE invoices SET next_action = ?1, next_action_at = ?2 WHERE id = ?3 AND (next_action IS NOT ?1 OR next_action_at IS NOT ?2)",
      next?.action.rawValue, next?.at.iso8601, invoiceID)
  }

  /// Open invoices of an account (optionally only those a card change should retry).
  public func openInvoiceIDs(account: Int64, method: CollectionMethod? = nil) throws -> [Int64] {
    // Two statements rather than one whose filter tests the parameter for null, so that each
    // is planned for what it asks.
    let rows =
      try method.map {
        try db.query(
          "SELECT id FROM invoices WHERE account_id = ?1 AND status = 'open' AND collection_method = ?2 ORDER BY id",
          account, $0.rawValue)
      } ?? db.query("SELECT id FROM invoices WHERE account_id = ?1 AND status = 'open' ORDER BY id", account)
    return try rows.map { try $0.int("id") }
  }

  /// The account's open card invoices, except those with a charge in flight.
  public func scheduledCardInvoiceIDs(account: Int64) throws -> [Int64] {
    try db.query(
      """
      SELECT id FROM invoices WHERE account_id = ? AND status = 'open' AND collection_method = 'card'
        AND next_action IS NOT 'in_flight' ORDER BY id
      """, account
    ).map { try $0.int("id") }
  }

  /// Asks for an immediate charge of the account's open card invoices (a card was added,
  /// updated or made default). Paused invoices and those in a transfer window wait.
  public func requestCharge(account: Int64) throws -> [Int64] {
    try db.run(
      """
      UPDATE invoices SET charge_requested_at = ?1 WHERE account_id = ?2 AND status = 'open' AND collection_method = 'card'
        AND paused_at IS NULL AND next_action IS NOT 'in_flight' AND due_date <= ?3
      """, now, account, today.iso8601)
    return try openInvoiceIDs(account: account, method: .card)
  }

  /// Marks open invoices as due for a charge now (a round goes on with the next card).
  /// Paused invoices are left out (paused while the charge was at the processor): the round
  /// goes on without them.
  public func scheduleChargeNow(_ invoiceIDs: [Int64]) throws {
    for id in invoiceIDs {
      try db.run(
        "UPDATE invoices SET next_action = 'charge', next_action_at = ? WHERE id = ? AND status = 'open' AND paused_at IS NULL",
        now, id)
    }
  }

  /// Whether a charge of the invoice is at the processor (its attempt not yet resolved).
  public func hasPendingAttempt(invoiceID: Int64) throws -> Bool {
    try db.scalarInt(
      """
      SELECT EXISTS (SELECT 1 FROM charge_attempt_invoices ci JOIN charge_attempts a ON a.id = ci.attempt_id
                     WHERE ci.invoice_id = ? AND a.status = 'pending')
      """, invoiceID) == 1
  }

  /// Invoices whose next action is due by `until`, earliest first.
  public func dueActions(until: Instant, limit: Int) throws -> [DueAction] {
    try db.query(
      """
      SELECT i.id, i.number, i.account_id, i.currency, i.next_action, i.next_action_at,
        i.total_minor - (SELECT coalesce(sum(a.amount_minor), 0) FROM payment_allocations a WHERE a.invoice_id = i.id) AS due_minor
      FROM invoices i
      WHERE i.next_action_at IS NOT NULL AND i.next_action_at <= ? AND i.next_action <> 'in_flight' AND i.status = 'open'
      ORDER BY i.next_action_at, i.id LIMIT ?
      """, until.iso8601, limit
    ).map { row in
      let currency = try Currency(code: try row.string("currency"))
      return DueAction(
        invoiceID: try row.int("id"), number: try row.string("number"), accountID: try row.int("account_id"),
        currency: currency,
        due: Money(minorUnits: try row.int("due_minor"), currency: currency),
        action: CollectionAction(rawValue: try row.string("next_action")) ?? .charge,
        at: try Instant(iso8601: try row.string("next_action_at")))
    }
  }

  /// What is still owed on each of `ids` that is open and not paused, in the order given
  /// (others are left out). The charge round's lean read: status and balance, nothing else.
  public func openBalances(_ ids: [Int64]) throws -> [(id: Int64, dueMinor: Int64)] {
    try ids.compactMap { id in
      try db.queryOne(
        """
        SELECT i.total_minor - (SELECT coalesce(sum(a.amount_minor), 0) FROM payment_allocations a WHERE a.invoice_id = i.id) AS due_minor
        FROM invoices i WHERE i.id = ? AND i.status = 'open' AND i.paused_at IS NULL
        """, id
      ).map { (id, try $0.int("due_minor")) }
    }
  }

  /// The earliest scheduled action, for the daemon to sleep until.
  public func nextActionTime() throws -> Instant? {
    // ORDER BY … LIMIT 1 walks the index and stops at the first match; min() with these
    // filters would read every scheduled invoice.
    try db.scalarText(
      """
      SELECT next_action_at FROM invoices WHERE next_action_at IS NOT NULL AND next_action <> 'in_flight' AND status = 'open'
      ORDER BY next_action_at LIMIT 1
      """
    ).map { try Instant(iso8601: $0) }
  }

  // MARK: - Charges

  /// The account's cards that may be charged now, in the order the seeds ask: the default,
  /// then the others oldest first; expired cards, cards needing an update and cards at the
  /// network's limit of charges in the window are left out.
  public func chargeableCards(account: Int64, config: DunningConfig) throws -> [ChargeCard] {
    try chargeOptions(account: account, config: config).cards
  }

  /// The same cards, with the availability they come from (which the policy reads too).
  public func chargeOptions(account: Int64, config: DunningConfig) throws -> (
    cards: [ChargeCard], availability: CardAvailability
  ) {
    let (cards, availability) = try cardAvailability(account: account, config: config)
    return (availability.chargeable.compactMap { cards[$0] }, availability)
  }

  /// The account's cards, and what the card rules and the network's limit allow of them now
  /// (`CardPolicy.availability`): loaded here, decided there.
  func cardAvailability(account: Int64, config: DunningConfig) throws -> (
    cards: [Int64: ChargeCard], availability: CardAvailability
  ) {
    var summaries: [CardSummary] = []
    var byID: [Int64: ChargeCard] = [:]
    // Each card comes with how many of its attempts count toward the limit in the window
    // (all but errors: the index `charge_attempts_card` holds exactly those); the times
    // themselves are read only for a card at the limit (when it frees up).
    let now = clock.now()
    let windowStart = now.adding(days: -config.cardChargeWindowDays).iso8601
    let limit = Int64(max(config.maxChargesPerCard, 1))
    var atLimit: [Int64] = []
    for row in try db.query(
      """
      SELECT c.id, c.token, c.brand, c.last4, c.is_default, c.status, c.exp_month, c.exp_year,
        (SELECT count(*) FROM charge_attempts a WHERE a.card_id = c.id AND a.created_at > ?2 AND a.status <> 'error') AS counted
      FROM cards c WHERE c.account_id = ?1 AND c.status <> 'removed' ORDER BY c.id
      """, account, windowStart)
    {
      let id = try row.int("id")
      let isDefault = try row.bool("is_default")
      summaries.append(
        CardSummary(
          id: id, status: CardStatus(rawValue: try row.string("status")) ?? .removed,
          expiry: try CardExpiry(month: Int(try row.int("exp_month")), year: Int(try row.int("exp_year"))),
          isDefault: isDefault))
      byID[id] = ChargeCard(
        id: id, token: try row.string("token"), brand: CardBrand(rawValue: try row.string("brand")) ?? .other,
        last4: try row.string("last4"), isDefault: isDefault)
      if try row.int("counted") >= limit { atLimit.append(id) }
    }
    var charges: [Int64: [Instant]] = [:]
    for card in atLimit {
      charges[card] = try db.query(
        """
        SELECT created_at FROM charge_attempts
        WHERE card_id = ?1 AND created_at > ?2 AND status <> 'error'
        """, card, windowStart
      ).map { try Instant(iso8601: try $0.string("created_at")) }
    }
    return (byID, CardPolicy.availability(summaries, charges: charges, now: now, config: config))
  }

  /// Writes a pending attempt for `invoices` on `card`; committed before the processor is
  /// called, so a crash after the call can be resolved by its idempotency key.
  public func beginAttempt(
    account: Int64, card: ChargeCard, amount: Money, invoices: [(id: Int64, amount: Int64)], key: String, actor: Actor
  ) throws -> Int64 {
    try insertPendingAttempt(
      account: account, cardID: card.id, amount: amount, invoices: invoices, key: key, actor: actor)
  }

  /// The pending attempt's rows, its invoices marked in flight.
  func insertPendingAttempt(
    account: Int64, cardID: Int64, amount: Money, invoices: [(id: Int64, amount: Int64)], key: String, actor: Actor
  ) throws -> Int64 {
    let at = now
    try db.run(
      """
      INSERT INTO charge_attempts (idempotency_key, account_id, card_id, amount_minor, currency, status, actor, created_at)
      VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
      """, key, account, cardID, amount.minorUnits, amount.currency.code, actor.rawValue, at)
    let id = db.lastInsertRowID
    for invoice in invoices {
      try db.run(
        "INSERT INTO charge_attempt_invoices (attempt_id, invoice_id, amount_minor) VALUES (?, ?, ?)", id, invoice.id,
        invoice.amount)
      try db.run(
        "UPDATE invoices SET next_action = 'in_flight', next_action_at = NULL, last_charge_at = ? WHERE id = ?", at,
        invoice.id)
    }
    return id
  }

  /// Takes in a charge the processor was asked to make that this file never saw (the
  /// ledger file was replaced while it was at the processor): a pending attempt with its
  /// key, on its card and invoices, which recovery then resolves by asking the processor,
  /// like a charge a crash left pending. Its invoices are marked in flight meanwhile.
  public func adoptAttempt(
    key: String, account: Int64, card: Int64, amount: Money, invoiceIDs: [Int64], source: String, actor: Actor
  ) throws -> AttemptAdoption {
    if try db.scalarInt("SELECT id FROM charge_attempts WHERE idempotency_key = ?", key) != nil { return .known }
    guard try db.scalarInt("SELECT account_id FROM cards WHERE id = ?", card) == account else {
      return .foreign("card \(card) of account \(account) is not in this ledger")
    }
    var parts: [(id: Int64, amount: Int64)] = []
    for id in invoiceIDs {
      guard let row = try db.queryOne("SELECT account_id, currency FROM invoices WHERE id = ?", id),
        try row.int("account_id") == account, try row.string("currency") == amount.currency.code
      else {
        return .foreign("invoice \(id) of account \(account) in \(amount.currency.code) is not in this ledger")
      }
      let due = try openBalances([id]).first?.dueMinor ?? 0
      if due > 0 { parts.append((id, due)) }
    }
    let id = try insertPendingAttempt(
      account: account, cardID: card, amount: amount, invoices: parts, key: key, actor: actor)
    try recordEvent(
      account: account, actor: actor, kind: "charge_adopted",
      reason:
        "charge \(key) of \(amount) was sent to the processor while the ledger file was being replaced; taken in from \(source) "
        + "and resolved by asking the processor",
      data: ["key": key, "attempt": String(id)])
    return .adopted
  }

  /// Every attempt still pending, oldest first.
  public func pendingAttempts() throws -> [PendingAttempt] {
    try db.query(
      """
      SELECT a.id, a.idempotency_key, a.account_id, a.card_id, c.token, c.brand, c.last4, a.amount_minor, a.currency,
        a.created_at, a.processor_ref, ac.processor_customer,
        (SELECT group_concat(invoice_id) FROM charge_attempt_invoices WHERE attempt_id = a.id) AS invoices
      FROM charge_attempts a JOIN cards c ON c.id = a.card_id JOIN accounts ac ON ac.id = a.account_id
      WHERE a.status = 'pending' ORDER BY a.id
      """
    ).map { row in
      PendingAttempt(
        id: try row.int("id"), key: try row.string("idempotency_key"), accountID: try row.int("account_id"),
        cardID: try row.int("card_id"), token: try row.string("token"),
        cardLabel: PendingAttempt.cardLabel(brand: try row.string("brand"), last4: try row.string("last4")),
        amount: Money(
          minorUnits: try row.int("amount_minor"), currency: try Currency(code: try row.string("currency"))),
        invoiceIDs: (try row.optionalString("invoices") ?? "").split(separator: ",").compactMap { Int64($0) },
        customer: try row.optionalString("processor_customer"),
        sentAt: try Instant(iso8601: try row.string("created_at")),
        processorRef: try row.optionalString("processor_ref"))
    }
  }

  /// Keeps the processor's id for a charge it has not finished (Stripe: `processing`), so
  /// that it is asked about by that id; the attempt stays pending.
  public func noteProcessorReference(_ attempt: PendingAttempt, reference: String) throws {
    try db.run(
      "UPDATE charge_attempts SET processor_ref = ? WHERE id = ? AND status = 'pending'", reference, attempt.id)
  }

  /// Records a successful charge: the attempt, the payment allocated across its invoices,
  /// the journal entry, the invoices paid, the events and the confirmation, together.
  public func recordChargeSucceeded(
    _ attempt: PendingAttempt, processorRef: String, actor: Actor, config: DunningConfig,
    earlierDecline: EarlierDecline? = nil
  ) throws -> PaymentRecord {
    try db.run(
      "UPDATE charge_attempts SET status = 'succeeded', processor_ref = ?, raw_code = NULL, resolved_at = ? WHERE id = ?",
      processorRef, now, attempt.id)
    let payment = try applyPayment(
      account: attempt.accountID, amount: attempt.amount, method: "card", reference: processorRef, receivedOn: today,
      chargeAttemptID: attempt.id, bankLineID: nil, invoices: attempt.invoiceIDs, actor: actor, config: config,
      earlierDecline: earlierDecline)
    // A charge asked for by a card change is done. A paid invoice was cleared when it
    // closed; the others (`invoiceIDs` are the attempt's charge_attempt_invoices) one by
    // one: an `IN (SELECT …)` would build a temporary table at every charge.
    let paid = Set(payment.paidInvoiceIDs)
    for id in attempt.invoiceIDs where !paid.contains(id) {
      try db.run("UPDATE invoices SET charge_requested_at = NULL WHERE id = ?", id)
    }
    return payment
  }

  /// Records a declined or failed attempt; a hard decline marks the card as needing an update.
  public func recordChargeFailed(
    _ attempt: PendingAttempt, status: AttemptStatus, rawCode: String, reason: DeclineReason, actor: Actor
  )
    throws
  {
    // No RETURNING: SQLite gathers its rows in a temporary table, which costs more than the
    // update (the card's label for the events came with the attempt).
    guard
      try db.run(
        "UPDATE charge_attempts SET status = ?, raw_code = ?, reason = ?, resolved_at = ? WHERE id = ?",
        status.rawValue, rawCode, reason.rawValue, now, attempt.id) == 1
    else { throw NotFoundError(field: "charge attempt", value: String(attempt.id)) }
    let card = "card \(attempt.cardID) (\(attempt.cardLabel))"
    try recordEvent(
      account: attempt.accountID, invoice: attempt.invoiceIDs.first, actor: actor, kind: "charge_declined",
      reason: "charge of \(attempt.amount) on \(card) \(status.rawValue): \(reason.rawValue) (\(rawCode))",
      data: ["attempt_id": String(attempt.id), "reason": reason.rawValue, "raw_code": rawCode])
    // A hard decline takes an active card out of use (one already out of use stays as it is).
    if reason.retryClass == .hard,
      try db.run(
        "UPDATE cards SET status = 'needs_update', updated_at = ? WHERE id = ? AND status = 'active'", now,
        attempt.cardID) > 0
    {
      try recordEvent(
        account: attempt.accountID, actor: actor, kind: "card_needs_update",
        reason: "\(card) will not be charged again until it is updated: \(reason.rawValue)",
        data: ["card_id": String(attempt.cardID)])
    }
  }

  /// A past-due account stays so; an active one becomes past due (a payment failed or an
  /// invoice is overdue), with its event.
  public func markPastDue(account: Int64, actor: Actor) throws {
    let changed = try db.run(
      "UPDATE accounts SET status = 'past_due', updated_at = ? WHERE id = ? AND status = 'active'", now, account)
    if changed > 0 {
      try recordEvent(
        account: account, actor: actor, kind: "account_past_due", reason: "a payment failed; grace period started")
    }
  }

  // MARK: - Payments

  /// Applies money received to invoices in order, the rest to account credit; posts the
  /// journal entry, closes paid invoices (and their pauses and transfer windows), brings a
  /// past-due account back to active, and queues the confirmation. Shared by card charges,
  /// `ledgerd payment record` and reconciliation.
  public func applyPayment(
    account accountID: Int64, amount: Money, method: String, reference: String?, receivedOn: CivilDate,
    chargeAttemptID: Int64?,
    bankLineID: Int64?, invoices: [Int64], actor: Actor, config: DunningConfig, earlierDecline: EarlierDecline? = nil
  ) throws -> PaymentRecord {
    let at = now
    try db.run(
      """
      INSERT INTO payments (account_id, method, amount_minor, currency, received_on, reference, charge_attempt_id, bank_line_id, actor, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      """, accountID, method, amount.minorUnits, amount.currency.code, receivedOn.iso8601, reference, chargeAttemptID,
      bankLineID,
      actor.rawValue, at)
    let paymentID = db.lastInsertRowID
    let cash: LedgerAccount = method == "card" ? .processorClearing : .bank
    var lines: [JournalLine] = [.debit(cash, amount)]
    var left = amount.minorUnits
    var paid: [String] = []
    var paidIDs: [Int64] = []
    // An invoice the payment did not pay in full: its number and what is still due on it.
    var partial: (number: String, stillDue: Money)?
    for id in invoices where left > 0 {
      let invoice = try requireInvoice(id: id)
      guard invoice.status == .open || invoice.status == .uncollectible, invoice.total.currency == amount.currency,
        invoice.due.minorUnits > 0
      else { continue }
      let part = min(left, invoice.due.minorUnits)
      left -= part
      try db.run(
        "INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor) VALUES (?, ?, ?)", paymentID, id, part)
      // A written-off invoice's receivable went to bad debt; paying it recovers that.
      lines.append(
        .credit(
          invoice.status == .uncollectible ? .badDebt : .receivable, Money(minorUnits: part, currency: amount.currency),
          customer: accountID, invoice: id))
      if part == invoice.due.minorUnits {
        paid.append(invoice.number)
        paidIDs.append(id)
        try closePaidInvoice(invoice, actor: actor)
      } else {
        partial = (invoice.number, Money(minorUnits: invoice.due.minorUnits - part, currency: amount.currency))
      }
    }
    if left > 0 {
      lines.append(.credit(.customerCredit, Money(minorUnits: left, currency: amount.currency), customer: accountID))
    }
    try post(
      try JournalEntry(
        kind: method == "card" ? .cardPayment : .transferPayment,
        memo: "payment \(paymentID) of \(amount) by \(method)", lines: lines,
        invoiceID: invoices.count == 1 ? invoices[0] : nil, paymentID: paymentID))
    let allocated = Money(minorUnits: amount.minorUnits - left, currency: amount.currency)
    let credit = Money(minorUnits: left, currency: amount.currency)
    let account = try requireAccount(accountID)
    // An active account has nothing to settle (most payments: the first charge went through).
    if account.status != .active { try settleAccountStatus(accountID, actor: actor, config: config) }
    try recordEvent(
      account: accountID, invoice: invoices.first, actor: actor, kind: "payment_received",
      reason: "payment of \(amount) by \(method)" + (reference.map { " (\($0))" } ?? "")
        + (earlierDecline.map { " after \($0.cardLabel) was declined: \($0.reason.rawValue)" } ?? "")
        + (paid.isEmpty ? "" : "; paid \(paid.joined(separator: ", "))")
        + (partial.map { "; \($0.number) part paid, \($0.stillDue) still due" } ?? "")
        + (left > 0 ? "; \(credit) kept as account credit" : ""),
      data: ["payment_id": String(paymentID)])
    try enqueue(
      key: "payment_received:\(paymentID)", account: account, invoice: invoices.first, kind: "payment_received",
      data: [
        "amount": amount.amountString, "currency": amount.currency.code, "method": method,
        "invoices": paid.joined(separator: ", "),
        "credit": credit.amountString, "reference": reference ?? "", "received_on": receivedOn.iso8601,
        "partial_invoice": partial?.number ?? "", "still_due": partial?.stillDue.amountString ?? "",
        "declined_card": earlierDecline?.cardLabel ?? "", "declined_reason": earlierDecline?.reason.rawValue ?? "",
      ])
    return PaymentRecord(
      paymentID: paymentID, amount: amount, paidInvoices: paid, paidInvoiceIDs: paidIDs, allocated: allocated,
      credit: credit)
  }

  func closePaidInvoice(_ invoice: Invoice, actor: Actor) throws {
    let at = now
    try db.run(
      "UPDATE invoices SET status = 'paid', closed_at = ?, paused_at = NULL, next_action = NULL, next_action_at = NULL, charge_requested_at = NULL WHERE id = ?",
      at, invoice.id)
    // Only a paused invoice has an open pause (`ledgerd check` holds the two together).
    if invoice.paused {
      try db.run(
        "UPDATE pauses SET resumed_at = ?, resolution = 'paid' WHERE invoice_id = ? AND resumed_at IS NULL", at,
        invoice.id)
    }
    try db.run(
      "UPDATE transfer_declarations SET closed_at = ?, outcome = 'received' WHERE invoice_id = ? AND closed_at IS NULL",
      at, invoice.id)
  }

  /// A past-due account with nothing left in dunning is active again; a downgraded one gets
  /// its plan back only when the config says so.
  func settleAccountStatus(_ accountID: Int64, actor: Actor, config: DunningConfig) throws {
    let inDunning =
      try db.scalarInt(
        "SELECT count(*) FROM invoices WHERE account_id = ? AND status = 'open' AND dunning_started_at IS NOT NULL",
        accountID) ?? 0
    guard inDunning == 0 else { return }
    if try db.run(
      "UPDATE accounts SET status = 'active', updated_at = ? WHERE id = ? AND status = 'past_due'", now, accountID) > 0
    {
      try recordEvent(account: accountID, actor: actor, kind: "account_active", reason: "nothing is past due any more")
    }
    if config.restorePlanOnPayment {
      let owed =
        try db.scalarInt(
          "SELECT count(*) FROM invoices WHERE account_id = ? AND status = 'uncollectible'", accountID) ?? 0
      if owed == 0,
        try db.run(
          "UPDATE accounts SET status = 'active', plan_id = previous_plan_id, previous_plan_id = NULL, updated_at = ? WHERE id = ? AND status = 'downgraded' AND previous_plan_id IS NOT NULL",
          now, accountID) > 0
      {
        let restored = try restoreAddonsAndRenewals(accountID, config: config)
        try recordEvent(
          account: accountID, actor: actor, kind: "plan_restored",
          reason: "every written-off invoice is paid; the plan before the downgrade is restored"
            + (restored.isEmpty ? "" : " with its add-ons (\(restored.joined(separator: ", ")))"))
      }
    }
  }

  // MARK: - Dunning steps

  /// Writes an open invoice off as uncollectible after its grace period (a journal entry for
  /// what is owed) and moves its account to `toPlan`, its add-ons removed. What it changed,
  /// for the event and the notice.
  public func writeOffAndDowngrade(invoiceID: Int64, toPlan code: String) throws -> (
    fromPlan: String, toPlan: String, addonsRemoved: [String]
  ) {
    let invoice = try requireInvoice(id: invoiceID)
    guard invoice.status == .open else {
      throw StateError(
        subject: "invoice \(invoice.number)", rule: "is \(invoice.status.rawValue); only an open invoice is written off"
      )
    }
    guard let target = try plan(code: code) else { throw NotFoundError(field: "downgrade_plan", value: code) }
    let at = now
    try db.run(
      "UPDATE invoices SET status = 'uncollectible', closed_at = ?, next_action = NULL, next_action_at = NULL WHERE id = ?",
      at, invoice.id)
    if invoice.due.minorUnits > 0 {
      try post(
        try JournalEntry(
          kind: .writeOff, memo: "invoice \(invoice.number) written off after the grace period",
          lines: [
            .debit(.badDebt, invoice.due, customer: invoice.accountID, invoice: invoice.id),
            .credit(.receivable, invoice.due, customer: invoice.accountID, invoice: invoice.id),
          ], invoiceID: invoice.id))
    }
    let account = try requireAccount(invoice.accountID)
    try db.run(
      """
      UPDATE accounts SET status = 'downgraded', previous_plan_id = CASE WHEN plan_id <> ?1 THEN plan_id ELSE previous_plan_id END,
        plan_id = ?1, updated_at = ?2 WHERE id = ?3
      """, target.id, at, account.id)
    let addons = try endAddons(account: account.id, at: clock.now(), reason: "downgrade")
    // Nothing renews on a free plan; a paid downgrade plan is invoiced from the next period.
    // A change the customer had scheduled is overtaken.
    try db.run(
      """
      UPDATE subscriptions SET renew_at = CASE WHEN ?1 = 0 THEN NULL ELSE renew_at END, scheduled_plan_id = NULL,
        scheduled_by = NULL, scheduled_at = NULL, updated_at = ?2 WHERE account_id = ?3
      """, target.price.minorUnits, at, account.id)
    // Other open invoices of the account keep their own schedule; the account stays
    // downgraded.
    return (account.plan, target.code, addons)
  }

  /// A due step that failed for this invoice alone (a configured plan that no longer
  /// exists, a row a hand edit broke): the step is tried again at `retryAt`, and the
  /// failure is an event, so the account's timeline says why nothing happened.
  public func postponeFailedStep(_ due: DueAction, retryAt: Instant, error: String, actor: Actor) throws {
    try db.run("UPDATE invoices SET next_action_at = ? WHERE id = ?", retryAt.iso8601, due.invoiceID)
    try recordEvent(
      account: due.accountID, invoice: due.invoiceID, actor: actor, kind: "step_failed",
      reason: "\(due.action.rawValue) of \(due.number) failed and is tried again at \(retryAt.iso8601): \(error)",
      data: ["action": due.action.rawValue, "retry_at": retryAt.iso8601])
  }

  /// Queues the "card expiring" notice for every default card within `daysAhead` days of
  /// its expiry, once per card and expiry.
  public func queueCardExpiryNotices(daysAhead: Int) throws -> Int {
    // A card expired before this month was never a candidate; the range reads the index
    // `cards_default_expiry` (same expression), not the whole table.
    let horizon = today.adding(days: daysAhead)
    let rows = try db.query(
      """
      SELECT c.id, c.account_id, c.brand, c.last4, c.exp_month, c.exp_year FROM cards c
      WHERE c.is_default = 1 AND c.status = 'active' AND c.exp_year * 12 + c.exp_month BETWEEN ?1 AND ?2
        AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.key = 'card_expiring:' || c.id || ':' || c.exp_month || '/' || c.exp_year)
      """, today.year * 12 + today.month, horizon.year * 12 + horizon.month)
    var queued = 0
    for row in rows {
      let expiry = try CardExpiry(month: Int(try row.int("exp_month")), year: Int(try row.int("exp_year")))
      guard expiry.lastDay.adding(days: -daysAhead) <= today, !expiry.isExpired(on: today) else { continue }
      let cardID = try row.int("id")
      let account = try requireAccount(try row.int("account_id"))
      try recordEvent(
        account: account.id, actor: .scheduler, kind: "card_expiring",
        reason:
          "default card \(cardID) (\(try row.string("brand")) •••• \(try row.string("last4"))) expires at the end of \(expiry)"
      )
      try enqueue(
        key: "card_expiring:\(cardID):\(expiry.month)/\(expiry.year)", account: account, invoice: nil,
        kind: "card_expiring",
        data: [
          "brand": try row.string("brand"), "last4": try row.string("last4"), "expiry": expiry.description,
          "last_day": expiry.lastDay.iso8601,
        ])
      queued += 1
    }
    return queued
  }

  // MARK: - Outbox

  /// Queues a message for the account, in its locale, once per key (a replayed decision
  /// cannot send twice).
  public func queueNotice(key: String, account: Int64, invoice: Int64?, kind: String, data: [String: String]) throws {
    try enqueue(key: key, account: try requireAccount(account), invoice: invoice, kind: kind, data: data)
  }

  /// Queues a message for the account, once per key: a replayed decision cannot send twice.
  func enqueue(key: String, account: Account, invoice: Int64?, kind: String, data: [String: String]) throws {
    var full = data
    full["name"] = account.name
    try db.run(
      """
      INSERT INTO outbox (key, account_id, invoice_id, kind, locale, recipient, data, created_at, next_attempt_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
      """, key, account.id, invoice, kind, account.locale.rawValue, account.email, try jsonText(full), now, now)
  }
}

extension LedgerStore {
  /// What the scheduler will do next for an account, in words.
  public func upcoming(account: Int64, config: DunningConfig) throws -> [String] {
    let rows = try db.query(
      """
      SELECT i.number, i.next_action, i.next_action_at, i.grace_deadline, i.paused_at, b.due_minor, i.currency,
        (SELECT proof FROM pauses p WHERE p.invoice_id = i.id AND p.resumed_at IS NULL) AS proof,
        (SELECT window_ends_at FROM transfer_declarations t WHERE t.invoice_id = i.id AND t.closed_at IS NULL) AS window_end
      FROM invoices i JOIN v_invoice_balances b ON b.invoice_id = i.id
      WHERE i.account_id = ? AND i.status = 'open' ORDER BY coalesce(i.next_action_at, '9999'), i.id
      """, account)
    // An account already on the downgrade plan keeps it at the deadline: only the invoice
    // is written off.
    let onDowngradePlan = try self.account(id: account)?.plan == config.downgradePlan
    var lines: [String] = []
    for row in rows {
      let number = try row.string("number")
      let due = Money(minorUnits: try row.int("due_minor"), currency: try Currency(code: try row.string("currency")))
      func day(_ column: String) throws -> String? {
        try row.optionalString(column).map { String($0.prefix(16)).replacingOccurrences(of: "T", with: " ") }
      }
      let deadline = try day("grace_deadline")
      let atDeadline = onDowngradePlan ? "written off as unpaid" : "downgrade to \(config.downgradePlan)"
      let unless = deadline.map { "; \(atDeadline) on \($0) unless invoice \(number) (\(due)) is paid" } ?? ""
      if let paused = try day("paused_at") {
        lines.append(
          "\(number) is paused since \(paused) (proof: \(try row.optionalString("proof") ?? "?")): no reminder, retry or downgrade until staff resume it"
        )
        continue
      }
      guard let action = try row.optionalString("next_action").flatMap(CollectionAction.init(rawValue:)),
        let at = try day("next_action_at")
      else {
        if try row.optionalString("next_action") == "in_flight" {
          lines.append("\(number): a charge is in flight")
        } else {
          lines.append("\(number) (\(due)): nothing scheduled — waiting for a usable card" + unless)
        }
        continue
      }
      switch action {
      case .charge: lines.append("\(number): charge \(due) on \(at)" + unless)
      case .remind: lines.append("\(number): reminder on \(at)" + unless)
      case .downgrade: lines.append("\(atDeadline) on \(at) unless invoice \(number) (\(due)) is paid")
      case .endTransferWindow:
        lines.append(
          "\(number): waiting for the declared transfer until \(try day("window_end") ?? at); no reminder, retry or downgrade before then"
            + unless)
      case .remindTransferDue: lines.append("\(number): reminder that \(due) falls due, on \(at)")
      case .startDunning: lines.append("\(number): overdue on \(at) if \(due) is not paid by then")
      }
    }
    return lines
  }
}
