/// The dunning rules, every one configurable; the defaults are the seeds'.
public struct DunningConfig: Sendable, Equatable {
  /// Days from the first failed charge to the downgrade ("nine days").
  public var graceDays = 9
  /// Days after the first failure on which a soft decline is retried.
  public var retryDays = [1, 3, 5, 7]
  /// Days after the first failure on which the customer is reminded of the downgrade date.
  public var reminderDays = [3, 7]
  /// Hours before a processing error (the processor's fault, not the card's) is retried.
  public var transientRetryHours = 4
  /// Hours to wait after a suspected-fraud decline before any retry on that card.
  public var fraudPauseHours = 24
  /// Business days a declared bank transfer is given to clear.
  public var transferWindowBusinessDays = 3
  /// Days after a transfer window ends before the grace deadline may fall.
  public var graceAfterTransferWindowDays = 1
  /// Days before a transfer invoice's due date that the customer is reminded.
  public var transferDueReminderDays = 3
  /// Days before a default card's expiry that the customer is warned.
  public var cardExpiryNoticeDays = 30
  /// Card-network limit: charges on one card within `cardChargeWindowDays`.
  public var maxChargesPerCard = 15
  public var cardChargeWindowDays = 30
  /// The plan a downgraded account is moved to.
  public var downgradePlan = "free"
  /// Whether paying a written-off invoice restores the plan held before the downgrade.
  /// Off by default (seed: "update your plan manually").
  public var restorePlanOnPayment = false
  /// The daily collection time, in seconds after midnight in the operator's zone: card
  /// invoices are charged once a day per account, at this time, so that everything an
  /// account owes that day is one charge (issuers flag several same-day charges as fraud,
  /// seed 000). Scheduled retries keep to it too. nil: each invoice is charged when it
  /// falls due. Charges a customer asks for (a card added, updated or made default) go at
  /// once, whatever the time.
  public var collectionTime: Int? = 18 * 3600
  /// The operator's zone as an offset from UTC, in seconds (a fixed offset: under summer
  /// time the collection moves by an hour of wall-clock time, and is still once a day).
  public var collectionUTCOffsetSeconds = 0
  /// How subscriptions are renewed and how changes mid-period are billed.
  public var subscriptions = SubscriptionConfig()

  public init() {}
}

/// What the scheduler does next for an invoice.
public enum CollectionAction: String, Sendable, Codable, Equatable {
  /// Charge the account's cards.
  case charge
  /// Remind the customer of the coming downgrade.
  case remind
  /// Grace has run out: downgrade the account and write the invoice off.
  case downgrade
  /// A declared transfer's clearing window is over without the money.
  case endTransferWindow = "end_transfer_window"
  /// A transfer invoice falls due soon.
  case remindTransferDue = "remind_transfer_due"
  /// A transfer invoice is overdue: dunning starts.
  case startDunning = "start_dunning"
}

/// Everything the policy needs to know about one open invoice.
public struct CollectionState: Sendable, Equatable {
  public var method: CollectionMethod
  public var issuedAt: Instant
  public var dueDate: CivilDate
  /// When the first charge failed (card) or the invoice became overdue (transfer).
  public var dunningStartedAt: Instant?
  public var graceDeadline: Instant?
  /// Time spent paused so far; the dunning clock runs this much later.
  public var pausedSeconds: Int64 = 0
  /// Set while a "payment not registered" report pauses the invoice.
  public var pausedSince: Instant?
  /// Set while a declared transfer is clearing.
  public var transferWindowEndsAt: Instant?
  /// When the cards were last charged for this invoice, or (in dunning) when a declared
  /// transfer's window ended: the retries count on from it.
  public var lastChargeAt: Instant?
  /// The reason of the last failed charge round.
  public var lastFailure: DeclineReason?
  /// Scheduled retries already made.
  public var retriesDone: Int = 0
  /// Downgrade reminders already queued.
  public var remindersSent: Int = 0
  /// A card was added, updated or made default: charge again at once.
  public var chargeRequestedAt: Instant?
  /// Whether the transfer due-date reminder went out.
  public var dueReminderSent = false
  /// Whether any card of the account can be charged now: active, not expired, and under
  /// the card network's limit of charges in its window.
  public var hasUsableCard: Bool
  /// When no card is usable now only because the network's limit holds cards back: the
  /// moment the first of them can be charged again. Charges wait until then.
  public var cardUsableAgainAt: Instant?

  public init(method: CollectionMethod, issuedAt: Instant, dueDate: CivilDate, hasUsableCard: Bool) {
    self.method = method
    self.issuedAt = issuedAt
    self.dueDate = dueDate
    self.hasUsableCard = hasUsableCard
  }
}

