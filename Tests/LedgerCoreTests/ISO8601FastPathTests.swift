import Testing

@testable import LedgerCore

/// The byte-level readers and writers of canonical ISO 8601 text must agree exactly with
/// the general code they stand in front of: same values, same refusals, same text. The
/// references below are that general code as it was before the fast paths existed.
enum ISO8601Reference {
  static func date(_ text: String, field: String = "date") throws -> CivilDate {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
      let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
      parts.allSatisfy({ $0.utf8.allSatisfy { (48...57).contains($0) } })
    else {
      throw InputError(field: field, rule: "'\(text)' is not a date (YYYY-MM-DD)")
    }
    do {
      return try CivilDate(year: y, month: m, day: d, field: field)
    } catch {
      throw InputError(field: field, rule: "'\(text)' is not a calendar date")
    }
  }

  static func instant(_ text: String, field: String = "time") throws -> Instant {
    let bytes = Array(text.utf8)
    if bytes.count == 10 { return Instant(try date(text, field: field)) }
    let digitPositions = [11, 12, 14, 15, 17, 18]
    guard bytes.count == 20, digitPositions.allSatisfy({ (48...57).contains(bytes[$0]) }),
      bytes[10] == UInt8(ascii: "T"),
      bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "Z"),
      let date = try? date(String(decoding: bytes[0..<10], as: UTF8.self)),
      let h = Int(String(decoding: bytes[11..<13], as: UTF8.self)), (0...23).contains(h),
      let m = Int(String(decoding: bytes[14..<16], as: UTF8.self)), (0...59).contains(m),
      let s = Int(String(decoding: bytes[17..<19], as: UTF8.self)), (0...59).contains(s)
    else {
      throw InputError(field: field, rule: "'\(text)' is not a UTC time (YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD)")
    }
    return Instant(date, hour: h, minute: m, second: s)
  }

  static func text(_ date: CivilDate) -> String {
    func pad(_ v: Int, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
    return "\(pad(date.year, 4))-\(pad(date.month, 2))-\(pad(date.day, 2))"
  }

  static func text(_ instant: Instant) -> String {
    let secondsOfDay = instant.secondsSinceEpoch - instant.date.daysSinceEpoch * 86_400
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(text(instant.date))T\(two(secondsOfDay / 3600)):\(two(secondsOfDay / 60 % 60)):\(two(secondsOfDay % 60))Z"
  }
}

/// The outcome of a parse: the value, or the refusal's field and rule.
private enum Parsed<T: Equatable>: Equatable {
  case value(T)
  case refused(InputError)
  case otherError(String)

  init(_ body: () throws -> T) {
    do { self = .value(try body()) } catch let error as InputError { self = .refused(error) } catch {
      self = .otherError(String(describing: error))
    }
  }
}

/// A small deterministic generator, so a failure can be replayed.
private struct SplitMix64: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite("ISO 8601 fast paths")
struct ISO8601FastPathTests {
  static let awkward: [String] = [
    "", "2026-11-23", "2026-11-23T09:00:00Z", "2028-02-29", "2026-02-29", "2000-02-29", "1900-02-29", "0000-01-01",
    "0001-01-01", "9999-12-31", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32", "2026-04-31", "2026-1-01",
    "2026-01-1", "26-01-01", "2026/01/01", "20260101", "2026-01-01 ", " 2026-01-01", "+026-01-01", "-026-01-01",
    "2026-+1-01", "2026--1-01", "2026-01-+1", "２０２６-01-01", "2026-0１-01", "2026-11-23T24:00:00Z",
    "2026-11-23T23:60:00Z", "2026-11-23T23:59:60Z", "2026-11-23T23:59:59Z", "2026-11-23T00:00:00Z",
    "2026-11-23t09:00:00Z", "2026-11-23T09:00:00z", "2026-11-23 09:00:00Z", "2026-11-23T09-00:00Z",
    "2026-11-23T09:00-00Z", "2026-11-23T9:00:00Z ", "2026-11-23T09:00:00+00", "2026-02-30T09:00:00Z",
    "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-11-23T09:00:00", "2026-11-23T09:00:00ZZ",
    "2026-11-23T+9:00:00Z", "2026-11-23T09:+0:00Z", "2026-11-23T09:00:+0Z", "2026-11-２3T09:00:00Z",
    "2026-11-23T0９:00:00Z", "é026-11-23", "2026-11-2é", "2026-11-23T09:00:0é", "2026\u{0}11-23", "2026-11-23\u{0}",
    "2026-1\u{301}-23", "YYYY-MM-DD", "2026-11-23TXX:00:00Z", "1970-01-01", "1969-12-31T23:59:59Z",
  ]

