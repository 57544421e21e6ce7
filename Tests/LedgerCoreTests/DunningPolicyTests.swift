import Testing

@testable import LedgerCore

// MARK: - Fixtures

private let secondsPerDay: Int64 = 86_400
private let secondsPerHour: Int64 = 3_600

private func civil(_ text: String) -> CivilDate { try! CivilDate(iso8601: text) }
private func instant(_ text: String) -> Instant { try! Instant(iso8601: text) }

/// Monday 2026-03-02: the due date of most fixtures; its midnight is "day 0".
private let dueDate = civil("2026-03-02")
private let dueMidnight = Instant(dueDate)
/// Issued well before the due date.
private let issued = instant("2026-02-20T09:15:00Z")

private func day(_ d: Int, hours: Int = 0, seconds: Int64 = 0, from origin: Instant = dueMidnight)
  -> Instant
{
  origin.adding(days: d).adding(seconds: Int64(hours) * secondsPerHour + seconds)
}

/// A card invoice due on `dueDate`, not charged yet.
private func freshCardInvoice(usable: Bool = true) -> CollectionState {
  CollectionState(method: .card, issuedAt: issued, dueDate: dueDate, hasUsableCard: usable)
}

/// A transfer invoice due on `dueDate`.
private func freshTransferInvoice(issuedAt: Instant = issued) -> CollectionState {
  CollectionState(method: .transfer, issuedAt: issuedAt, dueDate: dueDate, hasUsableCard: false)
}

/// A card invoice whose first charge failed at `start` (day 0) for `reason`, as the store
/// leaves it: dunning started, deadline set, nothing retried or reminded yet.
private func inDunning(
  since start: Instant = dueMidnight, after reason: DeclineReason? = .insufficientFunds,
  usable: Bool = true,
  config: DunningConfig = DunningConfig.chargedWhenDue
) -> CollectionState {
  var s = freshCardInvoice(usable: usable)
  s.dunningStartedAt = start
  s.graceDeadline = DunningPolicy.deadline(start: start, config: config)
  s.lastChargeAt = reason == nil ? nil : start
  s.lastFailure = reason
  return s
}

// MARK: - Carrying out the schedule

/// One action as carried out, at its offset (seconds) from a reference instant.
private struct Step: Equatable, CustomStringConvertible {
  let action: CollectionAction
  let offset: Int64

  init(_ action: CollectionAction, offset: Int64) {
    self.action = action
    self.offset = offset
  }

  init(_ action: CollectionAction, day: Int, hours: Int = 0, seconds: Int64 = 0) {
    self.init(action, offset: Int64(day) * secondsPerDay + Int64(hours) * secondsPerHour + seconds)
  }

  var description: String {
    let sign = offset < 0 ? "-" : "+"
    let magnitude = abs(offset)
    let days = magnitude / secondsPerDay
    let rest = magnitude % secondsPerDay
    let tail =
      rest == 0 ? "" : " \(rest / secondsPerHour)h\(rest % secondsPerHour / 60)m\(rest % 60)s"
    return "\(action.rawValue)@\(sign)\(days)d\(tail)"
  }
}

/// An action the simulated scheduler carried out: when the policy asked for it and when it
/// ran (later when the policy asked for a moment already past).
private struct Executed {
  let action: CollectionAction
  let scheduledAt: Instant
  let ranAt: Instant
}

/// Plays the scheduler against `DunningPolicy.next`: ask, jump the clock to the answer (or
/// stay at "now" if the answer is in the past), carry the action out on the state as the
/// store would, ask again, until the downgrade or until nothing is scheduled. Every charge
/// fails with `decline(n)` for the n-th charge (0-based).
///
/// Carrying out goes through the production transitions (`DunningPolicy.apply`), as the
/// scheduler does; only the processor's answer (and whether another card is usable after a
/// hard decline) is played here.
private struct Scheduler {
  var state: CollectionState
  var config = DunningConfig.chargedWhenDue
  var decline: @Sendable (Int) -> DeclineReason = { _ in .insufficientFunds }
  var otherUsableCard = false
  /// Things that happen to the invoice from outside (a card added, a pause, a declared
  /// transfer), applied as soon as the clock reaches them and before an action due at the
  /// same moment.
  var events: [(at: Instant, change: (inout CollectionState, DunningConfig) -> Void)] = []
  var now: Instant
  var charges = 0
  /// Whether the step just carried out also carried the reminder due then.
  var carried = false

  init(_ state: CollectionState, now: Instant? = nil, config: DunningConfig = DunningConfig.chargedWhenDue) {
    self.state = state
    self.config = config
    self.now = now ?? state.issuedAt
  }

  mutating func run(maxSteps: Int = 200) -> [Executed] {
    var done: [Executed] = []
    var pending = events.sorted { $0.at < $1.at }
    while done.count < maxSteps {
      let next = DunningPolicy.next(state, config: config)
      let runAt = next.map { max(now, $0.at) }
      if let event = pending.first, runAt.map({ event.at <= $0 }) ?? true {
        now = max(now, event.at)
        event.change(&state, config)
        pending.removeFirst()
        continue
      }
      guard let next, let runAt else { break }
      now = runAt
      done.append(Executed(action: next.action, scheduledAt: next.at, ranAt: runAt))
      carryOut(next.action)
      // A reminder due at the same moment went out in the message of the step just run
      // (one decision, one message): it counts as a reminder at that moment.
      if carried {
        done.append(Executed(action: .remind, scheduledAt: runAt, ranAt: runAt))
        carried = false
      }
      if next.action == .downgrade { break }
    }
    return done
  }

  /// Carries the action out through the production transitions (`DunningPolicy.apply`),
  /// with the charge's outcome decided here: a charge is sent, then its round fails.
  mutating func carryOut(_ action: CollectionAction) {
    switch action {
    case .charge:
      let reason = decline(charges)
      charges += 1
      apply(.chargeSent)
      apply(.chargeRoundFailed(reason))
      if reason.retryClass == .hard, !otherUsableCard { state.hasUsableCard = false }
    case .remind: apply(.reminderSent)
    case .downgrade: apply(.graceExpired)
    case .endTransferWindow: apply(.transferWindowEnded)
    case .remindTransferDue: apply(.transferDueReminderSent)
    case .startDunning: apply(state.method == .card ? .chargeRoundFailed(nil) : .becameOverdue)
    }
  }

  mutating func apply(_ event: CollectionEvent) {
    let t = DunningPolicy.apply(event, to: state, at: now, config: config)
    state = t.state
    for effect in t.effects {
      switch effect {
      case .chargeFailedNotice(_, _, let reminder?), .transferNotReceivedNotice(_, let reminder?, _):
        carried = carried || reminder > 0
      default: break
      }
    }
  }
}

extension [Executed] {
  /// The actions as they ran, as offsets from `origin`.
  fileprivate func steps(from origin: Instant = dueMidnight) -> [Step] {
    map { Step($0.action, offset: $0.ranAt.secondsSinceEpoch - origin.secondsSinceEpoch) }
  }
}

