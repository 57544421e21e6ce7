import Foundation
import LedgerCore
import LedgerMail
import LedgerSQLite
import LedgerStore
import Logging
import Synchronization
import Testing

@testable import LedgerEngine

/// A transport that answers from a script and remembers what it was given.
final class ScriptedTransport: MailTransport {
  private let state: Mutex<(answers: [DeliveryFailure?], sent: [Envelope])>

  /// `answers[i]` is the answer to the i-th send (nil: accepted); past the end, accepted.
  init(_ answers: [DeliveryFailure?] = []) { state = Mutex((answers, [])) }

  var sent: [Envelope] { state.withLock { $0.sent } }

  func send(_ envelope: Envelope) async throws -> String {
    let answer: DeliveryFailure? = state.withLock { s in
      s.sent.append(envelope)
      return s.answers.isEmpty ? nil : s.answers.removeFirst()
    }
    if let answer { throw answer }
    return "250 OK"
  }
}

@Suite struct MailerTests {
  func mailer(_ b: Bench, _ transport: ScriptedTransport, attempts: Int = 3) -> Mailer {
    Mailer(
      store: b.store, transport: transport, sender: Sender(address: "billing@example.com", name: "Billing"),
      policy: RetryPolicy(maxAttempts: attempts, baseSeconds: 60, maxSeconds: 3600), batchSize: 2,
      logger: Logger(label: "test"))
  }

  /// One failed charge: one `charge_failed` row in the outbox.
  func bookWithOneMessage() async throws -> Bench {
    let b = try Bench()
    _ = try b.accountWithInvoice(token: "tok_decline_insufficient_funds")
    _ = try await b.scheduler.runDue()
    #expect(try b.count("SELECT count(*) FROM outbox") == 1)
    return b
  }

  @Test func aMessageIsMarkedDeliveredOnlyOnceTheTransportAccepted() async throws {
    let b = try await bookWithOneMessage()
    let transport = ScriptedTransport()
    let report = try await mailer(b, transport).deliverDue()
    #expect(report.delivered == 1)
    #expect(try b.count("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL AND attempts = 1") == 1)
    let sent = try #require(transport.sent.first)
    #expect(sent.recipients == ["a@example.fr"] && sent.from == "billing@example.com")
    let key = try #require(try b.store.db.scalarText("SELECT key FROM outbox"))
    #expect(sent.digest == SHA256.hex(Array(key.utf8)))
    #expect(sent.data.contains("Message-ID: <\(sent.digest)@example.com>\r\n"))
    // Nothing left: a second pass sends nothing.
    #expect(try await mailer(b, transport).deliverDue().delivered == 0)
    #expect(transport.sent.count == 1)
  }

