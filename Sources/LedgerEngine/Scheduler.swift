import Foundation
import LedgerCore
import LedgerStore
import Logging

/// What one pass of the scheduler did.
public struct TickReport: Sendable, Equatable, Codable {
  public var attempts = 0
  public var succeeded = 0
  public var declined = 0
  public var unresolved = 0
  public var recoveredPending = 0
  public var reminders = 0
  public var downgrades = 0
  public var transferWindowsEnded = 0
  public var dunningStarted = 0
  public var transferDueReminders = 0
  public var cardExpiryNotices = 0
  /// Subscription periods moved on, and the invoices they issued (none on a free plan).
  public var renewals = 0
  public var renewalInvoices = 0
  /// Due steps that failed for their own invoice and were put off (`Scheduler.carryOut`).
  public var failedSteps = 0
  /// Wall-clock seconds from each pass's first processor call to its last answer.
  public var chargingSeconds = 0.0
  /// The pass with the most processor calls: its calls and charging seconds.
  public var busiestPassCalls = 0
  public var busiestPassSeconds = 0.0

  public init() {}

  public mutating func add(_ other: TickReport) {
    attempts += other.attempts
    succeeded += other.succeeded
    declined += other.declined
    unresolved += other.unresolved
    recoveredPending += other.recoveredPending
    reminders += other.reminders
    downgrades += other.downgrades
    transferWindowsEnded += other.transferWindowsEnded
    dunningStarted += other.dunningStarted
    transferDueReminders += other.transferDueReminders
    cardExpiryNotices += other.cardExpiryNotices
    renewals += other.renewals
    renewalInvoices += other.renewalInvoices
    failedSteps += other.failedSteps
    chargingSeconds += other.chargingSeconds
    if other.busiestPassCalls > busiestPassCalls {
      busiestPassCalls = other.busiestPassCalls
      busiestPassSeconds = other.busiestPassSeconds
    }
  }
}

/// Carries out what the dunning policy decides: asks the store what is due, runs it in
/// batches of transactions, calls the processor with a bounded number of calls in flight,
/// and saves the policy's next decision for every invoice it touched.
///
/// Crash safety: a charge's pending attempt is committed before the processor is called,
/// and its outcome (payment, journal, events, outbox) is committed in one transaction
/// after. A crash in between leaves a pending attempt that `recoverPending` resolves by
/// asking the processor about its idempotency key, so nothing is charged twice.
public final class Scheduler {
  public let store: any SchedulerRepository
  public let processor: PaymentProcessor
  public let config: DunningConfig
  public let logger: Logger
  /// Most processor calls in flight at once.
  public var maxInFlight = 16
  /// Whether charges name the account's customer at the processor (Stripe's cards belong
  /// to a customer; the simulated processor has none, and its charges skip the read).
  public var chargesNameTheCustomer = false
  /// Most due invoices handled per transaction batch.
  public var batchSize = 500
  /// Asked after each batch: when it answers true, `runDue` returns with what it did so
  /// far (the daemon's graceful shutdown), and what is still due waits for the next run.
  public var shouldStop: @Sendable () -> Bool = { false }
  /// How far before the ledger's newest attempt `adoptProcessorCharges` asks the processor
  /// for charges: room for the two clocks to differ.
  public var adoptionMarginSeconds: Int64 = 3600
  /// How long after a due step failed on its own (`LedgerStore.isOwnFailure`) it is tried again.
  public var failedStepRetrySeconds: Int64 = 3600
  /// When card-expiry notices were last looked for: they are a daily matter, looked for at
  /// most once an hour of the clock.
  var lastExpirySweep: Instant?

  public init(store: any SchedulerRepository, processor: PaymentProcessor, config: DunningConfig, logger: Logger) {
    self.store = store
    self.processor = processor
    self.config = config
    self.logger = logger
  }

