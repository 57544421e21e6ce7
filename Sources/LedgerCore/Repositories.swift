/// The store as the engine sees it: repositories in domain terms ("the invoices due by T",
/// "record this attempt's outcome"), never SQL, so that a second backend (PostgreSQL, for
/// operators who outgrow one host) implements them without touching policy or scheduler.
/// The SQLite store (`LedgerStore`) implements them; the engine's tests run a month of
/// dunning on an in-memory one.

/// The unit of work every repository call runs in: a read snapshot, a write transaction,
/// and a step inside a write that can fail alone.
public protocol LedgerTransactions: AnyObject {
  /// The one clock the ledger's times come from.
  var clock: LedgerClock { get }
  /// Runs `body` in one read snapshot (inside a write: in the write).
  func read<T>(_ body: () throws -> T) throws -> T
  /// Runs `body` as one all-or-nothing write; called inside another write, it joins it.
  func write<T>(_ body: () throws -> T) throws -> T
  /// Runs `body` inside the write in hand so that, if it throws, what it wrote is undone
  /// and the write goes on without it.
  func isolated<T>(_ body: () throws -> T) throws -> T
  /// Whether an error belongs to the step that raised it (bad data for one invoice or
  /// account) rather than to the ledger as a whole.
  func isOwnFailure(_ error: Error) -> Bool
  /// Whether an error means the process must stop writing the ledger at all.
  func isFatal(_ error: Error) -> Bool
}

/// Open invoices' collection: what is due, their state and schedule, and the changes the
/// dunning steps make to invoices and accounts.
public protocol CollectionRepository {
  /// Invoices whose next action is due by `until`, earliest first.
  func dueActions(until: Instant, limit: Int) throws -> [DueAction]
  /// The earliest scheduled action (the daemon sleeps until it).
  func nextActionTime() throws -> Instant?
  /// An open invoice's collection state, without card availability.
  func collection(invoiceID: Int64) throws -> CollectionRecord?
  /// Saves an open invoice's collection state after a transition.
  func saveCollection(invoiceID: Int64, _ state: CollectionState) throws
  /// An open invoice's state for the policy, card availability included; `cards` keeps
  /// each account's availability for the next invoice of the same account.
  func collectionState(invoiceID: Int64, config: DunningConfig, cards: inout [Int64: CardAvailability]) throws
    -> CollectionState?
  /// Saves the policy's decision for an invoice (nil: nothing scheduled).
  func saveSchedule(invoiceID: Int64, _ next: ScheduledAction?) throws
  /// Marks open, unpaused invoices as due for a charge now.
  func scheduleChargeNow(_ invoiceIDs: [Int64]) throws
  /// The account's open card invoices, except those with a charge in flight.
  func scheduledCardInvoiceIDs(account: Int64) throws -> [Int64]
  /// Whether a charge of the invoice is at the processor.
  func hasPendingAttempt(invoiceID: Int64) throws -> Bool
  /// A step that failed for its invoice alone is tried again at `retryAt`, with an event.
  func postponeFailedStep(_ due: DueAction, retryAt: Instant, error: String, actor: Actor) throws
  /// An active account becomes past due, with its event.
  func markPastDue(account: Int64, actor: Actor) throws
  /// Writes an open invoice off and moves its account to the plan `toPlan`, add-ons removed.
  func writeOffAndDowngrade(invoiceID: Int64, toPlan: String) throws -> (
    fromPlan: String, toPlan: String, addonsRemoved: [String]
  )
  /// Closes the invoice's open transfer declaration; what it declared.
  func closeTransferDeclaration(invoiceID: Int64, outcome: String) throws -> (
    id: Int64, sentOn: CivilDate, reference: String
  )?
  /// The plan with this code, if the ledger has it.
  func plan(code: String) throws -> Plan?
}

