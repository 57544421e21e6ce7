import Foundation
import Testing

@testable import LedgerSQLite

@Suite struct MigratorTests {
  let appID: Int32 = 0x1234_5678
  let first = Migration(version: 1, name: "0001_a.sql", sql: "CREATE TABLE a (x INTEGER) STRICT;")
  let second = Migration(
    version: 2, name: "0002_b.sql", sql: "CREATE TABLE b (y INTEGER) STRICT; INSERT INTO b VALUES (7);")

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
    let broken = Migration(
      version: 2, name: "0002_broken.sql", sql: "CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1);")
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

/// Migrations that create a table again under its own name.
@Suite struct RebuildMigrationTests {
  let appID: Int32 = 0x1234_5678
  let parents = Migration(
    version: 1, name: "0001_p.sql",
    sql: """
      CREATE TABLE p (id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('a', 'b', 'c'))) STRICT;
      CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER NOT NULL REFERENCES p (id)) STRICT;
      CREATE VIEW v AS SELECT c.id, p.kind FROM c JOIN p ON p.id = c.p_id;
      INSERT INTO p VALUES (1, 'a'), (2, 'c');
      INSERT INTO c VALUES (10, 1), (11, 2);
      """)

  func rebuild(_ body: String) -> Migration {
    Migration(
      version: 2, name: "0002_rebuild.sql",
      sql: "-- ledgerd-migration: rebuilds-tables\n"
        + "ALTER TABLE p RENAME TO p_old;\n"
        + "CREATE TABLE p (id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind = 'a' OR kind = 'b' OR kind = 'c')) STRICT;\n"
        + body + "DROP TABLE p_old;\n")
  }

  @Test func aRebuiltParentKeepsItsChildrenAndViewsAndForeignKeysComeBackOn() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    let migrator = try Migrator(
      migrations: [parents, rebuild("INSERT INTO p SELECT * FROM p_old;\n")], applicationID: appID)
    #expect(migrator.migrations[1].rebuildsTables && !migrator.migrations[0].rebuildsTables)
    // The marker is read the same from a file checked out with CRLF line ends.
    #expect(
      Migration(version: 3, name: "0003_x.sql", sql: "-- ledgerd-migration: rebuilds-tables\r\nSELECT 1;")
        .rebuildsTables)
    #expect(
      !Migration(version: 3, name: "0003_x.sql", sql: "-- ledgerd-migration: rebuilds-tables later\nSELECT 1;")
        .rebuildsTables)
    try migrator.migrate(db, now: "2026-01-01T00:00:00Z")
    // The child still names `p`, not the renamed table, and the view reads the new one.
    #expect(try db.scalarText("SELECT sql FROM sqlite_schema WHERE name = 'c'")?.contains("REFERENCES p (id)") == true)
    #expect(try db.query("SELECT kind FROM v ORDER BY id").map { try $0.string("kind") } == ["a", "c"])
    #expect(try db.scalarInt("PRAGMA foreign_keys") == 1)
    #expect(try db.scalarInt("PRAGMA legacy_alter_table") == 0)
    #expect(throws: SQLiteError.self) { try db.run("INSERT INTO c VALUES (12, 99)") }
    #expect(throws: SQLiteError.self) { try db.run("INSERT INTO p VALUES (3, 'd')") }
  }

  @Test func aRebuildThatWouldOrphanRowsIsRefusedWithNothingChanged() throws {
    let tmp = TempDatabase()
    let db = try tmp.open()
    try Migrator(migrations: [parents], applicationID: appID).migrate(db, now: "2026-01-01T00:00:00Z")
    // Loses parent 2, which child 11 points at.
    let lossy = try Migrator(
      migrations: [parents, rebuild("INSERT INTO p SELECT * FROM p_old WHERE id = 1;\n")], applicationID: appID)
    let error = try #require(throws: MigrationError.self) { try lossy.migrate(db, now: "2026-01-01T00:00:00Z") }
    #expect(error.description.contains("1 broken foreign key(s)"))
    #expect(try db.scalarInt("SELECT count(*) FROM p") == 2)
    #expect(try db.scalarInt("SELECT count(*) FROM sqlite_schema WHERE name = 'p_old'") == 0)
    #expect(try db.scalarInt("SELECT max(version) FROM schema_migrations") == 1)
    #expect(try db.scalarInt("PRAGMA foreign_keys") == 1)
  }
}
