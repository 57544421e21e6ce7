import ArgumentParser
import LedgerCore
import LedgerEngine
import LedgerStore

struct CardCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "card", abstract: "Manage an account's payment cards (processor tokens only).",
    subcommands: [Add.self, List.self, Default.self, Remove.self, Update.self])

  struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Save a card the processor has tokenized. The first active card becomes the default.",
      discussion:
        "Never pass a card number: a token that looks like one (13 to 19 digits passing the Luhn check) is refused.")
    @Argument(help: "The account's id.") var account: String
    @Option(help: "The processor's token for the card.") var token: String
    @Option(help: "visa, mastercard, amex, discover, jcb, diners, unionpay, cb or other.") var brand: String
    @Option(help: "The card's last four digits, for display.") var last4: String
    @Option(help: "Expiry month, MM/YYYY.") var expiry: String
    @Option(help: "Billing postal code.") var postalCode: String?
    @Option(help: "Billing country, ISO 3166 alpha-2.") var country: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let accountID = try parseID(account, field: "account")
        let config = try database.loadConfig()
        let card = NewCard(
          token: try cardToken(token, config), brand: try CardRules.brand(brand), last4: try CardRules.last4(last4),
          expiry: try CardExpiry(parsing: expiry), postalCode: try postalCode.map { try Validate.postalCode($0) },
          country: try country.map { try Validate.country($0) })
        let actor = try actor.resolve()
        let ledger = try database.billing()
        if config.processorKind == .stripe,
          try ledger.store.read({ try ledger.store.processorCustomer(account: accountID) }) == nil,
          try ledger.store.account(id: accountID) != nil
        {
          throw InputError(
            field: "account",
            rule:
              "account \(accountID) has no Stripe customer: a PaymentMethod is charged under its customer; set it first with `ledgerd account update \(accountID) --processor-customer cus_…`"
          )
        }
        let saved = try ledger.addCard(account: accountID, card, actor: actor)
        let charge = try ChargeNotice.after(cardChangeOf: accountID, database)
        try output.emit(CardResult(card: saved, charge: charge)) { "added " + cardLine(saved) + charge.sentence }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List an account's cards, oldest first.")
    @Argument(help: "The account's id.") var account: String
    @Flag(help: "Include removed cards.") var all = false
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let accountID = try parseID(account, field: "account")
        let store = try database.open(.readOnly)
        _ = try store.requireAccount(accountID, field: "account")
        let cards = try store.cards(account: accountID, includeRemoved: all)
        try output.emit(cards) {
          table(
            ["ID", "BRAND", "LAST4", "EXPIRY", "STATUS", "DEFAULT"],
            cards.map {
              [String($0.id), $0.brand.rawValue, $0.last4, $0.expiry, $0.status.rawValue, $0.isDefault ? "yes" : ""]
            })
        }
      }
    }
  }

  struct Default: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make a card its account's default.")
    @Argument(help: "The card's id.") var card: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let id = try parseID(card, field: "card")
        let actor = try actor.resolve()
        let card = try database.billing().setDefaultCard(id, actor: actor)
        let charge = try ChargeNotice.after(cardChangeOf: card.accountID, database)
        try output.emit(CardResult(card: card, charge: charge)) { "default is now " + cardLine(card) + charge.sentence }
      }
    }
  }

  struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Remove a card. Removing the default promotes the next active card.")
    @Argument(help: "The card's id.") var card: String
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    struct Result: Encodable {
      let removed: Card
      let newDefault: Card?
    }

    func run() throws {
      try runGuarded {
        let id = try parseID(card, field: "card")
        let actor = try actor.resolve()
        let (removed, promoted) = try database.billing().removeCard(id, actor: actor)
        try output.emit(Result(removed: removed, newDefault: promoted)) {
          "removed card \(removed.id)" + (promoted.map { "; default is now " + cardLine($0) } ?? "")
        }
      }
    }
  }

  struct Update: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Update a card's expiry or token; a card that needed an update is usable again and charged at once.",
      discussion:
        "Like adding a card or choosing the default, it asks for an immediate charge of the account's card invoices that are due: a running daemon makes it within seconds; with none, the next `ledgerd run-due` does. The output says which."
    )
    @Argument(help: "The card's id.") var card: String
    @Option(help: "New expiry, MM/YYYY.") var expiry: String?
    @Option(help: "New processor token.") var token: String?
    @OptionGroup var actor: ActorOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let id = try parseID(card, field: "card")
        let expiry = try expiry.map { try CardExpiry(parsing: $0) }
        let config = try database.loadConfig()
        let token = try token.map { try cardToken($0, config) }
        let actor = try actor.resolve()
        let card = try database.billing().updateCard(id, expiry: expiry, token: token, actor: actor)
        let charge = try ChargeNotice.after(cardChangeOf: card.accountID, database)
        try output.emit(CardResult(card: card, charge: charge)) { "updated " + cardLine(card) + charge.sentence }
      }
    }
  }
}

/// What a card change starts: the account's card invoices that are due are charged at once,
/// which means within seconds when a daemon serves the ledger, and at the next `run-due`
/// when none does.
struct ChargeNotice: Encodable {
  /// Open card invoices of the account asked to be charged now.
  let invoices: Int
  /// What they owe together ("38.00 EUR"; several currencies joined by " + ").
  let amount: String
  /// `daemon` (within seconds) or `next_run_due`.
  let by: String

  static func after(cardChangeOf account: Int64, _ database: DatabaseOptions) throws -> ChargeNotice {
    let store = try database.open(.readOnly)
    let today = store.clock.now().date.iso8601
    let due = try store.invoices(account: account, status: .open).filter {
      $0.method == .card && !$0.paused && $0.dueDate <= today
    }
    var sums: [String: Int64] = [:]
    var currencies: [String: Currency] = [:]
    for invoice in due {
      sums[invoice.due.currency.code, default: 0] += invoice.due.minorUnits
      currencies[invoice.due.currency.code] = invoice.due.currency
    }
    let amount = sums.keys.sorted().map { Money(minorUnits: sums[$0]!, currency: currencies[$0]!).description }.joined(
      separator: " + ")
    return ChargeNotice(
      invoices: due.count, amount: amount, by: LedgerStore.isServed(path: database.path) ? "daemon" : "next_run_due")
  }

  /// The sentence the text output ends with.
  var sentence: String {
    guard invoices > 0 else { return "; no card invoice is due, nothing is charged now" }
    let what = "; \(invoices) due card invoice(s) (\(amount)) "
    return what
      + (by == "daemon"
        ? "will be charged within seconds by the daemon serving this ledger"
        : "will be charged at the next `ledgerd run-due` (no daemon serves this ledger)")
  }
}

/// A card, with what its change starts (`charge`), in one JSON object.
struct CardResult: Encodable {
  let card: Card
  let charge: ChargeNotice

  enum CodingKeys: String, CodingKey { case charge }

  func encode(to encoder: Encoder) throws {
    try card.encode(to: encoder)
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(charge, forKey: .charge)
  }
}

/// A card's token as the configured processor has it: with Stripe, a PaymentMethod id
/// (`pm_…`); any token that claims to be one must be well formed.
func cardToken(_ raw: String, _ config: LedgerConfig) throws -> String {
  try config.cardToken(raw)
}
