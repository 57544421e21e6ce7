import LedgerCore
import LedgerStore

/// The dunning steps the scheduler carries out: each loads an invoice's collection state,
/// applies the core's transition (`DunningPolicy.apply`), saves the new state and carries
/// out its effects (the account's status, the write-off and downgrade, the events and the
/// customer's messages), in the caller's transaction.
extension Scheduler {
  /// Runs one due step other than a charge.
  func carryOutStep(_ item: DueAction, actor: Actor) throws {
    switch item.action {
    case .remind: try transition(item.invoiceID, .reminderSent, actor: actor)
    case .downgrade: try transition(item.invoiceID, .graceExpired, actor: actor)
    case .endTransferWindow: try transition(item.invoiceID, .transferWindowEnded, actor: actor)
    case .remindTransferDue: try transition(item.invoiceID, .transferDueReminderSent, actor: actor)
    case .startDunning:
      // A card invoice that fell due with no usable card fails its round without a charge.
      guard let record = try store.collection(invoiceID: item.invoiceID) else { return }
      if record.state.method == .card {
        try failRound(invoiceIDs: [item.invoiceID], account: item.accountID, reason: nil, attemptID: nil, actor: actor)
      } else {
        try transition(item.invoiceID, .becameOverdue, actor: actor)
      }
    case .charge:
      break
    }
  }

  /// Applies `event` to one open invoice (a closed one is left as it is) and carries out
  /// what it asks.
  func transition(_ invoiceID: Int64, _ event: CollectionEvent, actor: Actor) throws {
    guard let record = try store.collection(invoiceID: invoiceID) else { return }
    let t = DunningPolicy.apply(event, to: record.state, at: store.clock.now(), config: config)
    if t.state != record.state { try store.saveCollection(invoiceID: invoiceID, t.state) }
    for effect in t.effects { try carryOut(effect, of: record, actor: actor) }
  }

  /// Every usable card of a round failed (or none could be charged): each invoice's state
  /// goes through the transition, and the account gets one event and at most one message
  /// for the round, naming every invoice.
  func failRound(invoiceIDs: [Int64], account: Int64, reason: DeclineReason?, attemptID: Int64?, actor: Actor) throws {
    let now = store.clock.now()
    var records: [CollectionRecord] = []
    var notify = false
    var downgradeOn: Instant?
    var reminderDay: Int?
    var pastDue = false
    for id in invoiceIDs {
      guard let record = try store.collection(invoiceID: id) else { continue }
      let t = DunningPolicy.apply(.chargeRoundFailed(reason), to: record.state, at: now, config: config)
      try store.saveCollection(invoiceID: id, t.state)
      records.append(record)
      for effect in t.effects {
        switch effect {
        case .accountPastDue: pastDue = true
        case .chargeFailedNotice(_, let on, let reminder):
          notify = true
          downgradeOn = min(downgradeOn ?? on, on)
          if let reminder {
            reminderDay = max(reminderDay ?? reminder, reminder)
            try store.recordEvent(
              account: record.accountID, invoice: record.invoiceID, actor: actor, kind: "reminder_queued",
              reason:
                "day-\(reminder) reminder for \(record.number) (\(record.due)): carried by the message that the charge failed",
              data: [:])
          }
        default: try carryOut(effect, of: record, actor: actor)
        }
      }
      if let deadline = t.state.graceDeadline { downgradeOn = min(downgradeOn ?? deadline, deadline) }
    }
    guard let first = records.first else { return }
    if pastDue { try store.markPastDue(account: account, actor: actor) }
    let numbers = records.map(\.number).joined(separator: ", ")
    let amount = try Money.sum(records.map(\.due), currency: first.due.currency)
    try store.recordEvent(
      account: account, invoice: first.invoiceID, actor: actor, kind: "charge_failed",
      reason: "no card could pay \(numbers) (\(amount))" + (reason.map { ": \($0.rawValue)" } ?? ": no usable card")
        + "; downgrade on \(downgradeOn?.iso8601 ?? "?") unless paid",
      data: ["reason": reason?.rawValue ?? "no_usable_card"])
    guard notify else { return }
    try store.queueNotice(
      key: "charge_failed:" + (attemptID.map(String.init) ?? "nocard-\(first.invoiceID)-\(now.iso8601)"),
      account: account,
      invoice: first.invoiceID, kind: "charge_failed",
      data: [
        "invoices": numbers, "amount": amount.amountString, "currency": amount.currency.code,
        "reason": reason?.rawValue ?? "no_usable_card", "generic": String(reason?.genericWording ?? false),
        "downgrade_on": downgradeOn.map { $0.date.iso8601 } ?? "", "downgrade_plan": downgradePlan(first),
        "reminder_day": reminderDay.map(String.init) ?? "",
      ])
  }

