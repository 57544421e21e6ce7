import Foundation
import LedgerCore
import LedgerSQLite
import LedgerStore
import NIOPosix
import Synchronization

/// The API's connections to the ledger: a few, each used by one request at a time, on
/// NIO's blocking thread pool (a write can wait for another process's write lock, which no
/// event loop or Swift concurrency thread should do).
final class APIDatabase: Sendable {
  let path: String
  let clock: any LedgerClock
  let discipline: WriteDiscipline
  private let idle = Mutex<[Box]>([])

  /// A store as it waits in the pool; only one request holds it at a time.
  final class Box: @unchecked Sendable {
    let store: LedgerStore
    init(_ store: LedgerStore) { self.store = store }
  }

  init(path: String, clock: any LedgerClock, discipline: WriteDiscipline) {
    self.path = path
    self.clock = clock
    self.discipline = discipline
  }

  /// Runs `body` with a connection of its own, off the event loops.
  func run<T: Sendable>(_ body: @escaping @Sendable (LedgerStore) throws -> T) async throws -> T {
    try await NIOThreadPool.singleton.runIfActive {
      let box = try self.checkOut()
      do {
        let result = try body(box.store)
        self.checkIn(box)
        return result
      } catch {
        // A connection whose file was replaced or damaged is dropped, not reused.
        if !LedgerStore.isFatal(error) { self.checkIn(box) }
        throw error
      }
    }
  }

  private func checkOut() throws -> Box {
    if let box = idle.withLock({ $0.popLast() }) {
      box.store.eventSource = nil
      return box
    }
    return Box(try LedgerStore.open(path: path, access: .readWrite, clock: clock, discipline: discipline))
  }

  private func checkIn(_ box: Box) {
    box.store.eventSource = nil
    idle.withLock { if $0.count < 8 { $0.append(box) } }
  }
}
