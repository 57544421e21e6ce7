import LedgerCore
import LedgerSQLite

extension LedgerStore {
  /// The customer's "payment not registered" report: collection of the invoice stops at
  /// once (no reminder, retry or downgrade, and the grace clock stops) and the customer is
  /// told so.
  public func pauseInvoice(_ reference: String, proof: String, actor: Actor) throws -> Invoice {
    let proof = try Validate.text(proof, field: "--proof")
    return try write {
      let invoice = try requireInvoice(reference)
      guard invoice.status == .open else {
        throw StateError(
          subject: "invoice \(invoice.number)",
          rule: "is \(invoice.status.rawValue); only an open invoice can be paused")
      }
      guard !invoice.paused else { throw StateError(subject: "invoice \(invoice.number)", rule: "is already paused") }
      guard
        try db.scalarInt(
          "SELECT count(*) FROM charge_attempt_invoices ci JOIN charge_attempts a ON a.id = ci.attempt_id WHERE ci.invoice_id = ? AND a.status = 'pending'",
          invoice.id) == 0
      else {
        throw StateError(subject: "invoice \(invoice.number)", rule: "has a charge in flight; try again in a moment")
      }
      let at = now
      try db.run(
        "INSERT INTO pauses (invoice_id, proof, actor, paused_at) VALUES (?, ?, ?, ?)", invoice.id, proof,
        actor.rawValue, at)
      let pauseID = db.lastInsertRowID
      try apply(.paused, invoiceID: invoice.id, config: DunningConfig())
      try db.run("UPDATE invoices SET next_action = NULL, next_action_at = NULL WHERE id = ?", invoice.id)
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "invoice_paused",
        reason: "payment reported as not registered (proof: \(proof)); collection of \(invoice.number) paused")
      try enqueue(
        key: "paused:\(pauseID)", account: try requireAccount(invoice.accountID), invoice: invoice.id,
        kind: "pause_confirmed",
        data: [
          "invoice": invoice.number, "amount": invoice.due.amountString, "currency": invoice.due.currency.code,
          "proof": proof,
        ])
      return try requireInvoice(invoice.number)
    }
  }

  /// Staff resume a paused invoice: the dunning clock goes on from where it stopped, so
  /// every date still ahead (retries, reminders, the deadline) moves by the paused time.
  public func resumeInvoice(_ reference: String, actor: Actor) throws -> Invoice {
    try write {
      let invoice = try requireInvoice(reference)
      guard invoice.paused, let record = try collection(invoiceID: invoice.id), let pausedAt = record.state.pausedSince
      else {
        throw StateError(subject: "invoice \(invoice.number)", rule: "is not paused")
      }
      let seconds = max(0, clock.now().secondsSinceEpoch - pausedAt.secondsSinceEpoch)
      let inDunning = record.state.dunningStartedAt != nil
      try db.run(
        "UPDATE pauses SET resumed_at = ?, resolution = 'resumed' WHERE invoice_id = ? AND resumed_at IS NULL", now,
        invoice.id)
      try apply(.resumed, invoiceID: invoice.id, config: DunningConfig())
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "invoice_resumed",
        reason: "collection of \(invoice.number) resumed after \(seconds / 3600) h paused"
          + (inDunning ? "; every dunning date moves by that time" : ""))
      return try requireInvoice(invoice.number)
    }
  }

  /// The customer says a transfer was sent. The declaration is always recorded; it holds
  /// the invoice (no reminder, retry or downgrade, and a grace deadline inside the window
  /// pushed past it) only when it declares at least what is due, the window counted from
  /// the send date is not over yet, and the invoice has not had a window before (staff can
  /// accept a short one, or extend). A written-off invoice can still be paid, never held.
  public func declareTransfer(
    _ reference: String, amount: Money, sentOn: CivilDate, bankReference: String, actor: Actor, config: DunningConfig
  ) throws -> (Invoice, TransferHold) {
    let bankReference = try Validate.text(bankReference, field: "--reference", limit: 140)
    return try write {
      let invoice = try requireInvoice(reference)
      try requireHoldable(invoice, what: "a declared transfer")
      guard amount.currency == invoice.total.currency else {
        throw InputError(
          field: "--amount", rule: "is in \(amount.currency.code); the invoice is in \(invoice.total.currency.code)")
      }
      guard sentOn <= today else { throw InputError(field: "--date", rule: "\(sentOn) is in the future") }
      if try db.scalarInt(
        "SELECT count(*) FROM transfer_declarations WHERE invoice_id = ? AND closed_at IS NULL", invoice.id) ?? 0 > 0
      {
        throw StateError(
          subject: "invoice \(invoice.number)",
          rule: "already has a declared transfer waiting to clear or to be accepted by staff")
      }
      let declared = clock.now()
      let end = DunningPolicy.transferWindowEnd(from: sentOn, businessDays: config.transferWindowBusinessDays)
      let hold: TransferHold
      if amount.minorUnits < invoice.due.minorUnits {
        hold = .awaitingAcceptance(due: invoice.due)
      } else if try hadTransferWindow(invoice.id) {
        hold = .windowUsed
      } else if end <= declared {
        hold = .windowOver(endedAt: end)
      } else {
        hold = .window(endsAt: end)
      }
      let closed: Bool
      switch hold {
      case .windowUsed, .windowOver: closed = true
      case .window, .awaitingAcceptance: closed = false
      }
      try db.run(
        """
        INSERT INTO transfer_declarations
          (invoice_id, amount_minor, currency, sent_on, reference, declared_at, window_ends_at, due_minor, closed_at, outcome)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """, invoice.id, amount.minorUnits, amount.currency.code, sentOn.iso8601, bankReference, declared.iso8601,
        hold.windowEndsAt?.iso8601, invoice.due.minorUnits, closed ? declared.iso8601 : nil, closed ? "no_window" : nil)
      if let end = hold.windowEndsAt {
        // A deadline inside the window is pushed past it.
        try apply(.transferDeclared(windowEndsAt: end), invoiceID: invoice.id, config: config)
      }
      let said = "customer declared a transfer of \(amount) sent on \(sentOn) (reference \(bankReference))"
      let held: String
      switch hold {
      case .window(let end):
        held =
          "waiting for it to clear until \(end) (\(config.transferWindowBusinessDays) business days from the send date)"
      case .awaitingAcceptance(let due):
        held = "\(due) is due: it holds nothing until staff accept it"
      case .windowOver(let end):
        held = "its clearing window from the send date ended on \(end): nothing held"
      case .windowUsed:
        held = "\(invoice.number) already had its clearing window: nothing held unless staff extend it"
      }
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "transfer_declared",
        reason: "\(said); \(held)")
      return (try requireInvoice(invoice.number), hold)
    }
  }

  /// Staff accept a declaration for less than what is due: its clearing window opens, counted
  /// from its send date, as a whole one would have.
  public func acceptTransfer(_ reference: String, actor: Actor, config: DunningConfig) throws -> (
    Invoice, windowEnds: Instant
  ) {
    try write {
      let invoice = try requireInvoice(reference)
      try requireHoldable(invoice, what: "an accepted transfer")
      guard
        let row = try db.queryOne(
          """
          SELECT id, amount_minor, sent_on FROM transfer_declarations
          WHERE invoice_id = ? AND closed_at IS NULL AND window_ends_at IS NULL AND accepted_at IS NULL
          """, invoice.id)
      else {
        throw StateError(subject: "invoice \(invoice.number)", rule: "has no declared transfer waiting to be accepted")
      }
      let id = try row.int("id")
      let sentOn = try CivilDate(iso8601: try row.string("sent_on"))
      guard try !hadTransferWindow(invoice.id) else {
        throw StateError(
          subject: "invoice \(invoice.number)",
          rule: "already had its clearing window (one per invoice); hold it longer with `ledgerd transfer extend`")
      }
      let end = DunningPolicy.transferWindowEnd(from: sentOn, businessDays: config.transferWindowBusinessDays)
      guard end > clock.now() else {
        throw StateError(
          subject: "invoice \(invoice.number)",
          rule:
            "the clearing window of a transfer sent on \(sentOn) ended on \(end), so accepting it holds nothing; hold it with `ledgerd transfer extend`"
        )
      }
      try db.run(
        "UPDATE transfer_declarations SET window_ends_at = ?, accepted_at = ? WHERE id = ?", end.iso8601, now, id)
      try apply(.transferDeclared(windowEndsAt: end), invoiceID: invoice.id, config: config)
      let amount = Money(minorUnits: try row.int("amount_minor"), currency: invoice.total.currency)
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "transfer_accepted",
        reason:
          "declared transfer of \(amount) accepted though \(invoice.due) is due; waiting for it to clear until \(end)")
      return (try requireInvoice(invoice.number), end)
    }
  }

  /// Staff give the invoice's declared transfer more time: `days` business days after the
  /// open window's last day, or after today when no window is open (it ended, never opened,
  /// or waits for acceptance). The one way an invoice gets a window more than once.
  public func extendTransferWindow(
    _ reference: String, businessDays days: Int, reason: String, actor: Actor, config: DunningConfig
  )
    throws -> (Invoice, windowEnds: Instant)
  {
    guard (1...30).contains(days) else {
      throw InputError(field: "--days", rule: "\(days) must be between 1 and 30 business days")
    }
    let reason = try Validate.text(reason, field: "--reason")
    return try write {
      let invoice = try requireInvoice(reference)
      try requireHoldable(invoice, what: "an extended transfer window")
      guard
        let row = try db.queryOne(
          """
          SELECT id, window_ends_at, closed_at FROM transfer_declarations
          WHERE invoice_id = ? AND (outcome IS NULL OR outcome = 'expired' OR outcome = 'no_window') ORDER BY id DESC LIMIT 1
          """, invoice.id)
      else {
        throw StateError(
          subject: "invoice \(invoice.number)",
          rule: "has no declared transfer to extend; the customer declares it first (`ledgerd transfer declare`)")
      }
      let id = try row.int("id")
      let isOpen = try row.optionalString("closed_at") == nil
      let openEnd = isOpen ? try row.optionalString("window_ends_at").map { try Instant(iso8601: $0) } : nil
      // The window's last day is the day before its end (ends are at midnight).
      let from = openEnd.map { $0.adding(seconds: -1).date } ?? today
      let end = DunningPolicy.transferWindowEnd(from: from, businessDays: days)
      try db.run(
        """
        UPDATE transfer_declarations SET window_ends_at = ?, accepted_at = coalesce(accepted_at, ?), closed_at = NULL, outcome = NULL
        WHERE id = ?
        """, end.iso8601, now, id)
      try apply(.transferDeclared(windowEndsAt: end), invoiceID: invoice.id, config: config)
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "transfer_window_extended",
        reason: "transfer window of \(invoice.number) extended by \(days) business days, until \(end): \(reason)")
      return (try requireInvoice(invoice.number), end)
    }
  }

  /// Whether the invoice already had a clearing window (at most one, unless staff extend).
  func hadTransferWindow(_ invoiceID: Int64) throws -> Bool {
    try db.scalarInt(
      "SELECT count(*) FROM transfer_declarations WHERE invoice_id = ? AND window_ends_at IS NOT NULL", invoiceID) ?? 0
      > 0
  }

  /// Only an open invoice can be held by a transfer: a written-off one can be paid, not held.
  func requireHoldable(_ invoice: Invoice, what: String) throws {
    switch invoice.status {
    case .open: return
    case .uncollectible:
      throw StateError(
        subject: "invoice \(invoice.number)",
        rule:
          "is uncollectible (written off): it can still be paid (`ledgerd payment record`, or the bank statement), but \(what) no longer holds it; nothing was recorded"
      )
    default:
      throw StateError(
        subject: "invoice \(invoice.number)", rule: "is \(invoice.status.rawValue); nothing is owed on it")
    }
  }

  /// Applies a transition that has no effect to carry out beyond saving (a pause, a
  /// resumption, a declared transfer) to an open invoice.
  func apply(_ event: CollectionEvent, invoiceID: Int64, config: DunningConfig) throws {
    guard let record = try collection(invoiceID: invoiceID) else { return }
    let t = DunningPolicy.apply(event, to: record.state, at: clock.now(), config: config)
    precondition(t.effects.isEmpty, "\(event) has effects to carry out")
    try saveCollection(invoiceID: invoiceID, t.state)
  }

  /// Closes the invoice's open transfer declaration with `outcome` ("expired": its window
  /// ended without the money); what it declared, for the customer's message.
  public func closeTransferDeclaration(invoiceID: Int64, outcome: String) throws -> (
    id: Int64, sentOn: CivilDate, reference: String
  )? {
    guard
      let row = try db.queryOne(
        "SELECT id, sent_on, reference FROM transfer_declarations WHERE invoice_id = ? AND closed_at IS NULL", invoiceID
      )
    else { return nil }
    let id = try row.int("id")
    try db.run("UPDATE transfer_declarations SET closed_at = ?, outcome = ? WHERE id = ?", now, outcome, id)
    return (id, try CivilDate(iso8601: try row.string("sent_on")), try row.string("reference"))
  }
}
