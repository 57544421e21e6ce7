import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerStore
import Logging

struct TransferCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "transfer", abstract: "Bank transfers customers say they have sent.",
    subcommands: [Declare.self, Accept.self, Extend.self])

  struct Declare: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Record a customer's \"I paid by transfer\": the invoice waits for clearing with no reminder, retry or downgrade.",
      discussion: """
        The clearing window runs 3 business days (config transfers.window_business_days) from the day the money was sent, \
        never from the declaration: a transfer whose window is already over is recorded but holds nothing. An invoice gets \
        one window, whatever is declared after it, unless staff extend it (`ledgerd transfer extend`). A declaration for \
        less than what is due is recorded but holds nothing until staff accept it (`ledgerd transfer accept`). A written-off \
        (uncollectible) invoice can still be paid but is never held: a declaration on it is refused. A grace deadline inside \
        the window is pushed past it.
        """)
    @Argument(help: "The invoice's number or id.") var invoice: String
    @Option(parsing: .unconditional, help: "The amount sent, e.g. 48.00 (in the invoice's currency).") var amount:
      String
    @Option(help: "The day it was sent, YYYY-MM-DD: the clearing window counts from it.") var date: String
    @Option(help: "The reference the customer quoted.") var reference: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    struct Result: Encodable {
      let invoice: Invoice
      /// Whether the invoice is held: `window`, `awaiting_acceptance`, `window_over`, `window_used`.
      let hold: String
      let holds: Bool
      let windowEndsAt: String?
      let detail: String
    }

    func run() throws {
      try runGuarded {
        let sent = try CivilDate(iso8601: date, field: "--date")
        let reference = try Validate.text(reference, field: "--reference", limit: 140)
        // The customer says it; staff entering it on their behalf can say --actor staff.
        let declaredBy = try actor.resolve(default: .customer)
        let billing = try database.billing()
        let currency = try billing.store.requireInvoice(invoice).total.currency
        let money = try Money.parsePositive(amount, currency: currency, field: "--amount")
        let (updated, hold) = try billing.declareTransfer(
          invoice, amount: money, sentOn: sent, bankReference: reference, actor: declaredBy)
        let days = billing.config.transferWindowBusinessDays
        let detail: String
        switch hold {
        case .window(let end):
          detail =
            "waiting for the transfer of \(money) to clear until \(end) (\(days) business days from \(sent)); no reminder, retry or downgrade until then"
        case .awaitingAcceptance(let due):
          detail =
            "transfer of \(money) recorded, but \(due) is due: no clearing window opens until staff accept it (`ledgerd transfer accept \(updated.number)`); reminders, retries and the downgrade keep their dates"
        case .windowOver(let end):
          detail =
            "transfer recorded, but no clearing window opens: the window of a transfer sent on \(sent) (\(days) business days) ended on \(end); reminders, retries and the downgrade keep their dates"
        case .windowUsed:
          detail =
            "transfer recorded, but no clearing window opens: \(updated.number) already had its window (one per invoice; staff can extend it with `ledgerd transfer extend`); reminders, retries and the downgrade keep their dates"
        }
        try output.emit(
          Result(
            invoice: updated, hold: hold.name, holds: hold.windowEndsAt != nil,
            windowEndsAt: hold.windowEndsAt?.iso8601, detail: detail)
        ) { "\(updated.number): \(detail)" }
      }
    }
  }

  /// What `accept` and `extend` print: the invoice and the end of its clearing window.
  struct WindowResult: Encodable {
    let invoice: Invoice
    let windowEndsAt: String
  }

  struct Accept: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Staff: accept a declared transfer for less than what is due, so that its clearing window opens (counted from its send date)."
    )
    @Argument(help: "The invoice's number or id.") var invoice: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let billing = try database.billing()
        let (updated, end) = try billing.acceptTransfer(invoice, actor: .staff)
        try output.emit(WindowResult(invoice: updated, windowEndsAt: end.iso8601)) {
          "\(updated.number): declared transfer accepted; waiting for it to clear until \(end); no reminder, retry or downgrade until then"
        }
      }
    }
  }

  struct Extend: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Staff: give an invoice's declared transfer more business days to clear, after its window (or from today if none is open).",
      discussion: """
        The only way an invoice is held by a transfer more than once. The extension is an event with actor staff and the \
        reason given; a grace deadline inside the new window is pushed past it.
        """)
    @Argument(help: "The invoice's number or id.") var invoice: String
    @Option(help: "Business days to add, 1 to 30.") var days: Int
    @Option(help: "Why staff wait longer (kept in the event).") var reason: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let billing = try database.billing()
        let (updated, end) = try billing.extendTransferWindow(
          invoice, businessDays: days, reason: reason, actor: .staff)
        try output.emit(WindowResult(invoice: updated, windowEndsAt: end.iso8601)) {
          "\(updated.number): transfer window extended until \(end); no reminder, retry or downgrade until then"
        }
      }
    }
  }
}