/// The next thing to do for an invoice, and when.
public struct ScheduledAction: Sendable, Equatable {
  public let action: CollectionAction
  public let at: Instant
  public init(_ action: CollectionAction, at: Instant) {
    self.action = action
    self.at = at
  }
}

/// Dunning as a pure function of an invoice's state, the config and nothing else: the
/// scheduler asks it, carries out the answer, saves the new state and asks again.
public enum DunningPolicy {
  /// The next action for an open invoice, or nil when nothing is scheduled (paid, paused,
  /// or waiting for the customer to provide a card).
  public static func next(_ s: CollectionState, config: DunningConfig) -> ScheduledAction? {
    if s.pausedSince != nil { return nil }
    if let end = s.transferWindowEndsAt { return ScheduledAction(.endTransferWindow, at: end) }
    var candidates: [ScheduledAction] = []
    let dueStart = Instant(s.dueDate)

    if let started = s.dunningStartedAt {
      func day(_ d: Int) -> Instant { started.adding(seconds: s.pausedSeconds).adding(days: d) }
      let deadline = s.graceDeadline ?? day(config.graceDays)
      if s.method == .card, let at = chargeTime(s.chargeRequestedAt ?? retryTime(s, config: config, day: day), s) {
        candidates.append(ScheduledAction(.charge, at: at))
      }
      if let at = nextReminderTime(s, config: config) { candidates.append(ScheduledAction(.remind, at: at)) }
      candidates.append(ScheduledAction(.downgrade, at: deadline))
    } else {
      switch s.method {
      case .card:
        // The first charge is at the first collection time once the invoice is due.
        let collection = collectionTime(atOrAfter: max(dueStart, s.issuedAt), config: config)
        let first = s.lastChargeAt == nil ? collection : nil
        if let at = chargeTime(s.chargeRequestedAt ?? first, s) { candidates.append(ScheduledAction(.charge, at: at)) }
        // With no usable card at that time, dunning starts without a charge (a card at
        // the network's limit that frees up by then is charged first).
        if !s.hasUsableCard {
          candidates.append(ScheduledAction(.startDunning, at: collection))
        }
      case .transfer:
        let reminder = dueStart.adding(days: -config.transferDueReminderDays)
        if !s.dueReminderSent, reminder > s.issuedAt {
          candidates.append(ScheduledAction(.remindTransferDue, at: reminder))
        }
        // Overdue once the due day is over.
        candidates.append(ScheduledAction(.startDunning, at: dueStart.adding(days: 1)))
      }
    }
    // Earliest first; at the same moment a charge goes before a reminder, and both before
    // the downgrade, so a customer whose retry succeeds is never reminded or downgraded.
    let order: [CollectionAction] = [
      .charge, .endTransferWindow, .remindTransferDue, .startDunning, .remind, .downgrade,
    ]
    return candidates.min { a, b in
      a.at != b.at ? a.at < b.at : (order.firstIndex(of: a.action) ?? 0) < (order.firstIndex(of: b.action) ?? 0)
    }
  }

  /// When a charge wanted at `wanted` can be made: then, if a card is usable now; if cards
  /// are held back only by the network's limit, not before the first of them is free again
  /// (always later than now, so the schedule moves on); never, with no card to wait for.
  static func chargeTime(_ wanted: Instant?, _ s: CollectionState) -> Instant? {
    guard let wanted else { return nil }
    if s.hasUsableCard { return wanted }
    return s.cardUsableAgainAt.map { max(wanted, $0) }
  }

  /// When the next retry of a failed charge is due, if one is: the first retry day not yet
  /// used that falls after the last charge. Retry days that went by while nothing could be
  /// charged (no usable card, a pause, a transfer window) are skipped, not caught up in a
  /// burst of same-day charges that issuers read as fraud.
  static func retryTime(_ s: CollectionState, config: DunningConfig, day: (Int) -> Instant) -> Instant? {
    guard let last = s.lastChargeAt else { return collectionTime(atOrAfter: day(0), config: config) }
    // Retry days keep to the daily collection time (dunning that began with a charge the
    // customer asked for, at another hour, is retried at the next collection after it).
    let scheduled = config.retryDays.dropFirst(s.retriesDone).map { collectionTime(atOrAfter: day($0), config: config) }
      .first { $0 > last }
    switch s.lastFailure?.retryClass {
    case .transient:
      let soon = last.adding(seconds: Int64(config.transientRetryHours) * 3600)
      return scheduled.map { min($0, soon) } ?? soon
    case .softAfterPause:
      return scheduled.map {
        collectionTime(atOrAfter: max($0, last.adding(seconds: Int64(config.fraudPauseHours) * 3600)), config: config)
      }
    case .soft, .hard, nil:
      // After a hard decline the failing card is marked as needing an update; if another
      // card is usable, it is retried on the same schedule.
      return scheduled
    }
  }

