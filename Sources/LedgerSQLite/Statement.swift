import CSQLite

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// A prepared statement. Connections keep the ones they prepare in a cache keyed by
/// SQL text, so the hot paths of the scheduler compile each query once.
public final class Statement {
  let handle: OpaquePointer
  /// The SQL text, kept for error messages.
  public let sql: String
  private let db: OpaquePointer
  /// Fixed once prepared, so read once rather than on every run.
  let parameterCount: Int
  /// Whether the statement leaves the database file as it is (queries, transaction
  /// control, most pragmas); a statement that writes must hold the write lock.
  public let isReadOnly: Bool

  init(db: OpaquePointer, sql: String) throws {
    var stmt: OpaquePointer?
    let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
    guard rc == SQLITE_OK, let stmt else {
      throw SQLiteError(connection: db, code: rc, sql: sql)
    }
    self.db = db
    self.handle = stmt
    self.sql = sql
    self.parameterCount = Int(sqlite3_bind_parameter_count(stmt))
    self.isReadOnly = sqlite3_stmt_readonly(stmt) != 0
  }

  deinit {
    sqlite3_finalize(handle)
  }

  /// Resets the statement and binds `arguments` to its parameters, in order, without
  /// first copying them into an array of `SQLValue`.
  func prepare(_ arguments: [SQLBindable]) throws {
    // `finish()` cleared the previous run's bindings, and every parameter is bound again
    // below, so a reset is all that is needed here.
    sqlite3_reset(handle)
    guard parameterCount == arguments.count else {
      throw SQLiteError(
        extendedCode: SQLITE_RANGE,
        message: "statement expects \(parameterCount) parameters, \(arguments.count) given", sql: sql)
    }
    for (offset, argument) in arguments.enumerated() { try bind(argument.sqlValue, at: Int32(offset + 1)) }
  }

  private func bind(_ value: SQLValue, at index: Int32) throws {
    let rc: Int32
    switch value {
    case .null: rc = sqlite3_bind_null(handle, index)
    case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
    case .text(var s):
      // The UTF-8 bytes with their length (no C string to build and measure); text ends at
      // its first NUL, as it did when it was bound as a C string.
      rc = s.withUTF8 { bytes in
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
          return sqlite3_bind_text(handle, index, "", 0, ledgerd_sqlite_transient())
        }
        let length =
          memchr(base, 0, bytes.count).map { base.distance(to: $0.assumingMemoryBound(to: UInt8.self)) } ?? bytes.count
        return base.withMemoryRebound(to: CChar.self, capacity: length) {
          sqlite3_bind_text(handle, index, $0, Int32(length), ledgerd_sqlite_transient())
        }
      }
    case .blob(let bytes):
      rc = bytes.withUnsafeBytes {
        sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count), ledgerd_sqlite_transient())
      }
    }
    guard rc == SQLITE_OK else { throw SQLiteError(connection: db, code: rc, sql: sql) }
  }

  /// Advances the statement; `true` while a row is available.
  func step() throws -> Bool {
    let rc = sqlite3_step(handle)
    switch rc {
    case SQLITE_ROW: return true
    case SQLITE_DONE: return false
    default:
      let error = SQLiteError(connection: db, code: rc, sql: sql)
      sqlite3_reset(handle)
      throw error
    }
  }

  /// Releases the statement's read snapshot and bound text without finalizing it.
  func finish() {
    sqlite3_reset(handle)
    sqlite3_clear_bindings(handle)
  }

  /// The result columns' names, read once and shared by every row.
  lazy var layout = ColumnLayout(
    names: (0..<sqlite3_column_count(handle)).map {
      String(cString: sqlite3_column_name(handle, $0))
    })

  /// The value of column `i` of the current row.
  @inline(__always)
  func column(_ i: Int32) -> SQLValue {
    switch sqlite3_column_type(handle, i) {
    case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, i))
    case SQLITE_NULL: return .null
    case SQLITE_TEXT, SQLITE_FLOAT:
      // ledgerd's schema has no REAL columns; a computed float (e.g. julianday) is
      // carried as text so that no floating point leaks into money code.
      return .text(columnText(i))
    default:
      let n = Int(sqlite3_column_bytes(handle, i))
      if n == 0 { return .blob([]) }
      let ptr = sqlite3_column_blob(handle, i)!.assumingMemoryBound(to: UInt8.self)
      return .blob(Array(UnsafeBufferPointer(start: ptr, count: n)))
    }
  }

  /// Column `i` as text, up to its first NUL (as a C string would be read), decoded with
  /// the length SQLite knows rather than one measured again.
  private func columnText(_ i: Int32) -> String {
    guard let text = sqlite3_column_text(handle, i) else { return "" }
    var n = Int(sqlite3_column_bytes(handle, i))
    if let nul = memchr(text, 0, n) { n = text.distance(to: nul.assumingMemoryBound(to: UInt8.self)) }
    return String(decoding: UnsafeBufferPointer(start: text, count: n), as: UTF8.self)
  }

  func currentRow() -> Row {
    let layout = self.layout
    let count = Int32(layout.names.count)
    let values = [SQLValue](unsafeUninitializedCapacity: Int(count)) { buffer, initialized in
      for i in 0..<count {
        (buffer.baseAddress! + Int(i)).initialize(to: column(i))
      }
      initialized = Int(count)
    }
    return Row(layout: layout, values: values)
  }
}

