import ArgumentParser
import Foundation
import LedgerCore
import LedgerStore

struct WebhookCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "webhook", abstract: "Webhooks to the host: endpoints, deliveries, retries.",
    discussion: """
      `ledgerd serve` POSTs each event of a subscribed type to every enabled endpoint, signed \
      as Standard Webhooks says (webhook-id, webhook-timestamp, webhook-signature), and tries \
      again with back-off until the endpoint answers 2xx. See docs/webhooks.md.
      """,
    subcommands: [Add.self, List.self, Disable.self, Enable.self, Deliveries.self, Retry.self])

  struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Subscribe an endpoint; prints its signing secret, which is not shown again.",
      discussion: """
        The URL must use https, or http to this machine (localhost, 127.0.0.1, [::1]). Without \
        --event, every webhook type is sent there; the types are invoice.issued, \
        invoice.payment_received, invoice.payment_failed, invoice.paused, invoice.resumed, \
        invoice.voided, account.past_due, account.downgraded and transfer.window_ended. Only \
        events recorded from now on are sent.
        """)
    @Argument(help: "Where to POST the webhooks.") var url: String
    @Option(
      name: .customLong("event"),
      help: ArgumentHelp("A webhook type to send there (repeat for several; default all).", valueName: "TYPE"))
    var events: [String] = []
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    struct Added: Encodable {
      let id: Int64
      let url: String
      let eventTypes: [String]
      let createdAt: String
      let secret: String
    }

    func run() throws {
      try runGuarded {
        let added = try database.open(.readWrite).addWebhookEndpoint(url: url, eventTypes: events)
        let e = added.endpoint
        try output.emit(
          Added(id: e.id, url: e.url, eventTypes: e.eventTypes, createdAt: e.createdAt, secret: added.secret)
        ) {
          """
          endpoint \(e.id): \(e.url) (\(describe(e.eventTypes)))
          secret: \(added.secret)
          Keep the secret where the receiver reads it: it verifies each delivery's signature, and is not shown again.
          """
        }
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the endpoints (without their secrets).")
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let endpoints = try database.open(.readOnly).webhookEndpoints()
        try output.emit(endpoints) {
          table(
            ["ID", "URL", "EVENTS", "STATUS", "CREATED"],
            endpoints.map { e in
              [
                String(e.id), e.url, describe(e.eventTypes), e.disabledAt.map { "disabled \($0)" } ?? e.status,
                e.createdAt,
              ]
            })
        }
      }
    }
  }

  struct Disable: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Stop sending to an endpoint; its deliveries still waiting are marked failed.")
    @Argument(help: "The endpoint's id.") var endpoint: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let e = try database.open(.readWrite).disableWebhookEndpoint(id: try parseID(endpoint, field: "ENDPOINT"))
        try output.emit(e) { "endpoint \(e.id) (\(e.url)) disabled at \(e.disabledAt ?? "?")" }
      }
    }
  }

  struct Enable: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Send to a disabled endpoint again, from the events recorded from now on.",
      discussion: """
        Events recorded while it was disabled are not sent; deliveries that disabling marked \
        failed stay failed until `ledgerd webhook retry` sends them.
        """)
    @Argument(help: "The endpoint's id.") var endpoint: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let e = try database.open(.readWrite).enableWebhookEndpoint(id: try parseID(endpoint, field: "ENDPOINT"))
        try output.emit(e) { "endpoint \(e.id) (\(e.url)) enabled" }
      }
    }
  }

  struct Deliveries: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List deliveries, newest first, with their attempts and the endpoint's last answer.")
    @Option(help: "Only deliveries in this state: pending, delivered or failed.") var status: String?
    @Option(help: "At most this many.") var limit: Int = 100
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        var filter = WebhookDeliveryFilter.all
        if let status {
          guard let chosen = WebhookDeliveryFilter(rawValue: status), chosen != .all else {
            throw InputError(field: "--status", rule: "'\(status)' must be one of pending, delivered, failed")
          }
          filter = chosen
        }
        guard (1...100_000).contains(limit) else {
          throw InputError(field: "--limit", rule: "\(limit) must be between 1 and 100000")
        }
        let deliveries = try database.open(.readOnly).webhookDeliveries(filter, limit: limit)
        try output.emit(deliveries) {
          table(
            ["ID", "ENDPOINT", "TYPE", "EVENT", "STATUS", "ATTEMPTS", "NEXT/DONE", "LAST RESULT"],
            deliveries.map { d in
              [
                String(d.id), String(d.endpointID), d.type, String(d.eventID), d.status, String(d.attempts),
                d.status == "pending" ? d.nextAttemptAt : d.deliveredAt ?? d.lastAttemptAt ?? "", d.lastResult ?? "",
              ]
            })
        }
      }
    }
  }

  struct Retry: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Send a waiting or failed delivery at once (its attempts are kept).")
    @Argument(help: "The delivery's id.") var delivery: String
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
      try runGuarded {
        let d = try database.open(.readWrite).retryWebhookDelivery(id: try parseID(delivery, field: "DELIVERY"))
        try output.emit(d) {
          "delivery \(d.id) (\(d.type) to \(d.url)) due now: ledgerd serve sends it"
        }
      }
    }
  }
}

private func describe(_ types: [String]) -> String {
  types.isEmpty ? "all events" : types.joined(separator: ", ")
}
