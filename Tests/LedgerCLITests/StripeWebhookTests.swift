import Foundation
import Testing

/// `POST /webhooks/stripe` against a running `ledgerd serve`, each event signed by Stripe's
/// own Python library: a PaymentIntent's outcome resolves the attempt a lost answer left
/// pending while Stripe cannot be asked; repeated, reordered, expired and wrongly signed
/// deliveries change nothing; refunds and disputes are recorded once.
@Suite(.serialized) struct StripeWebhookTests {
  @Test func signedEventsResolveRefundAndDisputeOnce() throws {
    let w = try Workspace()
    let stripe = try StripeServer(w, key: Workspace.stripeTestKey())
    let config = try w.useStripe(stripe)
    let account = try w.stripeAccount("Hook", token: "pm_ok_hook")
    let secret = "whsec_" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
    let secretFile = w.directory + "/stripe-webhook-secret"
    _ = FileManager.default.createFile(
      atPath: secretFile, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
    // The charge's answer is lost, and Stripe answers nothing about it for now: the attempt
    // stays pending until an event says what became of it.
    try stripe.control(#"{"lose_next": 1, "unavailable_replays_next": 1000}"#)
    w.useRealTime()
    let stripeConfig = try String(contentsOfFile: config, encoding: .utf8).trimmingCharacters(
      in: .whitespacesAndNewlines)
    let server = try APIServer(
      w, config: String(stripeConfig.dropFirst().dropLast()),
      apiExtra: #""stripe_webhook_secret_file": "\#(secretFile)""#)
    defer { server.stop() }
    #expect(
      waitUntil(seconds: 30) {
        (try? stripe.charges().count) == 1 && (try? w.value("SELECT status FROM charge_attempts")) == "pending"
      }, "\(w.serveLog())")
    let intent = try #require(
      (try stripe.api("GET", "/v1/payment_intents?customer=cus_Hook")["data"] as? [[String: Any]])?.first)
    let intentID = intent["id"] as? String ?? ""
    let chargeID = intent["latest_charge"] as? String ?? ""
    #expect(intentID.hasPrefix("pi_") && chargeID.hasPrefix("ch_"))

    let url = server.base + "/webhooks/stripe"
    func send(
      _ id: String, _ type: String, _ object: [String: Any], secrets: [String]? = nil, age: Int = 0,
      tamper: Bool = false
    ) throws -> (status: Int, result: String, param: String?) {
      let event: [String: Any] = [
        "id": id, "object": "event", "type": type, "created": Int(Date().timeIntervalSince1970) - age,
        "livemode": false, "data": ["object": object],
      ]
      let file = w.directory + "/\(id)-\(UUID().uuidString).json"
      try JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]).write(to: URL(fileURLWithPath: file))
      var args = [apitool, "stripe-send", "--url", url, "--event", file, "--age", String(age)]
      for s in secrets ?? [secret] { args += ["--secret", s] }
      if tamper { args.append("--tamper") }
      let sent = try w.run("python3", args)
      guard sent.status == 0, let answer = try sent.json() as? [String: Any] else {
        throw Failure("apitool: \(sent.stdout) \(sent.stderr)")
      }
      let body = answer["body"] as? [String: Any] ?? [:]
      return (
        answer["status"] as? Int ?? 0, body["result"] as? String ?? "",
        (body["error"] as? [String: Any])?["param"] as? String
      )
    }

