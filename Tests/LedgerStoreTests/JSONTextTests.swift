import Foundation
import LedgerCore
import Testing

@testable import LedgerStore

/// Events and outbox rows keep the JSON text `jsonText` writes, so its bytes must not
/// change: the reference below is the scalar-by-scalar writer it replaced.
@Suite struct JSONTextTests {
  static func reference(_ data: [String: String]) -> String {
    func append(_ s: String, to out: inout String) {
      out += "\""
      for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20:
          let hex = String(scalar.value, radix: 16)
          out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
      }
      out += "\""
    }
    var out = "{"
    for (i, key) in data.keys.sorted().enumerated() {
      if i > 0 { out += "," }
      append(key, to: &out)
      out += ":"
      append(data[key] ?? "", to: &out)
    }
    return out + "}"
  }

  static let awkward: [String] = [
    "", "plain", "with space", "quote\"", "back\\slash", "\\\"", "new\nline", "cr\r", "tab\t", "\u{0}",
    "\u{1}\u{8}\u{B}\u{C}",
    "\u{1F}", "\u{7F}", "\u{80}", "é", "e\u{301}", "€", "👍🏽", "👨‍👩‍👧", "\u{2028}\u{2029}", "\u{FEFF}", "\u{FFFD}", "/slash",
    "</script>", "ends with escape\n", "\nstarts with escape", String(repeating: "long ", count: 200) + "\"end\"",
    "a\u{0}b\u{1F}c\"d\\e\u{7F}fé\ng",
  ]

  @Test func escapesEveryControlCharacterAsBefore() throws {
    let ledger = try TestLedger()
    for value in (0..<0x80).map({ String(UnicodeScalar(UInt8($0))) }) + Self.awkward {
      var data = ["k": value]
      data[value] = "v"
      data["z\(value)"] = value
      #expect(try ledger.store.jsonText(data) == Self.reference(data), "\(value.debugDescription)")
      var out = Array("prefix".utf8)
      LedgerStore.appendJSONString(value, to: &out)
      // The reference writes `{"":"…"}` for this; the string alone is between the colon and the brace.
      #expect(String(decoding: out, as: UTF8.self) == "prefix" + Self.reference(["": value]).dropFirst(4).dropLast())
    }
  }

  @Test func keysAreSortedAsBeforeAndTheOutputIsByteIdentical() throws {
    let ledger = try TestLedger()
    #expect(try ledger.store.jsonText([:]) == "{}")
    var data: [String: String] = [:]
    for (i, s) in Self.awkward.enumerated() { data[s] = Self.awkward[(i * 7) % Self.awkward.count] }
    data["Zeta"] = "upper"
    data["zeta"] = "lower"
    data["é"] = "precomposed"
    data["e\u{301}x"] = "combining"
    let written = try ledger.store.jsonText(data)
    #expect(Array(written.utf8) == Array(Self.reference(data).utf8))
  }

  @Test func randomStringsAreWrittenAsBefore() throws {
    let ledger = try TestLedger()
    var state: UInt64 = 42
    func next(_ bound: Int) -> Int {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return Int((state >> 33) % UInt64(bound))
    }
    let pool = Array("ab\"\\\n\r\t\u{0}\u{1}\u{1F}\u{7F}é€👍🏽\u{301}\u{2028} ".unicodeScalars)
    for _ in 0..<3_000 {
      var data: [String: String] = [:]
      for _ in 0..<next(5) {
        var key = ""
        var value = ""
        for _ in 0..<next(8) { key.unicodeScalars.append(pool[next(pool.count)]) }
        for _ in 0..<next(40) { value.unicodeScalars.append(pool[next(pool.count)]) }
        data[key] = value
      }
      #expect(try ledger.store.jsonText(data) == Self.reference(data))
    }
  }
}
