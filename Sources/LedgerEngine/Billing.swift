import LedgerCore
import LedgerStore

extension SchedulerRepository {
  /// Asks the dunning policy again for each invoice and saves its answer; every change
  /// that can alter an invoice's schedule ends with this, in the same transaction.
  public func reschedule(_ invoiceIDs: [Int64], config: DunningConfig) throws {
    var cards: [Int64: CardAvailability] = [:]
    try reschedule(invoiceIDs, config: config, cards: &cards)
  }

  /// The same, starting from card availability already read in this transaction, with no
  /// card or attempt of those accounts changed since.
  public func reschedule(_ invoiceIDs: [Int64], config: DunningConfig, cards: inout [Int64: CardAvailability]) throws {
    try write {
      // Saving a schedule changes no card and no attempt: an account's cards are read once.
      for id in invoiceIDs {
        try saveSchedule(
          invoiceID: id,
          try collectionState(invoiceID: id, config: config, cards: &cards).flatMap {
            DunningPolicy.next($0, config: config)
          })
      }
    }
  }

  /// The same for a change made by an operator or a customer, which can happen while the
  /// scheduler has a charge of the invoice at the processor: such an invoice keeps its
  /// in-flight mark (a new schedule now could start a second charge beside it); the
  /// scheduler asks the policy again once it has recorded the outcome.
  public func rescheduleUnlessInFlight(_ invoiceIDs: [Int64], config: DunningConfig) throws {
    try write {
      try reschedule(try invoiceIDs.filter { try !hasPendingAttempt(invoiceID: $0) }, config: config)
    }
  }
}

/// The operator's and customer's actions that change what the scheduler must do next: each
/// runs the store's change and the rescheduling of the invoices concerned as one transaction.
public struct Billing {
  public let store: LedgerStore
  public let config: DunningConfig

  public init(store: LedgerStore, config: DunningConfig) {
    self.store = store
    self.config = config
  }

  public func issueInvoice(_ draft: InvoiceDraft, actor: Actor) throws -> Invoice {
    try store.write {
      let invoice = try store.issueInvoice(draft, actor: actor)
      try store.rescheduleUnlessInFlight([invoice.id], config: config)
      return invoice
    }
  }

  /// A new card: the account's open card invoices are charged at once.
  public func addCard(account: Int64, _ card: NewCard, actor: Actor) throws -> Card {
    try store.write {
      let saved = try store.addCard(account: account, card, actor: actor)
      try store.rescheduleUnlessInFlight(try store.requestCharge(account: account), config: config)
      return saved
    }
  }

  /// An updated card (new expiry or token) is usable again and charged at once.
  public func updateCard(_ id: Int64, expiry: CardExpiry?, token: String?, actor: Actor) throws -> Card {
    try store.write {
      let card = try store.updateCard(id, expiry: expiry, token: token, actor: actor)
      try store.rescheduleUnlessInFlight(try store.requestCharge(account: card.accountID), config: config)
      return card
    }
  }

  public func setDefaultCard(_ id: Int64, actor: Actor) throws -> Card {
    try store.write {
      let card = try store.setDefaultCard(id, actor: actor)
      try store.rescheduleUnlessInFlight(try store.requestCharge(account: card.accountID), config: config)
      return card
    }
  }

  public func removeCard(_ id: Int64, actor: Actor) throws -> (removed: Card, newDefault: Card?) {
    try store.write {
      let result = try store.removeCard(id, actor: actor)
      try store.rescheduleUnlessInFlight(try store.openInvoiceIDs(account: result.removed.accountID), config: config)
      return result
    }
  }

  public func voidInvoice(_ reference: String, reason: String, actor: Actor) throws -> Invoice {
    try store.write {
      let invoice = try store.voidInvoice(reference, reason: reason, actor: actor)
      try store.rescheduleUnlessInFlight([invoice.id], config: config)
      return invoice
    }
  }

  public func pause(_ reference: String, proof: String, actor: Actor) throws -> Invoice {
    try store.write {
      let invoice = try store.pauseInvoice(reference, proof: proof, actor: actor)
      try store.rescheduleUnlessInFlight([invoice.id], config: config)
      return invoice
    }
  }

  public func resume(_ reference: String, actor: Actor) throws -> Invoice {
    try store.write {
      let invoice = try store.resumeInvoice(reference, actor: actor)
      try store.rescheduleUnlessInFlight([invoice.id], config: config)
      return try store.requireInvoice(invoice.number)
    }
  }

