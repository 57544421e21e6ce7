import Foundation
import LedgerCore
import LedgerStore
import Logging

/// The charging pipeline: `maxInFlight` workers call the processor, each taking the next
/// charge whose pending attempt is committed as soon as its last call has answered, while
/// the scheduler records what came back, many outcomes per transaction (those that arrived
/// while the previous transaction was being written), and in the same transaction begins
/// the next card of each declined round and, when the queue runs low, the next due work.
/// No call waits for another: a slow or unanswered call holds its own slot only.
///
/// Crash safety is as before: every call's pending attempt is committed before a worker
/// can take it; its outcome is committed after. A call still queued when the scheduler is
/// asked to stop is taken back and its attempt closed as never sent.
actor ChargeQueue {
  /// A charge whose pending attempt is committed, waiting for a worker.
  private var ready: [ChargeRequest] = []
  private var head = 0
  /// What came back: the attempt and its outcome (nil: no answer).
  private var arrivals: [(attemptID: Int64, outcome: ChargeOutcome?)] = []
  /// Workers with a call out.
  private var busy = 0
  private var closed = false
  private var idleWorkers: [CheckedContinuation<ChargeRequest?, Never>] = []
  private var waitingForArrivals: CheckedContinuation<Void, Never>?

  var queued: Int { ready.count - head }

  func push(_ requests: [ChargeRequest]) {
    for request in requests {
      if let worker = idleWorkers.popLast() {
        busy += 1
        worker.resume(returning: request)
      } else {
        ready.append(request)
      }
    }
  }

  /// A worker's next charge; nil once the queue is closed.
  func next() async -> ChargeRequest? {
    if head < ready.count {
      let request = ready[head]
      head += 1
      if head > 1024 && head * 2 > ready.count {
        ready.removeFirst(head)
        head = 0
      }
      busy += 1
      return request
    }
    if closed { return nil }
    return await withCheckedContinuation { idleWorkers.append($0) }
  }

  /// A worker's call answered (or not).
  func finished(attemptID: Int64, outcome: ChargeOutcome?) {
    busy -= 1
    arrivals.append((attemptID, outcome))
    waitingForArrivals?.resume()
    waitingForArrivals = nil
  }

  /// Everything that came back since the last take; waits for at least one answer while a
  /// call is out or queued. Empty: nothing is out and nothing is queued.
  func takeArrivals() async -> [(attemptID: Int64, outcome: ChargeOutcome?)] {
    while arrivals.isEmpty && (busy > 0 || head < ready.count) {
      await withCheckedContinuation { waitingForArrivals = $0 }
    }
    defer { arrivals = [] }
    return arrivals
  }

  /// The charges no worker has taken yet, taken back (their calls were never made).
  func withdraw() -> [ChargeRequest] {
    defer {
      ready = []
      head = 0
    }
    return Array(ready[head...])
  }

  /// No more charges: idle workers end, busy ones end after their call.
  func close() {
    closed = true
    for worker in idleWorkers { worker.resume(returning: nil) }
    idleWorkers = []
  }
}

extension Scheduler {
  /// A round waiting for its call's answer, by attempt.
  struct OutCall {
    var round: Round
    let attempt: PendingAttempt
  }

  /// What one look for due work found.
  enum Look {
    case nothingDue
    /// Only charges of accounts whose round is still out: looked at again once one ends.
    case onlyBusyAccounts
    /// Periods were invoiced and nothing else was due yet: look again.
    case renewedOnly
    case stuck([DueAction])
    case started([DueAction])
  }

  func runDue(recording unrecorded: inout [RecoveryAnswer]) async throws -> TickReport {
    var report = TickReport()
    let now = store.clock.now()
    if lastExpirySweep.map({ now.secondsSinceEpoch - $0.secondsSinceEpoch >= 3600 }) ?? true {
      report.cardExpiryNotices = try store.write {
        try store.queueCardExpiryNotices(daysAhead: config.cardExpiryNoticeDays)
      }
      lastExpirySweep = now
    }
    // With no answers to record, a look without the write lock first: when nothing is due,
    // no write is waited for (a checkpoint may hold the lock) and none is made.
    if unrecorded.isEmpty, try nextDueTime().map({ $0 > store.clock.now() }) ?? true { return report }
    let queue = ChargeQueue()
    let ledgerID = try store.read { try store.ledgerID() }
    let processor = self.processor
    let logger = self.logger
    var pending = unrecorded
    defer { unrecorded = pending }
    try await withThrowingDiscardingTaskGroup { group in
      for _ in 0..<max(1, maxInFlight) {
        group.addTask {
          while let request = await queue.next() {
            let outcome: ChargeOutcome?
            let started = ContinuousClock.now
            defer { LedgerMetrics.chargeAnswered(outcome, after: ContinuousClock.now - started) }
            do {
              outcome = try await processor.charge(request)
            } catch let defect as ProcessorDefect {
              logger.critical(
                "charge \(request.key) (attempt \(request.metadata.attemptID)) was refused as a defect; it stays pending for staff: \(defect.reason)"
              )
              outcome = nil
            } catch {
              logger.warning("charge \(request.key) has no answer: \(String(describing: error))")
              outcome = nil
            }
            await queue.finished(attemptID: request.metadata.attemptID, outcome: outcome)
          }
        }
      }
      do {
        try await pump(queue, ledgerID: ledgerID, unrecorded: &pending, report: &report)
      } catch {
        // The calls already out finish (their outcomes are not recorded here: their
        // attempts stay pending and are resolved by their keys); nothing more is taken.
        _ = await queue.withdraw()
        await queue.close()
        throw error
      }
      await queue.close()
    }
    return report
  }