/// The names of a statement's result columns, shared by all the rows it returns, so a
/// row carries one reference instead of its own copy of the names.
final class ColumnLayout: Sendable {
  let names: [String]
  /// Each name's length in UTF-8 bytes, when every name is ASCII (nil otherwise).
  private let asciiLengths: [Int]?

  init(names: [String]) {
    self.names = names
    let ascii = names.allSatisfy { $0.utf8.allSatisfy { $0 < 0x80 } }
    self.asciiLengths = ascii ? names.map(\.utf8.count) : nil
  }

  /// The position of the first column whose name equals `name` (as `String` compares).
  ///
  /// Only a name of the same length in UTF-8 is compared in full. That finds the same
  /// column as comparing every name: an ASCII string equals only itself, and a non-ASCII
  /// string that is canonically equivalent to an ASCII one (KELVIN SIGN and "K") is
  /// always longer in UTF-8, so it falls through to the full comparison below.
  @inline(__always)
  func position(of name: String) -> Int? {
    guard let lengths = asciiLengths else { return names.firstIndex(of: name) }
    let length = name.utf8.count
    for i in lengths.indices where lengths[i] == length && names[i] == name { return i }
    return names.firstIndex(of: name)
  }
}

/// One result row, read out of the statement so it outlives the next step.
public struct Row: Sendable {
  let layout: ColumnLayout
  public let values: [SQLValue]

  init(layout: ColumnLayout, values: [SQLValue]) {
    self.layout = layout
    self.values = values
  }

  init(columns: [String], values: [SQLValue]) {
    self.init(layout: ColumnLayout(names: columns), values: values)
  }

  public var columns: [String] { layout.names }

  /// The value of a named column; a missing column is a programming error reported as such.
  public subscript(_ name: String) -> SQLValue {
    guard let i = layout.position(of: name) else { return .null }
    return values[i]
  }

  private func fail(_ name: String, _ wanted: String) -> SQLiteError {
    SQLiteError(
      extendedCode: SQLITE_MISMATCH,
      message: "column \(name) is \(self[name]), expected \(wanted)")
  }

  public func int(_ name: String) throws -> Int64 {
    guard case .integer(let v) = self[name] else { throw fail(name, "an integer") }
    return v
  }
  public func optionalInt(_ name: String) throws -> Int64? {
    switch self[name] {
    case .null: return nil
    case .integer(let v): return v
    default: throw fail(name, "an integer or NULL")
    }
  }
  public func string(_ name: String) throws -> String {
    switch self[name] {
    case .text(let s): return s
    case .integer(let v): return String(v)
    default: throw fail(name, "text")
    }
  }
  public func optionalString(_ name: String) throws -> String? {
    switch self[name] {
    case .null: return nil
    case .text(let s): return s
    case .integer(let v): return String(v)
    default: throw fail(name, "text")
    }
  }
  public func bool(_ name: String) throws -> Bool { try int(name) != 0 }
}