  @Test func temporaryFailuresBackOffThenTheLastAttemptMarksTheMessageFailed() async throws {
    let b = try await bookWithOneMessage()
    let busy = DeliveryFailure(permanent: false, reply: "451 try later")
    let transport = ScriptedTransport([busy, busy, busy])
    let m = mailer(b, transport)
    #expect(try await m.deliverDue().deferred == 1)
    #expect(try b.store.db.scalarText("SELECT next_attempt_at FROM outbox") == "2026-11-02T09:01:00Z")
    // Not due yet: nothing is tried.
    #expect(try await m.deliverDue() == Mailer.Report())
    b.clock.advance(to: try Instant(iso8601: "2026-11-02T09:01:00Z"))
    #expect(try await m.deliverDue().deferred == 1)
    #expect(try b.store.db.scalarText("SELECT next_attempt_at FROM outbox") == "2026-11-02T09:03:00Z")
    b.clock.advance(to: try Instant(iso8601: "2026-11-02T09:03:00Z"))
    #expect(try await m.deliverDue().failed == 1)
    #expect(
      try b.count(
        "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL AND attempts = 3 AND last_error = '451 try later'")
        == 1)
    #expect(try b.store.outbox(.failed).count == 1)
    // Staff queue it again; it goes.
    _ = try b.store.retryOutbox(id: 1)
    #expect(try await m.deliverDue().delivered == 1)
  }

  @Test func whenTheTransportIsDownTheOtherMessagesWaitWithoutAnAttempt() async throws {
    let b = try await bookWithOneMessage()
    _ = try b.accountWithInvoice(token: "tok_decline_expired_card.2")
    _ = try await b.scheduler.runDue()
    #expect(try b.count("SELECT count(*) FROM outbox") == 2)
    let down = DeliveryFailure(permanent: true, reply: "cannot connect", transportWide: true)
    #expect(!down.permanent)
    let transport = ScriptedTransport([down])
    let report = try await mailer(b, transport).deliverDue()
    #expect(report.deferred == 1 && report.postponed == 1 && transport.sent.count == 1)
    #expect(try b.count("SELECT sum(attempts) FROM outbox") == 1)
    #expect(
      try b.store.db.scalarText("SELECT group_concat(DISTINCT next_attempt_at) FROM outbox") == "2026-11-02T09:01:00Z")
  }

  /// The transport accepts, then the ledger cannot record it (another process holds the
  /// write lock for a moment): a store error, not a delivery failure. The row stays as it was (no
  /// attempt, no error, not failed, still due), the pass stops with the error, and the next
  /// pass sends the same message again.
  @Test func aDeliveredMessageTheLedgerCannotRecordIsNeitherFailedNorCounted() async throws {
    let b = try await bookWithOneMessage()
    _ = try b.accountWithInvoice(token: "tok_decline_expired_card.2")
    _ = try await b.scheduler.runDue()
    #expect(try b.count("SELECT count(*) FROM outbox") == 2)
    var discipline = WriteDiscipline()
    discipline.lockTimeout = .milliseconds(500)
    let store = try LedgerStore.open(
      path: b.directory + "/ledger.db", access: .readWrite, clock: b.clock, discipline: discipline)
    let lockPath = try #require(WriteLock.lockPath(forDatabase: b.directory + "/ledger.db"))
    let transport = LockTakingTransport(lockPath: lockPath)
    defer { transport.release() }
    let m = Mailer(
      store: store, transport: transport, sender: Sender(address: "billing@example.com", name: "Billing"),
      policy: RetryPolicy(maxAttempts: 1, baseSeconds: 60, maxSeconds: 3600), batchSize: 2,
      logger: Logger(label: "test"))
    // Marking it delivered gives up after 0.5 s; the lock is free again at 0.8 s, so a
    // failure recorded after that would get through.
    await #expect(throws: WriteLockBusy.self) { try await m.deliverDue() }
    // Whatever the pass would still write, it writes before the lock comes free.
    let deadline = ContinuousClock.now + .seconds(10)
    while transport.holdsLock, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
    #expect(!transport.holdsLock)
    // One hand-off only: the pass stopped at the store error.
    #expect(transport.sent.count == 1)
    #expect(
      try b.count(
        "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND attempts = 0 AND last_error IS NULL"
      )
        == 2)
    #expect(try b.store.outbox(.failed).isEmpty)
    // The store is back: the same message goes again, and this time is recorded.
    let again = ScriptedTransport()
    #expect(try await mailer(b, again, attempts: 1).deliverDue().delivered == 2)
    #expect(again.sent.first?.data == transport.sent.first?.data)
    #expect(
      try b.count("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL AND attempts = 1 AND failed_at IS NULL")
        == 2)
  }

  @Test func aPermanentRefusalFailsAtOnceAndKeepsTheReply() async throws {
    let b = try await bookWithOneMessage()
    let transport = ScriptedTransport([
      DeliveryFailure(permanent: true, reply: "RCPT TO <a@example.fr>: 550 no such user")
    ])
    #expect(try await mailer(b, transport, attempts: 10).deliverDue().failed == 1)
    let entry = try #require(try b.store.outbox(.failed).first)
    #expect(entry.attempts == 1 && entry.lastError == "RCPT TO <a@example.fr>: 550 no such user")
  }

  @Test func aRowThatCannotBeRenderedFailsWithTheReason() async throws {
    let b = try await bookWithOneMessage()
    try b.store.db.run("UPDATE outbox SET kind = 'unknown_kind'")
    let transport = ScriptedTransport()
    #expect(try await mailer(b, transport).deliverDue().failed == 1)
    #expect(transport.sent.isEmpty)
    #expect(
      try b.store.db.scalarText("SELECT last_error FROM outbox") == "cannot render: no template for kind 'unknown_kind'"
    )
  }

  @Test func theSpoolWritesOneFilePerRowAndAResendReplacesIt() async throws {
    let b = try await bookWithOneMessage()
    let directory = b.directory + "/spool"
    let spool = SpoolTransport(directory: directory)
    let envelope = Envelope(
      from: "b@example.com", recipients: ["a@example.fr"], data: "Subject: x\r\n\r\nbody\r\n", digest: "abc")
    _ = try await spool.send(envelope)
    _ = try await spool.send(envelope)
    #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["abc.eml"])
    #expect(try String(contentsOfFile: directory + "/abc.eml", encoding: .utf8) == envelope.data)
  }

  @Test func aSendmailCommandsExitStatusDecides() async throws {
    let envelope = Envelope(
      from: "b@example.com", recipients: ["a@example.fr"], data: "Subject: x\r\n\r\nbody\r\n", digest: "abc")
    _ = try await SendmailTransport(command: ["/bin/cat"], timeoutSeconds: 5).send(envelope)
    await #expect(throws: DeliveryFailure(permanent: false, reply: "/bin/false exited 1")) {
      try await SendmailTransport(command: ["/bin/false"], timeoutSeconds: 5).send(envelope)
    }
    await #expect(throws: DeliveryFailure(permanent: true, reply: "/bin/sh exited 67: no such user")) {
      try await SendmailTransport(
        command: ["/bin/sh", "-c", "cat >/dev/null; echo no such user >&2; exit 67"], timeoutSeconds: 5
      ).send(envelope)
    }
  }

  @Test func theMailConfigHasDefaultsAndNamesBadKeys() throws {
    let defaults = try LedgerConfig.parse(Data("{}".utf8)).mail
    #expect(
      defaults.transport == .spool && defaults.from == "billing@localhost"
        && defaults.sendmailCommand == ["/usr/sbin/sendmail", "-i", "-t"])
    let smtp = try LedgerConfig.parse(
      Data(
        #"{"mail": {"transport": "smtp", "from": "b@example.com", "smtp": {"host": "relay", "port": 587, "starttls": true, "username": "u", "password": "p"}}}"#
          .utf8)
    ).mail
    #expect(
      smtp.transport == .smtp && smtp.smtpPort == 587 && smtp.smtpStartTLS && smtp.smtpUsername == "u"
        && smtp.smtpPassword == "p")
    #expect(
      throws: InputError(
        field: "mail.smtp.hots",
        rule:
          "is not a known setting (known: ca_file, helo, host, password, password_file, port, starttls, timeout_seconds, username)"
      )
    ) {
      try LedgerConfig.parse(Data(#"{"mail": {"smtp": {"hots": "x"}}}"#.utf8))
    }
    #expect(throws: InputError.self) { try LedgerConfig.parse(Data(#"{"mail": {"max_attempts": 0}}"#.utf8)) }
    #expect(throws: InputError.self) { try LedgerConfig.parse(Data(#"{"mail": {"from": "a\nb@example.com"}}"#.utf8)) }
  }
}

/// A transport that accepts each message, then takes the database's write lock through an
/// open file description of its own, as another process would, and keeps it 0.8 s.
final class LockTakingTransport: MailTransport {
  let lockPath: String
  private let state = Mutex<(fd: Int32, sent: [Envelope])>((-1, []))

  init(lockPath: String) { self.lockPath = lockPath }

  var sent: [Envelope] { state.withLock { $0.sent } }
  /// Whether the transport still holds the write lock it took at its first message.
  var holdsLock: Bool { state.withLock { $0.fd >= 0 } }

  func send(_ envelope: Envelope) async throws -> String {
    try state.withLock { s in
      s.sent.append(envelope)
      if s.fd < 0 {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
          throw POSIXFailure(operation: "flock \(lockPath)", code: errno)
        }
        s.fd = fd
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(800)) { [self] in release() }
      }
    }
    return "250 OK"
  }

  func release() {
    state.withLock { s in
      if s.fd >= 0 { close(s.fd) }
      s.fd = -1
    }
  }
}