// MARK: - Outside events, as the store applies them

/// A card is added, updated or made default: an immediate charge is requested.
private func cardAdded(_ s: inout CollectionState, _ at: Instant) {
  s = DunningPolicy.apply(.chargeRequested, to: s, at: at, config: DunningConfig.chargedWhenDue).state
  s.hasUsableCard = true
}

/// "Payment not registered": collection pauses.
private func pause(_ s: inout CollectionState, _ at: Instant) {
  s = DunningPolicy.apply(.paused, to: s, at: at, config: DunningConfig.chargedWhenDue).state
}

/// Staff resume: in dunning, the paused time is added and the deadline moves with it.
private func resume(_ s: inout CollectionState, _ at: Instant) {
  s = DunningPolicy.apply(.resumed, to: s, at: at, config: DunningConfig.chargedWhenDue).state
}

/// The customer declares a transfer: the window opens and a deadline inside it is pushed.
private func declareTransfer(_ s: inout CollectionState, _ at: Instant, _ config: DunningConfig) {
  let end = DunningPolicy.transferWindowEnd(declared: at, businessDays: config.transferWindowBusinessDays)
  s = DunningPolicy.apply(.transferDeclared(windowEndsAt: end), to: s, at: at, config: config).state
}

// MARK: - The first action of a card invoice

@Suite("DunningPolicy: first action of a card invoice")
struct DunningPolicyFirstActionTests {
  @Test("fixtures: the due date is a Monday, issued before it")
  func fixtures() {
    #expect(dueDate.isoWeekday == 1)
    #expect(issued < dueMidnight)
    #expect(dueMidnight.iso8601 == "2026-03-02T00:00:00Z")
  }

  @Test("a usable card is charged at midnight UTC of the due date")
  func chargeAtDueMidnight() {
    #expect(
      DunningPolicy.next(freshCardInvoice(), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: dueMidnight))
  }

  @Test(
    "issued later on the due day (or after it), the card is charged at the issue time",
    arguments: [
      "2026-03-02T00:00:01Z", "2026-03-02T15:30:12Z", "2026-03-02T23:59:59Z",
      "2026-03-05T08:00:00Z",
    ])
  func chargeAtIssueTime(issuedAt text: String) {
    let issuedAt = instant(text)
    let s = CollectionState(
      method: .card, issuedAt: issuedAt, dueDate: dueDate, hasUsableCard: true)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: issuedAt))
  }

  @Test("issued at the very midnight of the due date: charged then")
  func issuedAtMidnight() {
    let s = CollectionState(
      method: .card, issuedAt: dueMidnight, dueDate: dueDate, hasUsableCard: true)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: dueMidnight))
  }

  @Test("with no usable card, dunning starts at the due date's midnight instead of a charge")
  func noUsableCardStartsDunning() {
    #expect(
      DunningPolicy.next(freshCardInvoice(usable: false), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.startDunning, at: dueMidnight))
  }

  @Test("with no usable card, issued later on the due day: dunning starts at the issue time")
  func noUsableCardIssuedLater() {
    let issuedAt = instant("2026-03-02T15:30:12Z")
    let s = CollectionState(
      method: .card, issuedAt: issuedAt, dueDate: dueDate, hasUsableCard: false)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.startDunning, at: issuedAt)
    )
  }

  @Test("a card invoice is never charged or dunned before its due date")
  func nothingBeforeDue() {
    for usable in [true, false] {
      let next = DunningPolicy.next(freshCardInvoice(usable: usable), config: DunningConfig.chargedWhenDue)
      #expect(next != nil)
      #expect(next.map { $0.at >= dueMidnight } == true)
    }
  }

  @Test("the first charge's time does not depend on the dunning config")
  func firstChargeIgnoresConfig() {
    var config = DunningConfig.chargedWhenDue
    config.graceDays = 14
    config.retryDays = [2, 4]
    config.reminderDays = [5]
    config.transientRetryHours = 1
    #expect(
      DunningPolicy.next(freshCardInvoice(), config: config)
        == ScheduledAction(.charge, at: dueMidnight))
  }
}

// MARK: - Schedules carried out

@Suite("DunningPolicy: schedules carried out")
struct DunningPolicyScheduleTests {
  /// charge on day 0 fails, retries +1 +3 +5 +7, reminders 3 and 7, downgrade on day 9.
  fileprivate static let softSchedule: [Step] = [
    Step(.charge, day: 0), Step(.charge, day: 1), Step(.charge, day: 3), Step(.remind, day: 3),
    Step(.charge, day: 5),
    Step(.charge, day: 7), Step(.remind, day: 7), Step(.downgrade, day: 9),
  ]

  @Test(
    "soft decline: retries on days 1, 3, 5, 7, reminders on 3 and 7, downgrade on day 9",
    arguments: [
      DeclineReason.insufficientFunds, .bankBlock,
    ])
  func softSchedule(reason: DeclineReason) {
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.decline = { _ in reason }
    let done = scheduler.run()
    #expect(done.steps() == Self.softSchedule)
    // The policy never asked for a moment already past.
    #expect(done.allSatisfy { $0.scheduledAt == $0.ranAt })
    #expect(scheduler.state.dunningStartedAt == dueMidnight)
    #expect(scheduler.state.graceDeadline == day(9))
    #expect(scheduler.state.retriesDone == 4)
    #expect(scheduler.state.remindersSent == 2)
    #expect(scheduler.charges == 5)
  }

  @Test(
    "soft decline, starting from the state the first failure leaves",
    arguments: [
      DeclineReason.insufficientFunds, .bankBlock,
    ])
  func softScheduleFromDunningState(reason: DeclineReason) {
    var scheduler = Scheduler(inDunning(after: reason), now: dueMidnight)
    scheduler.decline = { _ in reason }
    #expect(scheduler.run().steps() == Array(Self.softSchedule.dropFirst()))
  }