  /// "I paid by transfer": recorded, and held for clearing only as the rules allow
  /// (`LedgerStore.declareTransfer`); the answer says which.
  public func declareTransfer(
    _ reference: String, amount: Money, sentOn: CivilDate, bankReference: String, actor: Actor
  ) throws
    -> (Invoice, TransferHold)
  {
    try store.write {
      let (invoice, hold) = try store.declareTransfer(
        reference, amount: amount, sentOn: sentOn, bankReference: bankReference, actor: actor, config: config)
      try store.rescheduleUnlessInFlight([invoice.id], config: config)
      return (try store.requireInvoice(invoice.number), hold)
    }
  }

  /// Staff accept a declared transfer for less than what is due: its window opens.
  public func acceptTransfer(_ reference: String, actor: Actor) throws -> (Invoice, windowEnds: Instant) {
    try store.write {
      let (invoice, end) = try store.acceptTransfer(reference, actor: actor, config: config)
      try store.rescheduleUnlessInFlight([invoice.id], config: config)
      return (try store.requireInvoice(invoice.number), end)
    }
  }

  /// Staff give a declared transfer more business days to clear.
  public func extendTransferWindow(_ reference: String, businessDays: Int, reason: String, actor: Actor) throws
    -> (Invoice, windowEnds: Instant)
  {
    try store.write {
      let (invoice, end) = try store.extendTransferWindow(
        reference, businessDays: businessDays, reason: reason, actor: actor, config: config)
      try store.rescheduleUnlessInFlight([invoice.id], config: config)
      return (try store.requireInvoice(invoice.number), end)
    }
  }

  /// Money received for an invoice outside the card flow (a transfer, a cheque): the same
  /// path reconciliation takes.
  public func recordPayment(
    _ reference: String, amount: Money, method: String, bankReference: String?, receivedOn: CivilDate, actor: Actor
  ) throws -> PaymentRecord {
    guard ["transfer"].contains(method) else {
      throw InputError(field: "--method", rule: "'\(method)' must be transfer (card payments come from charges)")
    }
    guard amount.minorUnits > 0 else { throw InputError(field: "--amount", rule: "must be greater than zero") }
    return try store.write {
      let invoice = try store.requireInvoice(reference)
      guard invoice.status == .open || invoice.status == .uncollectible else {
        throw StateError(
          subject: "invoice \(invoice.number)", rule: "is \(invoice.status.rawValue); nothing is owed on it")
      }
      guard invoice.total.currency == amount.currency else {
        throw InputError(
          field: "--amount", rule: "is in \(amount.currency.code); the invoice is in \(invoice.total.currency.code)")
      }
      let record = try store.applyPayment(
        account: invoice.accountID, amount: amount, method: method, reference: bankReference, receivedOn: receivedOn,
        chargeAttemptID: nil, bankLineID: nil, invoices: [invoice.id], actor: actor, config: config)
      try store.rescheduleUnlessInFlight([invoice.id], config: config)
      return record
    }
  }
}

extension Billing {
  /// Opens an account with its subscription (billed from `anchor`, default today).
  public func addAccount(
    email: String, name: String, locale: CustomerLocale, planCode: String, billing: BillingMode,
    method: CollectionMethod, anchor: CivilDate?, actor: Actor
  ) throws -> Account {
    try store.addAccount(
      email: email, name: name, locale: locale, planCode: planCode, actor: actor, billing: billing, method: method,
      anchor: anchor, config: config)
  }

  /// A plan change; its prorated invoice, if any, is scheduled for collection at once.
  public func changePlan(account: Int64, to code: String, immediately: Bool, reason: String?, actor: Actor) throws
    -> SubscriptionChange
  {
    try store.write {
      let change = try store.changePlan(
        account: account, to: code, immediately: immediately, reason: reason, actor: actor, config: config)
      if let invoice = change.invoice { try store.rescheduleUnlessInFlight([invoice.id], config: config) }
      return change
    }
  }

  /// A new add-on; its prorated invoice, if any, is scheduled for collection at once.
  public func addAddon(account: Int64, code: String, name: String, price: Money, reason: String?, actor: Actor) throws
    -> SubscriptionChange
  {
    try store.write {
      let change = try store.addAddon(
        account: account, code: code, name: name, price: price, reason: reason, actor: actor, config: config)
      if let invoice = change.invoice { try store.rescheduleUnlessInFlight([invoice.id], config: config) }
      return change
    }
  }

  public func removeAddon(account: Int64, code: String, immediately: Bool, reason: String?, actor: Actor) throws
    -> SubscriptionChange
  {
    try store.removeAddon(
      account: account, code: code, immediately: immediately, reason: reason, actor: actor, config: config)
  }

  public func setBilling(account: Int64, billing: BillingMode?, method: CollectionMethod?, actor: Actor) throws {
    try store.setBilling(account: account, billing: billing, method: method, actor: actor, config: config)
  }
}
