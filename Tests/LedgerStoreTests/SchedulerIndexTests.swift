import Foundation
import LedgerCore
import LedgerSQLite
import Testing

@testable import LedgerStore

/// The scheduler's recurring reads go through indexes: their cost follows what they find,
/// not the size of the book.
@Suite struct SchedulerIndexTests {
  @Test func theExpiryLookReadsOnlyCardsExpiringSoonThroughItsIndex() throws {
    let ledger = try TestLedger()  // 2026-11-23
    var soon: [Int64] = []
    for n in 0..<60 {
      let account = try ledger.account()
      let expiry = n % 20 == 0 ? "11/2026" : (n % 20 == 1 ? "12/2026" : "12/2028")
      let card = try ledger.card(account.id, "tok_ok.\(n)", expiry: expiry)
      if expiry == "11/2026" { soon.append(card.id) }
      // A second card of the account is never the one the notice is about.
      _ = try ledger.card(account.id, "tok_ok.\(n).b", expiry: "11/2026")
    }
    var sweep = (runs: 0, fullScanSteps: 0)
    ledger.db.trace { run in
      if run.sql.contains("'card_expiring:'") { sweep = (sweep.runs + 1, sweep.fullScanSteps + run.fullScanSteps) }
    }
    #expect(try ledger.store.write { try ledger.store.queueCardExpiryNotices(daysAhead: 30) } == soon.count)
    #expect(try ledger.store.write { try ledger.store.queueCardExpiryNotices(daysAhead: 30) } == 0)
    let keys = try ledger.db.query("SELECT key FROM outbox WHERE kind = 'card_expiring' ORDER BY id").map {
      try $0.string("key")
    }
    #expect(keys == soon.map { "card_expiring:\($0):11/2026" })

    ledger.db.trace(nil)
    #expect(sweep.runs == 2)
    #expect(sweep.fullScanSteps == 0, "the expiry look scanned the cards table")
  }

  @Test func aCardsAttemptsInTheWindowAreCountedFromTheIndexAlone() throws {
    let ledger = try TestLedger()
    let plan = try ledger.db.query(
      """
      EXPLAIN QUERY PLAN SELECT count(*) FROM charge_attempts a WHERE a.card_id = ?1 AND a.created_at > ?2 AND a.status <> 'error'
      """, 1, "2026-10-24T10:00:00Z"
    ).map { try $0.string("detail") }.joined(separator: "; ")
    #expect(plan.contains("COVERING INDEX charge_attempts_card"), "\(plan)")
  }

  /// The index holds the attempts that count toward the limit and no others: an attempt
  /// closed as an error leaves it, one declined or paid stays.
  @Test func onlyAttemptsThatCountAreInTheCardsIndex() throws {
    let ledger = try TestLedger()
    let account = try ledger.account()
    let card = try ledger.card(account.id, "tok_ok.index")
    func insert(_ key: String, _ status: String) throws {
      let resolved: String? = status == "pending" ? nil : "2026-11-23T10:00:00Z"
      let reason: String? = status == "declined" || status == "error" ? "processing_error" : nil
      let ref: String? = status == "succeeded" ? "ch_1" : nil
      _ = try ledger.store.write {
        try ledger.db.run(
          """
          INSERT INTO charge_attempts (idempotency_key, account_id, card_id, amount_minor, currency, status, reason, processor_ref, actor, created_at, resolved_at)
          VALUES (?, ?, ?, 1900, 'EUR', ?, ?, ?, 'scheduler', '2026-11-23T09:00:00Z', ?)
          """, key, account.id, card.id, status, reason, ref, resolved)
      }
    }
    for (n, status) in ["pending", "succeeded", "declined", "error", "error"].enumerated() {
      try insert("key_index_\(n)", status)
    }
    // ANALYZE's first figure for an index is the number of entries in it.
    func indexed() throws -> Int64 {
      try ledger.store.write { try ledger.db.execute("ANALYZE charge_attempts_card") }
      let stat = try ledger.db.scalarText("SELECT stat FROM sqlite_stat1 WHERE idx = 'charge_attempts_card'") ?? ""
      return Int64(stat.split(separator: " ").first ?? "") ?? -1
    }
    #expect(try indexed() == 3)
    // The pending one closed as an error leaves the index.
    _ = try ledger.store.write {
      try ledger.db.run(
        "UPDATE charge_attempts SET status = 'error', reason = 'processing_error', resolved_at = '2026-11-23T10:00:00Z' WHERE idempotency_key = 'key_index_0'"
      )
    }
    #expect(try indexed() == 2)
    #expect(try ledger.db.scalarText("PRAGMA integrity_check") == "ok")
  }
}

@Suite struct PageSizeTests {
  @Test func aNewLedgerHasEightKiBPagesAndAnOlderFileKeepsItsOwn() throws {
    let ledger = try TestLedger()
    #expect(try ledger.db.scalarInt("PRAGMA page_size") == 8192)
    #expect(LedgerSchema.pageSize == 8192)

    // A file made with SQLite's default pages (an older ledgerd's) opens, migrates and keeps them.
    let path = ledger.directory + "/older.db"
    do {
      let old = try Connection(path: path)
      try old.enableWAL()
      try Migrator(
        migrations: try LedgerSchema.migrations().filter { $0.version <= 3 }, applicationID: LedgerSchema.applicationID
      )
      .migrate(old, now: "2026-11-23T10:00:00Z")
      #expect(try old.scalarInt("PRAGMA page_size") == 4096)
    }
    let store = try LedgerStore.open(
      path: path, access: .readWrite, clock: FixedClock(try Instant(iso8601: "2026-11-23T10:00:00Z")))
    #expect(try store.db.scalarInt("PRAGMA page_size") == 4096)
    #expect(
      try store.db.scalarInt("SELECT max(version) FROM schema_migrations")
        == Int64(try LedgerSchema.migrations().map(\.version).max() ?? 0)
    )
    #expect(try store.check().ok)
  }
}
