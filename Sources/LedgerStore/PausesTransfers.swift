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
        throw StateError(subject: "invoice \(invoice.number)", rule: "is \(invoice.status.rawValue); only an open invoice can be paused")
      }
      guard !invoice.paused else { throw StateError(subject: "invoice \(invoice.number)", rule: "is already paused") }
      guard try db.scalarInt("SELECT count(*) FROM charge_attempt_invoices ci JOIN charge_attempts a ON a.id = ci.attempt_id WHERE ci.invoice_id = ? AND a.status = 'pending'", invoice.id) == 0 else {
        throw StateError(subject: "invoice \(invoice.number)", rule: "has a charge in flight; try again in a moment")
      }
      let at = now
      try db.run("INSERT INTO pauses (invoice_id, proof, actor, paused_at) VALUES (?, ?, ?, ?)", invoice.id, proof, actor.rawValue, at)
      let pauseID = db.lastInsertRowID
      try apply(.paused, invoiceID: invoice.id, config: DunningConfig())
      try db.run("UPDATE invoices SET next_action = NULL, next_action_at = NULL WHERE id = ?", invoice.id)
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "invoice_paused",
        reason: "payment reported as not registered (proof: \(proof)); collection of \(invoice.number) paused")
      try enqueue(
        key: "paused:\(pauseID)", account: try requireAccount(invoice.accountID), invoice: invoice.id, kind: "pause_confirmed",
        data: ["invoice": invoice.number, "amount": invoice.due.amountString, "currency": invoice.due.currency.code, "proof": proof])
      return try requireInvoice(invoice.number)
    }
  }

  /// Staff resume a paused invoice: the dunning clock goes on from where it stopped, so
  /// every date still ahead (retries, reminders, the deadline) moves by the paused time.
  public func resumeInvoice(_ reference: String, actor: Actor) throws -> Invoice {
    try write {
      let invoice = try requireInvoice(reference)
      guard invoice.paused, let record = try collection(invoiceID: invoice.id), let pausedAt = record.state.pausedSince else {
        throw StateError(subject: "invoice \(invoice.number)", rule: "is not paused")
      }
      let seconds = max(0, clock.now().secondsSinceEpoch - pausedAt.secondsSinceEpoch)
      let inDunning = record.state.dunningStartedAt != nil
      try db.run("UPDATE pauses SET resumed_at = ?, resolution = 'resumed' WHERE invoice_id = ? AND resumed_at IS NULL", now, invoice.id)
      try apply(.resumed, invoiceID: invoice.id, config: DunningConfig())
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "invoice_resumed",
        reason: "collection of \(invoice.number) resumed after \(seconds / 3600) h paused"
          + (inDunning ? "; every dunning date moves by that time" : ""))
      return try requireInvoice(invoice.number)
    }
  }

  /// The customer says a transfer was sent: the invoice waits for clearing for the
  /// configured business days, with no reminder, retry or downgrade; a grace deadline
  /// inside that window is pushed past it.
  public func declareTransfer(
    _ reference: String, amount: Money, sentOn: CivilDate, bankReference: String, actor: Actor, config: DunningConfig
  ) throws -> (Invoice, windowEnds: Instant) {
    let bankReference = try Validate.text(bankReference, field: "--reference", limit: 140)
    return try write {
      let invoice = try requireInvoice(reference)
      guard invoice.status == .open || invoice.status == .uncollectible else {
        throw StateError(subject: "invoice \(invoice.number)", rule: "is \(invoice.status.rawValue); nothing is owed on it")
      }
      guard amount.currency == invoice.total.currency else {
        throw InputError(field: "--amount", rule: "is in \(amount.currency.code); the invoice is in \(invoice.total.currency.code)")
      }
      guard sentOn <= today else { throw InputError(field: "--date", rule: "\(sentOn) is in the future") }
      if try db.scalarInt("SELECT count(*) FROM transfer_declarations WHERE invoice_id = ? AND closed_at IS NULL", invoice.id) ?? 0 > 0 {
        throw StateError(subject: "invoice \(invoice.number)", rule: "already has a transfer waiting to clear")
      }
      let declared = clock.now()
      let end = DunningPolicy.transferWindowEnd(declared: declared, businessDays: config.transferWindowBusinessDays)
      try db.run(
        """
        INSERT INTO transfer_declarations (invoice_id, amount_minor, currency, sent_on, reference, declared_at, window_ends_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """, invoice.id, amount.minorUnits, amount.currency.code, sentOn.iso8601, bankReference, declared.iso8601, end.iso8601)
      // A deadline inside the window is pushed past it (an uncollectible invoice has no
      // collection state left to change).
      try apply(.transferDeclared(windowEndsAt: end), invoiceID: invoice.id, config: config)
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "transfer_declared",
        reason: "customer declared a transfer of \(amount) sent on \(sentOn) (reference \(bankReference)); waiting for it to clear until \(end)")
      return (try requireInvoice(invoice.number), end)
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
  public func closeTransferDeclaration(invoiceID: Int64, outcome: String) throws -> (id: Int64, sentOn: CivilDate, reference: String)? {
    guard
      let row = try db.queryOne(
        "SELECT id, sent_on, reference FROM transfer_declarations WHERE invoice_id = ? AND closed_at IS NULL", invoiceID)
    else { return nil }
    let id = try row.int("id")
    try db.run("UPDATE transfer_declarations SET closed_at = ?, outcome = ? WHERE id = ?", now, outcome, id)
    return (id, try CivilDate(iso8601: try row.string("sent_on")), try row.string("reference"))
  }
}
