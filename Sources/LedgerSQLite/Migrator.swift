/// One numbered schema change: a plain SQL file from `migrations/`.
public struct Migration: Sendable {
  /// The number the file name starts with (`0001_schema.sql` is 1).
  public let version: Int
  /// The file name, as recorded in the database.
  public let name: String
  public let sql: String
  /// A digest of the file's bytes (64 hex digits: the store gives SHA-256); an applied
  /// file that changes is noticed.
  public let checksum: String

  public init(version: Int, name: String, sql: String, checksum: String) {
    self.version = version
    self.name = name
    self.sql = sql
    self.checksum = checksum
  }

  /// Builds a migration from a file name such as `0002_views.sql`; nil if the name does not
  /// start with a number.
  /// A migration whose file starts with `-- ledgerd-migration: rebuilds-tables` creates
  /// tables again under their own names: the migrator runs it with foreign keys off and
  /// `legacy_alter_table` on (so renaming a table leaves the foreign keys and views that
  /// name it as they are), and refuses to commit it if any foreign key is then broken.
  public var rebuildsTables: Bool {
    let marker = "-- ledgerd-migration: rebuilds-tables"
    return sql.hasPrefix(marker + "\n") || sql.hasPrefix(marker + "\r\n")
  }

  public init?(fileName: String, sql: String, checksum: String) {
    let digits = fileName.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, let version = Int(digits), fileName.hasSuffix(".sql") else { return nil }
    self.init(version: version, name: fileName, sql: sql, checksum: checksum)
  }
}

/// Why a database was refused, or a migration failed.
public enum MigrationError: Error, CustomStringConvertible, Equatable {
  /// The file is a SQLite database that some other program owns.
  case notOurDatabase(path: String, applicationID: Int32)
  /// The database has migrations this binary does not know: a newer ledgerd wrote it.
  case newerDatabase(path: String, unknown: [String])
  /// A migration file was changed after it had been applied.
  case changedMigration(name: String, recorded: String, embedded: String)
  /// The schema is behind this binary and the command does not migrate.
  case pending(path: String, names: [String])
  /// The list of migrations is malformed (two files with one number).
  case duplicateVersion(Int)
  /// A migration file's name does not start with its number.
  case badFileName(String)
  case brokenForeignKeys(name: String, violations: Int, first: String)

  public var description: String {
    switch self {
    case .notOurDatabase(let path, let id):
      let tag = id == 0 ? "no application id, but tables of its own" : "application id \(id)"
      return "\(path) is not a ledgerd database (\(tag)); refusing to touch it"
    case .newerDatabase(let path, let unknown):
      return
        "\(path) was migrated by a newer ledgerd (unknown migrations: \(unknown.joined(separator: ", "))); upgrade this binary, it will not open that database"
    case .changedMigration(let name, let recorded, let embedded):
      return
        "migration \(name) differs from the one applied to this database (applied sha256 \(recorded.prefix(12))…, this binary has \(embedded.prefix(12))…); refusing to continue"
    case .pending(let path, let names):
      return
        "\(path) needs migrations this command does not apply (\(names.joined(separator: ", "))); run `ledgerd migrate` first"
    case .duplicateVersion(let v):
      return "two migrations carry the number \(v)"
    case .badFileName(let name):
      return "migration file \(name) must be named NNNN_what.sql"
    case .brokenForeignKeys(let name, let violations, let first):
      return "migration \(name) would leave \(violations) broken foreign key(s) (first: \(first)); nothing was changed"
    }
  }
}

/// Applies numbered SQL migrations forward-only, each in its own transaction, and refuses
/// databases it must not touch: another program's, a newer binary's, or one whose applied
/// migrations differ from the files embedded here.
public struct Migrator: Sendable {
  public let migrations: [Migration]
  /// The `PRAGMA application_id` that marks a database as ours.
  public let applicationID: Int32

  public init(migrations: [Migration], applicationID: Int32) throws {
    let sorted = migrations.sorted { $0.version < $1.version }
    for (a, b) in zip(sorted, sorted.dropFirst()) where a.version == b.version {
      throw MigrationError.duplicateVersion(a.version)
    }
    self.migrations = sorted
    self.applicationID = applicationID
  }

