import Foundation
import LedgerCore
import LedgerSQLite
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `Tests/Tools/mailtool.py`: the SMTP server (aiosmtpd) and the `email`-module parser.
let mailtool = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("Tools/mailtool.py").path

/// A message as the test SMTP server received it, parsed by Python's `email` module.
struct ReceivedMail {
  let json: [String: Any]
  var subject: String { json["subject"] as? String ?? "" }
  var to: String { json["to"] as? String ?? "" }
  var body: String { (json["body"] as? String ?? "").replacingOccurrences(of: "\r\n", with: "\n") }
  var messageID: String { json["message_id"] as? String ?? "" }
  var recipients: [String] { json["rcpt_tos"] as? [String] ?? [] }
  var defects: [String] { json["defects"] as? [String] ?? [] }
}

/// An SMTP server on 127.0.0.1, started by the test, that records what it accepts.
final class SMTPSink {
  let port: Int
  let directory: String
  private var process: Process?

  /// A free port, and a directory for what arrives; not listening until `start`.
  init(_ w: Workspace) throws {
    let out = try w.run("python3", [mailtool, "freeport"])
    guard out.status == 0, let port = Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
      throw Failure("mailtool.py freeport: \(out.stderr) (is aiosmtpd installed? run .ci/setup)")
    }
    self.port = port
    directory = w.directory + "/smtp-\(port)"
  }

  /// Listens; `options` are mailtool's (`--tempfail N`, `--reject ADDR`, `--data-delay S`).
  func start(_ options: [String] = []) throws {
    process = try startListener(
      mailtool, ["serve", "--port", String(port), "--dir", directory] + options, directory: directory,
      missing: "the test SMTP server did not start (aiosmtpd missing?)")
  }

  func stop() {
    stopListener(process)
    process = nil
  }

  deinit { stop() }

  /// Every message received so far, in arrival order.
  func messages() throws -> [ReceivedMail] {
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
      $0.hasSuffix(".json")
    }.sorted()
    return try names.map { name in
      let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name))
      guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw Failure("bad \(name)")
      }
      return ReceivedMail(json: object)
    }
  }
}

/// Delivery of the outbox through the three transports to real receivers, and its faults.
@Suite(.serialized) struct MailDeliveryTests {
  static let day0 = DunningScenarioTests.day0

