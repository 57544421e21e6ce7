import ArgumentParser
import LedgerCore
import LedgerStore

struct PlanCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plan", abstract: "Manage plans.", subcommands: [Add.self, List.self])

  struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a paid plan.")
    @Argument(help: "The plan's code (lowercase letters, digits, '-' or '_').") var code: String
    @Option(help: "The plan's display name.") var name: String
    @Option(parsing: .unconditional, help: "The price per period, e.g. 19.00.") var price: String
    @Option(help: "ISO 4217 currency code.") var currency: String = "EUR"
    @Option(help: "Billing period: month or year.") var period: String = "month"
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let currency = try Currency(code: currency, field: "--currency")
        let price = try Money.parsePositive(price, currency: currency, field: "--price")
        let period = try BillingPeriod(parsing: period)
        _ = try Validate.planCode(code, field: "code")
        let plan = try database.open(.readWrite).addPlan(code: code, name: name, price: price, period: period)
        try output.emit(plan) { "plan \(plan.code) added: \(plan.name), \(plan.price) per \(plan.period.rawValue)" }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List plans.")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let plans = try database.open(.readOnly).plans()
        try output.emit(plans) {
          table(
            ["CODE", "NAME", "PRICE", "PERIOD"],
            plans.map { [$0.code, $0.name, $0.price.description, $0.period.rawValue] })
        }
      }
    }
  }
}