  /// Checks the configuration's names of ledger objects against this ledger, before any
  /// work: a downgrade plan that does not exist would otherwise fail at the first deadline.
  public func checkConfiguration() throws {
    guard try store.plan(code: config.downgradePlan) != nil else {
      throw InputError(
        field: "dunning.downgrade_plan",
        rule: "'\(config.downgradePlan)' is not a plan of this ledger (`ledgerd plan list`); add it or name another")
    }
  }

  /// Takes in the charges this ledger asked the processor for that the ledger file does not
  /// know: a file restored from a backup, or put in place of the one a running daemon had
  /// open, lost them. They are asked of the processor by the ledger's identity, from a
  /// little before the ledger's newest attempt (every charge before that was committed
  /// as pending before it was sent, so the file has it), or, with no attempt yet, from a
  /// little before the identity was made (no charge names it earlier; a processor account
  /// that served another system for years is not listed from its first day). The ledger's
  /// clock, which stamps the charges, is taken when it stands earlier (a simulated month
  /// behind the wall clock). Each becomes a pending attempt
  /// on its card and invoices, which recovery then resolves with the processor like a
  /// charge a crash left pending: a payment is recorded once and nothing is charged again.
  /// A charge whose account, card or invoices this ledger does not have is logged for
  /// staff (the processor's report lists it as unknown).
  @discardableResult
  public func adoptProcessorCharges() async throws -> Int {
    let ledgerID = try store.read { try store.ledgerID() }
    let from = try store.read {
      try store.newestAttemptTime() ?? min(try store.identityCreatedAt(), store.clock.now())
    }
    let since = from.adding(seconds: -adoptionMarginSeconds)
    let charges = try await processor.charges(ledgerID: ledgerID, since: since)
    guard !charges.isEmpty else { return 0 }
    var adopted = 0
    try store.write {
      for charge in charges where try !store.hasAttempt(key: charge.key) {
        let m = charge.metadata
        switch try store.adoptAttempt(
          key: charge.key, account: m.accountID, card: m.cardID, amount: charge.amount, invoiceIDs: m.invoiceIDs,
          source: "the processor's record", actor: .system)
        {
        case .adopted:
          adopted += 1
          logger.notice(
            "charge \(charge.key) (\(charge.amount), account \(m.accountID)) is at the processor but not in this ledger file; taken in"
          )
        case .known: break
        case .foreign(let why):
          logger.critical(
            "charge \(charge.key) (\(charge.amount), \(charge.outcome)) is at the processor but cannot be taken in: \(why); settle it by hand"
          )
        }
      }
    }
    return adopted
  }

  // MARK: - Schedule

  /// Asks the policy again for each invoice and saves its answer.
  public func reschedule(_ invoiceIDs: [Int64]) throws {
    try store.reschedule(invoiceIDs, config: config)
  }

  // MARK: - Recovery

  /// Resolves every pending attempt by asking the processor about its key: a charge the
  /// processor made is recorded as a payment; one it never got is closed as an error and
  /// retried later under a new key.
  @discardableResult
  public func recoverPending() async throws -> Int {
    let answers = try await pendingAnswers()
    guard !answers.isEmpty else { return 0 }
    // Every answer is recorded in one transaction.
    do {
      try store.write { try recordRecovered(answers) }
    } catch  where store.isOwnFailure(error) {
      try store.write { try recordRecovered(answers, isolating: true) }
    }
    return answers.count
  }

  /// A pending attempt with what the processor says of its key (nil: it never got it).
  public typealias RecoveryAnswer = (attempt: PendingAttempt, outcome: ChargeOutcome?)

