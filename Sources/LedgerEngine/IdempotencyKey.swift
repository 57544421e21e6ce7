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
    let random = UInt64.random(in: 0...UInt64.max)
    // Written into one buffer: a key is made for every charge attempt.
    return String(unsafeUninitializedCapacity: 37) { buffer in
      let prefix: StaticString = "ldg_"
      for i in 0..<4 { buffer[i] = prefix.utf8Start[i] }
      writeHex(stamp, into: buffer, at: 4)
      buffer[20] = UInt8(ascii: "_")
      writeHex(random, into: buffer, at: 21)
      return 37
    }
  }

  /// The 16 hex digits of `value`, zero-padded, lower case.
  private static func writeHex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
    let digits: StaticString = "0123456789abcdef"
    for i in 0..<16 {
      buffer[start + i] = digits.utf8Start[Int((value >> UInt64(60 - 4 * i)) & 0xF)]
    }
  }
}
