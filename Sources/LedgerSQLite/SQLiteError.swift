import CSQLite

/// An error reported by SQLite, kept with what an operator needs to act on it.
///
/// It carries the extended result code, SQLite's message read at the moment of the
/// failure, and the SQL that failed. Bound values are never included: they can hold
/// customers' data, and errors end up in logs.
public struct SQLiteError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The extended result code (for example 2067, SQLITE_CONSTRAINT_UNIQUE).
  public let extendedCode: Int32
  /// SQLite's own message.
  public let message: String
  /// The statement that failed, if any.
  public let sql: String?

  /// The primary result code (the low byte of the extended code).
  public var primaryCode: Int32 { extendedCode & 0xFF }

  public init(extendedCode: Int32, message: String, sql: String? = nil) {
    self.extendedCode = extendedCode
    self.message = message
    self.sql = sql
  }

  /// Reads the current error of a connection; call it right after the failing call.
  init(connection: OpaquePointer?, code: Int32, sql: String?) {
    let extended = connection.map { sqlite3_extended_errcode($0) } ?? code
    let message = connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
      ?? String(cString: sqlite3_errstr(code))
    self.init(extendedCode: extended == 0 ? code : extended, message: message, sql: sql)
  }

  public var isConstraintViolation: Bool { primaryCode == SQLITE_CONSTRAINT }
  public var isUniqueViolation: Bool {
    // SQLITE_CONSTRAINT_UNIQUE (8<<8) and SQLITE_CONSTRAINT_PRIMARYKEY (6<<8); Swift cannot import these macros.
    extendedCode == SQLITE_CONSTRAINT | (8 << 8) || extendedCode == SQLITE_CONSTRAINT | (6 << 8)
  }
  public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }
  public var isNotADatabase: Bool { primaryCode == SQLITE_NOTADB }

  public var description: String {
    var text = "SQLite error \(extendedCode) (\(String(cString: sqlite3_errstr(extendedCode)))): \(message)"
    if let sql { text += " — in: \(sql)" }
    return text
  }
}