  @Test("the deadline is the dunning start plus nine days, whatever the time of day")
  func deadlineIsStartPlusNineDays() {
    let start = instant("2026-03-02T13:47:09Z")
    #expect(
      DunningPolicy.deadline(start: start, config: DunningConfig.chargedWhenDue)
        == instant("2026-03-11T13:47:09Z"))
    var scheduler = Scheduler(inDunning(since: start), now: start)
    #expect(scheduler.run().steps(from: start) == Array(Self.softSchedule.dropFirst()))
  }

  @Test("without a stored deadline, the downgrade falls graceDays after the start")
  func deadlineFallback() {
    var s = inDunning()
    s.graceDeadline = nil
    s.retriesDone = 4
    s.remindersSent = 2
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.downgrade, at: day(9)))
  }

  @Test("a stored deadline wins over graceDays")
  func storedDeadlineWins() {
    var s = inDunning()
    s.graceDeadline = day(12, hours: 5)
    s.retriesDone = 4
    s.remindersSent = 2
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.downgrade, at: day(12, hours: 5)))
  }

  @Test(
    "hard decline with no other usable card: no further charge, reminders on 3 and 7, downgrade on day 9",
    arguments: [
      DeclineReason.expiredCard, .incorrectDetails, .lostOrStolen, .authenticationRequired,
    ])
  func hardDeclineNoOtherCard(reason: DeclineReason) {
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.decline = { _ in reason }
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.charge, day: 0), Step(.remind, day: 3), Step(.remind, day: 7),
        Step(.downgrade, day: 9),
      ])
    #expect(scheduler.charges == 1)
  }

  @Test(
    "in dunning with no usable card: only reminders and the downgrade",
    arguments: [
      DeclineReason.expiredCard, .incorrectDetails, .lostOrStolen, .authenticationRequired,
    ])
  func hardDeclineFromDunningState(reason: DeclineReason) {
    var scheduler = Scheduler(inDunning(after: reason, usable: false), now: dueMidnight)
    scheduler.decline = { _ in reason }
    #expect(
      scheduler.run().steps() == [
        Step(.remind, day: 3), Step(.remind, day: 7), Step(.downgrade, day: 9),
      ])
    #expect(scheduler.charges == 0)
  }

  @Test(
    "no usable card on the due date: dunning starts, then reminders and the downgrade, no charge")
  func noCardAtAll() {
    var scheduler = Scheduler(freshCardInvoice(usable: false))
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.startDunning, day: 0), Step(.remind, day: 3), Step(.remind, day: 7),
        Step(.downgrade, day: 9),
      ])
    #expect(scheduler.charges == 0)
    #expect(scheduler.state.graceDeadline == day(9))
  }

  @Test(
    "hard decline with another usable card: that card is retried on the soft schedule",
    arguments: [
      DeclineReason.expiredCard, .incorrectDetails, .lostOrStolen, .authenticationRequired,
    ])
  func hardDeclineOtherCard(reason: DeclineReason) {
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.decline = { _ in reason }
    scheduler.otherUsableCard = true
    #expect(scheduler.run().steps() == Self.softSchedule)
  }

  @Test("a card added on day 4 is charged at that instant, before anything else")
  func cardAddedOnDay4() {
    var scheduler = Scheduler(freshCardInvoice())
    let added = day(4, hours: 10, seconds: 17)
    scheduler.events = [(added, { s, _ in cardAdded(&s, added) })]
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.charge, day: 0), Step(.charge, day: 1), Step(.charge, day: 3), Step(.remind, day: 3),
        Step(.charge, day: 4, hours: 10, seconds: 17), Step(.charge, day: 5), Step(.charge, day: 7),
        Step(.remind, day: 7),
        Step(.downgrade, day: 9),
      ])
    #expect(done.allSatisfy { $0.scheduledAt == $0.ranAt })
  }

  @Test("chargeRequestedAt: an immediate charge at that instant")
  func chargeRequestedDirect() {
    var s = inDunning()
    s.retriesDone = 2
    s.remindersSent = 1
    s.lastChargeAt = day(3)
    s.chargeRequestedAt = day(4, hours: 10)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(4, hours: 10)))
  }

  @Test("chargeRequestedAt replaces a later scheduled retry, even with no usable card before")
  func chargeRequestedAfterHardDecline() {
    var s = inDunning(after: .expiredCard, usable: false)
    s.remindersSent = 1
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.remind, at: day(7)))
    cardAdded(&s, day(4))
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: day(4)))
  }

  @Test(
    "chargeRequestedAt at the same instant as a reminder and the deadline: the charge goes first")
  func chargeRequestedTie() {
    var s = inDunning()
    s.retriesDone = 4
    s.remindersSent = 1
    s.graceDeadline = day(7)
    s.chargeRequestedAt = day(7)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: day(7)))
  }

  @Test("chargeRequestedAt on a card invoice not yet in dunning: charged at that instant")
  func chargeRequestedBeforeDunning() {
    var s = freshCardInvoice()
    s.lastChargeAt = dueMidnight  // the first charge is in flight or was made
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == nil)
    s.chargeRequestedAt = day(0, hours: 2)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(0, hours: 2)))
  }

  @Test("a card added after a hard decline does not make the missed retries all at once")
  func cardAddedAfterHardDeclineNoBurst() {
    // Charge on day 0 fails (expired_card, no other card); a card is added on day 4, and
    // every charge on it fails for insufficient funds.
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.decline = { n in n == 0 ? .expiredCard : .insufficientFunds }
    let added = day(4)
    scheduler.events = [(added, { s, _ in cardAdded(&s, added) })]
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.charge, day: 0), Step(.remind, day: 3), Step(.charge, day: 4),
        Step(.charge, day: 5), Step(.charge, day: 7),
        Step(.remind, day: 7), Step(.downgrade, day: 9),
      ])
    // Pin the policy answer itself: after the day-4 charge failed, the next retry must not
    // be earlier than that charge.
    var s = inDunning(after: .insufficientFunds)
    s.lastChargeAt = day(4)
    s.remindersSent = 1
    s.retriesDone = 0
    let next = DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
    #expect(next == ScheduledAction(.charge, at: day(5)))
  }

  @Test(
    "schedule times never go backwards for soft, fraud and hard-with-another-card declines",
    arguments: [
      DeclineReason.insufficientFunds, .bankBlock, .suspectedFraud, .expiredCard, .lostOrStolen,
    ])
  func monotonic(reason: DeclineReason) {
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.decline = { _ in reason }
    scheduler.otherUsableCard = true
    let done = scheduler.run()
    #expect(done.last?.action == .downgrade)
    for (a, b) in zip(done, done.dropFirst()) {
      #expect(
        a.scheduledAt <= b.scheduledAt,
        "\(a.action) at \(a.scheduledAt) then \(b.action) at \(b.scheduledAt)")
    }
  }
}

// MARK: - Transient and fraud declines

