import Foundation
import LedgerSQLite
import Testing

/// A seeded fuzz run of `ledgerd reconcile bank` (issue 15): a valid camt.053 statement and
/// a valid bank CSV, mutated again and again (byte flips, hostile bytes and markup, cuts,
/// duplicated elements, huge numbers, long padding), each imported into a copy of one small
/// ledger. Every run must end in exit 0 or 1 (imported) or 65 (refused), never a crash or
/// 70; a refused file must leave the ledger file byte for byte as it was; after every
/// import that committed, `ledgerd check` must be clean (a refused one leaves the ledger
/// identical to one already checked clean).
///
/// `LEDGERD_FUZZ_ITERATIONS` (default 320) and `LEDGERD_FUZZ_SEED` (default 20261123)
/// override the run; `LEDGERD_BIN` can point it at a release binary. A failing mutation is
/// kept in `$TMPDIR/ledgerd-fuzz-failures/` with its seed and iteration in the name.
@Suite(.serialized) struct StatementFuzzTests {
  /// SplitMix64: small, fast, and the same sequence on every platform for a seed.
  struct Generator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
  }

  /// Bytes and markup that hostile or damaged files carry.
  static let hostile: [[UInt8]] = [
    [0xFF], [0x00], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF4, 0x90, 0x80, 0x80], [0xEF, 0xBB, 0xBF],
    [0x1B], [0x80],
    Array("&x;".utf8), Array("&amp;".utf8), Array("&".utf8), Array("&#0;".utf8), Array("&#x1F;".utf8),
    Array("&#233;".utf8),
    Array("&#xFFFE;".utf8), Array("<!DOCTYPE d [<!ENTITY x \"y\">]>".utf8), Array("<!ENTITY x \"y\">".utf8),
    Array("<![CDATA[&<]]>".utf8),
    Array("<!-- & -->".utf8), Array("]]>".utf8), Array("<?pi x?>".utf8), Array("<X\u{FF}/>".utf8),
    Array("<X".utf8) + [0xFF] + Array("/>".utf8),
    Array("<Amt Ccy=\"EUR\">1.00</Amt>".utf8), Array("<Ntry>".utf8), Array("</Ntry>".utf8), Array("<TxDtls>".utf8),
    Array("\"".utf8),
    Array(",".utf8), Array("\n".utf8), Array("\r\n".utf8), Array("4242 4242 4242 4242".utf8), Array("xmlns=\"\"".utf8),
    Array("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>".utf8), [0xFF, 0xFE], Array("\u{202E}".utf8),
    Array("\u{FEFF}".utf8),
  ]

  /// Amounts a mutation writes in place of one: beyond every bound, signed, exponent, zero.
  static let numbers = [
    "92233720368547758.07", "9223372036854775807", "99999999999999999999999999.99", "1000000000.00", "999999999.99",
    "0.00", "0", "1e5",
    "-5.00", "5.001", "00000000000000000000000000001.00", " 12.00 ", "1,000.00", "12.", ".5", "NaN",
    "18446744073709551616",
  ]

  static func mutate(_ input: [UInt8], csv: Bool, _ rng: inout Generator) -> (bytes: [UInt8], what: [String]) {
    var bytes = input
    var what: [String] = []
    // Mostly one mutation, so that a fair share of the files still import and `check` runs.
    let rounds = [1, 1, 1, 1, 1, 1, 2, 2, 2, 3].randomElement(using: &rng)!
    for _ in 0..<rounds {
      let at = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
      switch Int.random(in: 0..<10, using: &rng) {
      case 0 where !bytes.isEmpty:
        let b = UInt8.random(in: 0...255, using: &rng)
        bytes[at] = b
        what.append("byte \(at) = \(b)")
      case 1 where !bytes.isEmpty:
        let bit = UInt8(1) << UInt8.random(in: 0...7, using: &rng)
        bytes[at] ^= bit
        what.append("flip bit \(bit) of byte \(at)")
      case 2:
        let token = hostile.randomElement(using: &rng)!
        bytes.insert(contentsOf: token, at: at)
        what.append("insert \(token.count) hostile bytes at \(at)")
      case 3:
        bytes.removeSubrange(at...)
        what.append("cut at \(at)")
      case 4:
        // Duplicate an element (XML) or a row (CSV).
        if let span = csv ? row(in: bytes, near: at) : element(in: bytes, near: at) {
          bytes.insert(contentsOf: Array(bytes[span]), at: span.upperBound)
          what.append("duplicate \(span)")
        }
      case 5:
        if let span = amount(in: bytes, near: at, csv: csv) {
          let n = numbers.randomElement(using: &rng)!
          bytes.replaceSubrange(span, with: Array(n.utf8))
          what.append("amount \(span) = \(n)")
        }
      case 6:
        let pad = [UInt8(ascii: "0"), UInt8(ascii: " "), UInt8(ascii: "a"), UInt8(ascii: "\n")].randomElement(
          using: &rng)!
        let count = [1_000, 60_000, 66_000, 70_000, 140_000].randomElement(using: &rng)!
        let place = amount(in: bytes, near: at, csv: csv)?.lowerBound ?? at
        bytes.insert(contentsOf: [UInt8](repeating: pad, count: count), at: place)
        what.append("pad \(count) x \(pad) at \(place)")
      case 7:
        let end = min(bytes.count, at + Int.random(in: 1...200, using: &rng))
        bytes.removeSubrange(at..<end)
        what.append("delete \(at)..<\(end)")
      case 8:
        // Text a payer may well write: accents, a card number, markup written as entities.
        let texts = ["é", "Ünal & Söhne", "4242 4242 4242 4242", "&amp;&lt;&#233;", "<![CDATA[a&b]]>", "€", "日本"]
        let text = texts.randomElement(using: &rng)!
        let place =
          csv
          ? (bytes[at...].firstIndex(of: UInt8(ascii: ",")) ?? at)
          : (bytes[at...].firstIndex(of: UInt8(ascii: "<")) ?? at)
        bytes.insert(contentsOf: Array(text.utf8), at: place)
        what.append("text \(text) at \(place)")
      default:
        bytes.insert(contentsOf: hostile.randomElement(using: &rng)!, at: 0)
        what.append("hostile prefix")
      }
    }
    return (bytes, what)
  }

  /// An element starting at or after `near`: from its `<Name` to its `</Name>`.
  static func element(in bytes: [UInt8], near: Int) -> Range<Int>? {
    var i = near
    while i + 1 < bytes.count {
      if bytes[i] == UInt8(ascii: "<"), (65...90).contains(bytes[i + 1]) {
        var j = i + 1
        while j < bytes.count, (65...90).contains(bytes[j]) || (97...122).contains(bytes[j]) { j += 1 }
        let close = Array("</".utf8) + Array(bytes[(i + 1)..<j]) + [UInt8(ascii: ">")]
        var k = j
        while k + close.count <= bytes.count {
          if bytes[k..<(k + close.count)].elementsEqual(close) { return i..<(k + close.count) }
          k += 1
        }
        return nil
      }
      i += 1
    }
    return nil
  }

  /// The line holding `near`, with its newline.
  static func row(in bytes: [UInt8], near: Int) -> Range<Int>? {
    guard !bytes.isEmpty else { return nil }
    let start = (bytes[..<near].lastIndex(of: 10) ?? -1) + 1
    let end = (bytes[near...].firstIndex(of: 10) ?? bytes.count - 1) + 1
    return start..<end
  }

  /// The first amount at or after `near` (the text of an `<Amt …>` or a `12.34` field).
  static func amount(in bytes: [UInt8], near: Int, csv: Bool) -> Range<Int>? {
    func isDigit(_ b: UInt8) -> Bool { (48...57).contains(b) }
    var i = near
    while i < bytes.count {
      if isDigit(bytes[i]), csv || (i > 0 && bytes[i - 1] == UInt8(ascii: ">")) {
        var j = i
        while j < bytes.count, isDigit(bytes[j]) || bytes[j] == UInt8(ascii: ".") { j += 1 }
        if bytes[i..<j].contains(UInt8(ascii: ".")) { return i..<j }
        i = j
      } else {
        i += 1
      }
    }
    return nil
  }

  @Test func mutatedStatementsNeverCrashNorCorruptTheLedger() throws {
    let env = ProcessInfo.processInfo.environment
    let iterations = env["LEDGERD_FUZZ_ITERATIONS"].flatMap { Int($0) } ?? 320
    let seed = env["LEDGERD_FUZZ_SEED"].flatMap { UInt64($0) } ?? 20_261_123
    let started = ContinuousClock.now

    let w = try Workspace()
    let refs = try w.transferBook([("Marie Curie", "100.00"), ("Jo Bloggs", "50.00"), ("Ada Lovelace", "30.00")])
    var batch = Camt.entry("F5", "30.00")
    batch.details = [
      Camt.Detail(amount: "20.00", structured: refs[2], name: "Ada Lovelace", servicerRef: "F5A"),
      Camt.Detail(
        amount: "10.00", unstructured: ["card 4242 4242 4242 4242"], name: "Ada Lovelace", servicerRef: "F5B"),
    ]
    let camt = Array(
      Camt.xml(
        version: 8,
        [
          Camt.Statement(
            id: "FUZZ",
            entries: [
              Camt.entry("F1", "100.00", structured: refs[0], name: "Marie Curie", iban: ReconciliationTests.marieIBAN),
              Camt.entry(
                "F2", "20.00", ustrd: ["Invoice " + ReconciliationTests.sloppy(refs[1]) + " part 1 & co"],
                name: "Jo Bloggs"),
              Camt.entry("F3", "12.34", ustrd: ["thanks"], name: "Unknown Person"),
              Camt.entry("F4", "2.50", credit: false, ustrd: ["account fee"], name: "The Bank"),
              Camt.entry("F6", "80.00", status: "PDNG", booked: nil, ustrd: ["soon"], name: "Alan Turing"),
              batch,
            ])
        ]
      ).utf8)
    let csv = Array(
      """
      id,account_iban,booking_date,value_date,amount,currency,status,reversal,reference,remittance,counterparty_name,counterparty_iban
      C1,\(ReconciliationTests.ourIBAN),2026-11-20,2026-11-20,100.00,EUR,booked,false,\(refs[0]),,Marie Curie,\(ReconciliationTests.marieIBAN)
      C2,\(ReconciliationTests.ourIBAN),2026-11-20,,20.00,EUR,,,,"Invoice \(refs[1]), with thanks",Jo Bloggs,
      ,\(ReconciliationTests.ourIBAN),2026-11-21,,-3.00,EUR,booked,,,"fee, monthly",Bank,
      C4,\(ReconciliationTests.ourIBAN),2026-11-21,,9.99,EUR,pending,,,,Someone,

      """.utf8)

    // One ledger, checked clean, copied before each import that may write.
    let base = w.directory + "/base.db"
    try FileManager.default.copyItem(atPath: w.db, toPath: base)
    #expect(w.fingerprint().hasSuffix("/-"), "the base ledger has a WAL that the copy would miss")
    #expect(try w.ledgerd(["check"], db: base).status == 0)
    let baseFingerprint = w.fingerprint(base)
    let db = w.directory + "/fuzz.db"
    var dirty = true

    let failures = NSTemporaryDirectory() + "ledgerd-fuzz-failures"
    var counts: [Int32: Int] = [:]
    var checks = 0
    var problems: [String] = []
    for i in 0..<iterations {
      var rng = Generator(state: seed &+ UInt64(i) &* 0x2545_F491_4F6C_DD1D)
      let isCSV = Bool.random(using: &rng)
      let (bytes, what) = Self.mutate(isCSV ? csv : camt, csv: isCSV, &rng)
      let file = try w.write("mutant.\(isCSV ? "csv" : "xml")", bytes: bytes)
      if dirty {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) }
        try FileManager.default.copyItem(atPath: base, toPath: db)
        dirty = false
      }
      let outcome = try w.ledgerd(["reconcile", "bank", file], db: db)
      counts[outcome.status, default: 0] += 1
      var problem: String?
      switch outcome.status {
      case 0, 1:
        dirty = true
        checks += 1
        let check = try w.ledgerd(["check"], db: db)
        if check.status != 0 {
          problem =
            "check exited \(check.status) after an import: \(check.stdout.prefix(1000)) \(check.stderr.prefix(1000))"
        }
      case 65:
        if w.fingerprint(db) != baseFingerprint { problem = "refused (65) but the ledger changed" }
        if !outcome.stderr.hasPrefix("ledgerd: error: ") {
          problem = "refused without an error line: \(outcome.stderr.prefix(1000))"
        }
      default:
        problem = "exit \(outcome.status): \(outcome.stderr.prefix(1500))"
      }
      if let problem {
        try FileManager.default.createDirectory(atPath: failures, withIntermediateDirectories: true)
        let kept = failures + "/seed\(seed)-\(i).\(isCSV ? "csv" : "xml")"
        try? FileManager.default.removeItem(atPath: kept)
        try FileManager.default.copyItem(atPath: file, toPath: kept)
        problems.append("mutation \(i) (\(what.joined(separator: "; ")), kept as \(kept)): \(problem)")
        dirty = true
      }
    }
    let seconds = Double((ContinuousClock.now - started).components.seconds)
    let other = counts.filter { ![0, 1, 65].contains($0.key) }.values.reduce(0, +)
    print(
      "fuzz: \(iterations) mutations, seed \(seed): \(counts[0] ?? 0) exit 0, \(counts[1] ?? 0) exit 1, \(counts[65] ?? 0) exit 65, "
        + "\(other) other; \(checks) checks after imports; \(problems.count) problems; \(Int(seconds)) s")
    #expect(problems.isEmpty, "\(problems.prefix(20).joined(separator: "\n"))")
    #expect(
      iterations < 300 || (counts[0] ?? 0) + (counts[1] ?? 0) > 0,
      "no mutation was imported: the imports' checks never ran")
  }
}
