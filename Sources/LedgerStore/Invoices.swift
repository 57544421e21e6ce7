import LedgerCore
import LedgerSQLite

extension LedgerStore {
  /// Issues an invoice: the invoice, its lines, its payment reference (for transfers), the
  /// journal entry (receivable / revenue) and the event, in one transaction.
  public func issueInvoice(_ draft: InvoiceDraft, actor: Actor) throws -> Invoice {
    try write {
      _ = try requireAccount(draft.accountID)
      let id = (try db.scalarInt("SELECT coalesce(max(id), 0) + 1 FROM invoices")) ?? 1
      let digits = String(id)
      let number = "INV-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
      let reference: String? =
        draft.method == .transfer ? try PaymentReference(body: number.replacingDash).compact : nil
      let at = now
      try db.run(
        """
        INSERT INTO invoices (id, number, account_id, currency, total_minor, status, collection_method, payment_reference,
                              issue_date, due_date, created_at)
        VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?)
        """,
        id, number, draft.accountID, draft.currency.code, draft.total.minorUnits, draft.method.rawValue, reference,
        draft.issueDate.iso8601, draft.dueDate.iso8601, at)
      if let period = draft.period {
        // The unique index on (account, period start) refuses a second invoice of a period.
        try db.run(
          "UPDATE invoices SET period_start = ?, period_end = ? WHERE id = ?", period.start.iso8601,
          period.end.iso8601, id)
      }
      for (offset, line) in draft.lines.enumerated() {
        try db.run(
          """
          INSERT INTO invoice_lines (invoice_id, position, kind, description, quantity, unit_amount_minor, amount_minor)
          VALUES (?, ?, ?, ?, ?, ?, ?)
          """,
          id, offset + 1, line.kind.rawValue, line.description, line.quantity, line.unitAmount.minorUnits,
          try line.amount().minorUnits)
      }
      try post(try Posting.invoiceIssued(invoiceID: id, number: number, customer: draft.accountID, total: draft.total))
      try recordEvent(
        account: draft.accountID, invoice: id, actor: actor, kind: "invoice_issued",
        reason:
          "invoice \(number) of \(draft.total) issued, due \(draft.dueDate), collected by \(draft.method.rawValue)"
          + (reference.map { " (reference \($0))" } ?? ""),
        data: ["number": number, "total_minor": String(draft.total.minorUnits), "currency": draft.currency.code])
      try applyCredit(account: draft.accountID, invoiceID: id, number: number, total: draft.total, actor: actor)
      return try requireInvoice(number)
    }
  }

  /// Credit the account holds (from overpayments) pays the new invoice first: a `credit`
  /// payment allocated to it, and customer credit / receivable in the journal.
  func applyCredit(account: Int64, invoiceID: Int64, number: String, total: Money, actor: Actor) throws {
    // The account's credit is one row of the running balances.
    let credit =
      try db.scalarInt(
        "SELECT credits_minor - debits_minor FROM ledger_balances WHERE ledger_account = 'customer_credit' AND currency = ? AND account_id = ?",
        total.currency.code, account) ?? 0
    guard credit > 0 else { return }
    let applied = Money(minorUnits: min(credit, total.minorUnits), currency: total.currency)
    try db.run(
      "INSERT INTO payments (account_id, method, amount_minor, currency, received_on, reference, actor, created_at) VALUES (?, 'credit', ?, ?, ?, ?, ?, ?)",
      account, applied.minorUnits, applied.currency.code, today.iso8601, "account credit", actor.rawValue, now)
    let paymentID = db.lastInsertRowID
    try db.run(
      "INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor) VALUES (?, ?, ?)", paymentID, invoiceID,
      applied.minorUnits)
    try post(
      try JournalEntry(
        kind: .creditApplied, memo: "account credit applied to \(number)",
        lines: [
          .debit(.customerCredit, applied, customer: account),
          .credit(.receivable, applied, customer: account, invoice: invoiceID),
        ],
        invoiceID: invoiceID, paymentID: paymentID))
    if applied == total {
      try db.run("UPDATE invoices SET status = 'paid', closed_at = ? WHERE id = ?", now, invoiceID)
    }
    try recordEvent(
      account: account, invoice: invoiceID, actor: actor, kind: "credit_applied",
      reason: "\(applied) of account credit applied to \(number)" + (applied == total ? "; paid in full" : ""),
      data: ["payment_id": String(paymentID)])
  }