@Suite("DunningPolicy: processing errors and suspected fraud")
struct DunningPolicyRetryClassTests {
  @Test("processing_error: the next charge is 4 hours after the failed one, not the next day")
  func transientRetryHours() {
    let s = inDunning(after: .processingError)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(0, hours: 4)))
  }

  @Test("processing_error: the configured hours are honoured")
  func transientRetryHoursConfig() {
    var config = DunningConfig.chargedWhenDue
    config.transientRetryHours = 7
    let s = inDunning(after: .processingError, config: config)
    #expect(DunningPolicy.next(s, config: config) == ScheduledAction(.charge, at: day(0, hours: 7)))
  }

  @Test("processing_error: never later than the next scheduled retry")
  func transientCappedBySchedule() {
    // The failed charge was at 23:00 on day 0: 4 hours later is past the day-1 retry.
    var s = inDunning(after: .processingError)
    s.lastChargeAt = day(0, hours: 23)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: day(1)))
    // Hours longer than the gap to the next retry are capped as well.
    var config = DunningConfig.chargedWhenDue
    config.transientRetryHours = 100
    #expect(
      DunningPolicy.next(inDunning(after: .processingError, config: config), config: config)
        == ScheduledAction(.charge, at: day(1)))
  }

  @Test("processing_error on a later retry: 4 hours after that retry, capped by the following one")
  func transientMidSchedule() {
    var s = inDunning(after: .processingError)
    s.retriesDone = 2
    s.remindersSent = 1
    s.lastChargeAt = day(3)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(3, hours: 4)))
    s.lastChargeAt = day(4, hours: 22)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: day(5)))
  }

  @Test(
    "processing_error after the last scheduled retry: still retried 4 hours later, before the deadline"
  )
  func transientAfterLastRetry() {
    var s = inDunning(after: .processingError)
    s.retriesDone = 4
    s.remindersSent = 2
    s.lastChargeAt = day(7)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(7, hours: 4)))
  }

  @Test("a processing error, then soft declines: one retry 4 hours later, then the normal schedule")
  func transientThenSoft() {
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.decline = { n in n == 0 ? .processingError : .insufficientFunds }
    #expect(
      scheduler.run().steps() == [
        Step(.charge, day: 0), Step(.charge, day: 0, hours: 4), Step(.charge, day: 1),
        Step(.charge, day: 3),
        Step(.remind, day: 3), Step(.charge, day: 5), Step(.charge, day: 7), Step(.remind, day: 7),
        Step(.downgrade, day: 9),
      ])
  }

  @Test("suspected_fraud: retried no sooner than 24 hours after the last charge")
  func fraudPause() {
    // A card-change charge at 20:00 on day 0 was flagged: the day-1 retry waits until
    // 20:00 on day 1.
    var s = inDunning(after: .suspectedFraud)
    s.lastChargeAt = day(0, hours: 20)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(1, hours: 20)))
    // Flagged at midnight on day 0: the day-1 retry is exactly 24 hours later.
    s.lastChargeAt = day(0)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: day(1)))
  }

  @Test("suspected_fraud: a longer configured pause pushes the retry past the scheduled day")
  func fraudPauseConfig() {
    var config = DunningConfig.chargedWhenDue
    config.fraudPauseHours = 60
    let s = inDunning(after: .suspectedFraud, config: config)
    #expect(
      DunningPolicy.next(s, config: config) == ScheduledAction(.charge, at: day(2, hours: 12)))
  }

  @Test("suspected_fraud: the pause never brings a retry earlier than its scheduled day")
  func fraudNotEarlier() {
    var s = inDunning(after: .suspectedFraud)
    s.retriesDone = 2
    s.remindersSent = 1
    s.lastChargeAt = day(3)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: day(5)))
  }

  @Test("suspected_fraud after the last scheduled retry: no more charges")
  func fraudExhausted() {
    var s = inDunning(after: .suspectedFraud)
    s.retriesDone = 4
    s.remindersSent = 2
    s.lastChargeAt = day(7)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.downgrade, at: day(9)))
  }

  @Test("suspected_fraud every time: the retries still land on days 1, 3, 5, 7 (gaps ≥ 24 h)")
  func fraudSchedule() {
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.decline = { _ in .suspectedFraud }
    let done = scheduler.run()
    #expect(done.steps() == DunningPolicyScheduleTests.softSchedule)
    for (a, b) in zip(
      done.filter { $0.action == .charge }, done.filter { $0.action == .charge }.dropFirst())
    {
      #expect(b.ranAt.secondsSinceEpoch - a.ranAt.secondsSinceEpoch >= 24 * secondsPerHour)
    }
  }

  @Test(
    "soft decline after the last scheduled retry: no more charges, only the reminder and downgrade")
  func softExhausted() {
    var s = inDunning()
    s.retriesDone = 4
    s.remindersSent = 1
    s.lastChargeAt = day(7)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.remind, at: day(7)))
    s.remindersSent = 2
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.downgrade, at: day(9)))
  }
}

// MARK: - Pauses

@Suite("DunningPolicy: paused invoices")
struct DunningPolicyPauseTests {
  static func pausable() -> [(String, CollectionState)] {
    var requested = inDunning()
    requested.chargeRequestedAt = day(2)
    var window = inDunning()
    window.transferWindowEndsAt = day(4)
    var transferDunning = freshTransferInvoice()
    transferDunning.dunningStartedAt = day(1)
    transferDunning.graceDeadline = day(10)
    var exhausted = inDunning()
    exhausted.retriesDone = 4
    exhausted.remindersSent = 2
    return [
      ("fresh card invoice", freshCardInvoice()),
      ("no usable card", freshCardInvoice(usable: false)),
      ("soft dunning", inDunning()), ("transient", inDunning(after: .processingError)),
      ("hard, no card", inDunning(after: .expiredCard, usable: false)),
      ("charge requested", requested),
      ("transfer window", window), ("transfer before due", freshTransferInvoice()),
      ("transfer in dunning", transferDunning), ("only the downgrade left", exhausted),
    ]
  }

