import Foundation
import Testing

@testable import LedgerSQLite

/// The statement layer binds text by length, reads text by length, shares one column
/// table per statement and finds cached statements by the address of their SQL text.
/// These tests pin down that it reads and writes exactly what it did when text went
/// through C strings and every row carried its own column names.
@Suite struct StatementFastPathTests {
  /// Text as it was bound through a C string: up to its first NUL.
  static func asCString(_ s: String) -> String {
    s.withCString { String(cString: $0) }
  }

  static let texts: [String] = [
    "", "a", "exactly15bytes!", "exactly16bytes!!", String(repeating: "long text ", count: 300), "héllo €",
    "👍🏽 family 👨‍👩‍👧",
    "e\u{301}", "\u{212A}", "tab\there\nnew line\r\u{1}\u{1F}\u{7F}", "quote ' and \" and \\", "ab\u{0}cd", "\u{0}",
    "\u{0}tail", "\u{2028}\u{FEFF}\u{FFFD}", String(repeating: "é", count: 1000),
  ]

  @Test func textRoundTripsAsItDidThroughCStrings() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT) STRICT")
    for (i, text) in Self.texts.enumerated() {
      try db.run("INSERT INTO t (id, s) VALUES (?, ?)", i, text)
      let expected = Self.asCString(text)
      let row = try #require(try db.queryOne("SELECT s, length(s) AS n, hex(s) AS h FROM t WHERE id = ?", i))
      #expect(try row.string("s") == expected)
      #expect(try row.int("n") == Int64(expected.unicodeScalars.count))
      #expect(try row.string("h") == expected.utf8.map { String(format: "%02X", $0) }.joined())
      #expect(try db.scalarText("SELECT s FROM t WHERE id = ?", i) == expected)
      // Bound as a parameter to an expression, not only stored.
      #expect(try db.scalarText("SELECT ?", text) == expected)
      #expect(try db.scalarInt("SELECT s = ? FROM t WHERE id = ?", text, i) == 1)
    }
  }

  @Test func textIsReadUpToItsFirstNULAndInvalidUTF8IsRepairedAsBefore() throws {
    let db = try TempDatabase().open()
    let cases: [(sql: String, bytes: [UInt8])] = [
      ("SELECT 'ab' || char(0) || 'cd' AS v", Array("ab".utf8)),
      ("SELECT char(0) AS v", []),
      ("SELECT CAST(x'ff41' AS TEXT) AS v", [0xFF, 0x41]),
      ("SELECT CAST(x'c3' AS TEXT) AS v", [0xC3]),
      ("SELECT CAST(x'41e282' AS TEXT) AS v", [0x41, 0xE2, 0x82]),
      ("SELECT CAST(x'eda080' AS TEXT) AS v", [0xED, 0xA0, 0x80]),
      ("SELECT '' AS v", []),
    ]
    for (sql, bytes) in cases {
      let expected = (bytes + [0]).withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
      let row = try #require(try db.queryOne(sql))
      #expect(row["v"] == .text(expected), "\(sql)")
      #expect(try db.scalarText(sql) == expected)
    }
  }

  @Test func nullsIntegersFloatsAndBlobsReadAsBefore() throws {
    let db = try TempDatabase().open()
    let row = try #require(
      try db.queryOne(
        """
        SELECT NULL AS n, 42 AS i, -9223372036854775808 AS lo, 1.5 AS f, 2.0 AS g, 1e300 AS big,
          x'' AS empty, zeroblob(3) AS zeros, x'00ff10' AS b, julianday('2026-11-23') AS jd
        """))
    #expect(row["n"] == .null)
    #expect(row["i"] == .integer(42))
    #expect(row["lo"] == .integer(Int64.min))
    #expect(row["f"] == .text("1.5"))
    #expect(row["g"] == .text("2.0"))
    #expect(row["big"] == .text("1.0e+300"))
    #expect(row["empty"] == .blob([]))
    #expect(row["zeros"] == .blob([0, 0, 0]))
    #expect(row["b"] == .blob([0, 255, 16]))
    #expect(row["jd"] == .text("2461367.5"))
    #expect(try row.optionalInt("n") == nil)
    #expect(try row.optionalString("n") == nil)
    #expect(try row.optionalString("i") == "42")
    #expect(try row.string("i") == "42")
    #expect(throws: SQLiteError.self) { try row.string("b") }
    #expect(throws: SQLiteError.self) { try row.optionalString("b") }
    #expect(throws: SQLiteError.self) { try row.int("f") }
    #expect(throws: SQLiteError.self) { try row.optionalInt("b") }
    #expect(row.columns == ["n", "i", "lo", "f", "g", "big", "empty", "zeros", "b", "jd"])
    #expect(row.values.count == 10)
  }

  @Test func everyKindBindsAsBefore() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (v ANY) STRICT")
    let values: [SQLBindable] = [
      SQLValue.null, Int64.min, Int64.max, 0, Int32.min, true, false, "text", "", Int64?.none, String?.none,
      Optional("some"), SQLValue.blob([]), SQLValue.blob([0, 1, 2, 255]), SQLValue.text("ab\u{0}cd"),
    ]
    for value in values { try db.run("INSERT INTO t (v) VALUES (?)", arguments: [value]) }
    let read = try db.query("SELECT v, typeof(v) AS type FROM t ORDER BY rowid").map { $0["v"] }
    #expect(
      read == [
        .null, .integer(.min), .integer(.max), .integer(0), .integer(Int64(Int32.min)), .integer(1), .integer(0),
        .text("text"), .text(""), .null, .null, .text("some"), .blob([]), .blob([0, 1, 2, 255]), .text("ab"),
      ])
    let types = try db.query("SELECT typeof(v) AS type FROM t ORDER BY rowid").map { try $0.string("type") }
    #expect(types[8] == "text")
    #expect(types[12] == "blob")
  }

  @Test func aWrongNumberOfArgumentsIsRefusedAsBefore() throws {
    let db = try TempDatabase().open()
    do {
      _ = try db.queryOne("SELECT ?1, ?2", 1)
      Issue.record("expected an error")
    } catch let error as SQLiteError {
      #expect(error.extendedCode == 25)  // SQLITE_RANGE
      #expect(error.message == "statement expects 2 parameters, 1 given")
      #expect(error.sql == "SELECT ?1, ?2")
    }
    // A parameter used twice is bound once.
    #expect(try db.scalarInt("SELECT ?1 + ?1", 21) == 42)
    // The statement still works after the refusal.
    #expect(try db.queryOne("SELECT ?1 AS a, ?2 AS b", 1, "x")?["b"] == .text("x"))
  }

  @Test func columnsAreFoundAsByComparingEveryName() throws {
    let db = try TempDatabase().open()
    let row = try #require(
      try db.queryOne(
        "SELECT 1 AS a, 2 AS a, 3 AS A, 4 AS [é], 5 AS [e\u{301}x], 6 AS K, 7 AS a_rather_long_column_name, 8 AS \"\""))
    let names = [
      "a", "A", "é", "e\u{301}", "e\u{301}x", "éx", "K", "\u{212A}", "k", "a_rather_long_column_name",
      "a_rather_long_column_namE", "", "missing", "b",
    ]
    for name in names {
      let expected = row.columns.firstIndex(of: name).map { row.values[$0] } ?? .null
      #expect(row[name] == expected, "\(name.debugDescription)")
    }
    #expect(row["a"] == .integer(1))
    #expect(row["A"] == .integer(3))
    #expect(row["\u{212A}"] == .integer(6))
    #expect(row["éx"] == .integer(5))
    #expect(row["missing"] == .null)
    // Only ASCII names: KELVIN SIGN still finds "K", as String equality says.
    let ascii = try #require(try db.queryOne("SELECT 1 AS x, 2 AS K, 3 AS y"))
    #expect(ascii["\u{212A}"] == .integer(2))
    #expect(ascii["Kx"] == .null)
  }

  @Test func rowsOfOneStatementShareItsColumnsAndOutliveTheNextStep() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT) STRICT")
    for i in 0..<50 { try db.run("INSERT INTO t (id, name) VALUES (?, ?)", i, "name number \(i) with some length") }
    let rows = try db.query("SELECT id, name FROM t ORDER BY id")
    #expect(rows.count == 50)
    for (i, row) in rows.enumerated() {
      #expect(row.columns == ["id", "name"])
      #expect(try row.int("id") == Int64(i))
      #expect(try row.string("name") == "name number \(i) with some length")
    }
  }

  @Test func cachedStatementsAreFoundForLiteralAndBuiltSQLAlike() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (x INTEGER)")
    let literal = try db.statement("SELECT count(*) FROM t WHERE x > ?")
    let built = try db.statement("SELECT count(*) FROM t WHERE " + ["x", ">", "?"].joined(separator: " "))
    #expect(literal === built)
    #expect(try db.statement("SELECT count(*) FROM t WHERE x > ?") === literal)
    // Many short-lived SQL strings of one length: freed text is reused at the same
    // address, and each must still get its own statement.
    let before = db.cachedStatementCount
    for i in 0..<600 {
      let sql = "SELECT \(1000 + i % 300) AS value_of_this_query"
      #expect(try db.scalarInt(sql) == Int64(1000 + i % 300))
      #expect(try db.queryOne(sql)?["value_of_this_query"] == .integer(Int64(1000 + i % 300)))
      let small = "SELECT \(i % 300)"  // short enough to live inline, not on the heap
      #expect(try db.scalarInt(small) == Int64(i % 300))
    }
    #expect(db.cachedStatementCount == before + 600)
  }

  @Test func scalarsReadTheFirstColumnOfTheFirstRowAsBefore() throws {
    let db = try TempDatabase().open()
    try db.execute("CREATE TABLE t (x INTEGER)")
    #expect(try db.scalarInt("SELECT x FROM t") == nil)
    #expect(try db.scalarText("SELECT x FROM t") == nil)
    #expect(try db.scalarInt("SELECT NULL") == nil)
    #expect(try db.scalarText("SELECT NULL") == nil)
    #expect(try db.scalarInt("SELECT 'text'") == nil)
    #expect(try db.scalarText("SELECT 'text'") == "text")
    #expect(try db.scalarText("SELECT 5") == "5")
    #expect(try db.scalarText("SELECT x'00'") == nil)
    #expect(try db.scalarInt("SELECT x'00'") == nil)
    #expect(try db.scalarText("SELECT 2.5") == "2.5")
    #expect(try db.scalarInt("SELECT 7, 8") == 7)
    #expect(try db.scalarInt("INSERT INTO t VALUES (1)") == nil)
    #expect(try db.scalarInt("SELECT count(*) FROM t") == 1)
  }
}
