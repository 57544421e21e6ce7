/// A moment in time: whole seconds since 1970-01-01T00:00:00Z. The ledger stores it as
/// ISO 8601 text in UTC (`2026-11-23T19:28:18Z`), which sorts and compares as text and
/// which SQLite's date functions read.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
  public let secondsSinceEpoch: Int64

  public init(secondsSinceEpoch: Int64) { self.secondsSinceEpoch = secondsSinceEpoch }

  /// The instant at 00:00:00 UTC on `date`.
  public init(_ date: CivilDate, hour: Int = 0, minute: Int = 0, second: Int = 0) {
    secondsSinceEpoch = date.daysSinceEpoch * 86_400 + Int64(hour * 3600 + minute * 60 + second)
  }

  /// Parses `YYYY-MM-DDTHH:MM:SSZ`, or a bare `YYYY-MM-DD` meaning midnight UTC.
  public init(iso8601 text: String, field: String = "time") throws {
    // The ledger stores every time in the canonical form; read it straight off the bytes.
    // Anything else (and every refusal) goes through the general parser below.
    if let seconds = Instant.canonicalSeconds(text) {
      self.init(secondsSinceEpoch: seconds)
      return
    }
    let bytes = Array(text.utf8)
    if bytes.count == 10 {
      self.init(try CivilDate(iso8601: text, field: field))
      return
    }
    let digitPositions = [11, 12, 14, 15, 17, 18]
    guard bytes.count == 20, digitPositions.allSatisfy({ (48...57).contains(bytes[$0]) }),
      bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
      bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "Z"),
      let date = try? CivilDate(iso8601: String(decoding: bytes[0..<10], as: UTF8.self)),
      let h = Int(String(decoding: bytes[11..<13], as: UTF8.self)), (0...23).contains(h),
      let m = Int(String(decoding: bytes[14..<16], as: UTF8.self)), (0...59).contains(m),
      let s = Int(String(decoding: bytes[17..<19], as: UTF8.self)), (0...59).contains(s)
    else {
      throw InputError(field: field, rule: "'\(text)' is not a UTC time (YYYY-MM-DDTHH:MM:SSZ or YYYY-MM-DD)")
    }
    self.init(date, hour: h, minute: m, second: s)
  }

  /// The UTC calendar date this instant falls on.
  public var date: CivilDate {
    CivilDate(
      daysSinceEpoch: secondsSinceEpoch >= 0 ? secondsSinceEpoch / 86_400 : (secondsSinceEpoch - 86_399) / 86_400)
  }

  public func adding(seconds: Int64) -> Instant { Instant(secondsSinceEpoch: secondsSinceEpoch + seconds) }
  public func adding(days: Int) -> Instant { adding(seconds: Int64(days) * 86_400) }

  /// Seconds since the epoch for a valid `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DD`; nil for
  /// anything else, which the general parser then accepts or refuses.
  static func canonicalSeconds(_ text: String) -> Int64? {
    let parsed = text.utf8.withContiguousStorageIfAvailable { bytes -> Int64? in
      if bytes.count == 10 { return CivilDate.canonical(bytes).map { $0.daysSinceEpoch * 86_400 } }
      guard bytes.count == 20, bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
        bytes[16] == UInt8(ascii: ":"), bytes[19] == UInt8(ascii: "Z"),
        let h = ISO8601Digits.two(bytes, 11), h <= 23, let m = ISO8601Digits.two(bytes, 14), m <= 59,
        let s = ISO8601Digits.two(bytes, 17), s <= 59,
        let date = CivilDate.canonical(UnsafeBufferPointer(rebasing: bytes[0..<10]))
      else { return nil }
      return date.daysSinceEpoch * 86_400 + Int64(h * 3600 + m * 60 + s)
    }
    return parsed ?? nil
  }

  /// `2026-11-23T19:28:18Z`.
  public var iso8601: String {
    let date = self.date
    let secondsOfDay = secondsSinceEpoch - date.daysSinceEpoch * 86_400
    if (0...9999).contains(date.year), (0..<86_400).contains(secondsOfDay) {
      let seconds = Int(secondsOfDay)
      return String(unsafeUninitializedCapacity: 20) { buffer in
        date.writeCanonical(to: buffer)
        buffer[10] = UInt8(ascii: "T")
        ISO8601Digits.write(seconds / 3600, count: 2, to: buffer, at: 11)
        buffer[13] = UInt8(ascii: ":")
        ISO8601Digits.write(seconds / 60 % 60, count: 2, to: buffer, at: 14)
        buffer[16] = UInt8(ascii: ":")
        ISO8601Digits.write(seconds % 60, count: 2, to: buffer, at: 17)
        buffer[19] = UInt8(ascii: "Z")
        return 20
      }
    }
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(date.iso8601)T\(two(secondsOfDay / 3600)):\(two(secondsOfDay / 60 % 60)):\(two(secondsOfDay % 60))Z"
  }

  public var description: String { iso8601 }
  public static func < (a: Instant, b: Instant) -> Bool { a.secondsSinceEpoch < b.secondsSinceEpoch }
}

/// A calendar date without a time zone (issue dates, due dates, card expiries).
public struct CivilDate: Hashable, Comparable, Sendable, CustomStringConvertible {
  public let year: Int
  public let month: Int
  public let day: Int