  static func check(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(
      Parsed { try CivilDate(iso8601: text, field: "--due") }
        == Parsed { try ISO8601Reference.date(text, field: "--due") }, "CivilDate(iso8601: \(text.debugDescription))",
      sourceLocation: sourceLocation)
    #expect(
      Parsed { try Instant(iso8601: text, field: "--until") }
        == Parsed { try ISO8601Reference.instant(text, field: "--until") },
      "Instant(iso8601: \(text.debugDescription))",
      sourceLocation: sourceLocation)
    // The default field names too.
    #expect(Parsed { try CivilDate(iso8601: text) } == Parsed { try ISO8601Reference.date(text) })
    #expect(Parsed { try Instant(iso8601: text) } == Parsed { try ISO8601Reference.instant(text) })
  }

  @Test("awkward inputs parse or are refused exactly as before")
  func awkwardInputs() {
    for text in Self.awkward { Self.check(text) }
  }

  @Test("every day of several years, at several times of day")
  func everyDay() throws {
    for year in [1, 4, 100, 400, 1600, 1899, 1900, 1969, 1970, 2000, 2024, 2026, 2100, 9999] {
      var date = try CivilDate(year: year, month: 1, day: 1)
      while date.year == year {
        let text = ISO8601Reference.text(date)
        Self.check(text)
        Self.check(text + "T00:00:00Z")
        Self.check(text + "T23:59:59Z")
        Self.check(text + "T12:34:56Z")
        if year == 9999 && date.month == 12 && date.day == 31 { break }
        date = date.adding(days: 1)
      }
    }
  }

  @Test("random corruptions of canonical text are treated as before")
  func corruptions() {
    var random = SplitMix64(state: 20_261_123)
    let alphabet = Array("0123456789-:TZtz +é\u{0}９".unicodeScalars)
    for _ in 0..<40_000 {
      let seconds = Int64.random(in: -62_135_596_800...253_402_300_799, using: &random)
      var scalars = Array(ISO8601Reference.text(Instant(secondsSinceEpoch: seconds)).unicodeScalars)
      if Bool.random(using: &random) { scalars.removeLast(10) }
      for _ in 0..<Int.random(in: 0...2, using: &random) {
        let i = Int.random(in: 0..<scalars.count, using: &random)
        switch Int.random(in: 0..<3, using: &random) {
        case 0: scalars[i] = alphabet.randomElement(using: &random)!
        case 1: scalars.insert(alphabet.randomElement(using: &random)!, at: i)
        default: scalars.remove(at: i)
        }
      }
      var text = ""
      text.unicodeScalars.append(contentsOf: scalars)
      Self.check(text)
    }
  }

  @Test("instants and dates are written exactly as before, including outside years 0...9999")
  func formatting() throws {
    var random = SplitMix64(state: 7)
    var samples: [Int64] = [
      0, -1, 1, 86_399, 86_400, -86_400, -86_401, 1_795_424_400, -62_135_596_800, -62_135_596_801,
      -62_167_219_200, -62_167_219_201, 253_402_300_799, 253_402_300_800, 300_000_000_000, -70_000_000_000,
    ]
    for _ in 0..<50_000 { samples.append(Int64.random(in: -80_000_000_000...320_000_000_000, using: &random)) }
    for seconds in samples {
      let instant = Instant(secondsSinceEpoch: seconds)
      #expect(instant.iso8601 == ISO8601Reference.text(instant), "\(seconds)")
      #expect(instant.description == ISO8601Reference.text(instant))
      #expect(instant.date.iso8601 == ISO8601Reference.text(instant.date), "\(seconds)")
      if (1...9999).contains(instant.date.year) {
        #expect(try Instant(iso8601: instant.iso8601) == instant)
        #expect(try CivilDate(iso8601: instant.date.iso8601) == instant.date)
      }
    }
  }
}