  /// The scheduler's side of the pipeline: looks for due work, begins rounds, records
  /// outcomes and begins the next cards, until nothing is due, out or queued.
  private func pump(
    _ queue: ChargeQueue, ledgerID: String, unrecorded: inout [RecoveryAnswer], report: inout TickReport
  ) async throws {
    var out: [Int64: OutCall] = [:]
    var busyAccounts: [Int64: Int] = [:]
    var arrived: [(attemptID: Int64, outcome: ChargeOutcome?)] = []
    var moreDue = true
    var stopping = false
    var previous: [DueAction] = []
    var busyStart: ContinuousClock.Instant?
    while true {
      let queued = await queue.queued
      var look = moreDue && !stopping && queued < max(1, maxInFlight)
      if look, unrecorded.isEmpty, arrived.isEmpty, try nextDueTime().map({ $0 > store.clock.now() }) ?? true {
        look = false
        moreDue = false
      }
      if look || !arrived.isEmpty || !unrecorded.isEmpty {
        var found: Look?
        var calls: [OutCall] = []
        let answers = arrived
        let recovered = unrecorded
        // Outcomes are recorded without a savepoint each (a savepoint copies every page it
        // changes aside): when the transaction fails for one account's own reason, it is
        // made again with each outcome in a savepoint of its own, so that only that one is
        // left pending.
        var isolating = false
        while true {
          var step = report
          do {
            try store.write {
              if !recovered.isEmpty { try recordRecovered(recovered, isolating: isolating) }
              var goOn = try recordOutcomes(answers, out: &out, report: &step, isolating: isolating)
              if look {
                let (started, rounds) = try lookForDue(busyAccounts: busyAccounts, previous: previous, report: &step)
                found = started
                goOn += rounds
              }
              calls = try nextAttempts(goOn, report: &step)
            }
            report = step
            break
          } catch  where !isolating && (!answers.isEmpty || !recovered.isEmpty) && store.isOwnFailure(error) {
            isolating = true
          }
        }
        report.recoveredPending += unrecorded.count
        unrecorded = []
        // Rounds whose call came back and that began no new call have ended.
        for (id, _) in arrived {
          if let call = out.removeValue(forKey: id) { Self.release(call.round.accountID, from: &busyAccounts) }
        }
        let roundsEnded = !arrived.isEmpty
        arrived = []
        switch found {
        case .nothingDue?, .onlyBusyAccounts?: moreDue = false
        case .stuck(let due)?:
          let item = due[0]
          throw StateError(
            subject: "invoice \(item.number)",
            rule:
              "the schedule does not advance: its \(item.action.rawValue) at \(item.at) came due again unchanged after being run"
              + (due.count > 1 ? " (with \(due.count - 1) other invoice(s))" : ""))
        case .started(let due)?: previous = due
        case .renewedOnly?, nil: break
        }
        // A round that came back frees its account's due charges for the next look.
        if roundsEnded && !stopping { moreDue = true }
        for call in calls {
          out[call.attempt.id] = call
          busyAccounts[call.round.accountID, default: 0] += 1
        }
        if !calls.isEmpty {
          if busyStart == nil { busyStart = .now }
          await queue.push(calls.map { request(for: $0.attempt, ledgerID: ledgerID) })
        }
      }
      if !stopping && shouldStop() {
        stopping = true
        moreDue = false
        try closeUnsent(await queue.withdraw(), out: &out, busyAccounts: &busyAccounts)
      }
      let got = await queue.takeArrivals()
      if got.isEmpty {
        if moreDue && !stopping { continue }
        break
      }
      arrived = got
    }
    if let busyStart {
      let busy = ContinuousClock.now - busyStart
      let seconds = Double(busy.components.seconds) + Double(busy.components.attoseconds) / 1e18
      report.chargingSeconds += seconds
      report.busiestPassCalls = report.attempts
      report.busiestPassSeconds = seconds
    }
  }