  /// A valid Gregorian date, or an error naming `field`.
  public init(year: Int, month: Int, day: Int, field: String = "date") throws {
    guard (1...9999).contains(year), (1...12).contains(month),
      (1...CivilDate.daysIn(month: month, year: year)).contains(day)
    else {
      throw InputError(field: field, rule: "\(year)-\(month)-\(day) is not a calendar date")
    }
    self.year = year
    self.month = month
    self.day = day
  }

  /// Parses `YYYY-MM-DD`.
  public init(iso8601 text: String, field: String = "date") throws {
    // A valid `YYYY-MM-DD` is read straight off the bytes; anything else (and every
    // refusal) goes through the general parser below.
    if let date = text.utf8.withContiguousStorageIfAvailable(CivilDate.canonical), let date {
      self = date
      return
    }
    let parts = text.split(separator: "-", omittingEmptySubsequences: false)
    guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
      let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
      parts.allSatisfy({ $0.utf8.allSatisfy { (48...57).contains($0) } })
    else {
      throw InputError(field: field, rule: "'\(text)' is not a date (YYYY-MM-DD)")
    }
    do {
      try self.init(year: y, month: m, day: d, field: field)
    } catch {
      throw InputError(field: field, rule: "'\(text)' is not a calendar date")
    }
  }

  /// The date `days` days after 1970-01-01 (proleptic Gregorian calendar).
  public init(daysSinceEpoch days: Int64) {
    // Civil-from-days over 400-year eras of 146,097 days.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    year = Int(yoe + era * 400 + (m <= 2 ? 1 : 0))
    month = Int(m)
    day = Int(d)
  }

  public var daysSinceEpoch: Int64 {
    let y = Int64(month <= 2 ? year - 1 : year)
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = Int64(month > 2 ? month - 3 : month + 9)
    let doy = (153 * mp + 2) / 5 + Int64(day) - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }

  public func adding(days: Int) -> CivilDate { CivilDate(daysSinceEpoch: daysSinceEpoch + Int64(days)) }

  /// Days from `self` to `other` (positive when `other` is later).
  public func days(until other: CivilDate) -> Int { Int(other.daysSinceEpoch - daysSinceEpoch) }

  /// Monday is 1, Sunday is 7 (ISO 8601).
  public var isoWeekday: Int { Int(((daysSinceEpoch % 7) + 7 + 3) % 7) + 1 }

  public static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// The date in `bytes` if they are exactly a valid `YYYY-MM-DD`; nil otherwise.
  static func canonical(_ bytes: UnsafeBufferPointer<UInt8>) -> CivilDate? {
    guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
      let high = ISO8601Digits.two(bytes, 0), let low = ISO8601Digits.two(bytes, 2),
      let month = ISO8601Digits.two(bytes, 5), let day = ISO8601Digits.two(bytes, 8)
    else { return nil }
    let year = high * 100 + low
    guard year >= 1, (1...12).contains(month), day >= 1, day <= CivilDate.daysIn(month: month, year: year) else {
      return nil
    }
    return CivilDate(checkedYear: year, month: month, day: day)
  }

  private init(checkedYear year: Int, month: Int, day: Int) {
    self.year = year
    self.month = month
    self.day = day
  }

  /// Writes `YYYY-MM-DD` into the first 10 bytes of `buffer`; the year must be in 0...9999.
  func writeCanonical(to buffer: UnsafeMutableBufferPointer<UInt8>) {
    ISO8601Digits.write(year, count: 4, to: buffer, at: 0)
    buffer[4] = UInt8(ascii: "-")
    ISO8601Digits.write(month, count: 2, to: buffer, at: 5)
    buffer[7] = UInt8(ascii: "-")
    ISO8601Digits.write(day, count: 2, to: buffer, at: 8)
  }

  public var iso8601: String {
    if (0...9999).contains(year) {
      return String(unsafeUninitializedCapacity: 10) { buffer in
        writeCanonical(to: buffer)
        return 10
      }
    }
    func pad(_ v: Int, _ n: Int) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
    return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
  }

  public var description: String { iso8601 }

  public static func < (a: CivilDate, b: CivilDate) -> Bool {
    (a.year, a.month, a.day) < (b.year, b.month, b.day)
  }
}

/// Reading and writing the fixed-width digit groups of ISO 8601 text.
enum ISO8601Digits {
  /// The two-digit number at `offset`, or nil unless both bytes are ASCII digits.
  @inline(__always)
  static func two(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: Int) -> Int? {
    let tens = bytes[offset] &- UInt8(ascii: "0")
    let ones = bytes[offset + 1] &- UInt8(ascii: "0")
    guard tens < 10, ones < 10 else { return nil }
    return Int(tens) * 10 + Int(ones)
  }

  /// Writes `value` (non-negative, below 10^count) as `count` zero-padded digits at `offset`.
  @inline(__always)
  static func write(_ value: Int, count: Int, to buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
    var rest = value
    for i in stride(from: offset + count - 1, through: offset, by: -1) {
      buffer[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
      rest /= 10
    }
  }
}

/// The one source of time in ledgerd. Production reads the system clock; tests and
/// simulations inject their own, and the same code runs a month in milliseconds.
public protocol LedgerClock: Sendable {
  func now() -> Instant
}

/// A clock that always reads the same instant.
public struct FixedClock: LedgerClock {
  public let instant: Instant
  public init(_ instant: Instant) { self.instant = instant }
  public func now() -> Instant { instant }
}
