import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `Tests/Tools/webhook_receiver.py`: an HTTP endpoint that verifies each delivery with the
/// `standardwebhooks` package.
let webhookReceiverTool = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("Tools/webhook_receiver.py").path

/// A webhook receiver on 127.0.0.1, started by the test: it records every request, whether
/// its signature verified, and what it answered.
final class WebhookReceiver {
  let port: Int
  let directory: String
  private var process: Process?

  /// A free port and a directory for what arrives; not listening until `start`.
  init(_ w: Workspace) throws {
    let out = try w.run("python3", [webhookReceiverTool, "freeport"])
    guard out.status == 0, let port = Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
      throw Failure("webhook_receiver.py freeport: \(out.stderr)")
    }
    self.port = port
    directory = w.directory + "/webhooks-\(port)"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }

  func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

  func start() throws {
    process = try startListener(
      webhookReceiverTool, ["serve", "--port", String(port), "--dir", directory], directory: directory,
      missing: "the webhook receiver did not start (is standardwebhooks installed? run .ci/setup)")
  }

  /// Stops listening: ledgerd's connections are refused until `start`.
  func stop() {
    stopListener(process)
    process = nil
  }

  deinit { stop() }

  /// The secret each path verifies with.
  func secrets(_ byPath: [String: String]) throws {
    try JSONSerialization.data(withJSONObject: byPath).write(to: URL(fileURLWithPath: directory + "/secrets.json"))
  }

  /// Answers `status` to every verified request from now on (nil: 200).
  func answer(_ status: Int?) throws {
    let path = directory + "/status"
    if let status {
      try Data(String(status).utf8).write(to: URL(fileURLWithPath: path))
    } else {
      try? FileManager.default.removeItem(atPath: path)
    }
  }

  /// Holds each answer `seconds` after the request is recorded (nil: answers at once).
  func delay(_ seconds: Double?) throws {
    let path = directory + "/delay"
    if let seconds {
      try Data(String(seconds).utf8).write(to: URL(fileURLWithPath: path))
    } else {
      try? FileManager.default.removeItem(atPath: path)
    }
  }

  /// Every request so far, in arrival order.
  func requests() throws -> [[String: Any]] {
    guard let text = try? String(contentsOfFile: directory + "/received.jsonl", encoding: .utf8) else { return [] }
    return try text.split(separator: "\n").map { line in
      guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw Failure("bad line \(line)")
      }
      return object
    }
  }
}

/// Webhooks to the host: what real changes send, signed as Standard Webhooks says and
/// checked by its own library; an endpoint down for a while; retries; bad input.
@Suite(.serialized) struct WebhookOutTests {
  func deliveries(_ w: Workspace, _ extra: [String] = []) throws -> [[String: Any]] {
    try w.ok(["webhook", "deliveries", "--json"] + extra).json() as? [[String: Any]] ?? []
  }

