import Foundation
import LedgerCore
import LedgerStore
import Metrics
import Prometheus

/// `/metrics`: the counters and timers the daemon records through swift-metrics, and at
/// each scrape the ledger's backlogs and states read from the file, in Prometheus text.
public final class APIMetrics: Sendable {
  public static let shared = APIMetrics()
  let registry = PrometheusCollectorRegistry()

  /// Sends swift-metrics to this registry; once per process, before anything counts.
  public static func bootstrap(version: String) {
    var factory = PrometheusMetricsFactory(registry: shared.registry)
    factory.defaultDurationHistogramBuckets = [
      .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
      .seconds(10), .seconds(30),
    ]
    MetricsSystem.bootstrap(factory)
    shared.registry.makeGauge(
      descriptor: MetricNameDescriptor(
        metricName: "ledgerd_build_info", unitName: "", helpText: "The running ledgerd's version."),
      labels: [("version", version)]
    ).set(to: 1)
  }

  func request(_ operation: String, after duration: Duration) {
    Timer(label: "ledgerd_http_request_seconds", dimensions: [("operation", operation)]).recordNanoseconds(
      duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
  }

  func answered(_ status: Int) {
    Counter(label: "ledgerd_http_responses_total", dimensions: [("code", "\(status / 100)xx")]).increment()
  }

  /// The text of a scrape.
  func scrape(_ database: APIDatabase) async throws -> [UInt8] {
    let figures = try await database.run { store in try store.figures() }
    func gauge(_ name: String, _ value: Int64, labels: [(String, String)] = [], _ help: String) {
      registry.makeGauge(
        descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels
      ).set(to: Double(value))
    }
    gauge("ledgerd_pending_charge_attempts", figures.pendingAttempts, "Charge attempts waiting for an answer.")
    for status in AccountStatus.allCases {
      gauge(
        "ledgerd_accounts", figures.accountsByStatus[status.rawValue] ?? 0, labels: [("status", status.rawValue)],
        "Accounts by status.")
    }
    gauge("ledgerd_outbox_backlog", figures.outboxBacklog, "Customer messages not delivered yet.")
    for status in ["pending", "failed"] {
      gauge(
        "ledgerd_webhook_deliveries_backlog", figures.webhookDeliveries[status] ?? 0, labels: [("status", status)],
        "Webhook deliveries to the host not delivered.")
    }
    for status in ["matched", "unmatched", "dismissed", "ignored"] {
      gauge(
        "ledgerd_reconciliation_bank_lines", figures.bankLines[status] ?? 0, labels: [("result", status)],
        "Bank statement lines by match result.")
    }
    gauge(
      "ledgerd_processor_events_waiting", figures.processorEventsWaiting, "Processor webhook events not applied yet.")
    var buffer: [UInt8] = []
    registry.emit(into: &buffer)
    return buffer
  }
}