/// Charge attempts: the cards a round may use, the pending attempt committed before each
/// processor call, and the outcome recorded after it.
public protocol AttemptRepository {
  /// The ledger's identity, carried in every charge's metadata at the processor.
  func ledgerID() throws -> String
  /// When the ledger's identity was made: no charge names it before then.
  func identityCreatedAt() throws -> Instant
  /// When the newest attempt was made.
  func newestAttemptTime() throws -> Instant?
  /// Whether an attempt with this idempotency key exists.
  func hasAttempt(key: String) throws -> Bool
  /// Takes in a charge the processor has that this ledger does not, as a pending attempt.
  func adoptAttempt(
    key: String, account: Int64, card: Int64, amount: Money, invoiceIDs: [Int64], source: String, actor: Actor
  ) throws -> AttemptAdoption
  /// Every attempt still pending, oldest first.
  func pendingAttempts() throws -> [PendingAttempt]
  /// What the processor's webhooks told of attempts still pending, by attempt id.
  func processorEventOutcomes() throws -> [Int64: ChargeOutcome]
  /// The account's cards that may be charged now in the seeds' order, and the availability
  /// they come from.
  func chargeOptions(account: Int64, config: DunningConfig) throws -> (
    cards: [ChargeCard], availability: CardAvailability
  )
  /// What is still owed on each of `ids` that is open and not paused.
  func openBalances(_ ids: [Int64]) throws -> [(id: Int64, dueMinor: Int64)]
  /// Writes a pending attempt (committed by the caller before the processor is called).
  func beginAttempt(
    account: Int64, card: ChargeCard, amount: Money, invoices: [(id: Int64, amount: Int64)], key: String, actor: Actor
  ) throws -> Int64
  /// Records a successful charge: the payment allocated across its invoices, the journal,
  /// the events and the confirmation (which names a card of the round declined before it).
  func recordChargeSucceeded(
    _ attempt: PendingAttempt, processorRef: String, actor: Actor, config: DunningConfig,
    earlierDecline: EarlierDecline?
  ) throws -> PaymentRecord
  /// Records a declined or failed attempt; a hard decline marks the card as needing an update.
  /// The account's customer at the processor (Stripe: `cus_…`), sent with its charges.
  func processorCustomer(account: Int64) throws -> String?
  /// Keeps the processor's id for a charge it has not finished; the attempt stays pending.
  func noteProcessorReference(_ attempt: PendingAttempt, reference: String) throws
  func recordChargeFailed(
    _ attempt: PendingAttempt, status: AttemptStatus, rawCode: String, reason: DeclineReason, actor: Actor)
    throws
}

/// The account's history and the customer's messages, written in the transaction of the
/// change that causes them.
public protocol NoticeRepository {
  /// Records a change of state with who made it and why.
  func recordEvent(account: Int64?, invoice: Int64?, actor: Actor, kind: String, reason: String, data: [String: String])
    throws
  /// Queues a message for the account, once per key.
  func queueNotice(key: String, account: Int64, invoice: Int64?, kind: String, data: [String: String]) throws
  /// Queues the "card expiring" notices now due; how many.
  func queueCardExpiryNotices(daysAhead: Int) throws -> Int
}

/// Subscriptions: which accounts' next periods are due to be invoiced, and the renewal that
/// invoices one (exactly once per account and period).
public protocol RenewalRepository {
  /// When the next period's invoice of any account is due to be issued.
  func nextRenewalTime() throws -> Instant?
  /// Accounts whose next period's invoice is due by `until`, soonest first.
  func dueRenewals(until: Instant, limit: Int) throws -> [Int64]
  /// Issues the account's next period's invoice (none on a free plan) and moves the
  /// subscription on, in the caller's transaction.
  func renew(account: Int64, config: DunningConfig, actor: Actor) throws -> RenewalOutcome
  /// A renewal that failed for its account alone is tried again at `retryAt`, with an event.
  func postponeRenewal(account: Int64, retryAt: Instant, error: String, actor: Actor) throws
}

/// Everything the scheduler needs of the store.
public protocol SchedulerRepository: LedgerTransactions, CollectionRepository, AttemptRepository, NoticeRepository,
  RenewalRepository
{}

/// A card of a charge round that was declined before the card that paid: the customer is
/// told in the payment's confirmation (their default card needs attention).
public struct EarlierDecline: Sendable, Equatable {
  /// The card as messages name it ("visa •••• 4242").
  public let cardLabel: String
  public let reason: DeclineReason