  @Test("a paused invoice has nothing scheduled at all")
  func pausedIsNil() {
    for (name, state) in Self.pausable() {
      var s = state
      #expect(
        DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) != nil,
        "\(name) has something scheduled before the pause")
      s.pausedSince = day(1, hours: 3)
      #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == nil, "\(name)")
    }
  }

  @Test(
    "after a resume, every retry and reminder moves by the paused seconds (the store moves the deadline)",
    arguments: [Int64(1), 3_600, 112_385, 432_000] as [Int64]  // 1 s, 1 h, 1 d 7 h 13 min 5 s, 5 d
  )
  func resumeShifts(pausedSeconds n: Int64) {
    for reason in [DeclineReason.insufficientFunds, .bankBlock, .suspectedFraud, .expiredCard] {
      for retriesDone in 0...4 {
        for remindersSent in 0...2 {
          var s = inDunning(after: reason)
          s.retriesDone = retriesDone
          s.remindersSent = remindersSent
          s.lastChargeAt =
            retriesDone == 0 ? day(0) : day(DunningConfig.chargedWhenDue.retryDays[retriesDone - 1])
          var shifted = s
          shifted.pausedSeconds = n
          shifted.graceDeadline = s.graceDeadline?.adding(seconds: n)
          let before = DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
          let after = DunningPolicy.next(shifted, config: DunningConfig.chargedWhenDue)
          #expect(
            after?.action == before?.action,
            "\(reason) retries \(retriesDone) reminders \(remindersSent)")
          #expect(
            after?.at == before?.at.adding(seconds: n),
            "\(reason) retries \(retriesDone) reminders \(remindersSent)")
        }
      }
    }
  }

  @Test("paused on day 2 and resumed N seconds later: the rest of the schedule moves by N")
  func pauseResumeSchedule() {
    let n: Int64 = 86_400 + 7 * 3_600 + 13 * 60 + 5
    let pausedAt = day(2, hours: 6)
    let resumedAt = pausedAt.adding(seconds: n)
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.events = [
      (pausedAt, { s, _ in pause(&s, pausedAt) }),
      (resumedAt, { s, _ in resume(&s, resumedAt) }),
    ]
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.charge, day: 0), Step(.charge, day: 1), Step(.charge, offset: 3 * secondsPerDay + n),
        Step(.remind, offset: 3 * secondsPerDay + n), Step(.charge, offset: 5 * secondsPerDay + n),
        Step(.charge, offset: 7 * secondsPerDay + n), Step(.remind, offset: 7 * secondsPerDay + n),
        Step(.downgrade, offset: 9 * secondsPerDay + n),
      ])
    #expect(scheduler.state.pausedSeconds == n)
    #expect(scheduler.state.graceDeadline == day(9, seconds: n))
  }

  @Test(
    "nothing happens while paused, even past the deadline; a long pause moves the downgrade as far")
  func longPause() {
    let pausedAt = day(8)
    let resumedAt = day(20)
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.events = [
      (pausedAt, { s, _ in pause(&s, pausedAt) }),
      (resumedAt, { s, _ in resume(&s, resumedAt) }),
    ]
    let done = scheduler.run()
    #expect(!done.contains { $0.ranAt > pausedAt && $0.ranAt < resumedAt })
    #expect(
      done.last.map {
        Step($0.action, offset: $0.ranAt.secondsSinceEpoch - dueMidnight.secondsSinceEpoch)
      } == Step(.downgrade, day: 21))
  }

  @Test("after a resume, processing-error and fraud retries keep their real-time rules")
  func resumeTransientAndFraud() {
    // These two waits are about the processor and the issuer, whose clocks do not stop:
    // the transient retry stays 4 hours after the failed charge (capped by the shifted
    // schedule), the fraud retry stays at least 24 hours after the flagged charge and no
    // earlier than the shifted scheduled day.
    let n: Int64 = 10 * secondsPerHour
    var transient = inDunning(after: .processingError)
    transient.pausedSeconds = n
    transient.graceDeadline = transient.graceDeadline?.adding(seconds: n)
    let retry = DunningPolicy.next(transient, config: DunningConfig.chargedWhenDue)
    #expect(retry?.action == .charge)
    #expect(retry.map { $0.at >= day(0, hours: 4) && $0.at <= day(1, seconds: n) } == true)

    var fraud = inDunning(after: .suspectedFraud)
    fraud.lastChargeAt = day(0, hours: 20)
    fraud.pausedSeconds = n
    fraud.graceDeadline = fraud.graceDeadline?.adding(seconds: n)
    let fraudRetry = DunningPolicy.next(fraud, config: DunningConfig.chargedWhenDue)
    #expect(fraudRetry?.action == .charge)
    #expect(fraudRetry.map { $0.at >= day(1, hours: 20) && $0.at >= day(1, seconds: n) } == true)
  }
}

// MARK: - Transfer windows

@Suite("DunningPolicy: declared transfer windows")
struct DunningPolicyTransferWindowTests {
  @Test(
    "an open window: endTransferWindow at its end, even when a retry, reminder or the deadline falls inside"
  )
  func windowHidesEverything() {
    var s = inDunning()
    s.transferWindowEndsAt = day(10, hours: 9)
    s.graceDeadline = day(9)  // not pushed, to show that even the deadline waits
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.endTransferWindow, at: day(10, hours: 9)))
    s.chargeRequestedAt = day(2)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.endTransferWindow, at: day(10, hours: 9)))
    s.retriesDone = 4
    s.remindersSent = 2
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.endTransferWindow, at: day(10, hours: 9)))
  }

  @Test(
    "an open window on an invoice not yet due or in dunning: only its end",
    arguments: [true, false])
  func windowBeforeDunning(transfer: Bool) {
    var s = transfer ? freshTransferInvoice() : freshCardInvoice()
    s.transferWindowEndsAt = day(-1, hours: 15)
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.endTransferWindow, at: day(-1, hours: 15)))
  }

  @Test(
    "declared after the day-7 reminder: window end, then the downgrade pushed to a day after it")
  func declaredNearDeadline() {
    // Day 7 is Monday 2026-03-09; declared at 10:00 on Tuesday (day 8), the window ends on
    // Friday 10:00 (day 11) and the day-9 deadline moves to Saturday 10:00 (day 12).
    let declared = day(8, hours: 10)
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.events = [(declared, { s, config in declareTransfer(&s, declared, config) })]
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.charge, day: 0), Step(.charge, day: 1), Step(.charge, day: 3), Step(.remind, day: 3),
        Step(.charge, day: 5),
        Step(.charge, day: 7), Step(.remind, day: 7), Step(.endTransferWindow, day: 11, hours: 10),
        Step(.downgrade, day: 12, hours: 10),
      ])
    #expect(!done.contains { $0.ranAt > declared && $0.ranAt < day(11, hours: 10) })
  }

  @Test("declared on day 2: nothing happens inside the window")
  func declaredEarly() {
    let declared = day(2, hours: 9)  // Wednesday 09:00 → window ends Monday 09:00 (day 7)
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.events = [(declared, { s, config in declareTransfer(&s, declared, config) })]
    let done = scheduler.run()
    let end = day(7, hours: 9)
    #expect(done.first { $0.ranAt > declared }?.action == .endTransferWindow)
    #expect(done.first { $0.ranAt > declared }?.ranAt == end)
    #expect(!done.contains { $0.ranAt > declared && $0.ranAt < end })
    #expect(done.last?.action == .downgrade)
    #expect(done.last?.ranAt == day(9))
  }

  @Test("retries and reminders missed during a window are not all made at once when it ends")
  func windowEndNoBurst() {
    let declared = day(2, hours: 9)
    var scheduler = Scheduler(freshCardInvoice())
    scheduler.events = [(declared, { s, config in declareTransfer(&s, declared, config) })]
    let done = scheduler.run()
    let end = day(7, hours: 9)
    let atEnd = done.filter { $0.ranAt == end }
    #expect(atEnd.filter { $0.action == .charge }.count <= 1)
    #expect(atEnd.filter { $0.action == .remind }.count <= 1)
  }
}

// MARK: - Transfer invoices

