import LedgerCore
import Metrics

/// What the daemon counts for `/metrics` (swift-metrics; the process that serves the API
/// bootstraps a Prometheus backend, others count into nothing). No label names an account.
public enum LedgerMetrics {
  /// One processor answer to a charge, with how long the call took.
  static func chargeAnswered(_ outcome: ChargeOutcome?, after duration: Duration) {
    let (name, reason): (String, String)
    switch outcome {
    case .succeeded: (name, reason) = ("succeeded", "none")
    case .declined(let code): (name, reason) = ("declined", DeclineReason(rawCode: code).rawValue)
    case .failed: (name, reason) = ("error", DeclineReason.processingError.rawValue)
    case .inProgress: (name, reason) = ("in_progress", "none")
    case nil: (name, reason) = ("no_answer", "none")
    }
    Counter(label: "ledgerd_charge_attempts_total", dimensions: [("outcome", name), ("reason", reason)]).increment()
    Timer(label: "ledgerd_processor_call_seconds").recordNanoseconds(nanoseconds(duration))
  }

  /// A tick of the scheduler: how long it took, whether it failed, what it downgraded.
  public static func tick(_ report: TickReport?, after duration: Duration) {
    Timer(label: "ledgerd_tick_seconds").recordNanoseconds(nanoseconds(duration))
    guard let report else {
      Counter(label: "ledgerd_ticks_failed_total").increment()
      return
    }
    if report.downgrades > 0 { Counter(label: "ledgerd_downgrades_total").increment(by: report.downgrades) }
    if report.reminders > 0 { Counter(label: "ledgerd_reminders_total").increment(by: report.reminders) }
    if report.recoveredPending > 0 {
      Counter(label: "ledgerd_pending_attempts_resolved_total").increment(by: report.recoveredPending)
    }
  }

  /// A processor call waited for its turn under the rate limit.
  public static func rateLimitWait(_ duration: Duration) {
    guard duration > .zero else { return }
    Counter(label: "ledgerd_rate_limit_waits_total").increment()
    Timer(label: "ledgerd_rate_limit_wait_seconds").recordNanoseconds(nanoseconds(duration))
  }

  static func nanoseconds(_ d: Duration) -> Int64 {
    d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000
  }
}
