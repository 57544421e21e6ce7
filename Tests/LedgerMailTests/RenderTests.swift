import Foundation
import LedgerCore
import Testing

@testable import LedgerMail

/// Sample data for every kind, as the engine writes it on the outbox row.
let sampleData: [String: [String: String]] = [
  "charge_failed": [
    "invoices": "INV-000001", "amount": "19.00", "currency": "EUR", "reason": "insufficient_funds", "generic": "false",
    "downgrade_on": "2026-11-11", "downgrade_plan": "free", "name": "Marie Curie",
  ],
  "dunning_reminder": [
    "invoice": "INV-000001", "amount": "19.00", "currency": "EUR", "day": "3", "downgrade_on": "2026-11-11",
    "downgrade_plan": "free",
    "payment_reference": "", "name": "Marie Curie",
  ],
  "downgrade_notice": [
    "invoice": "INV-000001", "amount": "19.00", "currency": "EUR", "from_plan": "pro", "to_plan": "free",
    "restores_plan": "false",
    "name": "Marie Curie",
  ],
  "payment_received": [
    "amount": "1234.50", "currency": "EUR", "method": "transfer", "invoices": "INV-000002", "credit": "0.00",
    "reference": "RF18INV000002",
    "received_on": "2026-11-23", "name": "Marie Curie",
  ],
  "transfer_not_received": [
    "invoice": "INV-000002", "amount": "150.00", "currency": "EUR", "sent_on": "2026-11-18", "reference": "VIR-42",
    "payment_reference": "RF18INV000002", "name": "Marie Curie",
  ],
  "pause_confirmed": [
    "invoice": "INV-000001", "amount": "19.00", "currency": "EUR", "proof": "receipt 8812", "name": "Marie Curie",
  ],
  "card_expiring": [
    "brand": "visa", "last4": "4242", "expiry": "12/2026", "last_day": "2026-12-31", "name": "Marie Curie",
  ],
  "transfer_due_soon": [
    "invoice": "INV-000002", "amount": "150.00", "currency": "EUR", "due_date": "2026-12-10",
    "payment_reference": "RF18INV000002",
    "name": "Marie Curie",
  ],
]

@Suite struct RenderTests {
  static let cases = MailTemplates.kinds.flatMap { kind in CustomerLocale.allCases.map { (kind, $0) } }

  @Test(arguments: cases) func everyKindRendersInBothLanguages(kind: String, locale: CustomerLocale) throws {
    let data = try #require(sampleData[kind])
    let message = try MailTemplates.render(kind: kind, locale: locale, data: data)
    #expect(!message.subject.isEmpty)
    #expect(!message.subject.contains("{{") && !message.body.contains("{{"))
    #expect(message.body.contains("Marie Curie"))
    #expect(message.body.hasSuffix(locale == .fr ? "L'équipe facturation\n" : "The billing team\n"))
    if let amount = data["amount"] {
      let money = try Money.parse(amount, currency: .eur)
      #expect(message.body.contains(LocaleFormat.money(money, locale)))
    }
  }