  /// Two customers in dunning: Marie (French, funds missing) and Jo (English, card expired);
  /// run-due takes them to the downgrade on day 9.
  func dunningBook(_ w: Workspace) throws {
    w.now = Self.day0
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok([
      "account", "add", "--email", "marie@example.fr", "--name", "Marie Curie", "--plan", "pro", "--billing", "manual",
      "--locale", "fr",
    ])
    try w.ok([
      "account", "add", "--email", "jo@example.com", "--name", "Jo Bloggs", "--plan", "pro", "--billing", "manual",
      "--locale", "en",
    ])
    try w.ok([
      "card", "add", "1", "--token", "tok_decline_insufficient_funds", "--brand", "visa", "--last4", "4242", "--expiry",
      "12/2028",
    ])
    try w.ok([
      "card", "add", "2", "--token", "tok_decline_expired_card", "--brand", "visa", "--last4", "1881", "--expiry",
      "12/2028",
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=19.00"])
    try w.ok(["invoice", "issue", "2", "--line", "Plan Pro=19.00"])
    try w.ok(["run-due", "--until", DunningScenarioTests.day(10)])
    w.now = DunningScenarioTests.day(10)
  }

  func q(_ w: Workspace, _ sql: String) throws -> String {
    let out = try w.sqlite(sql)
    guard out.status == 0 else { throw Failure("sqlite3: \(out.stderr)") }
    return out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  func smtpConfig(_ w: Workspace, port: Int, extra: String = "") throws -> String {
    try w.writeConfig(
      #"{"mail": {"transport": "smtp", "from": "billing@example.com", "smtp": {"host": "127.0.0.1", "port": \#(port), "timeout_seconds": 5}\#(extra)}}"#
    )
  }

  func flush(_ w: Workspace, config: String) throws -> [String: Any] {
    try w.json(["outbox", "flush", "--config", config])
  }

  /// The checks every transport must pass on the dunning book's messages.
  func checkDunningMessages(_ w: Workspace, _ mails: [ReceivedMail]) throws {
    let queued = Int(try q(w, "SELECT count(*) FROM outbox")) ?? -1
    #expect(queued >= 8)
    #expect(mails.count == queued)
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL") == "0")
    #expect(mails.allSatisfy { $0.defects.isEmpty })
    let marie = mails.filter { $0.to.contains("marie@example.fr") }
    let jo = mails.filter { $0.to.contains("jo@example.com") }
    #expect(marie.count + jo.count == mails.count)
    #expect(marie.count == Int(try q(w, "SELECT count(*) FROM outbox WHERE account_id = 1")))
    // French: subject and body decoded with their accents; the advice for missing funds.
    #expect(marie.contains { $0.subject == "Échec du paiement de 19,00 € (INV-000001)" })
    let failed = try #require(marie.first { $0.subject.hasPrefix("Échec") })
    #expect(failed.body.contains("votre banque a refusé le paiement faute de provision suffisante"))
    #expect(failed.body.contains("Assurez-vous que votre compte est suffisamment approvisionné"))
    #expect(failed.body.contains("mercredi 11 novembre 2026"))
    #expect(failed.body.contains("L'équipe facturation"))
    // Marie's card is retried on the reminder days, so her reminders go out in those days'
    // failure messages (one decision, one message); Jo's expired card is not retried, so
    // his come on their own.
    #expect(!marie.contains { $0.subject.hasPrefix("Rappel") })
    #expect(jo.contains { $0.subject == "Reminder: INV-000002 of €19.00 is still due" })
    #expect(marie.contains { $0.subject == "Votre compte est passé à l'offre free" })
    #expect(marie.first?.to == "Marie Curie <marie@example.fr>")
    // English: the expired card's advice.
    let joFailed = try #require(jo.first { $0.subject == "Your payment of €19.00 failed (INV-000002)" })
    #expect(joFailed.body.contains("Please update your card"))
    #expect(jo.contains { $0.subject == "Your account has moved to the free plan" })
    // One Message-ID per outbox row: the SHA-256 of its key.
    let keys = try q(w, "SELECT key FROM outbox ORDER BY id").split(separator: "\n").map(String.init)
    let expected = Set(keys.map { "<" + SHA256.hex(Array($0.utf8)) + "@example.com>" })
    #expect(Set(mails.map(\.messageID)) == expected)
  }

  @Test func smtpDeliversTheDunningMessagesToARealServer() throws {
    let w = try Workspace()
    try dunningBook(w)
    let sink = try SMTPSink(w)
    try sink.start()
    let summary = try flush(w, config: try smtpConfig(w, port: sink.port))
    let mails = try sink.messages()
    #expect(summary["delivered"] as? Int == mails.count)
    #expect(mails.allSatisfy { $0.json["mail_from"] as? String == "billing@example.com" })
    #expect(mails.allSatisfy { $0.recipients.count == 1 && $0.to.contains($0.recipients[0]) })
    try checkDunningMessages(w, mails)
    // A second flush sends nothing more.
    #expect(try flush(w, config: try smtpConfig(w, port: sink.port))["delivered"] as? Int == 0)
    #expect(try sink.messages().count == mails.count)
  }

  @Test func sendmailPipesToMsmtpWhichRelaysToTheServer() throws {
    let w = try Workspace()
    try dunningBook(w)
    let sink = try SMTPSink(w)
    try sink.start()
    let msmtp = ["/usr/bin/msmtp", "/usr/local/bin/msmtp"].first { FileManager.default.isExecutableFile(atPath: $0) }
    let program = try #require(msmtp, "msmtp is not installed (run .ci/setup)")
    let config = try w.writeConfig(
      #"{"mail": {"transport": "sendmail", "from": "billing@example.com", "sendmail_command": "\#(program) --host=127.0.0.1 --port=\#(sink.port) --auth=off --tls=off --read-envelope-from -i -t"}}"#
    )
    let summary = try flush(w, config: config)
    let mails = try sink.messages()
    #expect(summary["delivered"] as? Int == mails.count)
    try checkDunningMessages(w, mails)
  }

  @Test func throughMsmtpA4xxIsRetriedAndA5xxFailsOnlyThatMessage() throws {
    let w = try Workspace()
    try dunningBook(w)
    let sink = try SMTPSink(w)
    try sink.start(["--tempfail", "1", "--reject", "jo@example.com"])
    let config = try w.writeConfig(
      #"{"mail": {"transport": "sendmail", "from": "billing@example.com", "sendmail_command": "/usr/bin/msmtp --host=127.0.0.1 --port=\#(sink.port) --auth=off --tls=off --read-envelope-from -i -t"}}"#
    )
    let total = Int(try q(w, "SELECT count(*) FROM outbox")) ?? 0
    let toJo = Int(try q(w, "SELECT count(*) FROM outbox WHERE recipient = 'jo@example.com'")) ?? 0
    let first = try flush(w, config: config)
    // msmtp exits 69 for the 451 (retried) and 65 for the 550 (failed, with its words).
    #expect(first["deferred"] as? Int == 1 && first["failed"] as? Int == toJo)
    #expect(
      try q(
        w,
        "SELECT count(*) FROM outbox WHERE failed_at IS NOT NULL AND last_error LIKE '/usr/bin/msmtp exited 65:%550%'")
        == String(toJo))
    w.now = DunningScenarioTests.day(10, hour: 10)
    #expect(try flush(w, config: config)["delivered"] as? Int == 1)
    let mails = try sink.messages()
    #expect(mails.count == total - toJo && mails.allSatisfy { $0.recipients == ["marie@example.fr"] })
  }

  @Test func aFailingSendmailCommandIsRetriedAndItsErrorKept() throws {
    let w = try Workspace()
    try dunningBook(w)
    let config = try w.writeConfig(#"{"mail": {"transport": "sendmail", "sendmail_command": "/bin/false"}}"#)
    let summary = try flush(w, config: config)
    #expect(summary["delivered"] as? Int == 0)
    #expect(summary["deferred"] as? Int ?? 0 >= 8)
    #expect(try q(w, "SELECT DISTINCT last_error FROM outbox") == "/bin/false exited 1")
    #expect(
      try q(w, "SELECT count(*) FROM outbox WHERE attempts = 1 AND delivered_at IS NULL AND failed_at IS NULL")
        == q(w, "SELECT count(*) FROM outbox"))
  }

  @Test func theSpoolHoldsOneParsableFilePerMessage() throws {
    let w = try Workspace()
    try dunningBook(w)
    let summary = try w.json(["outbox", "flush"])
    let spool = w.directory + "/ledger.outbox"
    let files = try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".eml") }.sorted()
    #expect(summary["delivered"] as? Int == files.count)
    #expect(try FileManager.default.contentsOfDirectory(atPath: spool).allSatisfy { !$0.hasPrefix(".tmp") })
    let parsed = try w.run("python3", [mailtool, "parse"] + files.map { spool + "/" + $0 })
    #expect(parsed.status == 0, "\(parsed.stderr)")
    let mails = try parsed.stdout.split(separator: "\n").map { line in
      ReceivedMail(json: try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:])
    }
    #expect(
      mails.allSatisfy { $0.json["charset"] as? String == "utf-8" && $0.json["mime_version"] as? String == "1.0" })
    #expect(mails.allSatisfy { ($0.json["from"] as? String ?? "").hasSuffix("<billing@localhost>") })
    // Default sender: billing@localhost, so the ids end in @localhost; the checks below
    // use example.com, so compare ids separately.
    let keys = try q(w, "SELECT key FROM outbox").split(separator: "\n").map(String.init)
    #expect(Set(files.map { String($0.dropLast(4)) }) == Set(keys.map { SHA256.hex(Array($0.utf8)) }))
    #expect(mails.contains { $0.subject == "Échec du paiement de 19,00 € (INV-000001)" })
    #expect(mails.contains { $0.body.contains("Please update your card") })
  }

  @Test func smtpWithStartTLSAndAuthPlain() throws {
    let w = try Workspace()
    try dunningBook(w)
    let cert = w.directory + "/cert.pem"
    let key = w.directory + "/key.pem"
    let made = try w.run(
      "openssl",
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj",
        "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      ])
    #expect(made.status == 0, "\(made.stderr)")
    let sink = try SMTPSink(w)
    try sink.start(["--tls-cert", cert, "--tls-key", key, "--auth", "ledgerd:s3cret pass"])
    try Data("s3cret pass\n".utf8).write(to: URL(fileURLWithPath: w.directory + "/password"))
    func config(_ smtp: String) throws -> String {
      try w.writeConfig(
        #"{"mail": {"transport": "smtp", "from": "billing@example.com", "smtp": {"host": "localhost", "port": \#(sink.port), "timeout_seconds": 5\#(smtp)}}}"#
      )
    }
    // Without STARTTLS the server refuses the sender (530): a fault of the relay or of the
    // config, not of the messages, so none is marked failed; they wait.
    let plain = try flush(w, config: try config(""))
    #expect(plain["delivered"] as? Int == 0 && plain["failed"] as? Int == 0)
    #expect(
      try q(w, "SELECT last_error FROM outbox WHERE last_error IS NOT NULL")
        == "MAIL FROM: 530 Must issue a STARTTLS command first")
    #expect(
      try w.sqlite("UPDATE outbox SET next_attempt_at = created_at, attempts = 0, last_error = NULL", readOnly: false)
        .status == 0)
    // A certificate the system does not trust: refused, retried later, nothing sent.
    let untrusted = try flush(w, config: try config(#", "starttls": true"#))
    #expect(untrusted["delivered"] as? Int == 0 && untrusted["deferred"] as? Int == 1)
    // (The server's certificate is self-signed; nothing vouches for it.)
    let tlsError = try q(w, "SELECT last_error FROM outbox WHERE last_error IS NOT NULL")
    #expect(tlsError.contains("CERTIFICATE_VERIFY_FAILED"), "\(tlsError)")
    #expect(try sink.messages().isEmpty)
    #expect(try w.sqlite("UPDATE outbox SET next_attempt_at = created_at, attempts = 0", readOnly: false).status == 0)
    // Trusted, with the password from a file: everything goes, over TLS, authenticated.
    let secure = try flush(
      w,
      config: try config(
        #", "starttls": true, "ca_file": "\#(cert)", "username": "ledgerd", "password_file": "\#(w.directory)/password""#
      ))
    let mails = try sink.messages()
    #expect(secure["delivered"] as? Int == mails.count)
    #expect(mails.allSatisfy { $0.json["tls"] as? Bool == true && $0.json["auth"] as? String == "ledgerd" })
    try checkDunningMessages(w, mails)
  }

  @Test func aServerDownForAWhileLosesNothing() throws {
    let w = try Workspace()
    try dunningBook(w)
    let sink = try SMTPSink(w)
    let config = try smtpConfig(w, port: sink.port)
    let total = Int(try q(w, "SELECT count(*) FROM outbox")) ?? 0
    // Nobody listens: the first message waits for its back-off, and the others with it,
    // without an attempt counted against them.
    let down = try flush(w, config: config)
    #expect(down["delivered"] as? Int == 0 && down["deferred"] as? Int == 1 && down["postponed"] as? Int == total - 1)
    #expect(
      try q(w, "SELECT count(*) FROM outbox WHERE attempts = 1 AND last_error LIKE 'cannot connect to 127.0.0.1:%'")
        == "1")
    #expect(try q(w, "SELECT DISTINCT next_attempt_at FROM outbox") == "2026-11-12T18:01:00Z")
    // Before the back-off ends, nothing is tried.
    #expect(try flush(w, config: config)["deferred"] as? Int == 0)
    try sink.start()
    w.now = DunningScenarioTests.day(10, hour: 10)
    let up = try flush(w, config: config)
    #expect(up["delivered"] as? Int == total)
    let mails = try sink.messages()
    #expect(mails.count == total)
    #expect(Set(mails.map(\.messageID)).count == total)
    #expect(
      try q(w, "SELECT count(*) || ' ' || sum(attempts) FROM outbox WHERE delivered_at IS NOT NULL")
        == "\(total) \(total + 1)")
  }

  @Test func aTemporaryRefusalIsRetriedAndAPermanentOneMarksOnlyThatMessageFailed() throws {
    let w = try Workspace()
    try dunningBook(w)
    let sink = try SMTPSink(w)
    try sink.start(["--tempfail", "2", "--reject", "jo@example.com"])
    let config = try smtpConfig(w, port: sink.port)
    let total = Int(try q(w, "SELECT count(*) FROM outbox")) ?? 0
    let toJo = Int(try q(w, "SELECT count(*) FROM outbox WHERE recipient = 'jo@example.com'")) ?? 0
    #expect(toJo > 0)
    let first = try flush(w, config: config)
    #expect(first["failed"] as? Int == toJo)
    #expect(first["deferred"] as? Int == 2)
    #expect(
      try q(w, "SELECT DISTINCT last_error FROM outbox WHERE recipient = 'jo@example.com'")
        == "RCPT TO <jo@example.com>: 550 5.1.1 <jo@example.com>: mailbox unavailable")
    #expect(
      try q(w, "SELECT count(*) FROM outbox WHERE last_error LIKE 'end of data: 451 4.3.0 try again later'") == "2")
    w.now = DunningScenarioTests.day(10, hour: 10)
    let second = try flush(w, config: config)
    #expect(second["delivered"] as? Int == 2 && second["failed"] as? Int == 0)
    let mails = try sink.messages()
    #expect(mails.count == total - toJo)
    #expect(mails.allSatisfy { $0.recipients == ["marie@example.fr"] })
    // The failed messages stay visible, with the server's reply.
    let listed = try w.ok(["outbox", "list", "--failed", "--json"]).json() as? [[String: Any]] ?? []
    #expect(listed.count == toJo)
    #expect(
      listed.allSatisfy {
        $0["status"] as? String == "failed" && ($0["last_error"] as? String ?? "").contains("550 5.1.1")
      })
    let text = try w.ok(["outbox", "list", "--failed"]).stdout
    #expect(text.contains("jo@example.com") && text.contains("550 5.1.1"))
    // Staff fix the address and queue one again.
    try w.ok(["account", "update", "2", "--email", "jo.bloggs@example.com"])
    let id = try #require(listed.first?["id"] as? Int)
    try w.ok(["outbox", "retry", String(id)])
    #expect(try flush(w, config: config)["delivered"] as? Int == 1)
    #expect(try sink.messages().last?.recipients == ["jo.bloggs@example.com"])
  }

  @Test func aSigkillDuringDeliveryThenARestartDeliversEverythingWithStableIDs() throws {
    let w = try Workspace()
    w.now = Self.day0
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    for i in 1...6 {
      try w.ok([
        "account", "add", "--email", "c\(i)@example.com", "--name", "Client \(i)", "--plan", "pro", "--billing",
        "manual", "--locale",
        i % 2 == 0 ? "en" : "fr",
      ])
      try w.ok([
        "card", "add", String(i), "--token", "tok_decline_insufficient_funds.\(i)", "--brand", "visa", "--last4",
        "4242", "--expiry", "12/2028",
      ])
      try w.ok(["invoice", "issue", String(i), "--line", "Plan Pro=19.00"])
    }
    try w.ok(["run-due", "--until", DunningScenarioTests.day(10)])
    w.now = DunningScenarioTests.day(10)
    let total = Int(try q(w, "SELECT count(*) FROM outbox")) ?? 0
    #expect(total >= 30)
    let sink = try SMTPSink(w)
    // The server keeps each message, then waits 150 ms before its 250: a kill in that
    // window leaves a message the server has but the ledger never marked.
    try sink.start(["--data-delay", "0.15"])
    let config = try smtpConfig(w, port: sink.port)
    func started() -> Int {
      ((try? String(contentsOfFile: sink.directory + "/data-started.log", encoding: .utf8)) ?? "").split(
        separator: "\n"
      ).count
    }
    var kills = 0
    for _ in 0..<3 {
      let before = started()
      let serve = try w.launch(["serve", "--config", config])
      let deadline = Date().addingTimeInterval(15)
      // Wait until a message is in hand (after a couple have gone through), then kill.
      while started() < before + 2 && Date() < deadline && serve.isRunning { usleep(5_000) }
      if serve.isRunning {
        kill(serve.processIdentifier, SIGKILL)
        kills += 1
      }
      serve.waitUntilExit()
    }
    // A last run to the end, stopped properly.
    let serve = try w.launch(["serve", "--config", config])
    let deadline = Date().addingTimeInterval(60)
    while try q(w, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL") != "0" && Date() < deadline {
      usleep(100_000)
    }
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10))
    #expect(serve.terminationStatus == 0)

    #expect(try q(w, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL") == "0")
    let mails = try sink.messages()
    let keys = try q(w, "SELECT key FROM outbox").split(separator: "\n").map(String.init)
    let ids = Set(keys.map { "<" + SHA256.hex(Array($0.utf8)) + "@example.com>" })
    // Every message arrived at least once; anything that arrived twice is the same
    // message, with the same Message-ID, subject and recipient.
    #expect(Set(mails.map(\.messageID)) == ids)
    let byID = Dictionary(grouping: mails, by: \.messageID)
    for (_, copies) in byID where copies.count > 1 {
      #expect(
        Set(copies.map(\.subject)).count == 1 && Set(copies.map(\.to)).count == 1 && Set(copies.map(\.body)).count == 1)
    }
    #expect(kills == 3)
    // The kills landed with a message in hand, which the restart sent again.
    #expect(mails.count > total)
    #expect(byID.values.contains { $0.count > 1 })
  }

  @Test func sigtermWithAMessageInHandFinishesItAndExitsCleanly() throws {
    let w = try Workspace()
    try dunningBook(w)
    let sink = try SMTPSink(w)
    try sink.start(["--data-delay", "2"])
    let serve = try w.launch(["serve", "--config", try smtpConfig(w, port: sink.port)])
    let deadline = Date().addingTimeInterval(15)
    while (try? String(contentsOfFile: sink.directory + "/data-started.log", encoding: .utf8)) == nil
      && Date() < deadline
    {
      usleep(10_000)
    }
    let stopAsked = Date()
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10))
    #expect(serve.terminationStatus == 0)
    #expect(Date().timeIntervalSince(stopAsked) < 10)
    // The message in hand got its 250 and was marked; the rest wait for the next start.
    #expect(try sink.messages().count == 1)
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL") == "1")
  }

  /// A relay that never answers the end of data does not hold up SIGTERM either: after the
  /// grace the connection is closed and the message, not counted as an attempt, waits.
  @Test func sigtermClosesAHangingSMTPConversation() throws {
    let w = try Workspace()
    try dunningBook(w)
    let sink = try SMTPSink(w)
    try sink.start(["--data-delay", "30"])
    let serve = try w.launch([
      "serve", "--config",
      try w.writeConfig(
        #"{"mail": {"transport": "smtp", "from": "billing@example.com", "smtp": {"host": "127.0.0.1", "port": \#(sink.port), "timeout_seconds": 120}}}"#
      ),
    ])
    let deadline = Date().addingTimeInterval(15)
    while (try? String(contentsOfFile: sink.directory + "/data-started.log", encoding: .utf8)) == nil
      && Date() < deadline
    {
      usleep(10_000)
    }
    let stopAsked = Date()
    kill(serve.processIdentifier, SIGTERM)
    let exited = waitForExit(serve, seconds: 10)
    #expect(exited)
    if !exited {
      kill(serve.processIdentifier, SIGKILL)
      serve.waitUntilExit()
    }
    #expect(serve.terminationStatus == 0 && serve.terminationReason == .exit)
    #expect(Date().timeIntervalSince(stopAsked) < 10)
    #expect(
      try q(w, "SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL OR failed_at IS NOT NULL OR attempts > 0")
        == "0")
  }

  /// A hand-off that hangs (a sendmail command that ignores SIGTERM and sleeps 30 s) does
  /// not hold up SIGTERM: after the grace the command is killed, the daemon exits 0 within
  /// 10 s, and the message, neither delivered nor counted as an attempt, goes on a later
  /// flush with the same Message-ID.
  @Test func sigtermEndsAHangingSendmailHandOffAndTheMessageIsSentLater() throws {
    let w = try Workspace()
    try dunningBook(w)
    let started = w.directory + "/sendmail-started"
    let script = w.directory + "/slow-sendmail"
    try Data("#!/bin/sh\ntrap '' TERM\ncat >/dev/null\ntouch '\(started)'\nsleep 30\n".utf8).write(
      to: URL(fileURLWithPath: script))
    chmod(script, 0o755)
    let config = try w.writeConfig(
      #"{"mail": {"transport": "sendmail", "sendmail_command": "\#(script)", "timeout_seconds": 120}}"#)
    let serve = try w.launch(["serve", "--config", config])
    let deadline = Date().addingTimeInterval(15)
    while !FileManager.default.fileExists(atPath: started) && Date() < deadline { usleep(10_000) }
    #expect(FileManager.default.fileExists(atPath: started))
    let stopAsked = Date()
    kill(serve.processIdentifier, SIGTERM)
    let exited = waitForExit(serve, seconds: 10)
    let took = Date().timeIntervalSince(stopAsked)
    #expect(exited)
    if !exited {
      kill(serve.processIdentifier, SIGKILL)
      serve.waitUntilExit()
    }
    #expect(serve.terminationStatus == 0 && serve.terminationReason == .exit)
    #expect(took < 10)
    print("SIGTERM with a hanging sendmail: exit 0 after \(String(format: "%.2f", took)) s")
    // Nothing delivered, nothing failed, no attempt counted for the message cut short.
    let total = try q(w, "SELECT count(*) FROM outbox")
    #expect(
      try q(w, "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND attempts = 0") == total
    )
    let pending = try w.ok(["outbox", "list", "--pending", "--json"]).json() as? [[String: Any]] ?? []
    #expect(String(pending.count) == total)
    // A later flush with a working transport (the spool) delivers every one, under the
    // same Message-ID as the one cut short.
    let summary = try w.json(["outbox", "flush"])
    #expect(String(summary["delivered"] as? Int ?? -1) == total)
    #expect(try q(w, "SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL AND attempts = 1") == total)
    let keys = try q(w, "SELECT key FROM outbox").split(separator: "\n").map(String.init)
    let files = try FileManager.default.contentsOfDirectory(atPath: w.directory + "/ledger.outbox").filter {
      $0.hasSuffix(".eml")
    }
    #expect(Set(files) == Set(keys.map { SHA256.hex(Array($0.utf8)) + ".eml" }))
  }

  @Test func badAddressesAreRefusedWhenAnAccountIsOpenedOrChangedSoNoHeaderCanBeInjected() throws {
    let w = try Workspace()
    try w.chargeWhenDue()  // charged on the workspace's hour: the test is about something else
    try w.ok(["migrate"])
    try w.ok(["account", "add", "--email", "marie@example.fr", "--name", "Marie", "--locale", "fr"])
    let before = w.fingerprint()
    let bad = [
      "marie.example.fr",  // no @
      "marie@example.fr\nBcc: victim@example.com",  // a header smuggled in
      "marie@example.fr\r\nBcc: victim@example.com",
      "marie@example.fr>, victim@example.com",
      String(repeating: "a", count: 250) + "@example.fr",  // over-long
      "",
    ]
    for address in bad {
      let added = try w.ledgerd(["account", "add", "--email", address, "--name", "X"])
      #expect(added.status == 65, "\(address)")
      #expect(added.stderr.hasPrefix("ledgerd: error: --email: "), "\(added.stderr)")
      let changed = try w.ledgerd(["account", "update", "1", "--email", address])
      #expect(changed.status == 65, "\(address)")
      #expect(changed.stderr.hasPrefix("ledgerd: error: --email: "), "\(changed.stderr)")
    }
    for name in ["Marie\nBcc: victim@example.com", "Marie\r\nSubject: free money"] {
      #expect(try w.ledgerd(["account", "add", "--email", "x@example.com", "--name", name]).status == 65)
      #expect(try w.ledgerd(["account", "update", "1", "--name", name]).stderr.hasPrefix("ledgerd: error: --name: "))
    }
    #expect(w.fingerprint() == before)
    // A name full of address syntax stays one display name: one recipient, no Bcc.
    try w.ok(["account", "update", "1", "--name", #"Evil <victim@example.com>, "Bcc: x@y.z""#, "--locale", "en"])
    try w.ok([
      "card", "add", "1", "--token", "tok_visa_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028",
    ])
    try w.ok(["invoice", "issue", "1", "--line", "Plan=19.00"])
    try w.ok(["run-due", "--until", w.now])
    try w.ok(["outbox", "flush"])
    let spool = w.directory + "/ledger.outbox"
    let files = try FileManager.default.contentsOfDirectory(atPath: spool).filter { $0.hasSuffix(".eml") }
    #expect(files.count == 1)
    let parsed = try w.run("python3", [mailtool, "parse", spool + "/" + files[0]])
    let mail = ReceivedMail(
      json: try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Any] ?? [:])
    #expect(mail.to == #""Evil <victim@example.com>, \"Bcc: x@y.z\"" <marie@example.fr>"#)
    #expect(!(mail.json["header_names"] as? [String] ?? []).contains("Bcc"))
    #expect(mail.subject == "Payment of €19.00 received")
  }

  @Test func flushIsRefusedWhileTheDaemonDelivers() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let serve = try w.launch(["serve"])
    defer {
      kill(serve.processIdentifier, SIGTERM)
      serve.waitUntilExit()
    }
    let deadline = Date().addingTimeInterval(10)
    while !(try String(contentsOfFile: w.directory + "/serve.log", encoding: .utf8)).contains("serving")
      && Date() < deadline
    {
      usleep(50_000)
    }
    let flush = try w.ledgerd(["outbox", "flush"])
    #expect(flush.status == 65)
    #expect(flush.stderr.contains("the outbox: is delivered by the ledgerd serve"))
  }

  @Test func theMailConfigRefusesUnknownKeysAndBadValuesNamingThem() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let cases = [
      (#"{"mail": {"transprot": "smtp"}}"#, "mail.transprot: is not a known setting"),
      (#"{"mail": {"transport": "pigeon"}}"#, "mail.transport: 'pigeon' is not a transport"),
      (#"{"mail": {"from": "billing"}}"#, "mail.from: "),
      (#"{"mail": {"smtp": {"port": 70000}}}"#, "mail.smtp.port: must be a whole number from 1 to 65535"),
      (#"{"mail": {"smtp": {"tls": true}}}"#, "mail.smtp.tls: is not a known setting"),
      (#"{"mail": {"smtp": {"username": "u"}}}"#, "mail.smtp.username: username and password"),
      (#"{"mail": {"sendmail_command": "sendmail -t"}}"#, "mail.sendmail_command: must start with an absolute path"),
    ]
    for (json, message) in cases {
      let config = try w.writeConfig(json)
      let out = try w.ledgerd(["outbox", "flush", "--config", config])
      #expect(out.status == 65, "\(json)")
      #expect(out.stderr.contains("ledgerd: error: " + message), "\(out.stderr)")
    }
  }
}