    // Accepted: the attempt is resolved at once, though Stripe still answers nothing.
    let succeeded = try send("evt_succeeded_1", "payment_intent.succeeded", intent)
    #expect(succeeded.status == 200 && succeeded.result.hasSuffix("succeeded"), "\(succeeded)")
    #expect(
      waitUntil(seconds: 20) { (try? w.value("SELECT status FROM charge_attempts")) == "succeeded" },
      "\(w.serveLog())")
    #expect(try w.value("SELECT processor_ref FROM charge_attempts") == "\(intentID)/\(chargeID)")
    #expect(try w.value("SELECT count(*) FROM payments") == "1")
    #expect(w.serveLog().contains("answered by the processor's webhook"))

    // Replayed: nothing twice.
    let replayed = try send("evt_succeeded_1", "payment_intent.succeeded", intent)
    #expect(replayed.status == 200 && replayed.result == "duplicate", "\(replayed)")
    // Reordered: "processing" after "succeeded" changes nothing.
    var processing = intent
    processing["status"] = "processing"
    let late = try send("evt_processing_0", "payment_intent.processing", processing)
    #expect(late.status == 200, "\(late)")
    #expect(
      waitUntil(seconds: 20) {
        (try? w.value("SELECT count(*) FROM processor_events WHERE applied_at IS NULL")) == "0"
      })
    #expect(try w.value("SELECT status FROM charge_attempts") == "succeeded")
    #expect(try w.value("SELECT count(*) FROM payments") == "1")

    // Expired, wrongly signed, tampered with: 400, and nothing kept.
    let expired = try send("evt_old", "payment_intent.succeeded", intent, age: 600)
    #expect(expired.status == 400 && expired.param == "Stripe-Signature", "\(expired)")
    let wrong = try send("evt_wrong", "payment_intent.succeeded", intent, secrets: ["whsec_notoursatall"])
    #expect(wrong.status == 400 && wrong.param == "Stripe-Signature", "\(wrong)")
    let tampered = try send("evt_tampered", "payment_intent.succeeded", intent, tamper: true)
    #expect(tampered.status == 400, "\(tampered)")
    #expect(
      try w.value("SELECT count(*) FROM processor_events WHERE event_id IN ('evt_old', 'evt_wrong', 'evt_tampered')")
        == "0")
    // A secret being rotated: two v1 values, one of them ours.
    let rotated = try send("evt_rotated", "customer.updated", ["id": "cus_Hook"], secrets: ["whsec_previous", secret])
    #expect(rotated.status == 200 && rotated.result == "ignored", "\(rotated)")

    // A refund, delivered twice and then restated, then completed: posted once per part.
    let refund: [String: Any] = [
      "id": chargeID, "object": "charge", "payment_intent": intentID, "amount": 1900, "amount_refunded": 500,
      "currency": "eur",
    ]
    #expect(try send("evt_refund_1", "charge.refunded", refund).result.hasPrefix("refund of 5.00 EUR"))
    #expect(try send("evt_refund_1", "charge.refunded", refund).result == "duplicate")
    #expect(try send("evt_refund_1b", "charge.refunded", refund).result == "refund already recorded")
    var whole = refund
    whole["amount_refunded"] = 1900
    #expect(try send("evt_refund_2", "charge.refunded", whole).result.hasPrefix("refund of 14.00 EUR"))
    #expect(try send("evt_refund_1c", "charge.refunded", refund).result == "refund already recorded")
    #expect(try w.value("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == "2")
    #expect(
      try w.value("SELECT count(*) FROM events WHERE kind = 'payment_refunded' AND account_id = \(account)") == "2")
    // A dispute: a finding for staff.
    let dispute: [String: Any] = [
      "id": "dp_1", "object": "dispute", "charge": chargeID, "payment_intent": intentID, "amount": 1900,
      "currency": "eur", "reason": "fraudulent",
    ]
    #expect(try send("evt_dispute_1", "charge.dispute.created", dispute).status == 200)
    #expect(try send("evt_dispute_1", "charge.dispute.created", dispute).result == "duplicate")
    #expect(try w.value("SELECT count(*) FROM events WHERE kind = 'payment_disputed'") == "1")

    // The night's balance report lists the charge and its refund: the refund row says the
    // webhook posted it already, and nothing more is posted.
    let key = try w.value("SELECT idempotency_key FROM charge_attempts")
    let report = try w.write(
      "balance.csv",
      ReconciliationTests.reportHeader
        + ReconciliationTests.reportRow(
          "txn_ch", "19.00", "0.55", "18.45", "charge", source: chargeID, intent: intentID, key: key)
        + ReconciliationTests.reportRow(
          "txn_re", "-19.00", "0.00", "-19.00", "refund", source: "re_1", intent: intentID, key: ""))
    let reconciled = try w.ledgerd(["reconcile", "processor", report, "--json"])
    let findings = ((try reconciled.json() as? [String: Any])?["findings"] as? [[String: Any]]) ?? []
    let refundFinding = findings.first { ($0["reference"] as? String) == "txn_re" }?["detail"] as? String ?? ""
    #expect(
      refundFinding.contains("Stripe's webhook already posted refunds of 19.00 EUR on this charge"),
      "\(reconciled.stdout) \(reconciled.stderr)")
    #expect(try w.value("SELECT count(*) FROM journal_entries WHERE kind = 'refund'") == "2")

    server.stop()
    let check = try w.ledgerd(["check"])
    #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    #expect(try stripe.charges().count == 1)
  }
}