  /// In the caller's transaction: the periods due to be invoiced, the look for due work,
  /// and its first step (reminders, downgrades and other steps carried out; charge rounds
  /// made, for `nextAttempts` to begin). Charges of accounts with a round out wait for it.
  func lookForDue(busyAccounts: [Int64: Int], previous: [DueAction], report: inout TickReport) throws -> (
    Look, [Round]
  ) {
    let renewed = try renewDue(report: &report)
    let due = try store.dueActions(until: store.clock.now(), limit: batchSize)
    let started = due.filter { $0.action != .charge || busyAccounts[$0.accountID] == nil }
    guard !started.isEmpty else {
      return (renewed > 0 ? .renewedOnly : due.isEmpty ? .nothingDue : .onlyBusyAccounts, [])
    }
    // Every step carried out gives its invoice a later action or none. One that comes back
    // unchanged would be run again and again at this instant: stop instead, naming it.
    if Self.sameSchedule(started, previous) { return (.stuck(started), []) }
    let others = started.filter { $0.action != .charge }
    if !others.isEmpty { try carryOut(others, report: &report) }
    return (.started(started), rounds(started.filter { $0.action == .charge }))
  }

  /// One round of `account` fewer out.
  static func release(_ account: Int64, from busy: inout [Int64: Int]) {
    let left = (busy[account] ?? 1) - 1
    busy[account] = left > 0 ? left : nil
  }

  func request(for attempt: PendingAttempt, ledgerID: String) -> ChargeRequest {
    ChargeRequest(
      key: attempt.key, token: attempt.token, amount: attempt.amount,
      metadata: ChargeMetadata(
        ledgerID: ledgerID, attemptID: attempt.id, accountID: attempt.accountID, cardID: attempt.cardID,
        invoiceIDs: attempt.invoiceIDs), customer: attempt.customer)
  }

  /// Charges taken back before any call (the scheduler is stopping): their attempts are
  /// closed as never sent and their invoices are due for a charge at the next run.
  func closeUnsent(_ unsent: [ChargeRequest], out: inout [Int64: OutCall], busyAccounts: inout [Int64: Int]) throws {
    guard !unsent.isEmpty else { return }
    try store.write {
      for request in unsent {
        guard let call = out.removeValue(forKey: request.metadata.attemptID) else { continue }
        try store.recordChargeFailed(
          call.attempt, status: .error, rawCode: "not_sent", reason: .processingError, actor: .scheduler)
        try store.scheduleChargeNow(call.round.invoiceIDs)
        Self.release(call.round.accountID, from: &busyAccounts)
      }
    }
    logger.notice("stopping: \(unsent.count) charge(s) not sent yet were taken back; they are due at the next run")
  }

  /// The next card of every round gets a pending attempt, committed (by the caller's
  /// transaction) before any processor call; rounds with no card left, or nothing left to
  /// pay, end here.
  func nextAttempts(_ rounds: [Round], report: inout TickReport) throws -> [OutCall] {
    var calls: [OutCall] = []
    // Rounds that end here, with their open invoices and the cards read for them.
    var exhausted: [(round: Round, open: [Int64], cards: CardAvailability)] = []
    // Accounts with a charge begun here: their cards' counts in the window have changed.
    var charging: Set<Int64> = []
    for var round in rounds {
      let options = try store.chargeOptions(account: round.accountID, config: config)
      let cards = options.cards.filter { !round.tried.contains($0.id) }
      // The due look found the invoices open, not paused (a pause clears the schedule) and
      // owing this, in this transaction; after it, a card's round reads them again.
      let balances = try round.dueFromLook ?? store.openBalances(round.invoiceIDs)
      round.dueFromLook = nil
      let parts = balances.filter { $0.dueMinor > 0 }.map { (id: $0.id, amount: $0.dueMinor) }
      guard let card = cards.first, !parts.isEmpty else {
        exhausted.append((round, balances.map(\.id), options.availability))
        continue
      }
      charging.insert(round.accountID)
      let amount = Money(minorUnits: parts.reduce(0) { $0 + $1.amount }, currency: round.currency)
      let key = IdempotencyKey.make()
      let id = try store.beginAttempt(
        account: round.accountID, card: card, amount: amount, invoices: parts, key: key, actor: .scheduler)
      let attempt = PendingAttempt(
        id: id, key: key, accountID: round.accountID, cardID: card.id, token: card.token,
        cardLabel: PendingAttempt.cardLabel(brand: card.brand.rawValue, last4: card.last4), amount: amount,
        invoiceIDs: parts.map(\.id),
        customer: chargesNameTheCustomer ? try store.processorCustomer(account: round.accountID) : nil,
        sentAt: store.clock.now())
      round.tried.insert(card.id)
      round.lastAttempt = id
      calls.append(OutCall(round: round, attempt: attempt))
    }
    for (round, open, cards) in exhausted {
      if !open.isEmpty, round.tried.isEmpty || round.lastReason != nil {
        try failRound(
          invoiceIDs: open, account: round.accountID, reason: round.lastReason, attemptID: round.lastAttempt,
          actor: .scheduler)
      }
      // Recording the failure changes no card and no attempt: the policy gets the cards
      // read above, unless a charge of the same account (another currency) began since.
      var known: [Int64: CardAvailability] = charging.contains(round.accountID) ? [:] : [round.accountID: cards]
      try store.reschedule(round.invoiceIDs, config: config, cards: &known)
    }
    report.attempts += calls.count
    return calls
  }

