import Testing

@testable import LedgerCore

@Suite("CivilDate")
struct CivilDateTests {
  @Test(
    "valid dates parse",
    arguments: [
      ("2026-11-23", 2026, 11, 23), ("2028-02-29", 2028, 2, 29), ("2000-02-29", 2000, 2, 29),
      ("1970-01-01", 1970, 1, 1), ("0001-01-01", 1, 1, 1), ("9999-12-31", 9999, 12, 31), ("2026-12-31", 2026, 12, 31),
      ("2026-04-30", 2026, 4, 30),
    ])
  func valid(text: String, year: Int, month: Int, day: Int) throws {
    let date = try CivilDate(iso8601: text)
    #expect(date.year == year)
    #expect(date.month == month)
    #expect(date.day == day)
    #expect(date.iso8601 == text)
    #expect(date.description == text)
    #expect(try CivilDate(year: year, month: month, day: day) == date)
  }

  @Test(
    "impossible dates are refused as not calendar dates",
    arguments: [
      "2026-02-29", "1900-02-29", "2100-02-29", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32", "2026-04-31",
      "2026-06-31", "2026-09-31", "2026-11-31", "0000-01-01",
    ])
  func impossible(text: String) throws {
    let error = try #require(refusal { try CivilDate(iso8601: text, field: "--due") })
    #expect(error.field == "--due")
    #expect(error.rule.contains("not a calendar date"))
    #expect(error.rule.contains(text))
  }

  @Test(
    "malformed dates are refused as not dates",
    arguments: [
      "", "2026-1-01", "2026-01-1", "26-01-01", "2026/01/01", "20260101", "2026-01-01T00:00:00Z", "2026-01-01 ",
      " 2026-01-01", "+026-01-01", "2026-+1-01", "2026-01-+1", "2026-01--1", "abcd-ef-gh", "２０２６-01-01", "2026-01-0١",
      "-2026-01-01",
    ])
  func malformed(text: String) throws {
    let error = try #require(refusal { try CivilDate(iso8601: text) })
    #expect(error.field == "date")
    #expect(error.rule.contains("is not a date"))
  }

  @Test("init(year:month:day:) validates and names the field")
  func memberwise() throws {
    let error = try #require(refusal { try CivilDate(year: 2026, month: 2, day: 29, field: "issue") })
    #expect(error.field == "issue")
    #expect(refusal { try CivilDate(year: 0, month: 1, day: 1) } != nil)
    #expect(refusal { try CivilDate(year: 10000, month: 1, day: 1) } != nil)
    #expect(refusal { try CivilDate(year: 2026, month: 13, day: 1) } != nil)
    #expect(refusal { try CivilDate(year: 2026, month: 1, day: 0) } != nil)
    #expect(try CivilDate(year: 2024, month: 2, day: 29).iso8601 == "2024-02-29")
  }

  @Test(
    "days in month",
    arguments: [
      (1, 2026, 31), (2, 2026, 28), (2, 2028, 29), (2, 2000, 29), (2, 1900, 28), (2, 2100, 28), (2, 2400, 29),
      (3, 2026, 31),
      (4, 2026, 30), (5, 2026, 31), (6, 2026, 30), (7, 2026, 31), (8, 2026, 31), (9, 2026, 30), (10, 2026, 31),
      (11, 2026, 30), (12, 2026, 31),
    ])
  func daysIn(month: Int, year: Int, days: Int) {
    #expect(CivilDate.daysIn(month: month, year: year) == days)
  }

  @Test("known days since the epoch")
  func knownEpochDays() throws {
    #expect(try CivilDate(iso8601: "1970-01-01").daysSinceEpoch == 0)
    #expect(try CivilDate(iso8601: "1970-01-02").daysSinceEpoch == 1)
    #expect(try CivilDate(iso8601: "1969-12-31").daysSinceEpoch == -1)
    #expect(try CivilDate(iso8601: "2000-03-01").daysSinceEpoch == 11_017)
    #expect(try CivilDate(iso8601: "2026-11-23").daysSinceEpoch == 20_780)
    #expect(try CivilDate(iso8601: "0001-01-01").daysSinceEpoch == -719_162)
    #expect(try CivilDate(iso8601: "9999-12-31").daysSinceEpoch == 2_932_896)
    let epoch = CivilDate(daysSinceEpoch: 0)
    #expect(epoch.iso8601 == "1970-01-01")
    #expect(CivilDate(daysSinceEpoch: -1).iso8601 == "1969-12-31")
    #expect(CivilDate(daysSinceEpoch: 800_000).iso8601 == "4160-04-29")
  }

  @Test("daysSinceEpoch round-trips every 97th day from -800000 to 800000")
  func roundTripWideRange() {
    var failures = 0
    for days in stride(from: Int64(-800_000), through: 800_000, by: 97) {
      let date = CivilDate(daysSinceEpoch: days)
      if date.daysSinceEpoch != days || !(1...12).contains(date.month)
        || !(1...CivilDate.daysIn(month: date.month, year: date.year)).contains(date.day)
      {
        failures += 1
        if failures <= 5 { Issue.record("day \(days) gave \(date.year)-\(date.month)-\(date.day)") }
      }
    }
    #expect(failures == 0)
  }

