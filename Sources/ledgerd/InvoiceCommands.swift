import ArgumentParser
import LedgerCore
import LedgerEngine
import LedgerStore

struct InvoiceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "invoice", abstract: "Issue, inspect and void invoices.",
    subcommands: [Issue.self, Show.self, List.self, VoidInvoice.self, Pause.self, Resume.self])

  struct Issue: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Issue an invoice with its lines; posts receivable / revenue to the journal.",
      discussion: """
        Lines are DESCRIPTION=AMOUNT or DESCRIPTION=AMOUNTxQUANTITY, e.g. --line 'Domain example.fr=12.00x2'. \
        --plan-line adds the account's plan price as the first line; --addon adds an add-on line. \
        A transfer invoice gets an ISO 11649 payment reference (RF…) for the customer to quote.
        """)
    @Argument(help: "The account's id.") var account: String
    @Option(name: .customLong("line"), help: "An invoice line (repeatable).") var lines: [String] = []
    @Option(name: .customLong("addon"), help: "An add-on line, removed at a downgrade (repeatable).") var addons:
      [String] = []
    @Flag(help: "Bill the account's plan as the first line.") var planLine = false
    @Option(help: "ISO 4217 currency (default: the plan's with --plan-line, else EUR).") var currency: String?
    @Option(help: "card (charged automatically) or transfer (paid by bank transfer).") var method: String = "card"
    @Option(help: "Issue date, YYYY-MM-DD (default today, UTC).") var issued: String?
    @Option(help: "Due date, YYYY-MM-DD (default: the issue date for card, 14 days later for transfer).") var due:
      String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let accountID = try parseID(account, field: "account")
        let method = try CollectionMethod(parsing: method)
        let actor = try actor.resolve()
        let clock = try SystemClock.fromEnvironment()
        let issueDate = try issued.map { try CivilDate(iso8601: $0, field: "--issued") } ?? clock.now().date
        let dueDate =
          try due.map { try CivilDate(iso8601: $0, field: "--due") }
          ?? issueDate.adding(days: method == .transfer ? 14 : 0)
        var parsedCurrency = try currency.map { try Currency(code: $0, field: "--currency") }
        // Check every line's syntax before touching the file; amounts need the currency,
        // which may come from the plan, so they are parsed once it is known.
        if !planLine {
          try check(lines, addons, currency: parsedCurrency ?? .eur)
        }
        let billing = try database.billing()
        let store = billing.store
        let invoice = try store.write {
          let account = try store.requireAccount(accountID, field: "account")
          var drafts: [InvoiceLineDraft] = []
          if planLine {
            guard let plan = try store.plan(code: account.plan), plan.price.minorUnits > 0 else {
              throw InputError(
                field: "--plan-line", rule: "account \(accountID) is on the free plan; there is no price to bill")
            }
            if let c = parsedCurrency, c != plan.price.currency {
              throw InputError(
                field: "--currency", rule: "\(c.code) differs from the plan's \(plan.price.currency.code)")
            }
            parsedCurrency = plan.price.currency
            drafts.append(
              InvoiceLineDraft(
                description: "Plan \(plan.name) (\(plan.period.rawValue))", kind: .plan, unitAmount: plan.price))
          }
          let currency = parsedCurrency ?? .eur
          drafts += try parse(lines, addons, currency: currency, offset: drafts.count)
          let draft = try InvoiceDraft(
            accountID: accountID, currency: currency, lines: drafts, issueDate: issueDate, dueDate: dueDate,
            method: method)
          return try billing.issueInvoice(draft, actor: actor)
        }
        try output.emit(invoice) { describeInvoice(invoice) }
      }
    }

    private func parse(_ lines: [String], _ addons: [String], currency: Currency, offset: Int) throws
      -> [InvoiceLineDraft]
    {
      let all = lines.map { ($0, LineKind.other) } + addons.map { ($0, LineKind.addon) }
      return try all.enumerated().map { i, entry in
        try InvoiceLineDraft(parsing: entry.0, currency: currency, kind: entry.1, field: "line \(offset + i + 1)")
      }
    }

    private func check(_ lines: [String], _ addons: [String], currency: Currency) throws {
      _ = try parse(lines, addons, currency: currency, offset: 0)
    }
  }

  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an invoice with its lines and what is due.")
    @Argument(help: "The invoice's number (INV-000042) or id.") var invoice: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let invoice = try database.open(.readOnly).requireInvoice(invoice)
        try output.emit(invoice) { describeInvoice(invoice) }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List invoices, newest first.")
    @Option(help: "Only this account's invoices.") var account: String?
    @Option(help: "Only invoices with this status: open, paid, void, uncollectible.") var status: String?
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let accountID = try account.map { try parseID($0, field: "--account") }
        let status = try status.map { raw in
          guard let s = InvoiceStatus(rawValue: raw) else {
            throw InputError(field: "--status", rule: "'\(raw)' must be one of open, paid, void, uncollectible")
          }
          return s
        }
        let invoices = try database.open(.readOnly).invoices(account: accountID, status: status)
        try output.emit(invoices) {
          table(
            ["NUMBER", "ACCOUNT", "STATUS", "METHOD", "TOTAL", "DUE", "DUE DATE"],
            invoices.map {
              [
                $0.number, String($0.accountID), $0.status.rawValue + ($0.paused ? " (paused)" : ""),
                $0.method.rawValue,
                $0.total.description, $0.due.amountString, $0.dueDate,
              ]
            })
        }
      }
    }
  }

  struct VoidInvoice: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "void",
      abstract: "Void an open, unpaid invoice; posts the reversal of its issue.")
    @Argument(help: "The invoice's number or id.") var invoice: String
    @Option(help: "Why it is voided (kept in the event).") var reason: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let reason = try Validate.text(reason, field: "--reason")
        let actor = try actor.resolve()
        let invoice = try database.billing().voidInvoice(invoice, reason: reason, actor: actor)
        try output.emit(invoice) { describeInvoice(invoice) }
      }
    }
  }

  struct Pause: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Pause collection of an invoice on a \"payment not registered\" report: no reminder, retry or downgrade; the grace clock stops."
    )
    @Argument(help: "The invoice's number or id.") var invoice: String
    @Option(help: "The customer's proof of payment (receipt number, screenshot name).") var proof: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let proof = try Validate.text(proof, field: "--proof")
        let actor = try actor.resolve()
        let invoice = try database.billing().pause(invoice, proof: proof, actor: actor)
        try output.emit(invoice) { describeInvoice(invoice) }
      }
    }
  }

  struct Resume: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Resume collection of a paused invoice; the dunning clock continues from where it stopped.")
    @Argument(help: "The invoice's number or id.") var invoice: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let actor = try actor.resolve()
        let invoice = try database.billing().resume(invoice, actor: actor)
        try output.emit(invoice) { describeInvoice(invoice) }
      }
    }
  }
}

func describeInvoice(_ i: Invoice) -> String {
  var out = [
    "\(i.number) for account \(i.accountID): \(i.status.rawValue)\(i.paused ? " (collection paused)" : ""), \(i.method.rawValue)"
  ]
  out.append("  issued \(i.issueDate), due \(i.dueDate)")
  if let ref = i.paymentReference, let printed = try? PaymentReference(parsing: ref).printed {
    out.append("  pay by transfer quoting \(printed)")
  }
  for line in i.lines {
    let qty = line.quantity == 1 ? "" : " × \(line.quantity) at \(line.unitAmount.amountString)"
    out.append("  \(line.position). [\(line.kind.rawValue)] \(line.description)\(qty): \(line.amount.amountString)")
  }
  out.append("  total \(i.total), paid \(i.paid.amountString), due \(i.due.amountString)")
  if let reason = i.voidReason { out.append("  voided: \(reason)") }
  return out.joined(separator: "\n")
}
