import Foundation

/// camt.053 statements written for the tests, in any version from 02 to 08, with the
/// differences between versions a bank would really produce: `Sts` as text (02 to 05) or as
/// `<Cd>` (06 to 08), the detail amount in `AmtDtls/TxAmt` (02, 03) or `TxDtls/Amt` (04+),
/// the debtor's name in `Dbtr/Nm` or `Dbtr/Pty/Nm` (08).
struct Camt {
  struct Detail {
    var amount: String? = nil
    var structured: String? = nil
    var unstructured: [String] = []
    var name: String? = nil
    var iban: String? = nil
    var servicerRef: String? = nil
    /// The detail's own `CdtDbtInd` (`CRDT`/`DBIT`), when it differs from the entry's.
    var creditDebit: String? = nil
  }

  struct Entry {
    var ref: String?
    var amount: String
    var ccy = "EUR"
    var credit = true
    var reversal = false
    var status = "BOOK"
    var booked: String? = "2026-11-20"
    var value: String? = "2026-11-20"
    var details: [Detail] = []
  }

  struct Statement {
    var id: String
    var iban = "FR7630006000011234567890189"
    var entries: [Entry]
    /// The account as the bank's own number (`Acct/Id/Othr/Id`) instead of an IBAN.
    var otherID: String? = nil
  }

  static func entry(
    _ ref: String?, _ amount: String, credit: Bool = true, reversal: Bool = false, status: String = "BOOK",
    booked: String? = "2026-11-20",
    structured: String? = nil, ustrd: [String] = [], name: String? = nil, iban: String? = nil
  ) -> Entry {
    Entry(
      ref: ref, amount: amount, credit: credit, reversal: reversal, status: status, booked: booked, value: booked,
      details: [Detail(amount: amount, structured: structured, unstructured: ustrd, name: name, iban: iban)])
  }

  static func xml(version: Int, _ statements: [Statement]) -> String {
    var out = """
      <?xml version="1.0" encoding="UTF-8"?>
      <Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.0\(version)" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
        <BkToCstmrStmt>
          <GrpHdr><MsgId>MSG-\(statements.first?.id ?? "0")</MsgId><CreDtTm>2026-11-23T06:00:00</CreDtTm></GrpHdr>

      """
    for s in statements {
      out += """
            <Stmt>
              <Id>\(s.id)</Id>
              <CreDtTm>2026-11-23T06:00:00</CreDtTm>
              <Acct><Id>\(s.otherID.map { "<Othr><Id>\($0)</Id></Othr>" } ?? "<IBAN>\(s.iban)</IBAN>")</Id><Ccy>EUR</Ccy></Acct>
              <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">1000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-19</Dt></Dt></Bal>

        """
      for e in s.entries { out += entryXML(e, version: version) }
      out += "    </Stmt>\n"
    }
    out += "  </BkToCstmrStmt>\n</Document>\n"
    return out
  }

  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
      of: ">", with: "&gt;")
  }

  static func entryXML(_ e: Entry, version: Int) -> String {
    var x = "      <Ntry>\n"
    x +=
      "        <Amt Ccy=\"\(e.ccy)\">\(e.amount)</Amt>\n        <CdtDbtInd>\(e.credit ? "CRDT" : "DBIT")</CdtDbtInd>\n"
    if e.reversal { x += "        <RvslInd>true</RvslInd>\n" }
    x += version >= 6 ? "        <Sts><Cd>\(e.status)</Cd></Sts>\n" : "        <Sts>\(e.status)</Sts>\n"
    if let b = e.booked { x += "        <BookgDt><Dt>\(b)</Dt></BookgDt>\n" }
    if let v = e.value { x += "        <ValDt><Dt>\(v)</Dt></ValDt>\n" }
    if let r = e.ref { x += "        <AcctSvcrRef>\(r)</AcctSvcrRef>\n" }
    x += "        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>\n"
    if !e.details.isEmpty {
      x += "        <NtryDtls>\n"
      for d in e.details {
        x += "          <TxDtls>\n"
        if let r = d.servicerRef {
          x += "            <Refs><AcctSvcrRef>\(r)</AcctSvcrRef><EndToEndId>E2E</EndToEndId></Refs>\n"
        }
        if let a = d.amount {
          x +=
            version >= 4
            ? "            <Amt Ccy=\"\(e.ccy)\">\(a)</Amt>\n"
            : "            <AmtDtls><TxAmt><Amt Ccy=\"\(e.ccy)\">\(a)</Amt></TxAmt></AmtDtls>\n"
        }
        if let cd = d.creditDebit { x += "            <CdtDbtInd>\(cd)</CdtDbtInd>\n" }
        if d.name != nil || d.iban != nil {
          x += "            <RltdPties>\n"
          let party = e.credit ? "Dbtr" : "Cdtr"
          if let n = d.name {
            x +=
              version >= 8
              ? "              <\(party)><Pty><Nm>\(escape(n))</Nm></Pty></\(party)>\n"
              : "              <\(party)><Nm>\(escape(n))</Nm></\(party)>\n"
          }
          if let i = d.iban { x += "              <\(party)Acct><Id><IBAN>\(i)</IBAN></Id></\(party)Acct>\n" }
          x += "            </RltdPties>\n"
        }
        if d.structured != nil || !d.unstructured.isEmpty {
          x += "            <RmtInf>\n"
          for u in d.unstructured { x += "              <Ustrd>\(escape(u))</Ustrd>\n" }
          if let s = d.structured {
            x +=
              "              <Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp><Ref>\(s)</Ref></CdtrRefInf></Strd>\n"
          }
          x += "            </RmtInf>\n"
        }
        x += "          </TxDtls>\n"
      }
      x += "        </NtryDtls>\n"
    }
    x += "      </Ntry>\n"
    return x
  }
}