@Suite("DunningPolicy: transfer invoices")
struct DunningPolicyTransferInvoiceTests {
  @Test("reminder 3 days before the due date, then dunning at the end of the due day")
  func transferBeforeDue() {
    var s = freshTransferInvoice()
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.remindTransferDue, at: instant("2026-02-27T00:00:00Z")))
    s.dueReminderSent = true
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.startDunning, at: instant("2026-03-03T00:00:00Z")))
  }

  @Test(
    "no due reminder when the invoice is issued at or after that moment",
    arguments: ["2026-02-27T00:00:00Z", "2026-02-27T08:00:00Z", "2026-03-02T12:00:00Z"])
  func noReminderWhenIssuedLate(issuedAt text: String) {
    let s = freshTransferInvoice(issuedAt: instant(text))
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.startDunning, at: day(1)))
  }

  @Test("a due reminder when issued just before that moment")
  func reminderWhenIssuedJustBefore() {
    let s = freshTransferInvoice(issuedAt: instant("2026-02-26T23:59:59Z"))
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.remindTransferDue, at: day(-3)))
  }

  @Test(
    "carried out: due reminder, dunning, reminders, downgrade, never a charge",
    arguments: [false, true])
  func transferSchedule(cardOnFile: Bool) {
    var s = freshTransferInvoice()
    s.hasUsableCard = cardOnFile
    if cardOnFile { s.chargeRequestedAt = day(4) }
    var scheduler = Scheduler(s)
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.remindTransferDue, day: -3), Step(.startDunning, day: 1), Step(.remind, day: 4),
        Step(.remind, day: 8),
        Step(.downgrade, day: 10),
      ])
    #expect(scheduler.charges == 0)
    #expect(scheduler.state.graceDeadline == day(10))
  }

  @Test("a transfer invoice in dunning with a usable card and a charge request: still no charge")
  func transferNeverCharged() {
    var s = freshTransferInvoice()
    s.dunningStartedAt = day(1)
    s.graceDeadline = day(10)
    s.hasUsableCard = true
    s.chargeRequestedAt = day(2)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.remind, at: day(4)))
  }

  @Test("the due reminder follows transferDueReminderDays")
  func transferReminderConfig() {
    var config = DunningConfig.chargedWhenDue
    config.transferDueReminderDays = 7
    #expect(
      DunningPolicy.next(freshTransferInvoice(), config: config)
        == ScheduledAction(.remindTransferDue, at: day(-7)))
    config.transferDueReminderDays = 20  // before the issue time: skipped
    #expect(
      DunningPolicy.next(freshTransferInvoice(), config: config)
        == ScheduledAction(.startDunning, at: day(1)))
  }

  @Test("a declared transfer before the due date: the window end first, then dunning")
  func transferDeclaredBeforeDue() {
    let declared = day(-1, hours: 16)  // Sunday 16:00 → window ends Wednesday 16:00 (day 2)
    var s = freshTransferInvoice()
    s.dueReminderSent = true
    var scheduler = Scheduler(s, now: day(-2))
    scheduler.events = [(declared, { s, config in declareTransfer(&s, declared, config) })]
    let done = scheduler.run()
    #expect(done.first?.action == .endTransferWindow)
    #expect(done.first?.ranAt == day(2, hours: 16))
    // Dunning was due on day 1, inside the window: it starts when the window ends, in the
    // same decision (the window's message is the overdue notice too), so the next step is
    // the day-3 reminder counted from then.
    #expect(!done.contains { $0.action == .startDunning })
    #expect(done.dropFirst().first?.action == .remind)
    #expect(done.dropFirst().first?.ranAt == day(5, hours: 16))
    #expect(!done.contains { $0.action == .charge })
  }
}

// MARK: - transferWindowEnd and the deadline push

@Suite("DunningPolicy: transfer window end")
struct DunningPolicyWindowEndTests {
  @Test(
    "3 business days after the declaration, same time of day",
    arguments: [
      ("2026-03-02T14:37:21Z", 1, "2026-03-05T14:37:21Z"),  // Monday → Thursday
      ("2026-03-03T14:37:21Z", 2, "2026-03-06T14:37:21Z"),  // Tuesday → Friday
      ("2026-03-04T14:37:21Z", 3, "2026-03-09T14:37:21Z"),  // Wednesday → Monday
      ("2026-03-05T14:37:21Z", 4, "2026-03-10T14:37:21Z"),  // Thursday → Tuesday
      ("2026-03-06T14:37:21Z", 5, "2026-03-11T14:37:21Z"),  // Friday → Wednesday
      ("2026-03-07T14:37:21Z", 6, "2026-03-11T14:37:21Z"),  // Saturday → Wednesday
      ("2026-03-08T14:37:21Z", 7, "2026-03-11T14:37:21Z"),  // Sunday → Wednesday
      ("2026-03-06T00:00:00Z", 5, "2026-03-11T00:00:00Z"),  // Friday midnight
      ("2026-03-08T23:59:59Z", 7, "2026-03-11T23:59:59Z"),  // Sunday just before midnight
      ("2026-12-31T08:00:00Z", 4, "2027-01-05T08:00:00Z"),  // Thursday, across the year
      ("2028-02-25T10:00:00Z", 5, "2028-03-01T10:00:00Z"),  // Friday, across 29 February
    ])
  func businessDays(declared: String, weekday: Int, expected: String) throws {
    let declared = instant(declared)
    try #require(declared.date.isoWeekday == weekday)
    let end = DunningPolicy.transferWindowEnd(declared: declared, businessDays: 3)
    #expect(end == instant(expected))
    #expect(end.date.isoWeekday <= 5)
  }

  @Test("the default config's business days give the same ends")
  func configBusinessDays() {
    let config = DunningConfig.chargedWhenDue
    #expect(config.transferWindowBusinessDays == 3)
    #expect(
      DunningPolicy.transferWindowEnd(
        declared: instant("2026-03-05T10:00:00Z"), businessDays: config.transferWindowBusinessDays)
        == instant("2026-03-10T10:00:00Z"))
  }

  @Test(
    "other business-day counts",
    arguments: [
      ("2026-03-02T10:00:00Z", 0, "2026-03-02T10:00:00Z"),  // none: the declaration itself
      ("2026-03-07T10:00:00Z", 0, "2026-03-07T10:00:00Z"),
      ("2026-03-06T10:00:00Z", 1, "2026-03-09T10:00:00Z"),  // Friday + 1 → Monday
      ("2026-03-02T10:00:00Z", 5, "2026-03-09T10:00:00Z"),  // Monday + 5 → next Monday
      ("2026-03-02T10:00:00Z", 10, "2026-03-16T10:00:00Z"),
    ])
  func otherCounts(declared: String, days: Int, expected: String) {
    #expect(
      DunningPolicy.transferWindowEnd(declared: instant(declared), businessDays: days)
        == instant(expected))
  }

  @Test("a deadline inside the window is pushed to the window end plus one day")
  func deadlinePushed() {
    let end = instant("2026-03-11T14:00:00Z")
    let config = DunningConfig.chargedWhenDue
    #expect(
      DunningPolicy.deadline(
        instant("2026-03-10T00:00:00Z"), afterWindowEnding: end, config: config)
        == instant("2026-03-12T14:00:00Z"))
    #expect(
      DunningPolicy.deadline(end, afterWindowEnding: end, config: config)
        == instant("2026-03-12T14:00:00Z"))
    // Between the window end and a day after it: still pushed to a full day after.
    #expect(
      DunningPolicy.deadline(
        instant("2026-03-12T02:00:00Z"), afterWindowEnding: end, config: config)
        == instant("2026-03-12T14:00:00Z"))
  }

  @Test("a deadline later than the window end plus a day is left alone")
  func deadlineKept() {
    let end = instant("2026-03-11T14:00:00Z")
    let config = DunningConfig.chargedWhenDue
    for later in ["2026-03-12T14:00:00Z", "2026-03-12T14:00:01Z", "2026-03-20T00:00:00Z"] {
      #expect(
        DunningPolicy.deadline(instant(later), afterWindowEnding: end, config: config)
          == instant(later))
    }
  }

  @Test("graceAfterTransferWindowDays is honoured")
  func deadlineConfig() {
    let end = instant("2026-03-11T14:00:00Z")
    var config = DunningConfig.chargedWhenDue
    config.graceAfterTransferWindowDays = 3
    #expect(
      DunningPolicy.deadline(
        instant("2026-03-10T00:00:00Z"), afterWindowEnding: end, config: config)
        == instant("2026-03-14T14:00:00Z"))
    #expect(
      DunningPolicy.deadline(
        instant("2026-03-15T00:00:00Z"), afterWindowEnding: end, config: config)
        == instant("2026-03-15T00:00:00Z"))
    config.graceAfterTransferWindowDays = 0
    #expect(
      DunningPolicy.deadline(
        instant("2026-03-10T00:00:00Z"), afterWindowEnding: end, config: config) == end)
  }
}

