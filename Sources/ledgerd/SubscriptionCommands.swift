import ArgumentParser
import LedgerCore
import LedgerEngine
import LedgerStore

/// `ledgerd account plan`: a plan change, prorated.
struct ChangePlan: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plan",
    abstract: "Move an account to another plan.",
    discussion: """
      An upgrade takes effect at once and the price difference for the days left in the period is invoiced \
      (rounded down). A downgrade takes effect when the period invoiced ends, or at once with --now, the difference \
      for the days left then becoming a credit note (rounded up) that the next invoice consumes. After a downgrade \
      for non-payment the customer re-takes a plan with this command (--actor customer). Naming the plan the account \
      is on cancels a change waiting for the period's end.
      """)
  @Argument(help: "The account's id.") var account: String
  @Argument(help: "The plan's code.") var plan: String
  @Flag(help: "A downgrade takes effect now, credited for the days left, rather than at the period's end.")
  var now = false
  @Option(help: "Why, for the account's timeline.") var reason: String?
  @OptionGroup var actor: ActorOptions
  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  func run() throws {
    try runGuarded {
      let id = try parseID(account, field: "account")
      let change = try database.billing().changePlan(
        account: id, to: plan, immediately: now, reason: reason, actor: try actor.resolve())
      try output.emit(change) { describe(change) }
    }
  }
}

/// `ledgerd account addon add|remove|list`.
struct AddonCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "addon", abstract: "An account's recurring add-ons, billed each period beside the plan.",
    subcommands: [Add.self, Remove.self, List.self])

  struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add a recurring add-on; the days left in the period are invoiced at once (rounded down).")
    @Argument(help: "The account's id.") var account: String
    @Argument(help: "The add-on's code (lowercase letters, digits, '-' or '_').") var code: String
    @Option(help: "The add-on's name on invoices.") var name: String
    @Option(parsing: .unconditional, help: "The price per period, e.g. 5.00.") var price: String
    @Option(help: "ISO 4217 currency (default: the plan's); it must be the plan's.") var currency: String?
    @Option(help: "Why, for the account's timeline.") var reason: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let id = try parseID(account, field: "account")
        _ = try Validate.planCode(code, field: "code")
        var parsedCurrency = try currency.map { try Currency(code: $0, field: "--currency") }
        let billing = try database.billing()
        let change = try billing.store.write {
          if parsedCurrency == nil {
            let account = try billing.store.requireAccount(id, field: "account")
            parsedCurrency = try billing.store.plan(code: account.plan)?.price.currency
          }
          let amount = try Money.parsePositive(price, currency: parsedCurrency ?? .eur, field: "--price")
          return try billing.addAddon(
            account: id, code: code, name: name, price: amount, reason: reason, actor: try actor.resolve())
        }
        try output.emit(change) { describe(change) }
      }
    }
  }

  struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "End an add-on when the period invoiced ends, or now with a credit note for the days left (--now).")
    @Argument(help: "The account's id.") var account: String
    @Argument(help: "The add-on's code.") var code: String
    @Flag(help: "End it now, credited for the days left (rounded up).") var now = false
    @Option(help: "Why, for the account's timeline.") var reason: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let id = try parseID(account, field: "account")
        let change = try database.billing().removeAddon(
          account: id, code: code, immediately: now, reason: reason, actor: try actor.resolve())
        try output.emit(change) { describe(change) }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List an account's add-ons, ended ones included.")
    @Argument(help: "The account's id.") var account: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let id = try parseID(account, field: "account")
        let store = try database.open(.readOnly)
        let addons = try store.read {
          _ = try store.requireAccount(id, field: "account")
          return try store.addons(account: id, includeEnded: true)
        }
        try output.emit(addons) {
          table(
            ["CODE", "NAME", "PRICE", "ADDED", "ENDS"],
            addons.map { [$0.code, $0.name, $0.price.description, $0.addedAt.iso8601, $0.endsAt?.iso8601 ?? "-"] })
        }
      }
    }
  }
}

/// `ledgerd account close`.
struct CloseAccount: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "close",
    abstract: "Close an account: nothing is invoiced any more and its add-ons end (refused while invoices are open).")
  @Argument(help: "The account's id.") var account: String
  @Option(help: "Why, for the account's timeline.") var reason: String
  @OptionGroup var actor: ActorOptions
  @OptionGroup var database: DatabaseOptions
  @OptionGroup var output: OutputOptions

  func run() throws {
    try runGuarded {
      let id = try parseID(account, field: "account")
      let account = try database.open(.readWrite).closeAccount(id, reason: reason, actor: try actor.resolve())
      try output.emit(account) { "account \(account.id) closed" }
    }
  }
}

func describe(_ change: SubscriptionChange) -> String {
  var lines = ["account \(change.accountID): \(change.summary)"]
  if let p = change.prorated {
    lines.append("  prorated: \(p.amount) for \(p.span), \(p.describedDays)")
  }
  if let invoice = change.invoice {
    lines.append("  invoice \(invoice.number): \(invoice.total), due \(invoice.dueDate) by \(invoice.method.rawValue)")
  }
  if let note = change.creditNote {
    lines.append("  credit note \(note.number): \(note.amount) to the account's credit, used by the next invoice")
  }
  return lines.joined(separator: "\n")
}
