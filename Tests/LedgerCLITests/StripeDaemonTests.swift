import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `ledgerd serve` on the Stripe adapter: crashes between a call and its record, a
/// processor that is down at start, the secret key kept out of everything, bad input.
@Suite struct StripeDaemonTests {
  /// A book of card invoices charged by `serve` through the Stripe-shaped server, every
  /// answer held 150 ms so that SIGKILLs land between calls and their records, killed and
  /// restarted until all work is done. Stripe made each charge once per key; every charge
  /// it made is a payment in the ledger, and the reverse; no invoice was paid twice.
  @Test func sigkillBetweenTheCallAndItsRecordNeverChargesTwice() throws {
    let w = try Workspace()
    w.now = "2026-11-02T10:00:00Z"
    let server = try StripeServer(w, key: Workspace.stripeTestKey())
    try server.control(#"{"delay_next": 1000000, "delay_ms": 150}"#)
    try w.useStripe(server, processor: #""max_in_flight": 4"#)
    let built = try w.ledgerd(["simulate", "--build-only", "--accounts", "60", "--db", w.db])
    #expect(built.status == 0, "\(built.stderr)")
    // The book's cards become Stripe PaymentMethods of customers.
    let moved = try w.sqlite(
      """
      UPDATE cards SET token = 'pm_ok_' || id;
      UPDATE accounts SET processor_customer = 'cus_' || id;
      """, readOnly: false)
    #expect(moved.status == 0, "\(moved.stderr)")
    let invoices = try w.value("SELECT count(*) FROM invoices WHERE status = 'open'")

    var killed = 0
    for _ in 0..<15 {
      let serve = try w.launch(["serve"])
      usleep(UInt32.random(in: 200_000...900_000))
      if serve.isRunning {
        kill(serve.processIdentifier, SIGKILL)
        killed += 1
      }
      serve.waitUntilExit()
    }
    try server.control(#"{"delay_next": null}"#)
    let (remaining, restarts) = try w.serveUntilDone(["serve"], starts: 10, seconds: 60)
    #expect(remaining == 0, "work left after \(restarts) restarts")

    let charges = try server.charges().filter { $0["status"] as? String == "succeeded" }
    let keys = charges.compactMap { $0["idempotency_key"] as? String }
    #expect(Set(keys).count == keys.count, "one charge per key")
    // Each charge Stripe made is the ledger's succeeded attempt with that key and reference.
    var attempts: [String: (status: String, ref: String, invoices: [String])] = [:]
    for line in try w.sqlite(
      """
      SELECT a.idempotency_key, a.status, coalesce(a.processor_ref, ''), group_concat(ci.invoice_id)
      FROM charge_attempts a JOIN charge_attempt_invoices ci ON ci.attempt_id = a.id GROUP BY a.id
      """
    ).stdout.split(separator: "\n") {
      let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
      attempts[f[0]] = (f[1], f[2], f[3].split(separator: ",").map(String.init))
    }
    var paidInvoices: [String] = []
    for charge in charges {
      let key = charge["idempotency_key"] as? String ?? ""
      let attempt = attempts[key]
      #expect(attempt?.status == "succeeded", "Stripe charged \(key); the ledger has \(String(describing: attempt))")
      #expect(attempt?.ref == "\(charge["payment_intent"] ?? "")/\(charge["id"] ?? "")")
      paidInvoices += attempt?.invoices ?? []
    }
    #expect(Set(paidInvoices).count == paidInvoices.count, "no invoice paid by two charges")
    #expect(attempts.values.filter { $0.status == "succeeded" }.count == charges.count)
    #expect(try w.value("SELECT count(*) FROM charge_attempts WHERE status = 'pending'") == "0")
    let check = try w.ledgerd(["check"])
    #expect(check.status == 0, "\(check.stdout)")
    let recovered = try w.value("SELECT count(*) FROM payments WHERE actor = 'system' AND method = 'card'")
    #expect(killed > 0 && charges.count > 0)
    print(
      "stripe crash test: \(invoices) open invoices, \(killed) SIGKILLs, \(restarts) final restart(s), \(charges.count) charges at Stripe, \(recovered) recorded after a restart, none twice, check ok"
    )
  }

  /// Stripe unreachable when the daemon starts: it says so, charges nothing, stays up
  /// (ready, feeding the watchdog), and once Stripe answers, charges what is due. `run-due`
  /// in the same case exits 75 (a temporary failure: run it again), having charged nothing.
  @Test func serveWaitsForStripeBeforeCharging() throws {
    let w = try Workspace()
    let port = try StripeServer.freePort(w)
    let key = Workspace.stripeTestKey()
    try w.useStripe(base: "http://127.0.0.1:\(port)", key: key)
    try w.stripeAccount("Early", token: "pm_ok_early")
    let runDue = try w.runDue()
    #expect(runDue.status == 75, "\(runDue.status) \(runDue.stderr)")
    #expect(runDue.stderr.contains("processor unreachable") && runDue.stderr.contains("run the command again"))
    #expect(try w.value("SELECT count(*) FROM charge_attempts") == "0")
    let serve = try w.launch(["serve"])
    defer { if serve.isRunning { kill(serve.processIdentifier, SIGKILL) } }
    #expect(waitUntil(seconds: 20) { w.serveLog().contains("nothing is charged until it can") })
    #expect(serve.isRunning)
    #expect(try w.value("SELECT count(*) FROM charge_attempts") == "0")
    let server = try StripeServer(w, key: key, port: port)
    #expect(waitUntil(seconds: 30) { (try? w.value("SELECT status FROM invoices")) == "paid" })
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10))
    #expect(serve.terminationStatus == 0)
    #expect(try server.charges().count == 1)
  }

  /// The secret key is read, sent in the Authorization header and nowhere else: not in a
  /// log line (a refused key included), an error, `--json` output, the database or its WAL.
  @Test func theSecretKeyIsNeverShown() throws {
    let w = try Workspace()
    let key = Workspace.stripeTestKey()
    let server = try StripeServer(w, key: key)
    try w.useStripe(server)
    let account = try w.stripeAccount("Secret", token: "pm_ok_secret")
    var seen: [String] = []
    let paid = try w.runDue()
    seen += [paid.stdout, paid.stderr]
    #expect(try w.value("SELECT status FROM invoices") == "paid")
    for args in [["account", "show", String(account), "--json"], ["explain", String(account), "--json"], ["check"]] {
      let out = try w.ledgerd(args)
      seen += [out.stdout, out.stderr]
    }
    // A key Stripe refuses (401): a defect, logged, never quoted.
    let refusedKey = Workspace.stripeTestKey()
    try w.useStripe(server, key: refusedKey)
    try w.stripeAccount("Refused", token: "pm_ok_refused")
    let refused = try w.runDue()
    seen += [refused.stdout, refused.stderr]
    #expect(refused.stderr.contains("refused the API key"), "\(refused.stderr)")
    // A key file others may read, and one that is not a key: refused without quoting it.
    try w.useStripe(server)
    let keyFile = w.directory + "/stripe-key"
    try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
    let open = try w.runDue()
    #expect(open.status == 65 && open.stderr.contains("processor.secret_key_file"), "\(open.stderr)")
    seen += [open.stdout, open.stderr]
    try Data((key + " extra words\n").utf8).write(to: URL(fileURLWithPath: keyFile))
    try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: keyFile)
    let garbled = try w.runDue()
    #expect(garbled.status == 65 && garbled.stderr.contains("processor.secret_key_file"), "\(garbled.stderr)")
    seen += [garbled.stdout, garbled.stderr]
    // A daemon's log, with a charge and a lost answer in it.
    try w.useStripe(server)
    try w.stripeAccount("Daemon", token: "pm_ok_daemon")
    try server.control(#"{"lose_next": 1}"#)
    let serve = try w.launch(["serve"])
    // Every account's period invoiced and paid: the one whose run stopped at the refused key
    // too, and the one whose answer was lost.
    #expect(waitUntil(seconds: 60) { (try? w.value("SELECT count(*) FROM invoices WHERE status = 'paid'")) == "3" })
    kill(serve.processIdentifier, SIGTERM)
    #expect(waitForExit(serve, seconds: 10))
    seen.append(w.serveLog())
    // A connection was lost after a charge (the log tells it, as a charge without an answer
    // or a lookup not answered yet, depending on which call met it).
    let dropped = try server.answered("dropped")
    let requests = try w.run("curl", ["-sS", server.base + "/_requests"]).stdout
    #expect(dropped == 1, "\(requests) \(w.serveLog())")

    // The key's secret part, and the part Stripe's own messages quote, appear nowhere.
    let secrets = [key, refusedKey].flatMap { [String($0.dropFirst(8)), String($0.suffix(6))] }
    for text in seen {
      for secret in secrets { #expect(!text.contains(secret), "the key appears in: \(text.prefix(300))") }
    }
    for file in [w.db, w.db + "-wal", w.db + ".processor.db"] {
      guard let bytes = FileManager.default.contents(atPath: file) else { continue }
      for secret in secrets { #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file) holds the key") }
    }
  }

  /// Stripe's identifiers are checked where they enter: a malformed customer or
  /// PaymentMethod id, a card that is not a PaymentMethod, a card on an account without a
  /// customer, a key's file missing, a settings error; each names the field and the rule,
  /// and the ledger file is unchanged.
  @Test func badStripeInputIsRefusedAndNothingWritten() throws {
    let w = try Workspace()
    let server = try StripeServer(w, key: Workspace.stripeTestKey())
    try w.useStripe(server)
    let account = try w.stripeAccount("Good", token: "pm_ok_good")
    try w.ok(["account", "add", "--email", "bare@example.com", "--name", "Bare", "--plan", "pro"])
    let cases: [(args: [String], field: String, words: String)] = [
      (
        ["account", "add", "--email", "x@example.com", "--name", "X", "--processor-customer", "cus_bad-id"],
        "--processor-customer", "is not a Stripe customer id"
      ),
      (["account", "update", String(account), "--processor-customer", "acct_123"], "--processor-customer", "cus_"),
      (
        [
          "card", "add", String(account), "--token", "tok_visa", "--brand", "visa", "--last4", "4242", "--expiry",
          "12/2030",
        ],
        "--token", "PaymentMethod"
      ),
      (
        [
          "card", "add", String(account), "--token", "pm_bad.id", "--brand", "visa", "--last4", "4242", "--expiry",
          "12/2030",
        ],
        "--token", "PaymentMethod"
      ),
      (
        ["card", "add", "2", "--token", "pm_ok_bare", "--brand", "visa", "--last4", "4242", "--expiry", "12/2030"],
        "account", "has no Stripe customer"
      ),
      (["card", "update", "1", "--token", "card_123"], "--token", "PaymentMethod"),
    ]
    for c in cases {
      let before = w.fingerprint()
      let out = try w.ledgerd(c.args)
      #expect(out.status == 65, "\(c.args): \(out.stderr)")
      #expect(out.stderr.contains(c.field) && out.stderr.contains(c.words), "\(c.args): \(out.stderr)")
      #expect(w.fingerprint() == before, "\(c.args) wrote to the ledger")
    }
    // The key's file missing: refused before anything is charged.
    try FileManager.default.removeItem(atPath: w.directory + "/stripe-key")
    let before = w.fingerprint()
    let missing = try w.runDue()
    #expect(missing.status == 65 && missing.stderr.contains("processor.secret_key_file"), "\(missing.stderr)")
    #expect(w.fingerprint() == before)
  }
}