  /// Every pending attempt with the processor's answer about its key; none when the
  /// processor cannot be asked now (they wait for the next try).
  public func pendingAnswers() async throws -> [RecoveryAnswer] {
    var pending = try store.pendingAttempts()
    // What the processor's webhooks said of an attempt (`POST /webhooks/stripe`) answers it
    // without asking. Only this loop records charges, and nothing is in flight while it
    // runs, so an outcome told by a webhook and by the call's own answer is recorded once.
    let told = try store.processorEventOutcomes()
    var answers: [RecoveryAnswer] = []
    if !told.isEmpty {
      pending.removeAll { attempt in
        guard let outcome = told[attempt.id] else { return false }
        if case .inProgress(let reference) = outcome, reference == attempt.processorRef { return false }
        answers.append((attempt: attempt, outcome: outcome))
        logger.notice("pending attempt \(attempt.id) (\(attempt.key)) answered by the processor's webhook")
        return true
      }
    }
    guard !pending.isEmpty else { return answers }
    let ledgerID = try store.read { try store.ledgerID() }
    let lookups = pending.map {
      ChargeLookup(request: request(for: $0, ledgerID: ledgerID), sentAt: $0.sentAt, reference: $0.processorRef)
    }
    var unanswered = 0
    for (attempt, answer) in zip(pending, await processor.lookup(lookups, now: store.clock.now())) {
      switch answer {
      case .success(.inProgress(let reference)) where reference == attempt.processorRef:
        // Still not finished, and already known so: nothing to write.
        unanswered += 1
      case .success(let outcome):
        answers.append((attempt: attempt, outcome: outcome))
      case .failure(let defect as ProcessorDefect):
        unanswered += 1
        logger.critical(
          "pending attempt \(attempt.id) (\(attempt.key)) cannot be resolved: the processor refused the lookup as a defect; settle it by hand: \(defect.reason)"
        )
      case .failure(let error):
        unanswered += 1
        logger.warning(
          "pending attempt \(attempt.id) (\(attempt.key)) cannot be resolved yet: \(String(describing: error))")
      }
    }
    if unanswered > 0 { logger.warning("\(unanswered) pending attempt(s) wait for the processor's answer") }
    return answers
  }

  /// Records the processor's answers about pending attempts, in the caller's transaction;
  /// `isolating`, each in a savepoint, so that one the ledger refuses for its own account
  /// stays pending (with an event) and the others are kept (the caller's second try, once
  /// the transaction failed for such a reason).
  func recordRecovered(_ answers: [RecoveryAnswer], isolating: Bool = false) throws {
    for (attempt, outcome) in answers {
      try recordAnswer(attempt, outcome, isolating: isolating) { try recordRecovered(attempt, outcome) }
    }
  }

  /// Records one answer about a pending attempt.
  func recordRecovered(_ attempt: PendingAttempt, _ outcome: ChargeOutcome?) throws {
    switch outcome {
    case .succeeded(let reference):
      _ = try store.recordChargeSucceeded(
        attempt, processorRef: reference, actor: .system, config: config, earlierDecline: nil)
      try reschedule(attempt.invoiceIDs)
    case .declined(let code):
      // The round was cut short: its invoices are due for a charge now, and the next pass
      // begins a new round, so the other cards are tried.
      try store.recordChargeFailed(
        attempt, status: .declined, rawCode: code, reason: DeclineReason(rawCode: code), actor: .system)
      try store.scheduleChargeNow(attempt.invoiceIDs)
    case .failed(let code):
      try closeAsError(attempt, rawCode: code, reason: DeclineReason(rawCode: code))
    case .inProgress(let reference):
      try store.noteProcessorReference(attempt, reference: reference)
    case nil:
      try closeAsError(attempt, rawCode: "not_received", reason: .processingError)
    }
    logger.info(
      "resolved pending attempt \(attempt.id) (\(attempt.key)): \(outcome.map { String(describing: $0) } ?? "never reached the processor")"
    )
  }