  func body(_ request: [String: Any]) throws -> [String: Any] {
    let text = request["body"] as? String ?? ""
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
      throw Failure("not a JSON object: \(text)")
    }
    return object
  }

  /// An invoice issued and paid (through run-due, then through serve), a pause, a void and a
  /// resume reach the endpoints that subscribed to them, every delivery verified by the
  /// `standardwebhooks` library. With the endpoint refusing connections, then answering 503,
  /// the deliveries wait and are tried again (`webhook deliveries` shows the attempts,
  /// `webhook retry` sends one at once); once it answers, every delivery arrives: at least
  /// once, each time with the same `webhook-id` and the same body.
  @Test func realChangesReachTheEndpointSignedAndNoneIsLostWhileItIsDown() throws {
    let w = try Workspace()
    try w.chargeWhenDue()
    let receiver = try WebhookReceiver(w)
    try receiver.start()
    try w.ok(["migrate"])
    let all = try w.json(["webhook", "add", receiver.url("/all")])
    let paused = try w.json(["webhook", "add", receiver.url("/paused"), "--event", "invoice.paused"])
    #expect(all["event_types"] as? [String] == [] && paused["event_types"] as? [String] == ["invoice.paused"])
    let allSecret = try #require(all["secret"] as? String)
    let pausedSecret = try #require(paused["secret"] as? String)
    #expect(allSecret.hasPrefix("whsec_") && Data(base64Encoded: String(allSecret.dropFirst(6)))?.count == 32)
    try receiver.secrets(["/all": allSecret, "/paused": pausedSecret])

    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok([
      "account", "add", "--email", "card@example.com", "--name", "Card", "--plan", "pro", "--billing", "manual",
    ])
    try w.ok([
      "card", "add", "1", "--token", "tok_visa_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2028",
    ])
    try w.ok([
      "account", "add", "--email", "wire@example.com", "--name", "Wire", "--plan", "pro", "--billing", "manual",
    ])
    // Issued, then paid by run-due (the daemon's code, once), then issued by transfer and
    // paused: written while no daemon runs, sent when one starts.
    try w.ok(["invoice", "issue", "1", "--line", "Plan Pro=19.00"])
    try w.ok(["run-due", "--until", w.now])
    #expect(try w.value("SELECT status FROM invoices WHERE id = 1") == "paid")
    try w.ok(["invoice", "issue", "2", "--method", "transfer", "--line", "Consulting=150.00"])
    try w.ok(["invoice", "pause", "INV-000002", "--proof", "receipt 42"])
    #expect(try w.value("SELECT count(*) FROM webhook_deliveries") == "5")

    let serve = try w.launch(["serve"])
    defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
    #expect(
      waitUntil(seconds: 30) {
        (try? w.value("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")) == "5"
      }, "\(w.serveLog())")
    let first = try receiver.requests()
    #expect(first.count == 5)
    #expect(first.allSatisfy { $0["verified"] as? Bool == true && $0["answered"] as? Int == 200 }, "\(first)")
    let types = try first.filter { $0["path"] as? String == "/all" }.map { try body($0)["type"] as? String ?? "" }
    #expect(types.sorted() == ["invoice.issued", "invoice.issued", "invoice.paused", "invoice.payment_received"])
    let toPaused = first.filter { $0["path"] as? String == "/paused" }
    #expect(try toPaused.map { try body($0)["type"] as? String } == ["invoice.paused"])
    // The payload: the event's fields and its own data, at the event's time.
    let payment = try #require(
      try first.map(body).first { $0["type"] as? String == "invoice.payment_received" })
    let data = try #require(payment["data"] as? [String: Any])
    #expect(payment["timestamp"] as? String == w.now)
    #expect(data["kind"] as? String == "payment_received" && data["account_id"] as? Int == 1)
    #expect(data["invoice_number"] as? String == "INV-000001" && data["payment_id"] != nil)
    #expect((data["reason"] as? String ?? "").contains("payment of 19.00"))
    let pause = try #require(try toPaused.first.map(body)?["data"] as? [String: Any])
    #expect(pause["invoice_number"] as? String == "INV-000002" && pause["actor"] as? String == "staff")

    // The endpoint goes down (connections refused) while the daemon charges, voids, resumes.
    receiver.stop()
    try w.ok(["invoice", "issue", "1", "--line", "Extra seat=5.00"])
    try w.ok(["invoice", "issue", "2", "--method", "transfer", "--line", "Setup=20.00"])
    try w.ok(["invoice", "void", "INV-000004", "--reason", "issued twice"])
    try w.ok(["invoice", "resume", "INV-000002"])
    // Five more to /all (issued, paid by serve, issued, voided, resumed), all tried or
    // held back: none due at the pinned time.
    #expect(
      waitUntil(seconds: 30) {
        (try? w.value(
          """
          SELECT count(*) FILTER (WHERE status = 'pending') || ' ' || count(*) FILTER (WHERE next_attempt_at <= '\(w.now)' AND status = 'pending')
          FROM webhook_deliveries
          """)) == "5 0"
      }, "\(w.serveLog())")
    let waiting = try deliveries(w, ["--status", "pending"])
    #expect(waiting.count == 5)
    let tried = try #require(
      waiting.filter { $0["attempts"] as? Int == 1 }.min { ($0["id"] as? Int ?? 0) < ($1["id"] as? Int ?? 0) })
    #expect((tried["last_result"] as? String ?? "").hasPrefix("no answer"), "\(tried)")
    #expect(waiting.allSatisfy { ($0["next_attempt_at"] as? String ?? "") > w.now })
    let listed = try w.ok(["webhook", "deliveries", "--status", "pending"]).stdout
    #expect(listed.contains("no answer") && listed.contains("invoice.voided"), "\(listed)")

    // Back, but answering 503: a retry sends the tried delivery at once, and it fails again.
    try receiver.answer(503)
    try receiver.start()
    let triedID = try #require(tried["id"] as? Int)
    let retried = try w.json(["webhook", "retry", String(triedID)])
    #expect(retried["status"] as? String == "pending" && retried["attempts"] as? Int == 1)
    #expect(
      waitUntil(seconds: 30) {
        (try? w.value("SELECT attempts || ' ' || last_result FROM webhook_deliveries WHERE id = \(triedID)"))
          == "2 HTTP 503: status 503"
      }, "\(w.serveLog())")
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10))
    #expect(serve.terminationStatus == 0)

    // An hour later the endpoint answers again; the daemon, restarted, sends what waits.
    try receiver.answer(nil)
    w.now = "2026-11-23T11:00:00Z"
    let again = try w.launch(["serve"])
    defer { if again.isRunning { kill(again.processIdentifier, SIGKILL) } }
    #expect(
      waitUntil(seconds: 30) {
        (try? w.value("SELECT count(*) FROM webhook_deliveries WHERE status != 'delivered'")) == "0"
      }, "\(w.serveLog())")
    kill(again.processIdentifier, SIGTERM)
    #expect(waitForExit(again, seconds: 10))
    #expect(again.terminationStatus == 0)

    // None lost: each delivery's webhook-id was answered 200 at its endpoint; every copy of
    // it verified and carried the same body.
    let requests = try receiver.requests()
    #expect(
      requests.allSatisfy { $0["verified"] as? Bool == true }, "\(requests.filter { $0["verified"] as? Bool != true })")
    let rows = try deliveries(w)
    #expect(rows.count == 10 && rows.allSatisfy { $0["status"] as? String == "delivered" })
    for (endpoint, path) in [(1, "/all"), (2, "/paused")] {
      let expected = Set(
        rows.filter { $0["endpoint_id"] as? Int == endpoint }.compactMap { $0["webhook_id"] as? String })
      let answered = Set(
        requests.filter { $0["path"] as? String == path && $0["answered"] as? Int == 200 }.compactMap {
          $0["webhook_id"] as? String
        })
      #expect(answered == expected, "\(path)")
    }
    let copies = Dictionary(grouping: requests) { $0["webhook_id"] as? String ?? "" }
    for (id, sent) in copies {
      #expect(Set(sent.map { $0["body"] as? String ?? "" }).count == 1, "\(id) was sent with different bodies")
    }
    // The retried delivery went three times (refused, 503, 200) with one id and one body.
    let triedWebhook = try #require(rows.first { $0["id"] as? Int == triedID }?["webhook_id"] as? String)
    #expect(copies[triedWebhook]?.map { $0["answered"] as? Int } == [503, 200])
    #expect(rows.first { $0["id"] as? Int == triedID }?["attempts"] as? Int == 3)
    print(
      "webhooks: \(rows.count) deliveries, \(requests.count) requests received, all verified by standardwebhooks, none lost"
    )
  }

  /// The daemon killed after the endpoint received a delivery but before its answer: the
  /// delivery is not recorded as made, and the next run sends it again, the same body under
  /// the same `webhook-id`, so the receiver can tell it already has it.
  @Test func aSigkillBeforeTheAnswerSendsTheSameDeliveryAgain() throws {
    let w = try Workspace()
    let receiver = try WebhookReceiver(w)
    try receiver.delay(5)
    try receiver.start()
    try w.ok(["migrate"])
    let endpoint = try w.json(["webhook", "add", receiver.url("/hook"), "--event", "invoice.issued"])
    try receiver.secrets(["/hook": try #require(endpoint["secret"] as? String)])
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00"])
    try w.ok(["account", "add", "--email", "a@example.com", "--name", "A", "--plan", "pro", "--billing", "manual"])
    try w.ok(["invoice", "issue", "1", "--method", "transfer", "--line", "Consulting=150.00"])
    let serve = try w.launch(["serve"])
    defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
    #expect(waitUntil(seconds: 30) { (try? receiver.requests().count) == 1 }, "\(w.serveLog())")
    kill(serve.processIdentifier, SIGKILL)
    serve.waitUntilExit()
    #expect(try w.value("SELECT status || ' ' || attempts FROM webhook_deliveries") == "pending 0")
    try receiver.delay(nil)
    let again = try w.launch(["serve"])
    defer { if again.isRunning { kill(again.processIdentifier, SIGKILL) } }
    #expect(
      waitUntil(seconds: 30) { (try? w.value("SELECT status FROM webhook_deliveries")) == "delivered" },
      "\(w.serveLog())")
    kill(again.processIdentifier, SIGTERM)
    #expect(waitForExit(again, seconds: 10))
    #expect(again.terminationStatus == 0)
    let requests = try receiver.requests()
    #expect(requests.count == 2 && requests.allSatisfy { $0["verified"] as? Bool == true }, "\(requests)")
    #expect(Set(requests.map { $0["webhook_id"] as? String ?? "" }).count == 1)
    #expect(Set(requests.map { $0["body"] as? String ?? "" }).count == 1)
    #expect(try w.value("SELECT attempts FROM webhook_deliveries") == "1")
  }

  /// The deliveries are written by the trigger in the transaction of the event: a change
  /// rolled back leaves none; only the endpoints subscribed to the type get one, and a
  /// disabled endpoint none. Disabling an endpoint marks what waits for it failed, which
  /// `webhook deliveries --status failed` shows and `webhook retry` refuses to send.
  @Test func deliveriesFollowTheSubscriptionsAndARolledBackChangeWritesNone() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    try w.ok(["webhook", "add", "https://hooks.example.com/all"])
    try w.ok(["webhook", "add", "https://hooks.example.com/voids", "--event", "invoice.voided"])
    try w.ok(["webhook", "add", "http://localhost:9/off"])
    let off = try w.json(["webhook", "disable", "3"])
    #expect(off["status"] as? String == "disabled")
    func event(_ kind: String) -> String {
      "INSERT INTO events (at, actor, kind, reason) VALUES ('\(w.now)', 'staff', '\(kind)', 'test');"
    }
    let rolledBack = try w.sqlite(
      "BEGIN; \(event("invoice_voided")) SELECT count(*) FROM webhook_deliveries; ROLLBACK; SELECT count(*) FROM webhook_deliveries;",
      readOnly: false)
    #expect(rolledBack.stdout == "2\n0\n", "\(rolledBack.stderr)")
    let committed = try w.sqlite(
      "\(event("invoice_issued")) \(event("card_added")) \(event("invoice_voided")) SELECT group_concat(endpoint_id || ':' || type, ' ') FROM (SELECT * FROM webhook_deliveries ORDER BY id);",
      readOnly: false)
    #expect(committed.stdout == "1:invoice.issued 1:invoice.voided 2:invoice.voided\n", "\(committed.stderr)")

    // The second endpoint disabled: its waiting delivery is failed, listed, not retried.
    try w.ok(["webhook", "disable", "2"])
    let failed = try deliveries(w, ["--status", "failed"])
    #expect(failed.count == 1 && failed.first?["last_result"] as? String == "endpoint disabled")
    let id = try #require(failed.first?["id"] as? Int)
    let before = w.fingerprint()
    let refused = try w.ledgerd(["webhook", "retry", String(id)])
    #expect(refused.status == 65 && refused.stderr.contains("disabled"), "\(refused.stderr)")
    #expect(w.fingerprint() == before)
    // The endpoint list shows no secret.
    let list = try w.ok(["webhook", "list", "--json"]).stdout
    #expect(!list.contains("whsec_") && list.contains("hooks.example.com/voids"))
    #expect(try w.ok(["webhook", "list"]).stdout.contains("disabled"))

    // Enabled again: events from now on reach it; its failed delivery stays failed until
    // retried, and what was recorded while it was off is not sent.
    let on = try w.json(["webhook", "enable", "2"])
    #expect(on["status"] as? String == "enabled" && on["disabled_at"] == nil, "\(on)")
    #expect(try w.json(["webhook", "enable", "2"])["status"] as? String == "enabled")
    _ = try w.sqlite("\(event("invoice_voided"))", readOnly: false)
    let waiting = try deliveries(w, ["--status", "pending"]).filter { $0["endpoint_id"] as? Int == 2 }
    #expect(waiting.count == 1, "\(waiting)")
    #expect(try deliveries(w, ["--status", "failed"]).count == 1)
    #expect(try w.ledgerd(["webhook", "retry", String(id)]).status == 0)
    #expect(try deliveries(w, ["--status", "failed"]).isEmpty)
    #expect(try w.value("SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = 3") == "0")
  }

  /// A URL that is not https (or http to this machine), carries credentials, or is not a
  /// URL; a type that is not a webhook type; an unknown delivery or endpoint; a bad
  /// --status: refused with exit 65 naming the field, and nothing written.
  @Test func badEndpointsAndTypesAreRefusedNamingTheField() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    let cases: [(args: [String], field: String)] = [
      (["webhook", "add", "ftp://example.com/hook"], "URL"),
      (["webhook", "add", "http://example.com/hook"], "URL"),
      (["webhook", "add", "http://10.0.0.1/hook"], "URL"),
      (["webhook", "add", "https://user:secret@example.com/hook"], "URL"),
      (["webhook", "add", "https://example.com/a hook"], "URL"),
      (["webhook", "add", "example.com/hook"], "URL"),
      (["webhook", "add", "https://example.com/hook#part"], "URL"),
      (["webhook", "add", "https://example.com/hook", "--event", "invoice.nope"], "--event"),
      (
        ["webhook", "add", "https://example.com/hook", "--event", "invoice.issued", "--event", "invoice_paid"],
        "--event"
      ),
      (["webhook", "retry", "42"], "delivery"),
      (["webhook", "retry", "x"], "DELIVERY"),
      (["webhook", "disable", "7"], "endpoint"),
      (["webhook", "enable", "7"], "endpoint"),
      (["webhook", "enable", "x"], "ENDPOINT"),
      (["webhook", "deliveries", "--status", "lost"], "--status"),
      (["webhook", "deliveries", "--limit", "0"], "--limit"),
    ]
    for c in cases {
      let before = w.fingerprint()
      let out = try w.ledgerd(c.args)
      #expect(out.status == 65, "\(c.args): \(out.stderr)")
      #expect(out.stderr.contains(c.field), "\(c.args): \(out.stderr)")
      #expect(w.fingerprint() == before, "\(c.args) wrote to the ledger")
    }
    #expect(try w.value("SELECT count(*) FROM webhook_endpoints") == "0")
    for url in [
      "https://example.com/hook", "http://localhost:8080/hook", "http://127.0.0.1/hook", "http://[::1]:9/hook",
    ] {
      #expect(try w.ledgerd(["webhook", "add", url]).status == 0, "\(url)")
    }
    #expect(try w.value("SELECT count(*) FROM webhook_endpoints") == "4")
  }
}
