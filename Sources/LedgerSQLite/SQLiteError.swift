import CSQLite

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

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
  /// The operating system's error number behind an I/O failure (ENOSPC, EROFS, …), 0 when
  /// there is none.
  public let systemErrno: Int32

  /// The primary result code (the low byte of the extended code).
  public var primaryCode: Int32 { extendedCode & 0xFF }

  public init(extendedCode: Int32, message: String, sql: String? = nil, systemErrno: Int32 = 0) {
    self.extendedCode = extendedCode
    self.message = message
    self.sql = sql
    self.systemErrno = systemErrno
  }

  /// Reads the current error of a connection; call it right after the failing call.
  init(connection: OpaquePointer?, code: Int32, sql: String?) {
    let extended = connection.map { sqlite3_extended_errcode($0) } ?? code
    let message =
      connection.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) }
      ?? String(cString: sqlite3_errstr(code))
    let errno = connection.map { sqlite3_system_errno($0) } ?? 0
    self.init(extendedCode: extended == 0 ? code : extended, message: message, sql: sql, systemErrno: errno)
  }

  public var isConstraintViolation: Bool { primaryCode == SQLITE_CONSTRAINT }
  public var isUniqueViolation: Bool {
    // SQLITE_CONSTRAINT_UNIQUE (8<<8) and SQLITE_CONSTRAINT_PRIMARYKEY (6<<8); Swift cannot import these macros.
    extendedCode == SQLITE_CONSTRAINT | (8 << 8) || extendedCode == SQLITE_CONSTRAINT | (6 << 8)
  }
  public var isBusy: Bool { primaryCode == SQLITE_BUSY || primaryCode == SQLITE_LOCKED }
  public var isNotADatabase: Bool { primaryCode == SQLITE_NOTADB }
  /// The file is damaged, is not a database, was moved under the connection, or the disk
  /// failed to read or write it (SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_READONLY_DBMOVED,
  /// SQLITE_IOERR and its extended codes, except for a full disk or read-only storage,
  /// which pass once the operator acts).
  public var isDamage: Bool {
    primaryCode == SQLITE_CORRUPT || primaryCode == SQLITE_NOTADB || extendedCode == SQLITE_READONLY | (4 << 8)
      || (primaryCode == SQLITE_IOERR && !isDiskFull && !isReadOnlyStorage)
  }
  /// The disk is full (SQLITE_FULL, or an I/O error whose cause is ENOSPC or EDQUOT).
  public var isDiskFull: Bool {
    primaryCode == SQLITE_FULL || (primaryCode == SQLITE_IOERR && (systemErrno == 28 || systemErrno == 122))
  }
  /// The file or its folder cannot be written: SQLITE_READONLY, or an I/O error whose
  /// cause is EROFS, EACCES or EPERM.
  public var isReadOnlyStorage: Bool {
    primaryCode == SQLITE_READONLY
      || ([SQLITE_IOERR, SQLITE_CANTOPEN].contains(primaryCode) && [30, 13, 1].contains(systemErrno))
  }
  /// Any fault of the storage: a full disk, a read-only file or folder, a file that cannot
  /// be opened (SQLITE_CANTOPEN), a failing disk (SQLITE_IOERR).
  public var isIOFault: Bool {
    isDiskFull || isReadOnlyStorage || primaryCode == SQLITE_CANTOPEN || primaryCode == SQLITE_IOERR
  }

  public var description: String {
    var text = "SQLite error \(extendedCode) (\(String(cString: sqlite3_errstr(extendedCode)))): \(message)"
    if systemErrno != 0 { text += " (\(String(cString: strerror(systemErrno))))" }
    if let sql { text += " — in: \(sql)" }
    return text
  }
}
