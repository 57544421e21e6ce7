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
    #expect(try ledger.store.write { try ledger.store.queueCardExpiryNotices(daysAhead: 30) } == soon.count)
    #expect(try ledger.store.write { try ledger.store.queueCardExpiryNotices(daysAhead: 30) } == 0)
    let keys = try ledger.db.query("SELECT key FROM outbox WHERE kind = 'card_expiring' ORDER BY id").map { try $0.string("key") }
    #expect(keys == soon.map { "card_expiring:\($0):11/2026" })

    let sweep = try #require(ledger.db.statementStats().first { $0.sql.contains("'card_expiring:'") })
    #expect(sweep.runs == 2)
    #expect(sweep.fullScanSteps == 0, "the expiry look scanned the cards table")
  }

  @Test func aCardsAttemptsInTheWindowAreCountedFromTheIndexAlone() throws {
    let ledger = try TestLedger()
    let plan = try ledger.db.query(
      """
      EXPLAIN QUERY PLAN SELECT count(*) FROM charge_attempts a WHERE a.card_id = ?1 AND a.created_at > ?2
        AND (a.status = 'pending' OR a.status = 'succeeded' OR a.status = 'declined')
      """, 1, "2026-10-24T10:00:00Z"
    ).map { try $0.string("detail") }.joined(separator: "; ")
    #expect(plan.contains("COVERING INDEX charge_attempts_card"), "\(plan)")
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
      try Migrator(migrations: try LedgerSchema.migrations().filter { $0.version <= 3 }, applicationID: LedgerSchema.applicationID)
        .migrate(old, now: "2026-11-23T10:00:00Z")
      #expect(try old.scalarInt("PRAGMA page_size") == 4096)
    }
    let store = try LedgerStore.open(path: path, access: .readWrite, clock: FixedClock(try Instant(iso8601: "2026-11-23T10:00:00Z")))
    #expect(try store.db.scalarInt("PRAGMA page_size") == 4096)
    #expect(try store.db.scalarInt("SELECT max(version) FROM schema_migrations") == Int64(try LedgerSchema.migrations().count))
    #expect(try store.check().ok)
  }
}
