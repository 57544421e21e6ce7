import Testing

@testable import LedgerCore

@Suite("Validate.email")
struct EmailTests {
  @Test(
    "ordinary addresses are accepted unchanged",
    arguments: [
      "marie@example.fr", "Marie.Dupont+billing@Example.FR", "a@b.co", "x_y-z@mail.sub.example.com",
      "o'brien@example.ie",
      "1@2.3", "user@xn--bcher-kva.example",
    ])
  func accepted(email: String) throws {
    #expect(try Validate.email(email) == email)
  }

  @Test("the 254-byte and 64-byte limits are inclusive")
  func limits() throws {
    let local64 = String(repeating: "a", count: 64)
    let domain189 =
      String(repeating: "b", count: 63) + "." + String(repeating: "c", count: 63) + "."
      + String(repeating: "d", count: 61)
    let longest = local64 + "@" + domain189
    #expect(longest.utf8.count == 254)
    #expect(try Validate.email(longest) == longest)

    let tooLong = local64 + "@" + domain189 + "d"
    #expect(tooLong.utf8.count == 255)
    let error = try #require(refusal { try Validate.email(tooLong) })
    #expect(error.field == "--email")
    #expect(error.rule.contains("254"))

    let local65 = try #require(refusal { try Validate.email(String(repeating: "a", count: 65) + "@example.fr") })
    #expect(local65.rule.contains("1 to 64"))

    let label63 = "m@" + String(repeating: "l", count: 63) + ".fr"
    #expect(try Validate.email(label63) == label63)
    #expect(refusal { try Validate.email("m@" + String(repeating: "l", count: 64) + ".fr") } != nil)
  }

  @Test(
    "addresses that could break a header or address parsing are refused",
    arguments: [
      "", "marie.example.fr", "marie@@example.fr", "ma@rie@example.fr", "a@b.fr\nBcc: x@y.z", "a@b.fr\r\nBcc: x@y.z",
      "a@b.fr\n", "marie @example.fr", " marie@example.fr", "marie@example.fr ", "marie\t@example.fr",
      "marie@localhost",
      "<marie@example.fr>", "Marie <marie@example.fr>", "marie@exa<mple.fr", "ma(rie)@example.fr", "ma,rie@example.fr",
      "ma;rie@example.fr", "ma:rie@example.fr", "ma\\rie@example.fr", "\"marie\"@example.fr", "marie@[127.0.0.1]",
      "@example.fr", "marie@", "marie@.fr", "marie@example.", "marie@example..fr", "marie@-example.fr",
      "marie@example-.fr", "marie@exa_mple.fr", "marie@exa!mple.fr", "marié@example.fr", "marie@exämple.fr",
      "marie@example.fr\u{0}", "marie\u{7F}@example.fr",
    ])
  func refused(email: String) throws {
    let error = try #require(refusal { try Validate.email(email, field: "email") })
    #expect(error.field == "email")
    #expect(!error.rule.isEmpty)
  }

  @Test("the rules name what is wrong")
  func rules() throws {
    #expect(try #require(refusal { try Validate.email("") }).rule.contains("empty"))
    #expect(try #require(refusal { try Validate.email("a@b.fr\nBcc: x@y.z") }).rule.contains("line breaks"))
    #expect(try #require(refusal { try Validate.email("a b@c.fr") }).rule.contains("spaces"))
    #expect(try #require(refusal { try Validate.email("ab.fr") }).rule.contains("exactly one '@'"))
    #expect(try #require(refusal { try Validate.email("a@b@c.fr") }).rule.contains("exactly one '@'"))
    #expect(try #require(refusal { try Validate.email("a<b@c.fr") }).rule.contains("must not contain"))
    #expect(try #require(refusal { try Validate.email("a@localhost") }).rule.contains("not a domain name"))
  }
}

@Suite("Validate.displayName and text")
struct DisplayNameTests {
  @Test(
    "names are trimmed of spaces and tabs",
    arguments: [
      ("Marie Dupont", "Marie Dupont"), ("  Marie  ", "Marie"), ("\tMarie\t", "Marie"),
      ("Zoë Ångström", "Zoë Ångström"),
      ("李雷", "李雷"), ("O'Brien & Co.", "O'Brien & Co."),
    ])
  func accepted(raw: String, cleaned: String) throws {
    #expect(try Validate.displayName(raw) == cleaned)
  }

  @Test(
    "empty names and control characters are refused",
    arguments: [
      "", " ", "\t \t", "\n", "Marie\nBcc: x@y.z", "Marie\r", "Ma\u{0}rie", "Marie\u{7F}", "Marie\u{85}", "Ma\u{9F}rie",
      "Ma\u{1B}[31mrie",
    ])
  func refused(raw: String) throws {
    let error = try #require(refusal { try Validate.displayName(raw, field: "name") })
    #expect(error.field == "name")
    #expect(error.rule.contains("empty") || error.rule.contains("control characters"))
  }