  @Test("consecutive days from 0001-01-01 to 9999-12-31 step through the calendar one day at a time")
  func consecutiveDays() throws {
    var previous = try CivilDate(iso8601: "0001-01-01")
    var days = previous.daysSinceEpoch
    var failures = 0
    let last = try CivilDate(iso8601: "9999-12-31").daysSinceEpoch
    while days < last {
      days += 1
      let date = CivilDate(daysSinceEpoch: days)
      let expected: (Int, Int, Int)
      if previous.day < CivilDate.daysIn(month: previous.month, year: previous.year) {
        expected = (previous.year, previous.month, previous.day + 1)
      } else if previous.month < 12 {
        expected = (previous.year, previous.month + 1, 1)
      } else {
        expected = (previous.year + 1, 1, 1)
      }
      if (date.year, date.month, date.day) != expected || date.daysSinceEpoch != days || !(previous < date) {
        failures += 1
        if failures <= 5 { Issue.record("day \(days): \(date) after \(previous)") }
      }
      previous = date
    }
    #expect(failures == 0)
    #expect(previous.iso8601 == "9999-12-31")
  }

  @Test(
    "ISO weekday: Monday is 1, Sunday is 7",
    arguments: [
      ("2026-11-23", 1), ("2026-11-24", 2), ("2026-11-25", 3), ("2026-11-26", 4), ("2026-11-27", 5), ("2026-11-28", 6),
      ("2026-11-29", 7), ("1970-01-01", 4), ("1969-12-31", 3), ("1969-12-28", 7), ("1969-12-29", 1), ("2000-01-01", 6),
      ("0001-01-01", 1), ("9999-12-31", 5),
    ])
  func isoWeekday(text: String, weekday: Int) throws {
    #expect(try CivilDate(iso8601: text).isoWeekday == weekday)
  }

  @Test("weekdays cycle 1...7 over a wide range, including before the epoch")
  func weekdayCycle() {
    var expected = CivilDate(daysSinceEpoch: -10_000).isoWeekday
    for days in Int64(-10_000)...10_000 {
      let weekday = CivilDate(daysSinceEpoch: days).isoWeekday
      if weekday != expected {
        Issue.record("day \(days): weekday \(weekday), expected \(expected)")
        return
      }
      expected = expected % 7 + 1
    }
  }

  @Test("adding days and counting days")
  func addingDays() throws {
    let date = try CivilDate(iso8601: "2026-11-23")
    #expect(date.adding(days: 0) == date)
    #expect(date.adding(days: 7).iso8601 == "2026-11-30")
    #expect(date.adding(days: 8).iso8601 == "2026-12-01")
    #expect(date.adding(days: 39).iso8601 == "2027-01-01")
    #expect(date.adding(days: -23).iso8601 == "2026-10-31")
    #expect(try CivilDate(iso8601: "2028-02-28").adding(days: 1).iso8601 == "2028-02-29")
    #expect(try CivilDate(iso8601: "2026-02-28").adding(days: 1).iso8601 == "2026-03-01")
    #expect(date.adding(days: 365).iso8601 == "2027-11-23")
    #expect(date.days(until: date.adding(days: 30)) == 30)
    #expect(date.adding(days: 30).days(until: date) == -30)
    #expect(try CivilDate(iso8601: "2026-01-01").days(until: try CivilDate(iso8601: "2027-01-01")) == 365)
    #expect(try CivilDate(iso8601: "2028-01-01").days(until: try CivilDate(iso8601: "2029-01-01")) == 366)
  }

  @Test("dates compare chronologically")
  func comparison() throws {
    let a = try CivilDate(iso8601: "2026-11-30")
    let b = try CivilDate(iso8601: "2026-12-01")
    let c = try CivilDate(iso8601: "2027-01-01")
    #expect(a < b)
    #expect(b < c)
    #expect(!(b < a))
    #expect(a <= a)
    #expect(try CivilDate(iso8601: "2026-02-10") < CivilDate(iso8601: "2026-10-02"))
    #expect([c, a, b].sorted() == [a, b, c])
  }
}

@Suite("Instant")
struct InstantTests {
  @Test(
    "ISO 8601 round trip",
    arguments: [
      ("2026-11-23T19:28:18Z", Int64(1_795_462_098)), ("1970-01-01T00:00:00Z", 0), ("1970-01-01T00:00:01Z", 1),
      ("1969-12-31T23:59:59Z", -1), ("1969-12-31T00:00:00Z", -86_400), ("1969-12-30T23:59:59Z", -86_401),
      ("2000-02-29T12:00:00Z", 951_825_600), ("0001-01-01T00:00:00Z", -62_135_596_800),
      ("9999-12-31T23:59:59Z", 253_402_300_799),
    ])
  func roundTrip(text: String, seconds: Int64) throws {
    let instant = try Instant(iso8601: text)
    #expect(instant.secondsSinceEpoch == seconds)
    #expect(instant.iso8601 == text)
    #expect(instant.description == text)
    #expect(Instant(secondsSinceEpoch: seconds).iso8601 == text)
  }

