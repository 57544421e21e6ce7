import Foundation
import Testing

@testable import LedgerSQLite

@Suite struct MigratorTests {
  let appID: Int32 = 0x1234_5678
  let first = Migration(version: 1, name: "0001_a.sql", sql: "CREATE TABLE a (x INTEGER) STRICT;")
  let second = Migration(version: 2, name: "0002_b.sql", sql: "CREATE TABLE b (y INTEGER) STRICT; INSERT INTO b VALUES (7);")

  @Test func appliesInOrderOnceAndRecordsChecksums() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    let migrator = try Migrator(migrations: [second, first], applicationID: appID)
    let outcome = try migrator.migrate(db, now: "2026-01-01T00:00:00Z")
    #expect(outcome.applied == ["0001_a.sql", "0002_b.sql"])
    #expect(try db.applicationID() == appID)
    #expect(try db.scalarText("SELECT checksum FROM schema_migrations WHERE version = 2") == second.checksum)
    let again = try migrator.migrate(db, now: "2026-01-02T00:00:00Z")
    #expect(again.applied.isEmpty)
    #expect(again.alreadyApplied == ["0001_a.sql", "0002_b.sql"])
    #expect(try db.scalarInt("SELECT count(*) FROM b") == 1)
  }

  @Test func aFailingMigrationLeavesNothingOfItself() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    let broken = Migration(version: 2, name: "0002_broken.sql", sql: "CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1);")
    let migrator = try Migrator(migrations: [first, broken], applicationID: appID)
    #expect(throws: SQLiteError.self) { try migrator.migrate(db, now: "2026-01-01T00:00:00Z") }
    #expect(try db.scalarInt("SELECT count(*) FROM sqlite_schema WHERE name = 'c'") == 0)
    #expect(try db.scalarInt("SELECT max(version) FROM schema_migrations") == 1)
  }

  @Test func refusesADatabaseOfAnotherProgram() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    try db.execute("CREATE TABLE theirs (x INTEGER)")
    let migrator = try Migrator(migrations: [first], applicationID: appID)
    #expect(throws: MigrationError.notOurDatabase(path: tmp.path, applicationID: 0)) {
      try migrator.migrate(db, now: "2026-01-01T00:00:00Z")
    }
    try db.setApplicationID(42)
    #expect(throws: MigrationError.notOurDatabase(path: tmp.path, applicationID: 42)) { try migrator.pending(on: db) }
  }

  @Test func refusesADatabaseFromANewerBinary() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    try Migrator(migrations: [first, second], applicationID: appID).migrate(db, now: "2026-01-01T00:00:00Z")
    let older = try Migrator(migrations: [first], applicationID: appID)
    let error = try #require(throws: MigrationError.self) { try older.migrate(db, now: "2026-01-01T00:00:00Z") }
    #expect(error == .newerDatabase(path: tmp.path, unknown: ["0002_b.sql"]))
    #expect(error.description.contains("newer ledgerd"))
  }

  @Test func refusesWhenAnAppliedFileChanged() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    try Migrator(migrations: [first], applicationID: appID).migrate(db, now: "2026-01-01T00:00:00Z")
    let edited = Migration(version: 1, name: "0001_a.sql", sql: "CREATE TABLE a (x INTEGER, extra TEXT) STRICT;")
    let error = try #require(throws: MigrationError.self) {
      try Migrator(migrations: [edited], applicationID: appID).pending(on: db)
    }
    guard case .changedMigration(let name, _, _) = error else {
      Issue.record("expected changedMigration, got \(error)")
      return
    }
    #expect(name == "0001_a.sql")
  }

  @Test func requireCurrentReportsPendingMigrations() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    try Migrator(migrations: [first], applicationID: appID).migrate(db, now: "2026-01-01T00:00:00Z")
    let newer = try Migrator(migrations: [first, second], applicationID: appID)
    #expect(throws: MigrationError.pending(path: tmp.path, names: ["0002_b.sql"])) { try newer.requireCurrent(on: db) }
  }

  @Test func fileNamesGiveVersionsAndDuplicatesAreRefused() throws {
    #expect(Migration(fileName: "0042_x.sql", sql: "")?.version == 42)
    #expect(Migration(fileName: "x.sql", sql: "") == nil)
    #expect(throws: MigrationError.duplicateVersion(1)) {
      try Migrator(migrations: [first, Migration(version: 1, name: "0001_other.sql", sql: "")], applicationID: appID)
    }
  }

  @Test func twoMigratorsRacingApplyEachFileOnce() throws {
    let tmp = TempDatabase()
    let a = try tmp.open()
    let b = try tmp.open()
    let migrator = try Migrator(migrations: [first, second], applicationID: appID)
    try migrator.migrate(a, now: "2026-01-01T00:00:00Z")
    let outcome = try migrator.migrate(b, now: "2026-01-01T00:00:00Z")
    #expect(outcome.applied.isEmpty)
    #expect(try b.scalarInt("SELECT count(*) FROM b") == 1)
  }
}
