import Testing

@testable import LedgerCore

/// The pure parts of reconciliation: references in what payers write, payer names, CSV.
struct ReconciliationParsingTests {
  @Test(arguments: [
    ["RF69INV000001", "", "RF69INV000001"],
    ["", "Invoice rf69 inv0 0000 1 thanks", "RF69INV000001"],
    ["", "payment 69INV000001", "RF69INV000001"],
    ["", "ref: RF69-INV0-0000-1.", "RF69INV000001"],
  ])
  func findsReferences(_ c: [String]) throws {
    let (structured, remittance, expected) = (c[0].isEmpty ? nil : c[0], c[1].isEmpty ? nil : c[1], c[2])
    let reference = try PaymentReference(body: "INV000001").compact
    #expect(reference == "RF69INV000001")
    #expect(ReferenceFinder.candidates(structured: structured, remittance: remittance).contains(expected))
  }

  @Test func rejectsWrongCheckDigits() {
    #expect(
      !ReferenceFinder.candidates(structured: "RF68INV000001", remittance: "RF00 INV0 0000 1").contains("RF19INV000001")
    )
    #expect(
      ReferenceFinder.candidates(structured: nil, remittance: "20261120 thanks").allSatisfy {
        (try? PaymentReference(parsing: $0)) != nil
      })
  }

  @Test func normalizesPayers() {
    #expect(PayerIdentity.normalizedName("  Marié-CURIE ") == "marie curie")
    #expect(PayerIdentity.normalizedName("M. Curie") == "m curie")
    #expect(PayerIdentity.normalizedName(" .. ") == nil)
    #expect(PayerIdentity.normalizedIBAN("fr14 2004 1010") == "FR1420041010")
  }

  @Test func readsCSVInChunks() throws {
    let text = "a,b,c\r\n1,\"x, \"\"y\"\"\nz\",3\n\n4,5,6"
    var records: [([String], Int)] = []
    var reader = CSVReader()
    for byte in Array(text.utf8) { try reader.feed([byte]) { records.append(($0, $1)) } }
    try reader.finish { records.append(($0, $1)) }
    #expect(records.map(\.0) == [["a", "b", "c"], ["1", "x, \"y\"\nz", "3"], ["4", "5", "6"]])
    #expect(records.map(\.1) == [1, 2, 5])
    var open = CSVReader()
    try open.feed(Array("a,\"b".utf8)) { _, _ in }
    #expect(throws: InputError.self) { try open.finish { _, _ in } }
  }
}
