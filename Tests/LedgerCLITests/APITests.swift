import Foundation
import Testing

/// The HTTP API through a real client (curl) against a running `ledgerd serve`: what a host's
/// dashboard does for a customer, what each role may do, idempotent replays, bad input, the
/// OpenAPI document against every route, /metrics read by prometheus-client, and schemathesis.
@Suite(.serialized) struct APITests {
  /// Account 1 (pro, card) with two transfer invoices; account 2 (free) with one.
  static func book(_ w: Workspace) throws -> (transferA: String, transferB: String, other: String) {
    try w.ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00", "--currency", "EUR"])
    try w.ok(["account", "add", "--email", "marie@example.fr", "--name", "Marie", "--plan", "pro"])
    try w.ok(["account", "add", "--email", "paul@example.fr", "--name", "Paul"])
    func issue(_ account: Int) throws -> String {
      try w.json([
        "invoice", "issue", String(account), "--line", "Domain example.fr=12.00", "--method", "transfer",
      ])["number"] as? String ?? ""
    }
    return (try issue(1), try issue(1), try issue(2))
  }

  @Test func aDashboardActsForItsCustomerOnly() throws {
    let w = try Workspace()
    let (transferA, transferB, other) = try Self.book(w)
    let dash = try w.apiKey("dashboard-marie", role: "customer", account: 1)
    let reader = try w.apiKey("auditor", role: "read")
    let staff = try w.apiKey("ops", role: "staff")
    let server = try APIServer(w)
    defer { server.stop() }

    // A card that declines, over the Unix socket (the default listener): charged at once.
    let first = try server.call(
      "POST", "/v1/accounts/1/cards", key: dash,
      body: #"{"token": "tok_decline_insufficient_funds", "brand": "visa", "last4": "0341", "expiry": "12/2030"}"#,
      unix: true)
    #expect(first.status == 200, "\(first.text)")
    #expect(first.object["is_default"] as? Bool == true)
    #expect(
      waitUntil(seconds: 20) { (try? w.value("SELECT status FROM accounts WHERE id = 1")) == "past_due" },
      "\(w.serveLog())")
    // A second card, made the default: the period's invoice is paid at once.
    let second = try server.call(
      "POST", "/v1/accounts/1/cards", key: dash,
      body: #"{"token": "tok_visa_ok", "brand": "mastercard", "last4": "4444", "expiry": "11/2031"}"#)
    #expect(second.status == 200, "\(second.text)")
    let secondID = second.object["id"] as? Int ?? 0
    let made = try server.call("POST", "/v1/cards/\(secondID)/default", key: dash)
    #expect(made.status == 200 && made.object["is_default"] as? Bool == true, "\(made.text)")
    #expect(
      waitUntil(seconds: 20) {
        (try? w.value("SELECT count(*) FROM invoices WHERE account_id = 1 AND status = 'paid'")) == "1"
      }, "\(w.serveLog())")
    // "Payment not registered", with a proof: paused at once.
    let paused = try server.call(
      "POST", "/v1/invoices/\(transferA)/pause", key: dash, body: #"{"proof": "receipt 88123"}"#)
    #expect(paused.status == 200 && paused.object["paused"] as? Bool == true, "\(paused.text)")
    // "I paid by transfer".
    let declared = try server.call(
      "POST", "/v1/invoices/\(transferB)/transfers", key: dash,
      body: #"{"amount": {"minor": 1200, "currency": "EUR"}, "sent_on": "2026-11-23", "bank_reference": "RF18INV"}"#)
    #expect(declared.status == 200, "\(declared.text)")
    #expect(declared.object["hold"] as? String == "window")
    // Its attempts, with their reasons.
    let attempts = try server.get("/v1/accounts/1/charge_attempts", key: dash)
    let rows = attempts.object["data"] as? [[String: Any]] ?? []
    #expect(rows.contains { $0["reason"] as? String == "insufficient_funds" && $0["status"] as? String == "declined" })
    #expect(rows.contains { $0["status"] as? String == "succeeded" })

    // Another customer's account: 403, and nothing written.
    let events = try w.value("SELECT count(*) FROM events")
    for answer in [
      try server.get("/v1/accounts/2", key: dash),
      try server.get("/v1/invoices/\(other)", key: dash),
      try server.call(
        "POST", "/v1/accounts/2/cards", key: dash,
        body: #"{"token": "tok_visa_ok", "brand": "visa", "last4": "4242", "expiry": "12/2030"}"#),
      try server.call("POST", "/v1/invoices/\(other)/pause", key: dash, body: #"{"proof": "x"}"#),
      try server.get("/v1/accounts", key: dash),
    ] {
      #expect(answer.status == 403, "\(answer.text)")
      #expect((answer.object["error"] as? [String: Any])?["type"] as? String == "permission_error")
    }
    // A read key reads everything and writes nothing.
    #expect(try server.get("/v1/accounts/2", key: reader).status == 200)
    #expect(try server.get("/v1/accounts?limit=1", key: reader).object["has_more"] as? Bool == true)
    let refused = try server.call("POST", "/v1/invoices/\(other)/pause", key: reader, body: #"{"proof": "x"}"#)
    #expect(refused.status == 403, "\(refused.text)")
    // A customer key cannot do staff's work.
    #expect(try server.call("POST", "/v1/invoices/\(transferA)/resume", key: dash).status == 403)
    #expect(try w.value("SELECT count(*) FROM events") == events)

    // An idempotent replay: the first answer, marked, and nothing written.
    let body = #"{"token": "tok_ok", "brand": "visa", "last4": "1111", "expiry": "10/2032"}"#
    let once = try server.call("POST", "/v1/accounts/1/cards", key: dash, body: body, idempotencyKey: "add-card-7")
    #expect(once.status == 200, "\(once.text)")
    let cards = try w.value("SELECT count(*) FROM cards")
    let eventsAfter = try w.value("SELECT count(*) FROM events")
    let again = try server.call("POST", "/v1/accounts/1/cards", key: dash, body: body, idempotencyKey: "add-card-7")
    #expect(again.status == 200 && again.text == once.text)
    #expect(again.headers.lowercased().contains("idempotent-replayed: true"))
    let reused = try server.call(
      "POST", "/v1/accounts/1/cards", key: dash, body: body.replacingOccurrences(of: "1111", with: "2222"),
      idempotencyKey: "add-card-7")
    #expect(reused.status == 409 && reused.param == "Idempotency-Key", "\(reused.text)")
    #expect(try w.value("SELECT count(*) FROM cards") == cards)
    #expect(try w.value("SELECT count(*) FROM events") == eventsAfter)

    // Bad input: the field and the rule named, 400, nothing written.
    let bad: [(String, String, String)] = [
      (
        "/v1/invoices/\(transferA)/transfers",
        #"{"amount": {"minor": 12.5, "currency": "EUR"}, "sent_on": "2026-11-23", "bank_reference": "x"}"#,
        "amount.minor"
      ),
      (
        "/v1/invoices/\(transferA)/transfers",
        #"{"amount": {"minor": 1200, "currency": "EURO"}, "sent_on": "2026-11-23", "bank_reference": "x"}"#,
        "amount.currency"
      ),
      (
        "/v1/accounts/1/cards",
        #"{"token": "4242424242424242", "brand": "visa", "last4": "4242", "expiry": "12/2030"}"#, "token"
      ),
      (
        "/v1/accounts/1/cards", #"{"token": "tok_ok", "brand": "visa", "last4": "4242", "expiry": "13/2030"}"#, "expiry"
      ),
      (
        "/v1/accounts/1/cards",
        #"{"token": "tok_ok", "brand": "visa", "last4": "4242", "expiry": "12/2030", "cvc": "123"}"#, "cvc"
      ),
      (
        "/v1/invoices/\(transferA)/transfers",
        #"{"amount": {"minor": 1200, "currency": "EUR", "minor": 120000}, "sent_on": "2026-11-23", "bank_reference": "x"}"#,
        "amount.minor"
      ),
      (
        "/v1/accounts/1/cards",
        #"{"token": "tok_ok", "brand": "visa", "last4": "4242", "expiry": "12/2030", "to\u006ben": "tok_other"}"#,
        "token"
      ),
      ("/v1/invoices/\(transferA)/pause", #"{"proof": 7}"#, "proof"),
      ("/v1/invoices/\(transferA)/pause", #"[1, 2]"#, "body"),
    ]
    for (path, body, param) in bad {
      let answer = try server.call("POST", path, key: dash, body: body)
      #expect(answer.status == 400 && answer.param == param, "\(path) \(body): \(answer.text)")
    }
    #expect(try server.get("/v1/accounts/1").status == 401)
    #expect(try server.get("/v1/accounts/1", key: "ldk_not-a-key").status == 401)
    #expect(try w.value("SELECT count(*) FROM events") == eventsAfter)

    // Every change is an event whose actor is the role and whose reason names the key.
    let added = try w.value("SELECT actor || '|' || reason FROM events WHERE kind = 'card_added' ORDER BY id LIMIT 1")
    #expect(added.hasPrefix("customer|") && added.contains("API key 'dashboard-marie'"), "\(added)")
    let pause = try w.value("SELECT actor || '|' || reason FROM events WHERE kind = 'invoice_paused'")
    #expect(pause.hasPrefix("customer|") && pause.contains("dashboard-marie"), "\(pause)")
    // Staff resume it; a revoked key is refused from then on.
    let resumed = try server.call("POST", "/v1/invoices/\(transferA)/resume", key: staff)
    #expect(resumed.status == 200 && resumed.object["paused"] as? Bool == false, "\(resumed.text)")
    #expect(try w.value("SELECT actor FROM events WHERE kind = 'invoice_resumed'") == "staff")
    try w.ok(["api-key", "revoke", "dashboard-marie"])
    #expect(try server.get("/v1/accounts/1", key: dash).status == 401)
    // Only digests of the keys are in the file.
    for key in [dash, reader, staff] {
      #expect(try w.value("SELECT count(*) FROM api_keys WHERE secret_sha256 = '\(key)' OR prefix = '\(key)'") == "0")
    }
    server.stop()
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// `api.socket_group` gives the socket to a dashboard's group, with the configured mode
  /// (root may give it to any group, as here; the daemon otherwise needs to be a member); a
  /// group the host lacks, or a name that is none, stops serve before it listens, naming
  /// the setting.
  @Test func theSocketIsGivenToTheConfiguredGroup() throws {
    let w = try Workspace()
    try w.ok(["migrate"])
    // "daemon" (gid 1) as root; else a group of this process that is not its own.
    let own = getegid()
    var groups = [gid_t](repeating: 0, count: 64)
    let count = Int(max(0, getgroups(64, &groups)))
    let other = geteuid() == 0 ? 1 : groups.prefix(count).first { $0 != own } ?? own
    let server = try APIServer(w, apiExtra: #""socket_group": "\#(other)", "socket_mode": "0660""#)
    let attributes = try FileManager.default.attributesOfItem(atPath: server.socket)
    #expect((attributes[.groupOwnerAccountID] as? NSNumber)?.uint32Value == other, "\(attributes)")
    #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o660, "\(attributes)")
    #expect(try server.call("GET", "/healthz", unix: true).status == 200)
    server.stop()
    if geteuid() == 0 {
      let named = try APIServer(w, apiExtra: #""socket_group": "daemon""#)
      let group = try FileManager.default.attributesOfItem(atPath: named.socket)[.groupOwnerAccountID]
      #expect((group as? NSNumber)?.uint32Value == 1)
      named.stop()
    }
    let refusals = [
      ("ledgerd-no-such-group", "api.socket_group: 'ledgerd-no-such-group' is not a group of this host"),
      ("../wheel", "api.socket_group: '../wheel' must be a group name or number"),
    ]
    for (group, message) in refusals {
      let path = try w.writeConfig(#"{"api": {"socket_group": "\#(group)"}}"#)
      let serve = try w.launch(["serve", "--config", path], log: "refused.log")
      #expect(waitForExit(serve, seconds: 20))
      #expect(serve.terminationStatus == 65)
      #expect(w.serveLog("refused.log").contains(message), "\(w.serveLog("refused.log"))")
    }
  }

  /// Every operation of /openapi.json is served (none answers "no route"), each answer's
  /// status is one the document gives for it, and the routes a dashboard needs are there.
  @Test func theOpenAPIDocumentMatchesEveryRoute() throws {
    let w = try Workspace()
    let (transferA, _, _) = try Self.book(w)
    try w.ok(["card", "add", "1", "--token", "tok_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2030"])
    let staff = try w.apiKey("ops", role: "staff")
    let server = try APIServer(w)
    defer { server.stop() }
    let document = try server.get("/openapi.json").object
    #expect(document["openapi"] as? String == "3.1.0")
    let paths = try #require(document["paths"] as? [String: [String: Any]])
    var operations: [(String, String)] = []
    for (path, methods) in paths {
      for method in methods.keys { operations.append((method.uppercased(), path)) }
    }
    let expected = [
      ("GET", "/v1/accounts"), ("POST", "/v1/accounts"), ("GET", "/v1/accounts/{account}"),
      ("POST", "/v1/accounts/{account}"), ("POST", "/v1/accounts/{account}/plan"),
      ("GET", "/v1/accounts/{account}/cards"), ("POST", "/v1/accounts/{account}/cards"),
      ("POST", "/v1/cards/{card}/default"), ("DELETE", "/v1/cards/{card}"),
      ("GET", "/v1/accounts/{account}/invoices"), ("GET", "/v1/invoices/{invoice}"),
      ("POST", "/v1/invoices/{invoice}/pause"), ("POST", "/v1/invoices/{invoice}/resume"),
      ("POST", "/v1/invoices/{invoice}/void"), ("POST", "/v1/invoices/{invoice}/transfers"),
      ("POST", "/v1/invoices/{invoice}/payments"), ("GET", "/v1/accounts/{account}/charge_attempts"),
      ("GET", "/v1/accounts/{account}/explain"), ("GET", "/v1/accounts/{account}/dunning"),
      ("POST", "/webhooks/stripe"), ("GET", "/metrics"), ("GET", "/healthz"), ("GET", "/readyz"),
      ("GET", "/openapi.json"),
    ]
    for (method, path) in expected {
      #expect(operations.contains { $0 == (method, path) }, "\(method) \(path) is not in /openapi.json")
    }
    #expect(operations.count == expected.count, "\(operations)")
    for (method, path) in operations where !(method == "DELETE") {
      let concrete = path.replacingOccurrences(of: "{account}", with: "1").replacingOccurrences(
        of: "{card}", with: "1"
      ).replacingOccurrences(of: "{invoice}", with: transferA)
      let answer = try server.call(method, concrete, key: staff, body: method == "GET" ? nil : "{}")
      let documented = (paths[path]?[method.lowercased()] as? [String: Any])?["responses"] as? [String: Any] ?? [:]
      #expect(
        documented[String(answer.status)] != nil || documented["default"] != nil,
        "\(method) \(path) answered \(answer.status), not in the document")
      #expect(!answer.text.contains("route_missing"), "\(method) \(path): \(answer.text)")
      if answer.status >= 400 {
        #expect(answer.object["error"] is [String: Any], "\(method) \(path): \(answer.text)")
      }
    }
    #expect(try server.call("DELETE", "/v1/cards/1", key: staff).status == 200)
    let unknown = try server.get("/v1/nothing-here", key: staff)
    #expect(unknown.status == 404 && unknown.text.contains("route_missing"))
  }

  /// `/metrics` in Prometheus text, read by prometheus-client's own parser: the charge
  /// counters, the processor's latency histogram, the states read from the file; no label
  /// names an account.
  @Test func metricsParseWithPrometheusClient() throws {
    let w = try Workspace()
    _ = try Self.book(w)
    try w.ok([
      "card", "add", "1", "--token", "tok_decline_insufficient_funds", "--brand", "visa", "--last4", "0341",
      "--expiry", "12/2030",
    ])
    try w.ok(["account", "add", "--email", "x@example.fr", "--name", "X", "--plan", "pro"])
    try w.ok(["card", "add", "3", "--token", "tok_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2030"])
    let server = try APIServer(w)
    defer { server.stop() }
    #expect(waitUntil(seconds: 20) { (try? w.value("SELECT count(*) FROM charge_attempts")) == "2" })
    let parsed = try w.run("python3", [apitool, "metrics", "--url", server.base + "/metrics"])
    #expect(parsed.status == 0, "\(parsed.stderr)")
    let metrics = try #require(try parsed.json() as? [String: Any])
    let families = try #require(metrics["families"] as? [String: String])
    let samples = try #require(metrics["samples"] as? [[Any]])
    #expect(families["ledgerd_charge_attempts"] == "counter", "\(families)")
    #expect(families["ledgerd_processor_call_seconds"] == "histogram")
    #expect(families["ledgerd_tick_seconds"] == "histogram")
    #expect(families["ledgerd_accounts"] == "gauge")
    #expect(families["ledgerd_build_info"] == "gauge")
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
      samples.first { sample in
        sample[0] as? String == name && labels.allSatisfy { (sample[1] as? [String: String])?[$0.key] == $0.value }
      }?[2] as? Double
    }
    #expect(value("ledgerd_charge_attempts_total", ["outcome": "declined", "reason": "insufficient_funds"]) == 1)
    #expect(value("ledgerd_charge_attempts_total", ["outcome": "succeeded"]) == 1)
    #expect(value("ledgerd_accounts", ["status": "past_due"]) == 1)
    #expect(value("ledgerd_pending_charge_attempts") == 0)
    for sample in samples {
      let labels = (sample[1] as? [String: String] ?? [:]).keys
      #expect(!labels.contains { $0.contains("account") || $0 == "id" }, "\(sample)")
    }
    let health = try server.get("/healthz")
    #expect(health.status == 200)
    #expect(try server.get("/readyz").object["status"] as? String == "ready")
  }

  /// schemathesis, from /openapi.json against the running daemon with a staff key, bounded:
  /// no 5xx, no answer outside the document for valid requests; then invalid ones, no 5xx;
  /// the ledger's check clean afterwards.
  @Test func schemathesisFindsNothing() throws {
    let w = try Workspace()
    _ = try Self.book(w)
    try w.ok(["card", "add", "1", "--token", "tok_ok", "--brand", "visa", "--last4", "4242", "--expiry", "12/2030"])
    let staff = try w.apiKey("fuzz", role: "staff")
    let server = try APIServer(w)
    defer { server.stop() }
    let common = [
      "run", server.base + "/openapi.json", "-H", "Authorization: Bearer \(staff)", "--generation-codec", "ascii",
      "--no-color", "--seed", "20261206",
    ]
    let positive = try w.run(
      "schemathesis",
      common + [
        "--mode", "positive", "--max-examples", "12",
        "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
      ])
    #expect(positive.status == 0, "\(positive.stdout.suffix(4000))")
    // Invalid requests too: never a 5xx. (A header with control characters is refused by
    // the HTTP parser with a bare 400 before the API sees it; only 5xx is checked here.)
    let negative = try w.run(
      "schemathesis",
      common + [
        "--mode", "negative", "--max-examples", "12", "--checks", "not_a_server_error", "--suppress-health-check",
        "all",
      ])
    #expect(negative.status == 0, "\(negative.stdout.suffix(4000))")
    for run in [positive, negative] {
      let summary = run.stdout.split(separator: "\n").filter { $0.contains("generated") || $0.contains(" in ") }
      print("schemathesis: " + summary.suffix(2).joined(separator: " | "))
    }
    server.stop()
    let check = try w.ledgerd(["check"])
    #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
  }
}