  @Test("the rules name what is wrong")
  func rules() throws {
    let empty = try #require(refusal { try Validate.displayName("   ") })
    #expect(empty.field == "--name")
    #expect(empty.rule.contains("must not be empty"))
    let newline = try #require(refusal { try Validate.displayName("\n") })
    #expect(newline.rule.contains("line breaks"))
  }

  @Test("at most 200 characters, counted after trimming")
  func length() throws {
    let name200 = String(repeating: "é", count: 200)
    #expect(try Validate.displayName(name200) == name200)
    #expect(try Validate.displayName("  " + name200 + "  ") == name200)
    let error = try #require(refusal { try Validate.displayName(name200 + "e") })
    #expect(error.rule.contains("201"))
  }

  @Test("text has its own limit")
  func text() throws {
    #expect(try Validate.text("  customer asked  ", field: "--reason") == "customer asked")
    let limited = try #require(refusal { try Validate.text("abcdef", field: "--reason", limit: 5) })
    #expect(limited.field == "--reason")
    #expect(limited.rule.contains("at most 5"))
    #expect(refusal { try Validate.text("a\nb", field: "--reason") }?.field == "--reason")
  }

  @Test("text accepts up to its limit even above 200 characters")
  func textAbove200() throws {
    // The default limit for free text (a --reason) is 500, above a display name's 200.
    let reason = String(repeating: "r", count: 300)
    let accepted = try Validate.text(reason, field: "--reason")
    #expect(accepted == reason)
    #expect(refusal { try Validate.text(String(repeating: "r", count: 501), field: "--reason") } != nil)
  }
}

@Suite("Validate: plan codes, countries, postal codes, quantities")
struct FieldRuleTests {
  @Test(
    "plan codes accepted",
    arguments: ["pro", "a", "pro-2026", "team_plus", "b2b", "z" + String(repeating: "9", count: 31)])
  func planCodeAccepted(code: String) throws {
    #expect(try Validate.planCode(code) == code)
  }

  @Test(
    "plan codes refused",
    arguments: [
      "", "Pro", "PRO", "1pro", "-pro", "_pro", "pro plan", "pro.plan", "pro/1", "prö",
      "a" + String(repeating: "b", count: 32),
    ])
  func planCodeRefused(code: String) throws {
    let error = try #require(refusal { try Validate.planCode(code, field: "--code") })
    #expect(error.field == "--code")
    #expect(error.rule.contains("1 to 32 characters"))
  }

  @Test("countries accepted", arguments: ["FR", "DE", "US", "GB"])
  func countryAccepted(code: String) throws {
    #expect(try Validate.country(code) == code)
  }

  @Test("countries refused", arguments: ["", "F", "fr", "Fr", "FRA", "F1", " FR", "ÉS"])
  func countryRefused(code: String) throws {
    let error = try #require(refusal { try Validate.country(code) })
    #expect(error.field == "--country")
    #expect(error.rule.contains("ISO 3166"))
  }

  @Test("postal codes accepted", arguments: ["75001", "SW1A 1AA", "1234-567", "K1A 0B1", "0", "1234567890123456"])
  func postalAccepted(code: String) throws {
    #expect(try Validate.postalCode(code) == code)
  }

  @Test(
    "postal codes refused",
    arguments: ["", "12345678901234567", "75001!", "75_001", "７５００１", "75001\n", "7500é", "75\t001"])
  func postalRefused(code: String) throws {
    let error = try #require(refusal { try Validate.postalCode(code) })
    #expect(error.field == "--postal-code")
    #expect(error.rule.contains("1 to 16"))
  }

  @Test("quantities from 1 to 1000000", arguments: [("1", Int64(1)), ("3", 3), ("1000000", 1_000_000)])
  func quantityAccepted(raw: String, value: Int64) throws {
    #expect(try Validate.quantity(raw, field: "q") == value)
  }

  @Test("quantities refused", arguments: ["", "0", "-1", "1000001", "1.5", "abc", " 1", "1 ", "99999999999999999999"])
  func quantityRefused(raw: String) throws {
    let error = try #require(refusal { try Validate.quantity(raw, field: "line 1 quantity") })
    #expect(error.field == "line 1 quantity")
  }
}

@Suite("Errors")
struct ErrorTests {
  @Test("InputError describes field and rule, and can be renamed")
  func inputError() {
    let error = InputError(field: "--amount", rule: "must be greater than zero")
    #expect(error.description == "--amount: must be greater than zero")
    let renamed = error.renamed("line 2")
    #expect(renamed == InputError(field: "line 2", rule: "must be greater than zero"))
    #expect(error.field == "--amount")
  }

  @Test("NotFoundError and StateError descriptions")
  func otherErrors() {
    #expect(NotFoundError(field: "--account", value: "42").description == "--account: no account '42' in this ledger")
    #expect(
      NotFoundError(field: "invoice", value: "2026-1").description == "invoice: no invoice '2026-1' in this ledger")
    #expect(StateError(subject: "invoice 2026-1", rule: "is paid").description == "invoice 2026-1: is paid")
  }
}