  /// Carries out one effect of a transition on `record` (the state before it).
  func carryOut(_ effect: CollectionEffect, of record: CollectionRecord, actor: Actor) throws {
    let id = record.invoiceID
    switch effect {
    case .accountPastDue:
      try store.markPastDue(account: record.accountID, actor: actor)
    case .chargeFailedNotice:
      // Only a failed charge round has this effect, and `failRound` turns the round's
      // notices into one message naming every invoice: nothing to do one invoice at a time.
      break
    case .overdueNotice(let on):
      try store.recordEvent(
        account: record.accountID, invoice: id, actor: actor, kind: "invoice_overdue",
        reason: "transfer invoice \(record.number) (\(record.due)) is overdue; downgrade on \(on.date) unless paid",
        data: [:])
      try store.queueNotice(
        key: "overdue:\(id)", account: record.accountID, invoice: id, kind: "dunning_reminder",
        data: reminderData(record, downgradeOn: on, day: 0))
    case .reminder(let day, let sequence, let on):
      try store.recordEvent(
        account: record.accountID, invoice: id, actor: actor, kind: "reminder_queued",
        reason: "day-\(day) reminder for \(record.number) (\(record.due)): downgrade on \(on.date) unless paid",
        data: [:])
      try store.queueNotice(
        key: "reminder:\(id):\(sequence)", account: record.accountID, invoice: id, kind: "dunning_reminder",
        data: reminderData(record, downgradeOn: on, day: day))
    case .transferDueNotice:
      let dueDate = record.state.dueDate.iso8601
      try store.recordEvent(
        account: record.accountID, invoice: id, actor: actor, kind: "transfer_due_reminder_queued",
        reason: "\(record.number) (\(record.due)) falls due on \(dueDate)", data: [:])
      try store.queueNotice(
        key: "transfer_due:\(id)", account: record.accountID, invoice: id, kind: "transfer_due_soon",
        data: [
          "invoice": record.number, "amount": record.due.amountString, "currency": record.due.currency.code,
          "due_date": dueDate,
          "payment_reference": record.paymentReference ?? "",
        ])
    case .transferNotReceivedNotice(let on, let reminder, let overdue):
      guard let declaration = try store.closeTransferDeclaration(invoiceID: id, outcome: "expired") else { return }
      if overdue, let on {
        try store.recordEvent(
          account: record.accountID, invoice: id, actor: actor, kind: "invoice_overdue",
          reason: "transfer invoice \(record.number) (\(record.due)) is overdue; downgrade on \(on.date) unless paid; "
            + "told in the message that the transfer has not arrived", data: [:])
      }
      if let reminder {
        try store.recordEvent(
          account: record.accountID, invoice: id, actor: actor, kind: "reminder_queued",
          reason:
            "day-\(reminder) reminder for \(record.number) (\(record.due)): carried by the message that the transfer has not arrived",
          data: [:])
      }
      try store.recordEvent(
        account: record.accountID, invoice: id, actor: actor, kind: "transfer_not_received",
        reason:
          "the transfer declared for \(record.number) (reference \(declaration.reference)) has not arrived after the clearing window",
        data: [:])
      try store.queueNotice(
        key: "transfer_not_received:\(declaration.id):\(store.clock.now().iso8601)", account: record.accountID,
        invoice: id, kind: "transfer_not_received",
        data: [
          "invoice": record.number, "amount": record.due.amountString, "currency": record.due.currency.code,
          "sent_on": declaration.sentOn.iso8601, "reference": declaration.reference,
          "payment_reference": record.paymentReference ?? "",
          "downgrade_on": on.map { $0.date.iso8601 } ?? "", "downgrade_plan": downgradePlan(record),
          "reminder_day": reminder.map(String.init) ?? "",
        ])
    case .downgrade:
      let change = try store.writeOffAndDowngrade(invoiceID: id, toPlan: config.downgradePlan)
      try store.recordEvent(
        account: record.accountID, invoice: id, actor: actor, kind: "account_downgraded",
        reason: "grace period over: \(record.number) (\(record.due)) unpaid since \(record.state.dueDate); "
          + (change.fromPlan == change.toPlan
            ? "account stays on \(change.toPlan)" : "plan \(change.fromPlan) → \(change.toPlan)")
          + (change.addonsRemoved.isEmpty ? "" : ", add-ons removed: \(change.addonsRemoved.joined(separator: ", "))")
          + "; invoice written off as uncollectible",
        data: ["from_plan": change.fromPlan, "to_plan": change.toPlan, "invoice": record.number])
      try store.queueNotice(
        key: "downgrade:\(id)", account: record.accountID, invoice: id, kind: "downgrade_notice",
        data: [
          "invoice": record.number, "amount": record.due.amountString, "currency": record.due.currency.code,
          "from_plan": change.fromPlan, "to_plan": change.toPlan, "restores_plan": String(config.restorePlanOnPayment),
          "addons_removed": change.addonsRemoved.joined(separator: ", "),
        ])
    }
  }

  /// The plan the deadline moves the account to, or "" when it is already on it (the
  /// deadline then only writes the invoice off, and the messages say that).
  func downgradePlan(_ record: CollectionRecord) -> String {
    record.accountPlan == config.downgradePlan ? "" : config.downgradePlan
  }

  func reminderData(_ record: CollectionRecord, downgradeOn: Instant, day: Int) -> [String: String] {
    [
      "invoice": record.number, "amount": record.due.amountString, "currency": record.due.currency.code,
      "day": String(day),
      "downgrade_on": downgradeOn.date.iso8601, "downgrade_plan": downgradePlan(record),
      "payment_reference": record.paymentReference ?? "",
    ]
  }
}
