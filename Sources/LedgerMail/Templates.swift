import LedgerCore

/// A message's words, before it is given headers and an encoding.
public struct RenderedMessage: Sendable, Equatable {
  public let subject: String
  /// Lines separated by `\n`.
  public let body: String
}

/// A template could not be filled in: a kind without a template, or data it needs missing.
public struct RenderError: Error, CustomStringConvertible, Equatable {
  public let description: String
  public init(_ description: String) { self.description = description }
}

/// The customer messages, one file per kind and language in `templates/` (embedded in the
/// binary, so an installed ledgerd needs no source tree).
///
/// A template's first line is `Subject: …`, then an empty line, then the body. `{{key}}`
/// is replaced by a value; a line that starts with `{{?key}}` is kept only when that value
/// is not empty, and one that starts with `{{!key}}` only when it is empty.
public enum MailTemplates {
  /// Every kind the engine queues.
  public static let kinds = [
    "charge_failed", "dunning_reminder", "downgrade_notice", "payment_received", "transfer_not_received",
    "pause_confirmed",
    "card_expiring", "transfer_due_soon",
  ]

  /// The embedded files, by name. A new template is added here; a test checks that every
  /// kind has one per language.
  static let files: [String: [UInt8]] = [
    "charge_failed.fr.txt": PackageResources.charge_failed_fr_txt,
    "charge_failed.en.txt": PackageResources.charge_failed_en_txt,
    "dunning_reminder.fr.txt": PackageResources.dunning_reminder_fr_txt,
    "dunning_reminder.en.txt": PackageResources.dunning_reminder_en_txt,
    "downgrade_notice.fr.txt": PackageResources.downgrade_notice_fr_txt,
    "downgrade_notice.en.txt": PackageResources.downgrade_notice_en_txt,
    "payment_received.fr.txt": PackageResources.payment_received_fr_txt,
    "payment_received.en.txt": PackageResources.payment_received_en_txt,
    "transfer_not_received.fr.txt": PackageResources.transfer_not_received_fr_txt,
    "transfer_not_received.en.txt": PackageResources.transfer_not_received_en_txt,
    "pause_confirmed.fr.txt": PackageResources.pause_confirmed_fr_txt,
    "pause_confirmed.en.txt": PackageResources.pause_confirmed_en_txt,
    "card_expiring.fr.txt": PackageResources.card_expiring_fr_txt,
    "card_expiring.en.txt": PackageResources.card_expiring_en_txt,
    "transfer_due_soon.fr.txt": PackageResources.transfer_due_soon_fr_txt,
    "transfer_due_soon.en.txt": PackageResources.transfer_due_soon_en_txt,
    "decline_reasons.fr.txt": PackageResources.decline_reasons_fr_txt,
    "decline_reasons.en.txt": PackageResources.decline_reasons_en_txt,
  ]

  /// The names of the embedded files (for the test that compares them with `templates/`).
  public static var fileNames: [String] { files.keys.sorted() }

