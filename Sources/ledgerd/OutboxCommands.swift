import ArgumentParser
import Foundation
import LedgerCore
import LedgerEngine
import LedgerStore

struct OutboxCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "outbox", abstract: "Customer messages: deliver, list, show, retry.",
    subcommands: [Flush.self, List.self, Show.self, Retry.self])

  struct Flush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Deliver every message due now through the configured transport, once.",
      discussion: """
        What `ledgerd serve` does continuously, for a host without the daemon or for a test. \
        A message is marked delivered only once the transport accepted it; a failure waits \
        its back-off, and a permanent refusal or the last attempt marks it failed. Refused \
        while a daemon runs on the database: the daemon delivers itself.
        """)
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    struct Summary: Encodable {
      let delivered: Int
      let deferred: Int
      let postponed: Int
      let failed: Int
      let pending: Int
    }

    func run() async throws {
      try await runGuardedAsync {
        let config = try database.loadConfig()
        let lock: InstanceLock
        do {
          lock = try InstanceLock(databasePath: database.path)
        } catch is InstanceLock.Held {
          throw StateError(
            subject: "the outbox",
            rule: "is delivered by the ledgerd serve running on this database; flush is for when none runs")
        }
        let store = try database.open(.readWrite)
        let mailer = Mailer(
          store: store, config: config.mail, defaultSpool: MailConfig.defaultSpool(databasePath: database.path),
          logger: makeLogger("ledgerd"))
        let report = try await mailer.deliverDue()
        let pending = try store.outbox(.pending).count
        withExtendedLifetime(lock) {}
        let summary = Summary(
          delivered: report.delivered, deferred: report.deferred, postponed: report.postponed, failed: report.failed,
          pending: pending)
        try output.emit(summary) {
          "outbox: \(summary.delivered) delivered, \(summary.deferred) to retry later"
            + (summary.postponed > 0 ? " (and \(summary.postponed) held back: the transport failed)" : "")
            + ", \(summary.failed) failed; \(summary.pending) waiting"
        }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List messages, newest first.")
    @Flag(help: "Only messages that failed for good (a permanent refusal or every attempt used).") var failed = false
    @Flag(help: "Only messages waiting for delivery.") var pending = false
    @Option(help: "At most this many.") var limit: Int = 1_000
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
      if failed && pending { throw ValidationError("--failed and --pending exclude each other") }
    }

    func run() throws {
      try runGuarded {
        let entries = try database.open(.readOnly).outbox(
          failed ? .failed : pending ? .pending : .all, limit: max(1, limit))
        try output.emit(entries) {
          table(
            ["ID", "KIND", "LOCALE", "RECIPIENT", "CREATED", "STATUS", "ATTEMPTS", "NEXT/DONE", "LAST ERROR"],
            entries.map { e in
              [
                String(e.id), e.kind, e.locale.rawValue, e.recipient, e.createdAt, e.status, String(e.attempts),
                e.deliveredAt ?? e.failedAt ?? e.nextAttemptAt, e.lastError ?? "",
              ]
            })
        }
      }
    }
  }

  struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a message exactly as it is sent (RFC 5322).")
    @Argument(help: "The message's id.") var message: String
    @OptionGroup var database: DatabaseOptions

    func run() throws {
      try runGuarded {
        let config = try database.loadConfig()
        let store = try database.open(.readOnly)
        let entry = try store.outboxEntry(id: try parseID(message, field: "message"))
        let mailer = Mailer(
          store: store, config: config.mail, defaultSpool: MailConfig.defaultSpool(databasePath: database.path),
          logger: makeLogger("ledgerd"))
        print(try mailer.envelope(for: entry).data.replacingOccurrences(of: "\r\n", with: "\n"), terminator: "")
      }
    }
  }

  struct Retry: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Put a failed message back in the queue, with its attempts reset.")
    @Argument(help: "The message's id.") var message: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let entry = try database.open(.readWrite).retryOutbox(id: try parseID(message, field: "message"))
        try output.emit(entry) { "message \(entry.id) (\(entry.kind) to \(entry.recipient)) queued again" }
      }
    }
  }
}