struct PaymentCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "payment", abstract: "Payments received outside the card flow.", subcommands: [Record.self])

  struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract:
        "Record money received for an invoice (the same path reconciliation takes); an overpayment becomes account credit."
    )
    @Argument(help: "The invoice's number or id.") var invoice: String
    @Option(parsing: .unconditional, help: "The amount received, e.g. 48.00.") var amount: String
    @Option(help: "How it was paid: transfer.") var method: String = "transfer"
    @Option(help: "The bank's or customer's reference.") var reference: String?
    @Option(help: "The day it was received, YYYY-MM-DD (default today).") var date: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let reference = try reference.map { try Validate.text($0, field: "--reference", limit: 140) }
        let billing = try database.billing()
        let received = try date.map { try CivilDate(iso8601: $0, field: "--date") } ?? billing.store.clock.now().date
        let currency = try billing.store.requireInvoice(invoice).total.currency
        let money = try Money.parsePositive(amount, currency: currency, field: "--amount")
        let record = try billing.recordPayment(
          invoice, amount: money, method: method, bankReference: reference, receivedOn: received,
          actor: try actor.resolve())
        try output.emit(record) {
          "payment \(record.paymentID) of \(record.amount) recorded"
            + (record.paidInvoices.isEmpty
              ? "; nothing fully paid yet" : "; paid \(record.paidInvoices.joined(separator: ", "))")
            + (record.credit.minorUnits > 0 ? "; \(record.credit) kept as account credit" : "")
        }
      }
    }
  }
}

struct Explain: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "An account's timeline in words, and what happens next and when.")
  @Argument(help: "The account's id.") var account: String
  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  struct Explanation: Encodable {
    let account: Account
    let timeline: [Event]
    let next: [String]
  }

  func run() throws {
    try runGuarded {
      let id = try parseID(account, field: "account")
      let store = try database.open(.readOnly)
      let config = try database.loadConfig().dunning
      let explanation = try store.read {
        Explanation(
          account: try store.requireAccount(id, field: "account"), timeline: try store.events(account: id),
          next: try store.subscriptionOutlook(account: id, config: config)
            + store.upcoming(account: id, config: config))
      }
      try output.emit(explanation) {
        let a = explanation.account
        var lines = ["\(a.name) <\(a.email)>: \(a.status.rawValue) on plan \(a.plan)", "", "What happened:"]
        lines += explanation.timeline.map {
          "  \($0.at.prefix(16).replacingOccurrences(of: "T", with: " ")) \($0.actor.rawValue): \($0.reason)"
        }
        lines += ["", "What happens next:"]
        lines += explanation.next.isEmpty ? ["  nothing is scheduled"] : explanation.next.map { "  " + $0 }
        return lines.joined(separator: "\n")
      }
    }
  }
}

/// The logger commands and the daemon write to stderr, one line per event, for journald.
/// `LEDGERD_LOG` (trace, debug, info, notice, warning, error) overrides `level`.
func makeLogger(_ label: String, level: Logger.Level = .notice) -> Logger {
  var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
  logger.logLevel = ProcessInfo.processInfo.environment["LEDGERD_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? level
  return logger
}

struct RunDue: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "run-due",
    abstract: "Run everything due up to a time, with a clock that jumps from due time to due time (the daemon's code).")
  @Option(help: "Run until this UTC time, YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD.") var until: String
  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  func run() async throws {
    try await runGuardedAsync {
      let until = try Instant(iso8601: until, field: "--until")
      let start = try SystemClock.fromEnvironment().now()
      guard until >= start else { throw InputError(field: "--until", rule: "\(until) is before now (\(start))") }
      let config = try database.loadConfig()
      let clock = ManualClock(start)
      let store = try database.open(.readWrite, clock: clock)
      let scheduler = Scheduler(
        store: store, processor: try database.processor(config, clock: clock), config: config.dunning,
        logger: makeLogger("ledgerd.run-due"))
      config.configure(scheduler)
      try scheduler.checkConfiguration()
      // As at the daemon's start: charges the processor made for this ledger that its file
      // lacks (a restored or replaced file) are taken in before anything is charged.
      try await scheduler.adoptProcessorCharges()
      let report = try await scheduler.runUntil(until, clock: clock)
      try output.emit(report) {
        "ran until \(until): \(report.renewalInvoices) periods invoiced, \(report.attempts) charge attempts (\(report.succeeded) succeeded, \(report.declined) declined, \(report.unresolved) unanswered, \(report.recoveredPending) recovered), \(report.reminders) reminders, \(report.downgrades) downgrades, \(report.dunningStarted) overdue, \(report.transferWindowsEnded) transfer windows ended, \(report.transferDueReminders) transfer due reminders, \(report.cardExpiryNotices) card expiry notices"
      }
    }
  }
}
