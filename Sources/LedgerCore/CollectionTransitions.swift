/// Something that happens to an open invoice's collection: a step the scheduler carried
/// out, or what a customer or staff did.
public enum CollectionEvent: Sendable, Equatable {
  /// A charge of the invoice went to the processor (its attempt committed as pending).
  case chargeSent
  /// Every usable card of a charge round failed, the last for `reason` (nil: no card could
  /// be charged at all).
  case chargeRoundFailed(DeclineReason?)
  /// A transfer invoice's due day ended unpaid.
  case becameOverdue
  /// The reminder of the coming downgrade went out.
  case reminderSent
  /// The reminder that a transfer invoice falls due soon went out.
  case transferDueReminderSent
  /// A declared transfer's clearing window ended without the money.
  case transferWindowEnded
  /// The grace deadline came with the invoice unpaid.
  case graceExpired
  /// A card was added, updated or made default: charge again at once.
  case chargeRequested
  /// "Payment not registered": collection stops.
  case paused
  /// Staff resumed a paused invoice.
  case resumed
  /// The customer declared a transfer that clears by `windowEndsAt`.
  case transferDeclared(windowEndsAt: Instant)
}

/// What a transition asks to be carried out, besides saving the invoice's new state.
public enum CollectionEffect: Sendable, Equatable {
  /// The account is past due (when it was active).
  case accountPastDue
  /// The customer is told no card could pay: the reason (nil: no usable card) and the
  /// downgrade date; `reminderDay`: the reminder due at the same moment, which this message
  /// carries (one decision, one message).
  case chargeFailedNotice(DeclineReason?, downgradeOn: Instant, reminderDay: Int?)
  /// The customer is told the transfer invoice is overdue, and when the downgrade comes.
  case overdueNotice(downgradeOn: Instant)
  /// The reminder of the coming downgrade for reminder day `day`; `sequence` counts the
  /// reminders sent before it (the message's key).
  case reminder(day: Int, sequence: Int, downgradeOn: Instant)
  /// The customer is reminded that the transfer invoice falls due.
  case transferDueNotice
  /// The customer is told the declared transfer has not arrived, with what to check; in
  /// dunning, with the downgrade date and the reminder due at the same moment, which this
  /// message carries. `overdue`: the transfer invoice fell overdue inside the window, and
  /// this message is also its overdue notice (its dunning starts now).
  case transferNotReceivedNotice(downgradeOn: Instant?, reminderDay: Int?, overdue: Bool)
  /// Grace is over: the invoice is written off and the account moves to the downgrade plan.
  case downgrade
}

/// An invoice's collection state after an event, and what is to be carried out.
public struct CollectionTransition: Sendable, Equatable {
  public var state: CollectionState
  public var effects: [CollectionEffect]

  public init(state: CollectionState, effects: [CollectionEffect] = []) {
    self.state = state
    self.effects = effects
  }
}

