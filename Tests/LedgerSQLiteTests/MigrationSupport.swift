import LedgerCore

@testable import LedgerSQLite

/// The tests' migrations carry the SHA-256 of their SQL, as the store's embedded ones do.
extension Migration {
  init(version: Int, name: String, sql: String) {
    self.init(version: version, name: name, sql: sql, checksum: SHA256.hex(Array(sql.utf8)))
  }

  init?(fileName: String, sql: String) {
    self.init(fileName: fileName, sql: sql, checksum: SHA256.hex(Array(sql.utf8)))
  }
}
