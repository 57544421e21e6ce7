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
      try db.run("UPDATE invoices SET paused_at = ?, next_action = NULL, next_action_at = NULL WHERE id = ?", at, invoice.id)
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "invoice_paused",
        reason: "payment reported as not registered (proof: \(proof)); collection of \(invoice.number) paused")
      try enqueue(
        key: "paused:\(db.lastInsertRowID)", account: try requireAccount(invoice.accountID), invoice: invoice.id, kind: "pause_confirmed",
        data: ["invoice": invoice.number, "amount": invoice.due.amountString, "currency": invoice.due.currency.code, "proof": proof])
      return try requireInvoice(invoice.number)
    }
  }

  /// Staff resume a paused invoice: the dunning clock goes on from where it stopped, so
  /// every date still ahead (retries, reminders, the deadline) moves by the paused time.
  public func resumeInvoice(_ reference: String, actor: Actor) throws -> Invoice {
    try write {
      let invoice = try requireInvoice(reference)
      guard invoice.paused,
        let row = try db.queryOne("SELECT paused_at, dunning_started_at FROM invoices WHERE id = ?", invoice.id),
        let pausedAt = try row.optionalString("paused_at")
      else {
        throw StateError(subject: "invoice \(invoice.number)", rule: "is not paused")
      }
      let at = now
      let seconds = max(0, clock.now().secondsSinceEpoch - (try Instant(iso8601: pausedAt)).secondsSinceEpoch)
      let inDunning = try row.optionalString("dunning_started_at") != nil
      try db.run("UPDATE pauses SET resumed_at = ?, resolution = 'resumed' WHERE invoice_id = ? AND resumed_at IS NULL", at, invoice.id)
      if inDunning {
        let deadline = try db.scalarText("SELECT grace_deadline FROM invoices WHERE id = ?", invoice.id).map { try Instant(iso8601: $0) }
        try db.run(
          "UPDATE invoices SET paused_at = NULL, paused_seconds = paused_seconds + ?, grace_deadline = ? WHERE id = ?", seconds,
          deadline?.adding(seconds: seconds).iso8601, invoice.id)
      } else {
        try db.run("UPDATE invoices SET paused_at = NULL WHERE id = ?", invoice.id)
      }
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
      if let current = try db.scalarText("SELECT grace_deadline FROM invoices WHERE id = ?", invoice.id) {
        let pushed = DunningPolicy.deadline(try Instant(iso8601: current), afterWindowEnding: end, config: config)
        try db.run("UPDATE invoices SET grace_deadline = ? WHERE id = ?", pushed.iso8601, invoice.id)
      }
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "transfer_declared",
        reason: "customer declared a transfer of \(amount) sent on \(sentOn) (reference \(bankReference)); waiting for it to clear until \(end)")
      return (try requireInvoice(invoice.number), end)
    }
  }

  /// A declared transfer's window ended without the money: the customer gets the list of
  /// what to check, and dunning resumes.
  public func endTransferWindow(_ due: DueAction, actor: Actor) throws {
    guard
      let row = try db.queryOne(
        "SELECT id, amount_minor, currency, sent_on, reference FROM transfer_declarations WHERE invoice_id = ? AND closed_at IS NULL", due.invoiceID)
    else { return }
    try db.run("UPDATE transfer_declarations SET closed_at = ?, outcome = 'expired' WHERE id = ?", now, try row.int("id"))
    let invoice = try requireInvoice(id: due.invoiceID)
    try recordEvent(
      account: due.accountID, invoice: due.invoiceID, actor: actor, kind: "transfer_not_received",
      reason: "the transfer declared for \(invoice.number) (reference \(try row.string("reference"))) has not arrived after the clearing window")
    try enqueue(
      key: "transfer_not_received:\(try row.int("id"))", account: try requireAccount(due.accountID), invoice: due.invoiceID,
      kind: "transfer_not_received",
      data: [
        "invoice": invoice.number, "amount": invoice.due.amountString, "currency": invoice.due.currency.code,
        "sent_on": try row.string("sent_on"), "reference": try row.string("reference"),
        "payment_reference": invoice.paymentReference ?? "",
      ])
  }
}
