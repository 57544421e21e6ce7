import Testing

@testable import LedgerCore

@Suite("PaymentReference")
struct PaymentReferenceTests {
  @Test(
    "the ISO 11649 example parses in every way a customer may type it",
    arguments: [
      "RF18 5390 0754 7034",
      "RF18539007547034",
      "rf18 5390 0754 7034",
      "rf18539007547034",
      "Rf18 5390 0754 7034",
      "RF18-5390-0754-7034",
      "  RF18 5390 0754 7034  ",
      "18539007547034",
      "18 5390 0754 7034",
    ])
  func isoExample(text: String) throws {
    let reference = try PaymentReference(parsing: text)
    #expect(reference.compact == "RF18539007547034")
    #expect(reference.description == "RF18539007547034")
    #expect(reference.printed == "RF18 5390 0754 7034")
  }

  @Test(
    "wrong check digits, bad characters and bad lengths are refused",
    arguments: [
      "RF19539007547034",  // wrong check digit
      "RF18539007547035",  // body digit changed
      "RF18539007547043",  // transposed digits
      "RF81539007547034",  // check digits swapped
      "19539007547034",  // wrong check digit without prefix
      "539007547034",  // body alone, no check digits
      "",
      "RF",
      "RF18",
      "RFAB539007547034",  // letters where check digits belong
      "RF18 5390 0754 703€",
      "RF18_5390_0754_7034",
      "RF18.5390.0754.7034",
      "RF18\t5390075470 34",
      "RF18 1234 5678 9012 3456 7890 12",  // body of 22 characters
    ])
  func refused(text: String) throws {
    let error = try #require(refusal { try PaymentReference(parsing: text) })
    #expect(error.field == "--reference")
    #expect(error.rule.contains("not a valid RF creditor reference"))
  }

  @Test("the refusal names the field it was given")
  func field() throws {
    let error = try #require(refusal { try PaymentReference(parsing: "RF19539007547034", field: "reference") })
    #expect(error.field == "reference")
    #expect(error.rule.contains("RF19539007547034"))
  }

  @Test("the check digits of the ISO example are computed from its body")
  func bodyOfISOExample() throws {
    let reference = try PaymentReference(body: "539007547034")
    #expect(reference.compact == "RF18539007547034")
    #expect(reference.printed == "RF18 5390 0754 7034")
  }

  @Test(
    "init(body:) round-trips through parsing",
    arguments: [
      "INV000042", "inv000042", "2026000001", "A", "0", "Z", "1", "36", "54", "72",
      "ABCDEFGHIJKLMNOPQRSTU", "123456789012345678901", "Inv2026x7",
    ])
  func roundTrip(body: String) throws {
    let built = try PaymentReference(body: body)
    #expect(built.compact.hasPrefix("RF"))
    #expect(built.compact.dropFirst(4) == Substring(body.uppercased()))
    let check = try #require(Int(built.compact.dropFirst(2).prefix(2)))
    #expect((2...98).contains(check))
    #expect(try PaymentReference(parsing: built.compact) == built)
    #expect(try PaymentReference(parsing: built.printed) == built)
    #expect(try PaymentReference(parsing: built.printed.lowercased()) == built)
    // Without the prefix too, since what remains carries valid check digits.
    #expect(try PaymentReference(parsing: String(built.compact.dropFirst(2))) == built)
  }

  @Test("any single changed check digit is caught", arguments: ["INV000042", "2026000001", "ABC"])
  func singleDigitErrors(body: String) throws {
    let built = try PaymentReference(body: body)
    let chars = Array(built.compact)
    for position in [2, 3] {
      for digit in "0123456789" where digit != chars[position] {
        var mutated = chars
        mutated[position] = digit
        #expect(refusal { try PaymentReference(parsing: String(mutated)) } != nil, "\(String(mutated))")
      }
    }
  }

  @Test("printed groups the compact form by four")
  func printed() throws {
    #expect(try PaymentReference(body: "INV000042").printed == "RF29 INV0 0004 2")
    #expect(try PaymentReference(body: "A").printed.split(separator: " ").map(\.count) == [4, 1])
    #expect(try PaymentReference(body: "ABCD").printed.split(separator: " ").map(\.count) == [4, 4])
    let long = try PaymentReference(body: "ABCDEFGHIJKLMNOPQRSTU")
    #expect(long.compact.count == 25)
    #expect(long.printed.split(separator: " ").map(\.count) == [4, 4, 4, 4, 4, 4, 1])
    #expect(long.printed.filter { $0 != " " } == long.compact)
  }

  @Test(
    "bodies that are empty, too long or not letters and digits are refused",
    arguments: ["", "ABCDEFGHIJKLMNOPQRSTUV", "INV-0042", "INV 0042", "INV_42", "é", "١٢"])
  func badBody(body: String) throws {
    let error = try #require(refusal { try PaymentReference(body: body) })
    #expect(error.field == "reference")
    #expect(error.rule.contains("1 to 21"))
  }

  @Test("mod97 follows ISO 7064 mod 97-10 with letters as two digits")
  func mod97() {
    #expect(PaymentReference.mod97("539007547034RF18") == 1)
    #expect(PaymentReference.mod97("0") == 0)
    #expect(PaymentReference.mod97("97") == 0)
    #expect(PaymentReference.mod97("98") == 1)
    // A is 10, Z is 35.
    #expect(PaymentReference.mod97("A") == 10)
    #expect(PaymentReference.mod97("Z") == 35)
    #expect(PaymentReference.mod97("AA") == 1010 % 97)
    #expect(PaymentReference.mod97("a") == -1)
    #expect(PaymentReference.mod97("-") == -1)
  }
}