  /// What `migrate` did.
  public struct Outcome: Sendable {
    public let applied: [String]
    public let alreadyApplied: [String]
  }

  /// Verifies that `connection`'s database is ours and consistent with this binary, and
  /// returns the migrations it still lacks.
  public func pending(on connection: Connection) throws -> [Migration] {
    let appID = try connection.applicationID()
    let hasTables = (try connection.scalarInt("SELECT count(*) FROM sqlite_schema") ?? 0) > 0
    if appID != applicationID {
      if appID == 0 && !hasTables { return migrations }  // an empty file: ours to initialise
      throw MigrationError.notOurDatabase(path: connection.path, applicationID: appID)
    }
    let recorded = try connection.query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    var applied: Set<Int> = []
    var unknown: [String] = []
    for row in recorded {
      let version = Int(try row.int("version"))
      let name = try row.string("name")
      guard let known = migrations.first(where: { $0.version == version }) else {
        unknown.append(name)
        continue
      }
      let checksum = try row.string("checksum")
      guard checksum == known.checksum else {
        throw MigrationError.changedMigration(name: known.name, recorded: checksum, embedded: known.checksum)
      }
      applied.insert(version)
    }
    if !unknown.isEmpty { throw MigrationError.newerDatabase(path: connection.path, unknown: unknown) }
    return migrations.filter { !applied.contains($0.version) }
  }

  /// Throws `MigrationError.pending` unless the database is fully migrated.
  public func requireCurrent(on connection: Connection) throws {
    let missing = try pending(on: connection)
    if !missing.isEmpty { throw MigrationError.pending(path: connection.path, names: missing.map(\.name)) }
  }

  /// Applies every pending migration, each in one `BEGIN IMMEDIATE` transaction together
  /// with its record. The check is repeated inside the transaction, so two processes
  /// migrating at once apply each file once.
  @discardableResult
  public func migrate(_ connection: Connection, now: String) throws -> Outcome {
    var applied: [String] = []
    let before = try pending(on: connection)
    let already = migrations.filter { m in !before.contains { $0.version == m.version } }.map(\.name)
    for migration in before {
      // Outside the transaction: SQLite ignores `foreign_keys` inside one. Both are set
      // back whatever happens, and a connection left without foreign keys is an error.
      func restore() throws {
        try connection.execute("PRAGMA legacy_alter_table = OFF")
        try connection.execute("PRAGMA foreign_keys = ON")
        guard try connection.scalarInt("PRAGMA foreign_keys") == 1 else {
          // 1: SQLITE_ERROR.
          throw SQLiteError(
            extendedCode: 1,
            message: "foreign keys could not be switched back on after \(migration.name)", sql: nil)
        }
      }
      let done: Bool
      do {
        if migration.rebuildsTables {
          try connection.execute("PRAGMA foreign_keys = OFF")
          try connection.execute("PRAGMA legacy_alter_table = ON")
        }
        done = try apply(migration, on: connection, now: now)
      } catch {
        if migration.rebuildsTables { try? restore() }
        throw error
      }
      if migration.rebuildsTables { try restore() }
      if done { applied.append(migration.name) }
    }
    return Outcome(applied: applied, alreadyApplied: already)
  }

  /// Applies one migration in its own write transaction; false when another process
  /// applied it first.
  private func apply(_ migration: Migration, on connection: Connection, now: String) throws -> Bool {
    try connection.write { db in
      guard try pending(on: db).contains(where: { $0.version == migration.version }) else { return false }
      if migration.version == migrations.first?.version {
        try db.setApplicationID(applicationID)
        try db.execute(
          """
          CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL UNIQUE,
            checksum   TEXT NOT NULL CHECK (length(checksum) = 64),
            applied_at TEXT NOT NULL
          ) STRICT
          """)
      }
      try db.execute(migration.sql)
      if migration.rebuildsTables {
        let broken = try db.query("PRAGMA foreign_key_check")
        if let row = broken.first {
          throw MigrationError.brokenForeignKeys(
            name: migration.name, violations: broken.count,
            first:
              "\(try row.string("table")) row \(try row.optionalInt("rowid").map(String.init) ?? "?") → \(try row.string("parent"))"
          )
        }
      }
      try db.run(
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
        migration.version, migration.name, migration.checksum, now)
      return true
    }
  }
}