// MARK: - Config

@Suite("DunningPolicy: config")
struct DunningPolicyConfigTests {
  @Test("the defaults are the seeds'")
  func defaults() {
    let c = DunningConfig.chargedWhenDue
    #expect(c.graceDays == 9)
    #expect(c.retryDays == [1, 3, 5, 7])
    #expect(c.reminderDays == [3, 7])
    #expect(c.transientRetryHours == 4)
    #expect(c.fraudPauseHours == 24)
    #expect(c.transferWindowBusinessDays == 3)
    #expect(c.graceAfterTransferWindowDays == 1)
    #expect(c.transferDueReminderDays == 3)
    #expect(c.retryDays.allSatisfy { $0 < c.graceDays })
    #expect(c.reminderDays.allSatisfy { $0 < c.graceDays })
  }

  @Test("graceDays 14, retryDays [2, 4], reminderDays [5]")
  func customSchedule() {
    var config = DunningConfig.chargedWhenDue
    config.graceDays = 14
    config.retryDays = [2, 4]
    config.reminderDays = [5]
    var scheduler = Scheduler(freshCardInvoice(), config: config)
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.charge, day: 0), Step(.charge, day: 2), Step(.charge, day: 4), Step(.remind, day: 5),
        Step(.downgrade, day: 14),
      ])
    #expect(scheduler.state.graceDeadline == day(14))
    #expect(DunningPolicy.deadline(start: dueMidnight, config: config) == day(14))
  }

  @Test("custom schedule with no usable card and on a transfer invoice")
  func customScheduleNoCharge() {
    var config = DunningConfig.chargedWhenDue
    config.graceDays = 14
    config.retryDays = [2, 4]
    config.reminderDays = [5]
    var noCard = Scheduler(freshCardInvoice(usable: false), config: config)
    #expect(
      noCard.run().steps() == [
        Step(.startDunning, day: 0), Step(.remind, day: 5), Step(.downgrade, day: 14),
      ])
    var transfer = Scheduler(freshTransferInvoice(), config: config)
    #expect(
      transfer.run().steps() == [
        Step(.remindTransferDue, day: -3), Step(.startDunning, day: 1), Step(.remind, day: 6),
        Step(.downgrade, day: 15),
      ])
  }

  @Test("no retries and no reminders configured: straight to the downgrade")
  func emptySchedule() {
    var config = DunningConfig.chargedWhenDue
    config.retryDays = []
    config.reminderDays = []
    var scheduler = Scheduler(freshCardInvoice(), config: config)
    #expect(scheduler.run().steps() == [Step(.charge, day: 0), Step(.downgrade, day: 9)])
  }

  @Test(
    "a shorter grace than the schedule: the downgrade ends it, a retry on the same day going first")
  func shortGrace() {
    var config = DunningConfig.chargedWhenDue
    config.graceDays = 5
    var scheduler = Scheduler(freshCardInvoice(), config: config)
    #expect(
      scheduler.run().steps() == [
        Step(.charge, day: 0), Step(.charge, day: 1), Step(.charge, day: 3), Step(.remind, day: 3),
        Step(.charge, day: 5),
        Step(.downgrade, day: 5),
      ])
  }
}

// MARK: - Decline reasons and ties

@Suite("DunningPolicy: decline reasons and ties")
struct DunningPolicyReasonTests {
  static let hard: Set<DeclineReason> = [
    .expiredCard, .incorrectDetails, .lostOrStolen, .authenticationRequired,
  ]

  static func expectedClass(_ reason: DeclineReason) -> RetryClass {
    switch reason {
    case .insufficientFunds, .bankBlock: .soft
    case .suspectedFraud: .softAfterPause
    case .processingError: .transient
    case .expiredCard, .incorrectDetails, .lostOrStolen, .authenticationRequired: .hard
    }
  }

  @Test("every reason's retry class", arguments: DeclineReason.allCases)
  func retryClass(reason: DeclineReason) {
    #expect(reason.retryClass == Self.expectedClass(reason))
    #expect((reason.retryClass == .hard) == Self.hard.contains(reason))
    #expect(reason.genericWording == (reason == .lostOrStolen))
  }

  @Test(
    "every reason's first retry after a failure on day 0 (another card usable)",
    arguments: DeclineReason.allCases)
  func firstRetry(reason: DeclineReason) {
    let next = DunningPolicy.next(inDunning(after: reason), config: DunningConfig.chargedWhenDue)
    let expected: Instant =
      switch reason.retryClass {
      case .transient: day(0, hours: 4)
      case .soft, .hard, .softAfterPause: day(1)
      }
    #expect(next == ScheduledAction(.charge, at: expected))
  }