  static func text(_ name: String) throws -> String {
    guard let bytes = files[name] else { throw RenderError("no template \(name)") }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// Fills in the template of `kind` in `locale` with an outbox row's data.
  public static func render(kind: String, locale: CustomerLocale, data: [String: String]) throws -> RenderedMessage {
    guard kinds.contains(kind) else { throw RenderError("no template for kind '\(kind)'") }
    let values = try variables(kind: kind, locale: locale, data: data)
    let source = try text("\(kind).\(locale.rawValue).txt")
    var lines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard let first = lines.first, first.hasPrefix("Subject: "), lines.count >= 2, lines[1].isEmpty else {
      throw RenderError("template \(kind).\(locale.rawValue).txt must start with 'Subject: …' and an empty line")
    }
    let subject = try fill(String(first.dropFirst("Subject: ".count)), values)
    lines.removeFirst(2)
    var body: [String] = []
    for var line in lines {
      if line.hasPrefix("{{?") || line.hasPrefix("{{!"), let close = line.firstRange(of: "}}") {
        let key = String(line[line.index(line.startIndex, offsetBy: 3)..<close.lowerBound])
        let present = !(values[key] ?? "").isEmpty
        if present != line.hasPrefix("{{?") { continue }
        line = String(line[close.upperBound...])
      }
      body.append(try fill(line, values))
    }
    while body.last?.isEmpty == true { body.removeLast() }
    return RenderedMessage(subject: subject, body: body.joined(separator: "\n") + "\n")
  }

  /// Replaces every `{{key}}`; a key without a value is an error, never an empty gap.
  static func fill(_ line: String, _ values: [String: String]) throws -> String {
    var out = ""
    var rest = Substring(line)
    while let open = rest.firstRange(of: "{{") {
      out += rest[..<open.lowerBound]
      guard let close = rest[open.upperBound...].firstRange(of: "}}") else {
        throw RenderError("unclosed '{{' in '\(line)'")
      }
      let key = String(rest[open.upperBound..<close.lowerBound])
      guard let value = values[key] else { throw RenderError("the message needs '\(key)', which its data lacks") }
      out += value
      rest = rest[close.upperBound...]
    }
    return out + rest
  }

  /// The row's data with amounts, dates, reasons and methods put in the customer's words.
  static func variables(kind: String, locale: CustomerLocale, data: [String: String]) throws -> [String: String] {
    var values = data
    let fr = locale == .fr
    let currency = try Currency(code: data["currency"] ?? "EUR")
    for key in ["amount", "credit", "still_due"] {
      guard let raw = data[key], !raw.isEmpty else { continue }
      guard let money = try? Money.parse(raw, currency: currency) else {
        throw RenderError("'\(key)' is not an amount: '\(raw)'")
      }
      values[key] = key == "credit" && money.minorUnits == 0 ? "" : LocaleFormat.money(money, locale)
    }
    for (key, target) in [
      ("downgrade_on", "downgrade_date"), ("due_date", "due_date"), ("sent_on", "sent_on"),
      ("received_on", "received_on"),
      ("last_day", "last_day"),
    ] {
      guard let raw = data[key], !raw.isEmpty else { continue }
      guard let date = try? CivilDate(iso8601: String(raw.prefix(10))) else {
        throw RenderError("'\(key)' is not a date: '\(raw)'")
      }
      values[target] = LocaleFormat.date(date, locale)
    }
    if let expiry = data["expiry"] {
      let parts = expiry.split(separator: "/")
      if parts.count == 2, let month = Int(parts[0]), let year = Int(parts[1]) {
        values["expiry"] = LocaleFormat.month(month: month, year: year, locale)
      }
    }
    if let method = data["method"] {
      let names: [String: (String, String)] = [
        "card": ("carte bancaire", "card"), "transfer": ("virement", "bank transfer"),
        "credit": ("avoir", "account credit"),
      ]
      values["method"] = names[method].map { fr ? $0.0 : $0.1 } ?? method
    }
    if let reason = data["reason"] {
      let table = try declineReasons(locale)
      let key = data["generic"] == "true" ? "lost_or_stolen" : reason
      guard let entry = table[key] ?? table["bank_block"] else {
        throw RenderError("no wording for decline reason '\(reason)'")
      }
      values["reason_text"] = entry.what
      values["advice"] = entry.advice
    }
    // An account already on the plan it would be moved to keeps it: the deadline only
    // writes the invoice off, and the messages say so rather than threaten a move.
    let planChanges = data["from_plan"] != data["to_plan"]
    if data["from_plan"] != nil { values["plan_changed"] = planChanges ? "yes" : "" }
    if let declined = data["declined_reason"], !declined.isEmpty {
      let table = try declineReasons(locale)
      // Lost or stolen cards keep the generic wording.
      values["declined_reason_text"] =
        (table[declined == "lost_or_stolen" ? "lost_or_stolen" : declined] ?? table["bank_block"])?.what ?? ""
    }
    if let restores = data["restores_plan"] {
      values["restores"] = restores == "true" && planChanges ? "yes" : ""
      values["rechoose"] = restores != "true" && planChanges ? "yes" : ""
    }
    if data["downgrade_plan"] == "", let date = values["downgrade_date"] {
      values["writeoff_date"] = date
      values["downgrade_date"] = ""
    }
    values["invoice_list"] = data["invoices"] ?? data["invoice"] ?? ""
    return values
  }

  /// `decline_reasons.<locale>.txt`: one line per reason, `reason | what happened | advice`
  /// (advice may be empty); `#` starts a comment line.
  static func declineReasons(_ locale: CustomerLocale) throws -> [String: (what: String, advice: String)] {
    var table: [String: (what: String, advice: String)] = [:]
    for line in try text("decline_reasons.\(locale.rawValue).txt").split(separator: "\n") where !line.hasPrefix("#") {
      let fields = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmed(" ") }
      guard fields.count == 3 else { continue }
      table[fields[0]] = (fields[1], fields[2])
    }
    return table
  }
}

extension Substring {
  func trimmed(_ set: Character) -> String {
    var s = self
    while s.first == set { s = s.dropFirst() }
    while s.last == set { s = s.dropLast() }
    return String(s)
  }
}