extension DunningPolicy {
  /// The one place an invoice's collection state changes: the store saves the new state,
  /// the engine (or the store, for what a command does) carries out the effects, and the
  /// policy's `next` then says what comes after. The policy's tests run on it too.
  public static func apply(_ event: CollectionEvent, to s: CollectionState, at now: Instant, config: DunningConfig)
    -> CollectionTransition
  {
    var t = CollectionTransition(state: s)
    switch event {
    case .chargeSent:
      t.state.lastChargeAt = now
    case .chargeRoundFailed(let reason):
      // Whether the failed charge used up a scheduled retry day is decided on the state
      // before the failure; a charge the customer asked for, or one made hours after a
      // processing error, uses none.
      if isScheduledRetry(s, chargedAt: s.lastChargeAt ?? now, config: config) { t.state.retriesDone += 1 }
      startDunning(&t.state, at: now, config: config)
      t.state.lastFailure = reason
      t.state.chargeRequestedAt = nil
      t.effects.append(.accountPastDue)
      // A processing error is the processor's fault, not the customer's: retried within
      // hours without an email (the reminders still say when the downgrade would come).
      // The reminder due now goes in the same message (a processing error sends none, so
      // its reminder goes on its own).
      if reason != .processingError {
        let reminder = foldReminder(&t.state, at: now, config: config)
        t.effects.append(.chargeFailedNotice(reason, downgradeOn: t.state.graceDeadline ?? now, reminderDay: reminder))
      }
    case .becameOverdue:
      startDunning(&t.state, at: now, config: config)
      t.effects += [.accountPastDue, .overdueNotice(downgradeOn: t.state.graceDeadline ?? now)]
    case .reminderSent:
      guard let started = s.dunningStartedAt else { return t }
      let sent = remindersSent(afterRemindingAt: now, s, config: config)
      t.state.remindersSent = sent
      let day = config.reminderDays.isEmpty ? 0 : config.reminderDays[min(sent, config.reminderDays.count) - 1]
      t.effects.append(
        .reminder(
          day: day, sequence: s.remindersSent, downgradeOn: s.graceDeadline ?? deadline(start: started, config: config))
      )
    case .transferDueReminderSent:
      t.state.dueReminderSent = true
      t.effects.append(.transferDueNotice)
    case .transferWindowEnded:
      guard s.transferWindowEndsAt != nil else { return t }
      t.state.transferWindowEndsAt = nil
      // Retry days that went by inside the window are skipped, not made up at its end (a
      // charge then would be a second decision, and message, at the same moment): the
      // retries count on from the window's end.
      if s.method == .card, s.dunningStartedAt != nil { t.state.lastChargeAt = max(s.lastChargeAt ?? now, now) }
      // A transfer invoice that fell overdue inside the window: its dunning starts now, and
      // this message is its overdue notice too.
      let overdue = s.method == .transfer && s.dunningStartedAt == nil && Instant(s.dueDate).adding(days: 1) <= now
      if overdue {
        startDunning(&t.state, at: now, config: config)
        t.effects.append(.accountPastDue)
      }
      // The reminder that a transfer invoice falls due, when it came due inside the window,
      // is this message too (it names the invoice, the amount and the reference).
      if s.method == .transfer, !s.dueReminderSent,
        Instant(s.dueDate).adding(days: -config.transferDueReminderDays) <= now
      {
        t.state.dueReminderSent = true
      }
      let reminder = foldReminder(&t.state, at: now, config: config)
      t.effects.append(
        .transferNotReceivedNotice(downgradeOn: t.state.graceDeadline, reminderDay: reminder, overdue: overdue))
    case .graceExpired:
      t.effects.append(.downgrade)
    case .chargeRequested:
      guard s.pausedSince == nil else { return t }
      t.state.chargeRequestedAt = now
    case .paused:
      guard s.pausedSince == nil else { return t }
      t.state.pausedSince = now
    case .resumed:
      guard let since = s.pausedSince else { return t }
      t.state.pausedSince = nil
      // In dunning the clock goes on from where it stopped: every date still ahead moves
      // by the paused time.
      guard s.dunningStartedAt != nil else { return t }
      let seconds = max(0, now.secondsSinceEpoch - since.secondsSinceEpoch)
      t.state.pausedSeconds += seconds
      t.state.graceDeadline = s.graceDeadline?.adding(seconds: seconds)
    case .transferDeclared(let end):
      t.state.transferWindowEndsAt = end
      t.state.graceDeadline = s.graceDeadline.map { deadline($0, afterWindowEnding: end, config: config) }
    }
    return t
  }

  /// Whether a charge made at `chargedAt` in dunning is the scheduled retry the state
  /// waits for: no card change asked for it, and the next retry day not yet used has come.
  /// A retry a few hours after a processing error is not one (day 1 still comes).
  public static func isScheduledRetry(_ s: CollectionState, chargedAt: Instant, config: DunningConfig) -> Bool {
    guard let started = s.dunningStartedAt, s.chargeRequestedAt == nil, s.retriesDone < config.retryDays.count else {
      return false
    }
    return started.adding(seconds: s.pausedSeconds).adding(days: config.retryDays[s.retriesDone]) <= chargedAt
  }

  /// When a reminder is due by `now`, it counts as sent (by the message of the decision
  /// made now); its reminder day, or nil.
  static func foldReminder(_ s: inout CollectionState, at now: Instant, config: DunningConfig) -> Int? {
    guard let due = nextReminderTime(s, config: config), due <= now else { return nil }
    let sent = remindersSent(afterRemindingAt: now, s, config: config)
    s.remindersSent = sent
    return config.reminderDays[min(sent, config.reminderDays.count) - 1]
  }

  /// Dunning starts (once): the clock and the grace deadline.
  static func startDunning(_ s: inout CollectionState, at now: Instant, config: DunningConfig) {
    if s.dunningStartedAt == nil { s.dunningStartedAt = now }
    if s.graceDeadline == nil { s.graceDeadline = deadline(start: now, config: config) }
  }
}

/// An open invoice's collection state, with what the messages about it name.
public struct CollectionRecord: Sendable, Equatable {
  public let invoiceID: Int64
  public let number: String
  public let accountID: Int64
  /// What is still owed on it.
  public let due: Money
  public let paymentReference: String?
  /// The code of the account's plan now (an account already on the downgrade plan loses no
  /// plan at the deadline: its invoice is only written off).
  public let accountPlan: String
  public var state: CollectionState

  public init(
    invoiceID: Int64, number: String, accountID: Int64, due: Money, paymentReference: String?, accountPlan: String,
    state: CollectionState
  ) {
    self.invoiceID = invoiceID
    self.number = number
    self.accountID = accountID
    self.due = due
    self.paymentReference = paymentReference
    self.accountPlan = accountPlan
    self.state = state
  }
}
