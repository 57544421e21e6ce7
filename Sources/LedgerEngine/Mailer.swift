import Foundation
import LedgerCore
import LedgerMail
import LedgerStore
import Logging

/// Delivers the outbox: renders each due message, hands it to the transport, and marks it
/// delivered only once the transport accepted it. A failure waits its back-off; a
/// permanent refusal, or the last allowed attempt, marks the message failed with the
/// reason, where `ledgerd outbox list --failed` shows it.
public final class Mailer {
  public let store: any OutboxRepository
  public let transport: MailTransport
  public let sender: Sender
  public let policy: RetryPolicy
  public let batchSize: Int
  let logger: Logger

  /// What one pass did.
  public struct Report: Codable, Sendable, Equatable {
    public var delivered = 0
    /// Failed this time, to be tried again later.
    public var deferred = 0
    /// Failed for good this time.
    public var failed = 0
    /// Not tried: the transport failed on an earlier message, so they wait with it.
    public var postponed = 0
    public init() {}
  }

  /// A mailer on `store`'s outbox; `batchSize` rows are read at a time.
  public init(
    store: any OutboxRepository, transport: MailTransport, sender: Sender, policy: RetryPolicy, batchSize: Int,
    logger: Logger
  ) {
    self.store = store
    self.transport = transport
    self.sender = sender
    self.policy = policy
    self.batchSize = batchSize
    self.logger = logger
  }

  /// The mailer a config asks for; `defaultSpool` is the spool directory when none is set.
  public convenience init(store: any OutboxRepository, config: MailConfig, defaultSpool: String, logger: Logger) {
    self.init(
      store: store, transport: config.makeTransport(defaultSpool: defaultSpool),
      sender: Sender(address: config.from, name: config.fromName, messageIDDomain: config.messageIDDomain),
      policy: RetryPolicy(
        maxAttempts: config.maxAttempts, baseSeconds: config.backoffSeconds, maxSeconds: config.backoffMaxSeconds),
      batchSize: config.batchSize, logger: logger)
  }

  /// Delivers every message due now, one at a time, until none is left or `shouldStop`
  /// says so (checked between messages, so a message in hand is finished unless the task is
  /// cancelled, which abandons it unrecorded). Throws a store error, which ends the pass,
  /// including one that kept a message the transport accepted from being marked delivered:
  /// that row is left as it was, to be sent again.
  public func deliverDue(shouldStop: () -> Bool = { false }) async throws -> Report {
    var report = Report()
    var tried: Set<Int64> = []
    pass: while !shouldStop() {
      let due = try store.dueOutbox(until: store.clock.now(), limit: batchSize).filter { !tried.contains($0.id) }
      if due.isEmpty { break }
      for entry in due {
        if shouldStop() { break pass }
        tried.insert(entry.id)
        switch try await deliver(entry) {
        case .delivered: report.delivered += 1
        case .deferred: report.deferred += 1
        case .failed: report.failed += 1
        case .interrupted: break pass
        case .transportDown(let retryAt):
          // No use trying the others now: they wait as long as this one.
          report.deferred += 1
          report.postponed = try store.postponeDueOutbox(now: store.clock.now(), until: retryAt)
          if report.postponed > 0 {
            logger.warning("outbox: \(report.postponed) other message(s) wait until \(retryAt) too")
          }
          break pass
        }
      }
    }
    return report
  }

  enum Outcome {
    case delivered, deferred, failed
    /// Shutdown cut the hand-off short: nothing recorded, the pass ends.
    case interrupted
    /// The transport itself failed; the next try is at this time.
    case transportDown(Instant)
  }

  /// The stable id of an outbox row's message: the SHA-256 of its key.
  public static func digest(key: String) -> String { SHA256.hex(Array(key.utf8)) }

  /// The message an outbox row becomes, exactly as it is sent.
  public func envelope(for entry: OutboxEntry) throws -> Envelope {
    let item = OutboxItem(
      id: entry.id, key: entry.key, kind: entry.kind, locale: entry.locale, recipient: entry.recipient,
      data: entry.data,
      createdAt: try Instant(iso8601: entry.createdAt), attempts: entry.attempts)
    let digest = Self.digest(key: entry.key)
    let message = try Composer.message(for: item, sender: sender, keyDigest: digest)
    return Envelope(from: sender.address, recipients: [entry.recipient], data: try message.rendered(), digest: digest)
  }

  func deliver(_ entry: OutboxEntry) async throws -> Outcome {
    let envelope: Envelope
    do {
      envelope = try self.envelope(for: entry)
    } catch {
      // A message that cannot be rendered will not render better later.
      let reason = "cannot render: \(error)"
      try store.markOutboxAttemptFailed(id: entry.id, error: reason, retryAt: nil)
      logger.error("outbox \(entry.id) (\(entry.kind) to \(entry.recipient)) failed: \(reason)")
      return .failed
    }
    let reply: String
    do {
      reply = try await transport.send(envelope)
    } catch {
      if error is CancellationError || Task.isCancelled {
        // Shutdown cut the hand-off short: not a failure of the message, no attempt is
        // counted; it is sent again, with the same Message-ID, on the next start.
        logger.notice(
          "outbox \(entry.id) (\(entry.kind) to \(entry.recipient)) not handed off: shutting down; it will be sent again"
        )
        return .interrupted
      }
      let failure = error as? DeliveryFailure ?? DeliveryFailure(permanent: false, reply: String(describing: error))
      let retryAt = policy.nextAttempt(
        afterFailures: entry.attempts + 1, permanent: failure.permanent, now: store.clock.now())
      try store.markOutboxAttemptFailed(id: entry.id, error: failure.reply, retryAt: retryAt)
      if let retryAt {
        logger.warning(
          "outbox \(entry.id) (\(entry.kind) to \(entry.recipient)) not delivered, next try \(retryAt): \(failure.reply)"
        )
        return failure.transportWide ? .transportDown(retryAt) : .deferred
      }
      logger.error(
        "outbox \(entry.id) (\(entry.kind) to \(entry.recipient)) failed after \(entry.attempts + 1) attempt(s): \(failure.reply)"
      )
      return .failed
    }
    do {
      try store.markOutboxDelivered(id: entry.id)
    } catch {
      // The transport took the message but the ledger could not record it (the write lock
      // busy, the disk full): the row stays as it was, with no attempt or failure counted,
      // and is sent again later with the same Message-ID. This is a store error, not a
      // delivery failure; it ends the pass.
      logger.error(
        "outbox \(entry.id) (\(entry.kind)) delivered to \(entry.recipient) (\(reply)) but not recorded: \(String(describing: error)); it will be sent again with the same Message-ID"
      )
      throw error
    }
    logger.info("outbox \(entry.id) (\(entry.kind)) delivered to \(entry.recipient): \(reply)")
    return .delivered
  }
}

extension MailConfig {
  /// The configured transport.
  public func makeTransport(defaultSpool: String) -> MailTransport {
    switch transport {
    case .spool: return SpoolTransport(directory: spoolDirectory ?? defaultSpool)
    case .sendmail: return SendmailTransport(command: sendmailCommand, timeoutSeconds: timeoutSeconds)
    case .smtp:
      return SMTPTransport(
        host: smtpHost, port: smtpPort, startTLS: smtpStartTLS, caFile: smtpCAFile, username: smtpUsername,
        password: smtpPassword,
        helo: smtpHelo ?? ProcessInfo.processInfo.hostName, timeoutSeconds: timeoutSeconds)
    }
  }
}