extension Workspace {
  /// Writes `text` to a file of the workspace and returns its path.
  func write(_ name: String, _ text: String) throws -> String {
    let path = directory + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  /// A ledger with the Pro plan and accounts named as given, each with one transfer invoice
  /// of the amount given; returns the invoices' payment references, in order.
  func transferBook(_ invoices: [(name: String, amount: String)]) throws -> [String] {
    try ok(["migrate"])
    var refs: [String] = []
    var accounts: [String: Int] = [:]
    for (name, amount) in invoices {
      let id: Int
      if let known = accounts[name] {
        id = known
      } else {
        let email = name.lowercased().filter(\.isLetter) + "@example.com"
        id = try json(["account", "add", "--email", email, "--name", name])["id"] as? Int ?? 0
        accounts[name] = id
      }
      let invoice = try json([
        "invoice", "issue", "\(id)", "--method", "transfer", "--line", "Services=\(amount)", "--due", "2026-12-10",
      ])
      refs.append(invoice["payment_reference"] as? String ?? "")
    }
    return refs
  }

  /// One value from the ledger through `sqlite3 -readonly`.
  func scalar(_ sql: String) throws -> String {
    try sqlite(sql).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}

extension Workspace {
  /// Writes raw bytes (a hostile file need not be UTF-8) to a file of the workspace.
  func write(_ name: String, bytes: [UInt8]) throws -> String {
    let path = directory + "/" + name
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
      throw Failure("cannot write \(path)")
    }
    return path
  }
}

extension Array where Element == UInt8 {
  /// These bytes with the first `marker` replaced by `bytes` (fails loudly if absent).
  func replacing(_ marker: String, with bytes: [UInt8]) -> [UInt8] {
    let m = Array(marker.utf8)
    guard let at = indices.first(where: { self[$0...].starts(with: m) }) else {
      fatalError("marker \(marker) not found")
    }
    return Array(self[..<at]) + bytes + Array(self[(at + m.count)...])
  }
}