  @Test func everyKindHasATemplateFilePerLanguageAndTheFilesAreAllEmbedded() throws {
    let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
      .appendingPathComponent("templates")
    let onDisk = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".txt") }
      .sorted()
    #expect(onDisk == MailTemplates.fileNames)
    for kind in MailTemplates.kinds {
      for locale in CustomerLocale.allCases {
        #expect(MailTemplates.fileNames.contains("\(kind).\(locale.rawValue).txt"))
      }
    }
  }

  @Test func amountsFollowTheLanguageWithIntegerMinorUnits() throws {
    let eur = Currency.eur
    #expect(LocaleFormat.money(Money(minorUnits: 1900, currency: eur), .fr) == "19,00 €")
    #expect(LocaleFormat.money(Money(minorUnits: 1900, currency: eur), .en) == "€19.00")
    #expect(LocaleFormat.money(Money(minorUnits: 123_456_789, currency: eur), .fr) == "1 234 567,89 €")
    #expect(LocaleFormat.money(Money(minorUnits: 123_456_789, currency: eur), .en) == "€1,234,567.89")
    #expect(LocaleFormat.money(Money(minorUnits: 5, currency: eur), .en) == "€0.05")
    #expect(LocaleFormat.money(Money(minorUnits: -250, currency: eur), .fr) == "-2,50 €")
    let jpy = try Currency(code: "JPY")
    #expect(LocaleFormat.money(Money(minorUnits: 1200, currency: jpy), .en) == "¥1,200")
    let kwd = try Currency(code: "KWD")
    #expect(LocaleFormat.money(Money(minorUnits: 1500, currency: kwd), .fr) == "1,500 KWD")
    #expect(LocaleFormat.money(Money(minorUnits: 1500, currency: kwd), .en) == "KWD 1.500")
    #expect(LocaleFormat.money(Money(minorUnits: .min, currency: eur), .en).hasPrefix("-€92,233,720,368,547,758.08"))
  }

  @Test func datesAreInTheCustomersLanguage() throws {
    let date = try CivilDate(iso8601: "2026-11-11")
    #expect(LocaleFormat.date(date, .fr) == "mercredi 11 novembre 2026")
    #expect(LocaleFormat.date(date, .en) == "Wednesday 11 November 2026")
    #expect(LocaleFormat.date(try CivilDate(iso8601: "2026-08-01"), .fr) == "samedi 1er août 2026")
  }

  @Test(arguments: DeclineReason.allCases) func aFailedChargeNamesItsReasonAndAdvice(reason: DeclineReason) throws {
    var data = try #require(sampleData["charge_failed"])
    data["reason"] = reason.rawValue
    data["generic"] = String(reason.genericWording)
    for locale in CustomerLocale.allCases {
      let table = try MailTemplates.declineReasons(locale)
      let entry = try #require(table[reason.rawValue])
      let body = try MailTemplates.render(kind: "charge_failed", locale: locale, data: data).body
      #expect(body.contains(entry.what))
      if !entry.advice.isEmpty { #expect(body.contains(entry.advice)) }
    }
    let en = try MailTemplates.render(kind: "charge_failed", locale: .en, data: data).body
    switch reason {
    case .insufficientFunds: #expect(en.contains("make sure your account has enough funds"))
    case .bankBlock: #expect(en.contains("ask your bank to lift the block"))
    case .suspectedFraud: #expect(en.contains("ask your bank to approve our charges"))
    case .expiredCard: #expect(en.contains("update your card"))
    case .incorrectDetails: #expect(en.contains("check your billing information"))
    case .lostOrStolen: #expect(en.contains("use another card") && !en.contains("stolen") && !en.contains("lost"))
    case .authenticationRequired: #expect(en.contains("come back to your account to confirm the payment"))
    case .processingError: #expect(en.contains("technical problem"))
    }
  }

  @Test func missingDataIsAnErrorNotAGap() {
    #expect(throws: RenderError.self) {
      try MailTemplates.render(kind: "pause_confirmed", locale: .fr, data: ["invoice": "INV-1"])
    }
    #expect(throws: RenderError.self) { try MailTemplates.render(kind: "no_such_kind", locale: .fr, data: [:]) }
  }

  @Test func optionalLinesFollowTheirValues() throws {
    var data = try #require(sampleData["payment_received"])
    var body = try MailTemplates.render(kind: "payment_received", locale: .fr, data: data).body
    #expect(!body.contains("crédit"))
    #expect(body.contains("1 234,50 € par virement le lundi 23 novembre 2026"))
    data["credit"] = "5.00"
    body = try MailTemplates.render(kind: "payment_received", locale: .en, data: data).body
    #expect(body.contains("€5.00 stays as credit"))
    var downgrade = try #require(sampleData["downgrade_notice"])
    #expect(
      try MailTemplates.render(kind: "downgrade_notice", locale: .en, data: downgrade).body.contains(
        "not restored automatically"))
    downgrade["restores_plan"] = "true"
    #expect(
      try MailTemplates.render(kind: "downgrade_notice", locale: .en, data: downgrade).body.contains(
        "restored automatically"))
  }
}

@Suite struct MessageTests {
  func message(subject: String = "Échec du paiement de 19,00 €", name: String = "Marie Curie") -> MailMessage {
    MailMessage(
      from: MailAddress("billing@example.com", name: "Facturation"), to: MailAddress("marie@example.fr", name: name),
      subject: subject,
      body: "Bonjour,\n.une ligne qui commence par un point\nL'équipe   \n" + String(repeating: "é", count: 60) + "\n",
      date: try! Instant(iso8601: "2026-11-23T10:00:00Z"), messageID: "<abc@example.com>")
  }