  /// Every outcome that came back with its payment, journal entry, events and emails; the
  /// rounds that go on with another card are returned. Their invoices are left in flight
  /// here: `nextAttempts`, in the same transaction, either begins the next card's attempt on
  /// them or ends the round and saves their schedule, so no in-between state is ever
  /// committed.
  func recordOutcomes(
    _ answers: [(attemptID: Int64, outcome: ChargeOutcome?)], out: inout [Int64: OutCall], report: inout TickReport,
    isolating: Bool = false
  ) throws -> [Round] {
    var next: [Round] = []
    for (id, outcome) in answers {
      guard let call = out[id] else { continue }
      var round: Round?
      let recorded = try recordAnswer(call.attempt, outcome, isolating: isolating) {
        round = try record(outcome, of: call, report: &report)
      }
      if !recorded { report.failedSteps += 1 }
      if let round { next.append(round) }
    }
    return next
  }

  /// Records one answer about `attempt` with `body`: as it is, or (`isolating`) in a
  /// savepoint, where a refusal for the attempt's own account is undone and leaves the
  /// attempt pending, with an event (false), so that the other answers are kept.
  @discardableResult
  func recordAnswer(_ attempt: PendingAttempt, _ outcome: ChargeOutcome?, isolating: Bool, _ body: () throws -> Void)
    throws -> Bool
  {
    guard isolating else {
      try body()
      return true
    }
    do {
      try store.isolated(body)
      return true
    } catch  where store.isOwnFailure(error) {
      try chargeNotRecorded(attempt, outcome: outcome, error: error)
      return false
    }
  }

  /// An outcome the ledger refused to record for the attempt's account alone: logged and
  /// recorded as an event; the attempt stays pending and its invoices in flight until an
  /// answer asked again by key can be recorded.
  func chargeNotRecorded(_ attempt: PendingAttempt, outcome: ChargeOutcome?, error: Error) throws {
    let what = outcome.map { String(describing: $0) } ?? "no answer"
    logger.error(
      "the answer for charge attempt \(attempt.id) (\(attempt.key), account \(attempt.accountID)) could not be recorded: \(String(describing: error))"
    )
    try store.recordEvent(
      account: attempt.accountID, invoice: attempt.invoiceIDs.first, actor: .scheduler, kind: "charge_not_recorded",
      reason:
        "the processor's answer for attempt \(attempt.id) (\(what)) could not be recorded and is asked again by its key: \(String(describing: error))",
      data: ["attempt_id": String(attempt.id)])
  }

  /// Records one outcome in the caller's transaction; the round, when it goes on with its
  /// next card.
  func record(_ outcome: ChargeOutcome?, of call: OutCall, report: inout TickReport) throws -> Round? {
    var round = call.round
    switch outcome {
    case .some(.succeeded(let reference)):
      let payment = try store.recordChargeSucceeded(
        call.attempt, processorRef: reference, actor: .scheduler, config: config, earlierDecline: round.firstDecline)
      // Paid invoices have no schedule left; any other of the round is asked again.
      let paid = Set(payment.paidInvoiceIDs)
      try reschedule(round.invoiceIDs.filter { !paid.contains($0) })
      report.succeeded += 1
      return nil
    case .some(.declined(let code)):
      let reason = DeclineReason(rawCode: code)
      try store.recordChargeFailed(call.attempt, status: .declined, rawCode: code, reason: reason, actor: .scheduler)
      round.lastReason = reason
      if round.firstDecline == nil {
        round.firstDecline = EarlierDecline(cardLabel: call.attempt.cardLabel, reason: reason)
      }
      report.declined += 1
      return round
    case .some(.failed(let code)):
      try store.recordChargeFailed(
        call.attempt, status: .error, rawCode: code, reason: .processingError, actor: .scheduler)
      round.lastReason = .processingError
      report.declined += 1
      return round
    case .some(.inProgress(let reference)):
      // Not finished at the processor: its id is kept and the attempt stays pending.
      try store.noteProcessorReference(call.attempt, reference: reference)
      report.unresolved += 1
      return nil
    case .none:
      // No answer: the attempt stays pending and its invoices wait for recovery.
      report.unresolved += 1
      return nil
    }
  }
}
