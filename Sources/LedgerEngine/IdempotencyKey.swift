import Foundation
import Synchronization

/// Idempotency keys for charge attempts: `ldg_` + 16 hex digits of a microsecond stamp +
/// `_` + 16 random hex digits.
///
/// The stamp makes keys sort in the order they are made (no two in one process share one),
/// so each new key lands at the end of the unique index, in the ledger as at the processor:
/// a batch of attempts dirties a few index pages instead of one page per key, which is what
/// random keys cost. The random half keeps keys from two processes, or from a clock that
/// went back, apart.
public enum IdempotencyKey {
  private static let last = Mutex<UInt64>(0)

  public static func make() -> String {
    let micros = UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000))
    let stamp = last.withLock { last -> UInt64 in
      last = max(last + 1, micros)
      return last
    }
    return "ldg_" + hex(stamp) + "_" + hex(UInt64.random(in: 0...UInt64.max))
  }

  private static func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
  }
}