  @Test func theMessageIsSevenBitWithShortLinesAndEveryHeader() throws {
    let text = try message().rendered()
    #expect(text.unicodeScalars.allSatisfy { $0.isASCII })
    let lines = text.components(separatedBy: "\r\n")
    #expect(lines.allSatisfy { $0.count <= 78 })
    #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
    for header in [
      "From: ", "To: ", "Subject: ", "Date: Mon, 23 Nov 2026 10:00:00 +0000", "Message-ID: <abc@example.com>",
      "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable",
    ] {
      #expect(lines.contains { $0.hasPrefix(header) }, "\(header)")
    }
    #expect(text.contains("\r\n=2Eune ligne"))
    #expect(text.contains("L'=C3=A9quipe  =20\r\n"))
  }

  @Test func nonASCIIHeadersAreEncodedWordsThatDecodeBack() throws {
    let subject = "Échec du paiement de 19,00 € — " + String(repeating: "à", count: 40)
    let text = try message(subject: subject, name: "Marie Skłodowska").rendered()
    let headerBlock = String(text.prefix(upTo: text.range(of: "\r\n\r\n")!.lowerBound))
    let unfolded = headerBlock.replacingOccurrences(of: "\r\n ", with: " ")
    let subjectLine = try #require(unfolded.components(separatedBy: "\r\n").first { $0.hasPrefix("Subject: ") })
    let decoded = subjectLine.dropFirst("Subject: ".count).split(separator: " ").map { word -> String in
      let base64 = word.dropFirst("=?utf-8?B?".count).dropLast(2)
      return String(decoding: Data(base64Encoded: String(base64)) ?? Data(), as: UTF8.self)
    }.joined()
    #expect(decoded == subject)
    #expect(unfolded.contains("To: =?utf-8?B?"))
  }

  @Test func namesWithSpecialsAreQuoted() throws {
    let text = try message(name: #"Evil <x@y.com>, "Bcc""#).rendered()
    #expect(text.contains(#"To: "Evil <x@y.com>, \"Bcc\"" <marie@example.fr>"#))
  }

  @Test func aLineBreakInAnyHeaderIsRefused() {
    #expect(throws: HeaderInjection.self) { try message(subject: "Hello\r\nBcc: victim@example.com").rendered() }
    #expect(throws: HeaderInjection.self) { try message(name: "Marie\nBcc: victim@example.com").rendered() }
    var bad = message()
    bad.to = MailAddress("marie@example.fr\r\nBcc: victim@example.com")
    #expect(throws: HeaderInjection.self) { try bad.rendered() }
  }

  @Test func quotedPrintableSoftBreaksKeepLinesShort() {
    let encoded = MailMessage.quotedPrintable(String(repeating: "é", count: 100) + "\n")
    let lines = encoded.components(separatedBy: "\r\n").dropLast()
    #expect(lines.count > 1)
    #expect(lines.allSatisfy { $0.count <= 76 })
    #expect(lines.dropLast().allSatisfy { $0.hasSuffix("=") })
    // No escape is cut by a soft break: joined again, the text is whole pairs of =C3=A9.
    #expect(
      lines.map { $0.hasSuffix("=") ? String($0.dropLast()) : $0 }.joined() == String(repeating: "=C3=A9", count: 100))
  }

  @Test func base64MatchesFoundation() {
    for n in 0..<20 {
      let bytes = (0..<n).map { UInt8(($0 * 37 + 11) % 256) }
      #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString())
    }
  }
}

@Suite struct DeliveryHeaderTests {
  @Test func theMessageIDAndDateDependOnTheOutboxRowOnly() throws {
    let item = OutboxItem(
      id: 1, key: "charge_failed:1", kind: "pause_confirmed", locale: .en, recipient: "jo@example.com",
      data: try #require(sampleData["pause_confirmed"]), createdAt: try Instant(iso8601: "2026-11-02T09:00:00Z"),
      attempts: 0)
    let sender = Sender(address: "billing@example.com", name: "Billing")
    let a = try Composer.message(for: item, sender: sender, keyDigest: "d1").rendered()
    let b = try Composer.message(for: item, sender: sender, keyDigest: "d1").rendered()
    #expect(a == b)
    #expect(a.contains("Message-ID: <d1@example.com>\r\n"))
    #expect(a.contains("Date: Mon, 2 Nov 2026 09:00:00 +0000\r\n"))
  }
}