  @Test(
    "every reason with no usable card left: the next action is the reminder",
    arguments: DeclineReason.allCases)
  func noCardNoCharge(reason: DeclineReason) {
    #expect(
      DunningPolicy.next(inDunning(after: reason, usable: false), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.remind, at: day(3)))
  }

  @Test(
    "a charge, a reminder and the deadline at the same instant: charge, then remind, then downgrade",
    arguments: DeclineReason.allCases)
  func tieOrder(reason: DeclineReason) {
    // Grace of 7 days: the day-7 retry, the day-7 reminder and the deadline coincide.
    var config = DunningConfig.chargedWhenDue
    config.graceDays = 7
    var s = inDunning(after: reason, config: config)
    s.retriesDone = 3
    s.remindersSent = 1
    s.lastChargeAt =
      switch reason.retryClass {
      case .transient: day(7, hours: -4)
      case .softAfterPause: day(6)
      case .soft, .hard: day(5)
      }
    #expect(DunningPolicy.next(s, config: config) == ScheduledAction(.charge, at: day(7)))
    var scheduler = Scheduler(s, now: s.lastChargeAt, config: config)
    scheduler.decline = { _ in reason }
    scheduler.otherUsableCard = true
    #expect(
      scheduler.run().steps() == [
        Step(.charge, day: 7), Step(.remind, day: 7), Step(.downgrade, day: 7),
      ])
  }

  @Test("retry, reminder and grace all on day 9 by config: charge, remind, downgrade")
  func tieOrderByConfig() {
    var config = DunningConfig.chargedWhenDue
    config.retryDays = [9]
    config.reminderDays = [9]
    var scheduler = Scheduler(freshCardInvoice(), config: config)
    #expect(
      scheduler.run().steps() == [
        Step(.charge, day: 0), Step(.charge, day: 9), Step(.remind, day: 9),
        Step(.downgrade, day: 9),
      ])
  }

  @Test("a reminder and the deadline at the same instant, no card: remind, then downgrade")
  func remindBeforeDowngrade() {
    var s = inDunning(usable: false)
    s.remindersSent = 1
    s.graceDeadline = day(7)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.remind, at: day(7)))
    s.remindersSent = 2
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.downgrade, at: day(7)))
  }

  @Test("raw codes map to their reasons; unknown codes are a soft bank block")
  func rawCodes() {
    #expect(DeclineReason(rawCode: "insufficient_funds") == .insufficientFunds)
    #expect(DeclineReason(rawCode: "DO_NOT_HONOR") == .bankBlock)
    #expect(DeclineReason(rawCode: "issuer_fraud_alert") == .suspectedFraud)
    #expect(DeclineReason(rawCode: "pickup_card") == .lostOrStolen)
    #expect(DeclineReason(rawCode: "incorrect_cvc") == .incorrectDetails)
    #expect(DeclineReason(rawCode: "timeout") == .processingError)
    #expect(DeclineReason(rawCode: "something_new").retryClass == .soft)
  }
}

// MARK: - The card network's limit

/// No card is usable now only because the network's limit holds the account's cards back
/// until `until`.
private func limited(_ s: CollectionState, until: Instant) -> CollectionState {
  var s = s
  s.hasUsableCard = false
  s.cardUsableAgainAt = until
  return s
}

@Suite("DunningPolicy: cards held back by the network's limit")
struct DunningPolicyCardLimitTests {
  @Test("dunning started without a charge (card at its limit): the charge waits for the window, not day 0")
  func startedWithoutAChargeWaitsForTheWindow() {
    // What the store left when the round found the only card at its limit: dunning
    // started, no charge made, no failure reason.
    let s = inDunning(after: nil, usable: false)
    #expect(DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.remind, at: day(3)))
    #expect(
      DunningPolicy.next(limited(s, until: day(2, hours: 9)), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(2, hours: 9)))
    // Usable again: the charge is due at once (day 0 is past; the scheduler runs it now).
    var usable = s
    usable.hasUsableCard = true
    #expect(DunningPolicy.next(usable, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: day(0)))
  }

  @Test("a scheduled retry waits for the window; a window that frees before it changes nothing")
  func retryWaitsForTheWindow() {
    let s = inDunning()
    #expect(
      DunningPolicy.next(limited(s, until: day(2, hours: 5)), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(2, hours: 5)))
    #expect(
      DunningPolicy.next(limited(s, until: day(0, hours: 5)), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(1)))
  }

  @Test("a processing error's retry within hours waits for the window too")
  func transientRetryWaitsForTheWindow() {
    var s = inDunning(after: .processingError)
    s.retriesDone = 4  // no scheduled retry left: only the 4-hour retry, already past
    #expect(
      DunningPolicy.next(s, config: DunningConfig.chargedWhenDue) == ScheduledAction(.charge, at: day(0, hours: 4)))
    #expect(
      DunningPolicy.next(limited(s, until: day(1, hours: 6)), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(1, hours: 6)))
  }

  @Test("a charge asked for by a card change waits for the window")
  func requestedChargeWaitsForTheWindow() {
    var s = inDunning()
    s.chargeRequestedAt = day(0, hours: 12)
    #expect(
      DunningPolicy.next(limited(s, until: day(1, hours: 3)), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: day(1, hours: 3)))
  }

  @Test("a window that frees after the deadline: reminders and the downgrade, no charge")
  func windowAfterTheDeadline() {
    var scheduler = Scheduler(limited(inDunning(after: nil, usable: false), until: day(30)), now: day(0))
    let done = scheduler.run()
    #expect(done.steps() == [Step(.remind, day: 3), Step(.remind, day: 7), Step(.downgrade, day: 9)])
    #expect(scheduler.charges == 0)
  }

  @Test("before the due date: charged on the due date if the window frees by then, else dunning starts")
  func beforeTheDueDate() {
    let fresh = freshCardInvoice(usable: false)
    #expect(
      DunningPolicy.next(limited(fresh, until: day(-2)), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.charge, at: dueMidnight))
    #expect(
      DunningPolicy.next(limited(fresh, until: day(2)), config: DunningConfig.chargedWhenDue)
        == ScheduledAction(.startDunning, at: dueMidnight))
  }

  @Test("the card frees up on day 5: charged then, and the retries go on from there without a burst")
  func chargingResumesWhenTheWindowFreesUp() {
    var scheduler = Scheduler(limited(freshCardInvoice(usable: false), until: day(5)), now: issued)
    scheduler.events = [
      (
        day(5),
        { s, _ in
          s.hasUsableCard = true
          s.cardUsableAgainAt = nil
        }
      )
    ]
    let done = scheduler.run()
    #expect(
      done.steps() == [
        Step(.startDunning, day: 0), Step(.remind, day: 3), Step(.charge, day: 5), Step(.charge, day: 7),
        Step(.remind, day: 7),
        Step(.downgrade, day: 9),
      ])
  }

  @Test(
    "with every card held back, no charge is ever asked for before the window frees",
    arguments: [nil, DeclineReason.insufficientFunds, .processingError, .suspectedFraud, .expiredCard])
  func neverBeforeTheWindow(reason: DeclineReason?) {
    for retries in 0...4 {
      for requested in [nil, day(0, hours: 1)] {
        var s = inDunning(after: reason, usable: false)
        s.retriesDone = retries
        s.chargeRequestedAt = requested
        let until = day(1, hours: 7)
        if let next = DunningPolicy.next(limited(s, until: until), config: DunningConfig.chargedWhenDue),
          next.action == .charge
        {
          #expect(next.at >= until)
        }
      }
    }
  }
}
