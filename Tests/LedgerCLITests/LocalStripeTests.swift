import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The Stripe adapter against localstripe, a stateful Stripe emulator, through
/// `stripetool.py`'s proxy, which adds what localstripe lacks (it ignores
/// `Idempotency-Key` and gives no `decline_code`). Customers and cards are made with its
/// HTTP API, as a host's dashboard makes them at Stripe, then `ledgerd` charges them.
@Suite struct LocalStripeTests {
  /// A customer at localstripe with a card of `number` attached: the PaymentMethod's id.
  static func card(_ server: StripeServer, customer: String, number: String) throws -> String {
    let method = try server.api(
      "POST", "/v1/payment_methods",
      ["type=card", "card[number]=\(number)", "card[exp_month]=12", "card[exp_year]=2030", "card[cvc]=123"])
    let id = try #require(method["id"] as? String)
    _ = try server.api("POST", "/v1/payment_methods/\(id)/attach", ["customer=\(customer)"])
    return id
  }

  static func customer(_ server: StripeServer, email: String) throws -> String {
    try #require(try server.api("POST", "/v1/customers", ["email=\(email)"])["id"] as? String)
  }

  /// A card that pays, one localstripe declines, and one that asks for 3-D Secure: paid;
  /// declined as a bank block (a soft decline, retried on schedule); refused as
  /// "authentication required" (hard: the customer must act), each with the raw code kept.
  @Test func aChargeSucceedsDeclinesOrAsksForAuthentication() throws {
    let w = try Workspace()
    let emulator = try LocalStripe(w)
    let server = try StripeServer(w, key: Workspace.stripeTestKey(), upstream: emulator.base)
    try w.useStripe(server)
    var accounts: [String: Int] = [:]
    for (name, number) in [
      ("Paying", "4242424242424242"), ("Declined", "4000000000000341"), ("Secure", "4000002760003184"),
    ] {
      let customer = try Self.customer(server, email: "\(name.lowercased())@example.com")
      let method = try Self.card(server, customer: customer, number: number)
      accounts[name] = try w.stripeAccount(name, token: method, customer: customer)
    }
    let run = try w.runDue()
    #expect(run.status == 0, "\(run.stderr)")
    func attempt(_ name: String) throws -> String {
      try w.value(
        "SELECT status || ' ' || coalesce(raw_code, '-') || ' ' || coalesce(reason, '-') FROM charge_attempts WHERE account_id = \(accounts[name] ?? 0)"
      )
    }
    #expect(try attempt("Paying") == "succeeded - -")
    #expect(try attempt("Declined") == "declined generic_decline bank_block")
    #expect(try attempt("Secure") == "declined authentication_required authentication_required")
    // The payment's reference is localstripe's PaymentIntent, which says it succeeded.
    let reference = try w.value("SELECT processor_ref FROM charge_attempts WHERE status = 'succeeded'")
    let intent = String(reference.prefix { $0 != "/" })
    let read = try server.api("GET", "/v1/payment_intents/\(intent)")
    #expect(read["status"] as? String == "succeeded")
    #expect(read["amount"] as? Int == 1900)
    #expect((read["metadata"] as? [String: Any])?["ledger_attempt"] != nil)
    #expect(try w.value("SELECT status FROM invoices WHERE account_id = \(accounts["Paying"] ?? 0)") == "paid")
    #expect(try w.ledgerd(["check"]).status == 0)
  }

  /// A charge answered "processing" keeps its PaymentIntent's id on the pending attempt;
  /// the look for pending attempts reads that PaymentIntent from localstripe (it has
  /// succeeded since) and records the payment once, never sending the charge again.
  @Test func aProcessingChargeIsLookedUpByItsPaymentIntent() throws {
    let w = try Workspace()
    let emulator = try LocalStripe(w)
    let server = try StripeServer(w, key: Workspace.stripeTestKey(), upstream: emulator.base)
    try w.useStripe(server)
    let customer = try Self.customer(server, email: "slow@example.com")
    let method = try Self.card(server, customer: customer, number: "4242424242424242")
    try w.stripeAccount("Slow", token: method, customer: customer)
    try server.control(#"{"processing_next": 1}"#)
    let run = try w.runDue()
    #expect(run.status == 0, "\(run.stderr)")
    let reference = try w.value("SELECT status || ' ' || processor_ref FROM charge_attempts")
    #expect(reference.hasPrefix("succeeded pi_") && reference.contains("/ch_"), "\(reference)")
    let intent = String(reference.dropFirst("succeeded ".count).prefix { $0 != "/" })
    // Asked by its id, after the answer that said "processing"; created once.
    let log = try String(contentsOfFile: server.log, encoding: .utf8).split(separator: "\n")
    #expect(log.contains { $0.contains(#""method": "GET""#) && $0.contains("/v1/payment_intents/\(intent)") })
    #expect(log.filter { $0.contains(#""method": "POST""#) && $0.contains(#""/v1/payment_intents""#) }.count == 1)
    let listed = try server.api("GET", "/v1/payment_intents?limit=100&customer=\(customer)")
    #expect((listed["data"] as? [Any])?.count == 1)
    #expect(try w.value("SELECT count(*) FROM payments") == "1")
    #expect(try w.value("SELECT status FROM invoices") == "paid")
    #expect(try w.ledgerd(["check"]).status == 0)
  }
}