  /// When the next reminder of the coming downgrade is due, if one is left: its day after
  /// dunning began (paused time added), at the daily collection time for a card invoice,
  /// so that a reminder and a retry of the same day are one decision (and one message).
  public static func nextReminderTime(_ s: CollectionState, config: DunningConfig) -> Instant? {
    guard let started = s.dunningStartedAt, s.remindersSent < config.reminderDays.count else { return nil }
    let at = started.adding(seconds: s.pausedSeconds).adding(days: config.reminderDays[s.remindersSent])
    return s.method == .card ? collectionTime(atOrAfter: at, config: config) : at
  }

  /// The first daily collection time at or after `t` (`t` itself when every invoice is
  /// charged when due).
  public static func collectionTime(atOrAfter t: Instant, config: DunningConfig) -> Instant {
    guard let time = config.collectionTime else { return t }
    let offset = Int64(config.collectionUTCOffsetSeconds)
    let local = t.adding(seconds: offset)
    var candidate = Instant(local.date).adding(seconds: Int64(time) - offset)
    if candidate < t { candidate = candidate.adding(days: 1) }
    return candidate
  }

  /// How many reminders count as sent once a reminder goes out at `now`: one reminder
  /// stands for every reminder day already gone by (after a pause or a transfer window),
  /// so the customer never gets two at once.
  public static func remindersSent(afterRemindingAt now: Instant, _ s: CollectionState, config: DunningConfig) -> Int {
    guard let started = s.dunningStartedAt else { return s.remindersSent + 1 }
    let clockStart = started.adding(seconds: s.pausedSeconds)
    let passed = config.reminderDays.filter { clockStart.adding(days: $0) <= now }.count
    return min(max(s.remindersSent + 1, passed), max(config.reminderDays.count, s.remindersSent + 1))
  }

  /// The grace deadline for dunning that starts at `start`.
  public static func deadline(start: Instant, config: DunningConfig) -> Instant {
    start.adding(days: config.graceDays)
  }

  /// The end of a transfer's clearing window: `days` business days (Monday to Friday)
  /// after `declared`, at the same time of day.
  public static func transferWindowEnd(declared: Instant, businessDays days: Int) -> Instant {
    var date = declared.date
    var left = days
    while left > 0 {
      date = date.adding(days: 1)
      if date.isoWeekday <= 5 { left -= 1 }
    }
    return declared.adding(days: declared.date.days(until: date))
  }

  /// The end of a declared transfer's clearing window: the end (midnight UTC) of the
  /// `days`-th business day after `day`, the day the customer says the money was sent.
  /// The window counts from the send date, never from the declaration, so a transfer
  /// declared late gets no more time than one declared at once (an extension by staff
  /// counts from the window's last day, or from today).
  public static func transferWindowEnd(from day: CivilDate, businessDays days: Int) -> Instant {
    transferWindowEnd(declared: Instant(day), businessDays: days).adding(days: 1)
  }

  /// A deadline pushed past a transfer window when it would fall inside it.
  public static func deadline(_ deadline: Instant, afterWindowEnding end: Instant, config: DunningConfig) -> Instant {
    max(deadline, end.adding(days: config.graceAfterTransferWindowDays))
  }
}

/// What a declared transfer does to its invoice's collection (docs/dunning.md): at most one
/// clearing window per invoice, counted from the send date, and only for the whole amount
/// due, unless staff accept or extend it.
public enum TransferHold: Sendable, Equatable {
  /// The clearing window is open until then: no reminder, retry or downgrade before it ends.
  case window(endsAt: Instant)
  /// Less than what is due was declared: recorded, but nothing is held until staff accept it.
  case awaitingAcceptance(due: Money)
  /// The window counted from the send date ended then: nothing is held.
  case windowOver(endedAt: Instant)
  /// The invoice already had its clearing window: nothing is held unless staff extend it.
  case windowUsed

  /// The window's end while one holds the invoice.
  public var windowEndsAt: Instant? {
    if case .window(let end) = self { return end }
    return nil
  }

  /// How commands and the JSON output name the case.
  public var name: String {
    switch self {
    case .window: "window"
    case .awaitingAcceptance: "awaiting_acceptance"
    case .windowOver: "window_over"
    case .windowUsed: "window_used"
    }
  }
}

/// The advice each decline reason's email carries (the spec's table); wording per locale
/// lives in the templates, this is the key they use.
extension DeclineReason {
  /// Whether the customer's message must stay generic (lost or stolen cards).
  public var genericWording: Bool { self == .lostOrStolen }
}