  @Test("every 7919th second over four centuries round-trips")
  func roundTripMany() throws {
    let start = try Instant(iso8601: "1800-01-01T00:00:00Z").secondsSinceEpoch
    let end = try Instant(iso8601: "2200-01-01T00:00:00Z").secondsSinceEpoch
    var failures = 0
    for seconds in stride(from: start, through: end, by: 7_919 * 1_009) {
      let instant = Instant(secondsSinceEpoch: seconds)
      if (try? Instant(iso8601: instant.iso8601)) != instant { failures += 1 }
    }
    #expect(failures == 0)
  }

  @Test("a bare date means midnight UTC")
  func bareDate() throws {
    let instant = try Instant(iso8601: "2026-11-23")
    #expect(instant.iso8601 == "2026-11-23T00:00:00Z")
    #expect(instant == Instant(try CivilDate(iso8601: "2026-11-23")))
    let error = try #require(refusal { try Instant(iso8601: "2026-02-29", field: "LEDGERD_NOW") })
    #expect(error.field == "LEDGERD_NOW")
  }

  @Test(
    "malformed times are refused",
    arguments: [
      "", "2026-11-23T19:28:18", "2026-11-23T19:28:18+00:00", "2026-11-23 19:28:18Z", "2026-11-23t19:28:18Z",
      "2026-11-23T19:28:18z", "2026-11-23T24:00:00Z", "2026-11-23T23:60:00Z", "2026-11-23T23:59:60Z",
      "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-23T1:28:18Z ", "2026-11-23T19-28-18Z",
      "2026-11-23T19:28:18.5Z", "2026-11-23Tab:cd:efZ", "20261123T192818Z",
    ])
  func malformed(text: String) throws {
    let error = try #require(refusal { try Instant(iso8601: text, field: "--at") })
    #expect(error.field == "--at")
  }

  @Test(
    "signs inside the time fields are refused",
    arguments: ["2026-11-23T+1:00:00Z", "2026-11-23T-0:00:00Z", "2026-11-23T00:+5:00Z", "2026-11-23T00:00:-0Z"])
  func signedFields(text: String) {
    // Hours, minutes and seconds are digits only: Int(_:) alone would take a sign.
    #expect(throws: InputError.self) { try Instant(iso8601: text) }
  }

  @Test("init(date:hour:minute:second:) and date")
  func components() throws {
    let date = try CivilDate(iso8601: "2026-11-23")
    let instant = Instant(date, hour: 19, minute: 28, second: 18)
    #expect(instant.iso8601 == "2026-11-23T19:28:18Z")
    #expect(instant.date == date)
    #expect(Instant(date, hour: 23, minute: 59, second: 59).date == date)
    #expect(Instant(date).adding(seconds: -1).date.iso8601 == "2026-11-22")
    #expect(Instant(secondsSinceEpoch: -1).date.iso8601 == "1969-12-31")
    #expect(Instant(secondsSinceEpoch: -86_400).date.iso8601 == "1969-12-31")
    #expect(Instant(secondsSinceEpoch: -86_401).date.iso8601 == "1969-12-30")
  }

  @Test("adding seconds and days")
  func adding() throws {
    let instant = try Instant(iso8601: "2026-11-23T19:28:18Z")
    #expect(instant.adding(seconds: 42).iso8601 == "2026-11-23T19:29:00Z")
    #expect(instant.adding(seconds: -19 * 3600 - 28 * 60 - 19).iso8601 == "2026-11-22T23:59:59Z")
    #expect(instant.adding(days: 8).iso8601 == "2026-12-01T19:28:18Z")
    #expect(instant.adding(days: -365).iso8601 == "2025-11-23T19:28:18Z")
    #expect(instant.adding(days: 0) == instant)
    #expect(instant.adding(days: 14).date == instant.date.adding(days: 14))
  }

  @Test("instants order by time, and their text sorts the same way")
  func ordering() throws {
    let texts = [
      "1969-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2026-11-23T09:00:00Z", "2026-11-23T19:28:18Z",
      "2027-01-01T00:00:00Z",
    ]
    let instants = try texts.map { try Instant(iso8601: $0) }
    #expect(instants == instants.sorted())
    #expect(texts == texts.sorted())
    #expect(instants[0] < instants[1])
    #expect(!(instants[2] < instants[2]))
  }

  @Test("FixedClock always reads its instant")
  func fixedClock() throws {
    let instant = try Instant(iso8601: "2026-11-23T19:28:18Z")
    let clock: any LedgerClock = FixedClock(instant)
    #expect(clock.now() == instant)
    #expect(clock.now() == clock.now())
  }
}