  /// Voids an open invoice nothing has been paid on: the issue entry is reversed, and any
  /// pause or declared transfer on it is closed.
  public func voidInvoice(_ reference: String, reason: String, actor: Actor) throws -> Invoice {
    let reason = try Validate.text(reason, field: "--reason")
    return try write {
      let invoice = try requireInvoice(reference)
      guard invoice.status == .open else {
        throw StateError(
          subject: "invoice \(invoice.number)",
          rule: "is \(invoice.status.rawValue); only an open invoice can be voided")
      }
      guard invoice.paid.minorUnits == 0 else {
        throw StateError(
          subject: "invoice \(invoice.number)",
          rule: "has \(invoice.paid) paid on it; refund the payment before voiding")
      }
      let at = now
      try db.run(
        "UPDATE invoices SET status = 'void', void_reason = ?, closed_at = ?, paused_at = NULL WHERE id = ?", reason,
        at, invoice.id)
      try db.run(
        "UPDATE pauses SET resumed_at = ?, resolution = 'voided' WHERE invoice_id = ? AND resumed_at IS NULL", at,
        invoice.id)
      try db.run(
        "UPDATE transfer_declarations SET closed_at = ?, outcome = 'cancelled' WHERE invoice_id = ? AND closed_at IS NULL",
        at,
        invoice.id)
      try post(
        try Posting.invoiceVoided(
          invoiceID: invoice.id, number: invoice.number, customer: invoice.accountID, total: invoice.total))
      try db.run("UPDATE invoices SET next_action = NULL, next_action_at = NULL WHERE id = ?", invoice.id)
      // Voiding the invoice that made the account past due ends that (a void restores no plan).
      try settleAccountStatus(invoice.accountID, actor: actor, config: DunningConfig())
      try recordEvent(
        account: invoice.accountID, invoice: invoice.id, actor: actor, kind: "invoice_voided",
        reason: "invoice \(invoice.number) voided: \(reason)")
      return try requireInvoice(invoice.number)
    }
  }

  /// Finds an invoice by number (`INV-000042`) or by id (`42`).
  public func invoice(_ reference: String) throws -> Invoice? {
    let row: Row?
    if let id = Int64(reference) {
      row = try db.queryOne(Self.invoiceSelect + " WHERE i.id = ?", id)
    } else {
      row = try db.queryOne(Self.invoiceSelect + " WHERE i.number = ?", reference.uppercased())
    }
    guard let row else { return nil }
    var invoice = try self.invoice(from: row)
    invoice.lines = try db.query("SELECT * FROM invoice_lines WHERE invoice_id = ? ORDER BY position", invoice.id).map {
      line in
      let currency = invoice.total.currency
      return InvoiceLine(
        position: try line.int("position"), kind: LineKind(rawValue: try line.string("kind")) ?? .other,
        description: try line.string("description"), quantity: try line.int("quantity"),
        unitAmount: Money(minorUnits: try line.int("unit_amount_minor"), currency: currency),
        amount: Money(minorUnits: try line.int("amount_minor"), currency: currency))
    }
    return invoice
  }

  /// An invoice by id, without its lines: the scheduler's hot path.
  public func invoice(id: Int64) throws -> Invoice? {
    try db.queryOne(Self.invoiceSelect + " WHERE i.id = ?", id).map(invoice(from:))
  }

  func requireInvoice(id: Int64) throws -> Invoice {
    guard let invoice = try invoice(id: id) else { throw NotFoundError(field: "invoice", value: String(id)) }
    return invoice
  }

  public func requireInvoice(_ reference: String, field: String = "invoice") throws -> Invoice {
    guard let invoice = try invoice(reference) else { throw NotFoundError(field: field, value: reference) }
    return invoice
  }

  /// Invoices, newest first, optionally of one account or status (without their lines).
  public func invoices(account: Int64? = nil, status: InvoiceStatus? = nil) throws -> [Invoice] {
    // The filter holds only what is given: a filter that tests the parameter for null cannot
    // use the account's index, and made one account's list read the whole book.
    var conditions: [String] = []
    var arguments: [SQLBindable] = []
    if let account {
      conditions.append("i.account_id = ?")
      arguments.append(account)
    }
    if let status {
      conditions.append("i.status = ?")
      arguments.append(status.rawValue)
    }
    let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
    return try db.query(Self.invoiceSelect + filter + " ORDER BY i.id DESC", arguments: arguments).map(invoice(from:))
  }

  /// An invoice and what was paid on it. Not through `v_invoice_balances`: SQLite would
  /// read the row twice and sum its payments twice (once for what is paid, once for what is
  /// due); what is due comes from the same rule here (`InvoiceStatus.owesRest`).
  static let invoiceSelect = """
    SELECT i.id, i.number, i.account_id, i.status, i.collection_method, i.payment_reference, i.issue_date, i.due_date,
           i.currency, i.total_minor, i.paused_at, i.grace_deadline, i.void_reason,
           (SELECT coalesce(sum(a.amount_minor), 0) FROM payment_allocations a WHERE a.invoice_id = i.id) AS paid_minor
    FROM invoices i
    """

  func invoice(from row: Row) throws -> Invoice {
    let currency = try Currency(code: try row.string("currency"))
    func money(_ column: String) throws -> Money { Money(minorUnits: try row.int(column), currency: currency) }
    let status = InvoiceStatus(rawValue: try row.string("status")) ?? .open
    let total = try money("total_minor")
    let paid = try money("paid_minor")
    return Invoice(
      id: try row.int("id"), number: try row.string("number"), accountID: try row.int("account_id"),
      status: status,
      method: CollectionMethod(rawValue: try row.string("collection_method")) ?? .card,
      paymentReference: try row.optionalString("payment_reference"), issueDate: try row.string("issue_date"),
      dueDate: try row.string("due_date"), total: total, paid: paid,
      due: status.owesRest
        ? Money(minorUnits: total.minorUnits - paid.minorUnits, currency: currency) : .zero(currency),
      paused: try row.optionalString("paused_at") != nil,
      graceDeadline: try row.optionalString("grace_deadline"), voidReason: try row.optionalString("void_reason"),
      lines: [])
  }
}

extension String {
  var replacingDash: String { filter { $0 != "-" } }
}