  /// A pending attempt the processor failed on or never got: closed as an error, its round
  /// failed (a processing error, retried within hours), its invoices and the account's
  /// others asked again.
  func closeAsError(_ attempt: PendingAttempt, rawCode: String, reason: DeclineReason) throws {
    try store.recordChargeFailed(attempt, status: .error, rawCode: rawCode, reason: reason, actor: .system)
    try failRound(
      invoiceIDs: attempt.invoiceIDs, account: attempt.accountID, reason: .processingError, attemptID: attempt.id,
      actor: .system)
    try reschedule(attempt.invoiceIDs)
    try rescheduleAfterFreedCharge(attempt)
  }

  /// A pending attempt counted toward its card's network limit; closed as an error it no
  /// longer does. The account's other card invoices that may have been waiting for that
  /// card are asked again (those with a charge in flight are left alone).
  func rescheduleAfterFreedCharge(_ attempt: PendingAttempt) throws {
    let own = Set(attempt.invoiceIDs)
    try reschedule(try store.scheduledCardInvoiceIDs(account: attempt.accountID).filter { !own.contains($0) })
  }

  // MARK: - Running what is due

  /// Runs every action due by the store's clock, batch after batch, until none is left.
  @discardableResult
  public func runDue() async throws -> TickReport {
    try await runDue(recording: [])
  }

  /// The same, first recording `answers` about pending attempts (`pendingAnswers()`) in the
  /// transaction that starts the first batch, instead of in one of their own.
  public func runDue(recording answers: [RecoveryAnswer]) async throws -> TickReport {
    var unrecorded = answers
    do {
      return try await runDue(recording: &unrecorded)
    } catch {
      // What the processor said is worth keeping even when the batch it was to start with
      // failed: recorded on its own (if that fails too, the attempts stay pending and are
      // asked about again).
      // Not when the ledger is gone from under the process: nothing more is written then,
      // and the next start asks the processor again.
      if !unrecorded.isEmpty, !store.isFatal(error) {
        _ = try? store.write { try recordRecovered(unrecorded, isolating: true) }
      }
      throw error
    }
  }

  /// The earliest moment something is due: an invoice's next action or a period's renewal.
  public func nextDueTime() throws -> Instant? {
    let action = try store.nextActionTime()
    guard let renewal = try store.nextRenewalTime() else { return action }
    return action.map { min($0, renewal) } ?? renewal
  }

  /// Invoices every subscription period due by now, with nothing else (no charge, no
  /// reminder): how many periods moved on.
  @discardableResult
  public func issueDueRenewals() throws -> Int {
    var report = TickReport()
    while try store.write({ try renewDue(report: &report) }) > 0 {}
    return report.renewals
  }

  /// Invoices the subscription periods due by now (at most a batch), in the caller's
  /// transaction, and schedules each new invoice's collection. Each renewal runs in a
  /// savepoint: one that fails for its own account is undone, logged, recorded as an event
  /// and tried again `failedStepRetrySeconds` later, and the others go on. How many ran.
  func renewDue(report: inout TickReport) throws -> Int {
    let accounts = try store.dueRenewals(until: store.clock.now(), limit: batchSize)
    for account in accounts {
      do {
        let outcome = try store.isolated {
          let outcome = try store.renew(account: account, config: config, actor: .scheduler)
          if let invoice = outcome.invoiceID { try reschedule([invoice]) }
          return outcome
        }
        report.renewals += 1
        if outcome.invoiceID != nil { report.renewalInvoices += 1 }
      } catch  where store.isOwnFailure(error) {
        let retryAt = store.clock.now().adding(seconds: failedStepRetrySeconds)
        logger.error(
          "renewal of account \(account) failed, tried again at \(retryAt): \(String(describing: error))")
        try store.postponeRenewal(
          account: account, retryAt: retryAt, error: String(describing: error), actor: .scheduler)
        report.failedSteps += 1
      }
    }
    return accounts.count
  }

  /// Whether two batches of due actions are the same invoices with the same actions at the
  /// same times.
  static func sameSchedule(_ a: [DueAction], _ b: [DueAction]) -> Bool {
    a.count == b.count
      && zip(a, b).allSatisfy { $0.invoiceID == $1.invoiceID && $0.action == $1.action && $0.at == $1.at }
  }

