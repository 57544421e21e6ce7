import Foundation
import LedgerCore
import LedgerSQLite

/// The write discipline of the store's connections (SPEC §9): callers configure it through
/// the store, never through the SQLite layer.
public typealias WriteDiscipline = LedgerSQLite.WriteDiscipline

/// The upkeep a long-running process does on the ledger file between ticks, in the store's
/// terms: whether another process committed, whether the file is still the one opened, and
/// the WAL kept short under the write lock.
extension LedgerStore {
  /// A number that changes whenever another connection commits to the ledger.
  public func changeCounter() throws -> Int64 { try db.dataVersion() }

  /// Throws `DatabaseFileReplaced` when the file at the ledger's path is no longer the one
  /// this store opened (replaced or removed under the process).
  public func verifyFileInPlace() throws { try db.checkFileIdentity() }

  /// Copies the WAL into the ledger file and empties it, under the write lock, waiting at
  /// most `lockTimeout` for the lock and `readerWaitMilliseconds` for readers; a line for
  /// the log.
  public func compactLog(lockTimeout: Duration, readerWaitMilliseconds: Int32 = 200) throws -> (
    complete: Bool, summary: String
  ) {
    let result = try db.checkpoint(.truncate, lockTimeout: lockTimeout, readerWaitMilliseconds: readerWaitMilliseconds)
    return (
      result.complete,
      "\(result.checkpointedFrames) of \(result.walFrames) WAL frames\(result.complete ? "" : " (readers kept the rest)")"
    )
  }

  /// The checkpoints this store's connection made since it opened, in words.
  public var compactionSummary: String { db.checkpointsMade.summary }

  /// Whether the error says the ledger file was replaced under the process.
  public static func isReplacedFile(_ error: Error) -> Bool { error is DatabaseFileReplaced }

  /// Whether the error is a wait for the write lock given up because the process is
  /// stopping (nothing was written).
  public static func isStoppedWaiting(_ error: Error) -> Bool { (error as? WriteLockBusy)?.stoppedWaiting ?? false }

  /// Whether a `ledgerd serve` holds the instance lock of the ledger at `path` (a
  /// non-blocking probe).
  public static func isServed(path: String) -> Bool {
    WriteLock.isHeldElsewhere(lockPath: path + ".instance.lock")
  }
}