struct AccountCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "account", abstract: "Manage customer accounts.",
    subcommands: [
      Add.self, Update.self, Show.self, List.self, ChangePlan.self, AddonCommand.self, CloseAccount.self,
    ])

  struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Open a customer account.")
    @Option(help: "Where the customer's emails go.") var email: String
    @Option(help: "The customer's display name.") var name: String
    @Option(help: "Language of the customer's emails: fr or en.") var locale: String = "fr"
    @Option(help: "The plan's code.") var plan: String = "free"
    @Option(help: "subscription (the scheduler invoices each period) or manual (invoices issued by hand).")
    var billing: String = "subscription"
    @Option(help: "How its invoices are collected: card or transfer.") var method: String = "card"
    @Option(help: "The day its first period starts, YYYY-MM-DD (default today); later ones on the same day.")
    var anchor: String?
    @Option(help: "Its customer at the card processor (Stripe: cus_…), under which its cards are charged.")
    var processorCustomer: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let locale = try CustomerLocale(parsing: locale)
        let email = try Validate.email(email)
        let name = try Validate.displayName(name)
        let mode = try BillingMode(parsing: billing)
        let method = try CollectionMethod(parsing: method)
        let anchor = try anchor.map { try CivilDate(iso8601: $0, field: "--anchor") }
        let customer = try processorCustomer.map { try CardRules.processorCustomer($0) }
        let ledger = try database.billing()
        let account = try ledger.store.write {
          let account = try ledger.addAccount(
            email: email, name: name, locale: locale, planCode: plan, billing: mode, method: method, anchor: anchor,
            actor: try actor.resolve())
          if let customer {
            try ledger.store.setProcessorCustomer(account.id, customer: customer, actor: try actor.resolve())
          }
          return account
        }
        try output.emit(account) {
          "account \(account.id) opened: \(account.name) <\(account.email)>, plan \(account.plan)"
        }
      }
    }
  }

  struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Change an account's email, name or language.",
      discussion: "Messages not yet delivered go to the new address. The address and name are checked as at opening.")
    @Argument(help: "The account's id.") var account: String
    @Option(help: "Where the customer's emails go.") var email: String?
    @Option(help: "The customer's display name.") var name: String?
    @Option(help: "Language of the customer's emails: fr or en.") var locale: String?
    @Option(help: "subscription (the scheduler invoices each period) or manual (invoices issued by hand).")
    var billing: String?
    @Option(help: "How its invoices are collected from now on: card or transfer.") var method: String?
    @Option(help: "Its customer at the card processor (Stripe: cus_…); \"none\" clears it.")
    var processorCustomer: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let id = try parseID(account, field: "account")
        let locale = try locale.map { try CustomerLocale(parsing: $0) }
        let mode = try billing.map { try BillingMode(parsing: $0) }
        let method = try method.map { try CollectionMethod(parsing: $0) }
        let customer = try processorCustomer.map { $0 == "none" ? nil : try CardRules.processorCustomer($0) }
        let ledger = try database.billing()
        let store = ledger.store
        let account = try store.write {
          if mode != nil || method != nil {
            try ledger.setBilling(account: id, billing: mode, method: method, actor: try actor.resolve())
          }
          if let customer { try store.setProcessorCustomer(id, customer: customer, actor: try actor.resolve()) }
          if email == nil && name == nil && locale == nil && (mode != nil || method != nil || customer != nil) {
            return try store.requireAccount(id, field: "account")
          }
          return try store.updateAccount(id, email: email, name: name, locale: locale, actor: try actor.resolve())
        }
        try output.emit(account) {
          "account \(account.id): \(account.name) <\(account.email)>, locale \(account.locale.rawValue)"
        }
      }
    }
  }

  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show an account with its cards, invoices, balances and events.")
    @Argument(help: "The account's id.") var account: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    struct Subscription: Encodable {
      let billing: BillingMode
      let method: CollectionMethod
      let anchor: String
      let billedUntil: String?
      let renewAt: String?
      let scheduledPlan: String?
      let addons: [Addon]
      let next: [String]
    }

    struct Detail: Encodable {
      let account: Account
      let processorCustomer: String?
      let subscription: Subscription?
      let balances: [LedgerStore.Balance]
      let cards: [Card]
      let invoices: [Invoice]
      let events: [Event]
    }

    func run() throws {
      try runGuarded {
        let id = try parseID(account, field: "account")
        let store = try database.open(.readOnly)
        let config = try database.loadConfig().dunning
        let detail = try store.read {
          Detail(
            account: try store.requireAccount(id, field: "account"),
            processorCustomer: try store.processorCustomer(account: id),
            subscription: try store.subscription(account: id).map { s in
              Subscription(
                billing: s.billing, method: s.method, anchor: s.anchor.iso8601, billedUntil: s.billedUntil?.iso8601,
                renewAt: s.renewAt?.iso8601, scheduledPlan: s.scheduledPlan?.code, addons: s.addons,
                next: try store.subscriptionOutlook(account: id, config: config))
            },
            balances: try store.balances(account: id),
            cards: try store.cards(account: id, includeRemoved: true), invoices: try store.invoices(account: id),
            events: try store.events(account: id))
        }
        try output.emit(detail) {
          let a = detail.account
          var out = [
            "account \(a.id): \(a.name) <\(a.email)>",
            "  plan \(a.plan), status \(a.status.rawValue), locale \(a.locale.rawValue), since \(a.createdAt)",
          ]
          if let customer = detail.processorCustomer { out.append("  processor customer \(customer)") }
          if let s = detail.subscription {
            out.append(
              "  billed by \(s.billing.rawValue), collected by \(s.method.rawValue), periods from \(s.anchor)"
                + (s.billedUntil.map { ", invoiced until \($0)" } ?? ""))
            out += s.addons.map {
              "  add-on \($0.code): \($0.name), \($0.price)" + ($0.endsAt.map { " (ends \($0.date))" } ?? "")
            }
            out += s.next.map { "  next: " + $0 }
          }
          for b in detail.balances {
            out.append(
              "  balance \(b.owed.currency.code): owes \(b.owed.amountString)"
                + (b.writtenOff.minorUnits != 0 ? " (\(b.writtenOff.amountString) of it written off, still owed)" : "")
                + ", credit \(b.credit.amountString)")
          }
          out.append("cards:")
          out += detail.cards.map { "  " + cardLine($0) }
          out.append("invoices:")
          out += detail.invoices.map {
            "  \($0.number) \($0.status.rawValue) \($0.method.rawValue) total \($0.total) due \($0.due.amountString) by \($0.dueDate)"
          }
          out.append("events:")
          out += detail.events.map { "  \($0.at) [\($0.actor.rawValue)] \($0.kind): \($0.reason)" }
          return out.joined(separator: "\n")
        }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List accounts.")
    @Option(help: "Only accounts with this status: active, past_due, downgraded, closed.") var status: String?
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let status = try status.map { raw in
          guard let s = AccountStatus(rawValue: raw) else {
            throw InputError(field: "--status", rule: "'\(raw)' must be one of active, past_due, downgraded, closed")
          }
          return s
        }
        let accounts = try database.open(.readOnly).accounts(status: status)
        try output.emit(accounts) {
          table(
            ["ID", "NAME", "EMAIL", "PLAN", "STATUS", "LOCALE"],
            accounts.map { [String($0.id), $0.name, $0.email, $0.plan, $0.status.rawValue, $0.locale.rawValue] })
        }
      }
    }
  }
}

func cardLine(_ c: Card) -> String {
  "card \(c.id): \(c.brand.rawValue) •••• \(c.last4) exp \(c.expiry) \(c.status.rawValue)\(c.isDefault ? " (default)" : "")"
}