  /// The due steps that are not charges, each with the invoice's next schedule. Each runs
  /// in a savepoint: one that fails for its own invoice or account (not for the ledger as
  /// a whole) is undone, logged, recorded as an event and tried again
  /// `failedStepRetrySeconds` later, and the others go on.
  func carryOut(_ others: [DueAction], report: inout TickReport) throws {
    var done: [Int64] = []
    for item in others {
      do {
        try store.isolated { try carryOutStep(item, actor: .scheduler) }
      } catch  where store.isOwnFailure(error) {
        let retryAt = store.clock.now().adding(seconds: failedStepRetrySeconds)
        logger.error(
          "\(item.action.rawValue) of \(item.number) (account \(item.accountID)) failed, tried again at \(retryAt): \(String(describing: error))"
        )
        try store.postponeFailedStep(item, retryAt: retryAt, error: String(describing: error), actor: .scheduler)
        report.failedSteps += 1
        continue
      }
      switch item.action {
      case .remind: report.reminders += 1
      case .downgrade: report.downgrades += 1
      case .endTransferWindow: report.transferWindowsEnded += 1
      case .remindTransferDue: report.transferDueReminders += 1
      case .startDunning: report.dunningStarted += 1
      case .charge: break
      }
      done.append(item.invoiceID)
    }
    try reschedule(done)
  }

  /// One charge round per account and currency: every invoice of the account due for a
  /// charge now is combined into one charge (issuers flag several same-day charges as
  /// fraud), tried on the default card, then on each other usable card until one pays.
  struct Round {
    let accountID: Int64
    let currency: Currency
    var invoiceIDs: [Int64]
    var tried: Set<Int64> = []
    var lastReason: DeclineReason?
    var lastAttempt: Int64?
    /// The round's first declined card (the default, most often): a card that pays after
    /// it says so in its confirmation.
    var firstDecline: EarlierDecline?
    /// What is owed on each invoice, from the look for due actions, for the first card:
    /// that look ran in the same transaction. Later cards read it again.
    var dueFromLook: [(id: Int64, dueMinor: Int64)]?
  }

  /// One charge round per account and currency of the due charges.
  func rounds(_ due: [DueAction]) -> [Round] {
    var rounds: [Round] = []
    var index: [String: Int] = [:]
    for item in due {
      let key = "\(item.accountID)/\(item.currency.code)"
      if let i = index[key] {
        rounds[i].invoiceIDs.append(item.invoiceID)
        rounds[i].dueFromLook?.append((item.invoiceID, item.due.minorUnits))
      } else {
        index[key] = rounds.count
        rounds.append(
          Round(
            accountID: item.accountID, currency: item.currency, invoiceIDs: [item.invoiceID],
            dueFromLook: [(item.invoiceID, item.due.minorUnits)]))
      }
    }
    return rounds
  }

}

extension Scheduler {
  /// Time travel: runs everything due up to `until`, moving `clock` from one due time to
  /// the next. The same code as the daemon's loop, minus the sleeping.
  public func runUntil(_ until: Instant, clock: ManualClock) async throws -> TickReport {
    var report = TickReport()
    // At each instant: the pending attempts resolved by their keys, recorded with the
    // first batch due then.
    report.add(try await runDue(recording: try await pendingAnswers()))
    var steps = 0
    while let next = try nextDueTime(), next <= until {
      steps += 1
      guard steps < 1_000_000 else {
        throw StateError(subject: "run-due", rule: "the schedule does not advance (stuck at \(next))")
      }
      clock.advance(to: next)
      report.add(try await runDue(recording: try await pendingAnswers()))
    }
    clock.advance(to: until)
    report.add(try await runDue(recording: try await pendingAnswers()))
    return report
  }
}