  public init(cardLabel: String, reason: DeclineReason) {
    self.cardLabel = cardLabel
    self.reason = reason
  }
}

/// What `adoptAttempt` did with a charge.
public enum AttemptAdoption: Equatable, Sendable {
  /// Now a pending attempt of this ledger, to be resolved with the processor.
  case adopted
  /// This ledger already has an attempt with that key.
  case known
  /// This ledger has not the account, card or invoices it names (a backup older than
  /// them): it cannot be taken in; staff settle it from the processor's report.
  case foreign(String)
}

/// An invoice whose scheduled action has come due.
public struct DueAction: Sendable, Equatable {
  public let invoiceID: Int64
  public let number: String
  public let accountID: Int64
  public let currency: Currency
  public let due: Money
  public let action: CollectionAction
  public let at: Instant

  public init(
    invoiceID: Int64, number: String, accountID: Int64, currency: Currency, due: Money, action: CollectionAction,
    at: Instant
  ) {
    self.invoiceID = invoiceID
    self.number = number
    self.accountID = accountID
    self.currency = currency
    self.due = due
    self.action = action
    self.at = at
  }
}

/// A card that may be charged, with what charging it needs.
public struct ChargeCard: Sendable, Equatable {
  public let id: Int64
  public let token: String
  public let brand: CardBrand
  public let last4: String
  public let isDefault: Bool

  public init(id: Int64, token: String, brand: CardBrand, last4: String, isDefault: Bool) {
    self.id = id
    self.token = token
    self.brand = brand
    self.last4 = last4
    self.isDefault = isDefault
  }
}

/// A charge whose outcome is not yet in the ledger.
public struct PendingAttempt: Sendable, Equatable {
  public let id: Int64
  public let key: String
  public let accountID: Int64
  public let cardID: Int64
  public let token: String
  /// The card as events name it ("visa •••• 4242"), read with the attempt.
  public let cardLabel: String
  public let amount: Money
  public let invoiceIDs: [Int64]
  /// The account's customer at the processor, sent with the charge.
  public let customer: String?
  /// When the attempt began (its charge was sent just after).
  public let sentAt: Instant
  /// The processor's id for the charge, when an unfinished answer gave one.
  public let processorRef: String?

  public init(
    id: Int64, key: String, accountID: Int64, cardID: Int64, token: String, cardLabel: String, amount: Money,
    invoiceIDs: [Int64], customer: String? = nil, sentAt: Instant, processorRef: String? = nil
  ) {
    self.id = id
    self.key = key
    self.accountID = accountID
    self.cardID = cardID
    self.token = token
    self.cardLabel = cardLabel
    self.amount = amount
    self.invoiceIDs = invoiceIDs
    self.customer = customer
    self.sentAt = sentAt
    self.processorRef = processorRef
  }

  /// How events name a card: its brand and last four digits.
  public static func cardLabel(brand: String, last4: String) -> String { "\(brand) •••• \(last4)" }
}

/// What a recorded payment did.
public struct PaymentRecord: Codable, Sendable, Equatable {
  public let paymentID: Int64
  public let amount: Money
  /// Invoice numbers fully paid by it.
  public let paidInvoices: [String]
  /// The same invoices' ids.
  public let paidInvoiceIDs: [Int64]
  /// What went to invoices, and what became account credit.
  public let allocated: Money
  public let credit: Money

  /// `paidInvoiceIds`, not `paidInvoiceIDs`: `--json` converts keys to snake case, which
  /// splits "IDs" into `i_ds`; this way the key is `paid_invoice_ids`.
  enum CodingKeys: String, CodingKey {
    case paymentID = "paymentId"
    case paidInvoiceIDs = "paidInvoiceIds"
    case amount, paidInvoices, allocated, credit
  }

  public init(
    paymentID: Int64, amount: Money, paidInvoices: [String], paidInvoiceIDs: [Int64], allocated: Money, credit: Money
  ) {
    self.paymentID = paymentID
    self.amount = amount
    self.paidInvoices = paidInvoices
    self.paidInvoiceIDs = paidInvoiceIDs
    self.allocated = allocated
    self.credit = credit
  }
}
