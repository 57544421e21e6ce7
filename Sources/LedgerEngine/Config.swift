import Foundation
import LedgerCore

/// ledgerd's configuration file (JSON; every key optional, unknown keys refused):
///
/// ```json
/// {
///   "dunning": {"grace_days": 9, "retry_days": [1, 3, 5, 7], "reminder_days": [3, 7],
///               "transient_retry_hours": 4, "fraud_pause_hours": 24, "downgrade_plan": "free",
///               "restore_plan_on_payment": false, "max_charges_per_card": 15,
///               "card_charge_window_days": 30, "card_expiry_notice_days": 30,
///               "collection_time": "18:00", "collection_utc_offset": "+00:00"},
///   "transfers": {"window_business_days": 3, "grace_after_window_days": 1, "due_reminder_days": 3},
///   "subscriptions": {"renewal_lead_days": 0, "transfer_terms_days": 14, "proration": "by_day"},
///   "processor": {"kind": "simulated", "simulated_db": "/var/lib/ledgerd/processor.db",
///                 "max_in_flight": 16, "max_requests_per_second": 25, "slow_ms": 1500, "timeout_ms": 200,
///                 "api_base": "https://api.stripe.com", "secret_key_file": "/etc/ledgerd/stripe-key",
///                 "timeout_seconds": 30},
///   "daemon": {"batch_size": 500},
///   "mail": {"transport": "spool", "from": "billing@localhost", "from_name": "Billing",
///            "message_id_domain": "localhost", "spool_dir": "/var/lib/ledgerd/outbox",
///            "sendmail_command": "/usr/sbin/sendmail -i -t",
///            "smtp": {"host": "localhost", "port": 25, "starttls": false, "ca_file": "…", "username": "…",
///                     "password": "…", "password_file": "…", "helo": "localhost", "timeout_seconds": 30},
///            "max_attempts": 10, "backoff_seconds": 60, "backoff_max_seconds": 21600, "batch_size": 100,
///            "timeout_seconds": 30}
/// }
/// ```
public struct LedgerConfig: Sendable, Equatable {
  public var dunning = DunningConfig()
  /// Which processor charges the cards: the simulated one (the default) or Stripe.
  public var processorKind = ProcessorKind.simulated
  /// Stripe's settings, when `processorKind` is `.stripe`.
  public var stripe = StripeSettings()
  /// The simulated processor's own record (default: beside the ledger, `<db>.processor`).
  public var simulatedProcessorPath: String?
  public var maxInFlight = 16
  /// The processor's limit of calls per second (nil: none); the pipeline keeps to it.
  public var maxRequestsPerSecond: Int?
  public var batchSize = 500
  public var slowMilliseconds = 1_500
  public var timeoutMilliseconds = 200
  public var mail = MailConfig()
  /// The HTTP API inside `ledgerd serve`.
  public var api = APISettings()

  public init() {}

  /// A card's processor token as the configured processor takes it: a Stripe PaymentMethod
  /// (`pm_…`) under Stripe, else one of the simulated processor's tokens; never a card number.
  public func cardToken(_ raw: String, field: String = "--token") throws -> String {
    do {
      if processorKind == .stripe || raw.hasPrefix("pm_") { return try CardRules.paymentMethod(raw) }
      return try CardRules.token(raw)
    } catch let error as InputError {
      throw InputError(field: field, rule: error.rule)
    }
  }

  /// A scheduler on `store` with this configuration's processor limits and batch size.
  public func configure(_ scheduler: Scheduler) {
    scheduler.maxInFlight = maxInFlight
    scheduler.batchSize = batchSize
    scheduler.chargesNameTheCustomer = processorKind == .stripe
  }

  /// Reads and checks a config file; every error names the key and the rule.
  public static func load(path: String) throws -> LedgerConfig {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw InputError(field: "--config", rule: "cannot read \(path)")
    }
    return try parse(data, source: path)
  }

  public static func parse(_ data: Data, source: String = "config") throws -> LedgerConfig {
    guard case .object(let root)? = try JSONValue.parse(data) else {
      throw InputError(field: source, rule: "is not a JSON object")
    }
    let reader = Reader(object: root, path: "")
    var config = LedgerConfig()
    try reader.known(["dunning", "transfers", "subscriptions", "processor", "daemon", "mail", "api"])
    if let d = try reader.section("dunning") {
      try d.known([
        "grace_days", "retry_days", "reminder_days", "transient_retry_hours", "fraud_pause_hours", "downgrade_plan",
        "restore_plan_on_payment", "max_charges_per_card", "card_charge_window_days", "card_expiry_notice_days",
        "collection_time", "collection_utc_offset",
      ])
      try d.int("grace_days", into: &config.dunning.graceDays, range: 1...365)
      try d.ints("retry_days", into: &config.dunning.retryDays)
      try d.ints("reminder_days", into: &config.dunning.reminderDays)
      try d.int("transient_retry_hours", into: &config.dunning.transientRetryHours, range: 1...240)
      try d.int("fraud_pause_hours", into: &config.dunning.fraudPauseHours, range: 0...720)
      try d.string("downgrade_plan", into: &config.dunning.downgradePlan)
      _ = try Validate.planCode(config.dunning.downgradePlan, field: "dunning.downgrade_plan")
      try d.bool("restore_plan_on_payment", into: &config.dunning.restorePlanOnPayment)
      try d.int("max_charges_per_card", into: &config.dunning.maxChargesPerCard, range: 1...1000)
      try d.int("card_charge_window_days", into: &config.dunning.cardChargeWindowDays, range: 1...365)
      try d.int("card_expiry_notice_days", into: &config.dunning.cardExpiryNoticeDays, range: 0...365)
      var time = ""
      try d.string("collection_time", into: &time)
      if time == "when_due" {
        config.dunning.collectionTime = nil
      } else if !time.isEmpty {
        guard let seconds = Self.clockTime(time), seconds < 86_400 else {
          throw InputError(
            field: "dunning.collection_time",
            rule: "'\(time)' must be a time of day HH:MM or HH:MM:SS (00:00 to 23:59:59), or \"when_due\"")
        }
        config.dunning.collectionTime = seconds
      }
      var offset = ""
      try d.string("collection_utc_offset", into: &offset)
      if !offset.isEmpty {
        guard let sign = offset.first, sign == "+" || sign == "-",
          let seconds = Self.clockTime(String(offset.dropFirst())),
          seconds <= 14 * 3600
        else {
          throw InputError(
            field: "dunning.collection_utc_offset",
            rule: "'\(offset)' must be an offset from UTC, +HH:MM or -HH:MM (at most 14:00)")
        }
        config.dunning.collectionUTCOffsetSeconds = sign == "-" ? -seconds : seconds
      }
      for (key, days) in [("retry_days", config.dunning.retryDays), ("reminder_days", config.dunning.reminderDays)] {
        guard days == days.sorted(), Set(days).count == days.count,
          days.allSatisfy({ $0 >= 1 && $0 < config.dunning.graceDays })
        else {
          throw InputError(
            field: "dunning.\(key)",
            rule:
              "must be distinct days in increasing order, each from 1 to grace_days - 1 (\(config.dunning.graceDays - 1))"
          )
        }
      }
    }
    if let t = try reader.section("transfers") {
      try t.known(["window_business_days", "grace_after_window_days", "due_reminder_days"])
      try t.int("window_business_days", into: &config.dunning.transferWindowBusinessDays, range: 1...30)
      try t.int("grace_after_window_days", into: &config.dunning.graceAfterTransferWindowDays, range: 0...30)
      try t.int("due_reminder_days", into: &config.dunning.transferDueReminderDays, range: 0...60)
    }
    if let s = try reader.section("subscriptions") {
      try s.known(["renewal_lead_days", "transfer_terms_days", "proration"])
      try s.int("renewal_lead_days", into: &config.dunning.subscriptions.renewalLeadDays, range: 0...60)
      try s.int("transfer_terms_days", into: &config.dunning.subscriptions.transferTermsDays, range: 0...120)
      var rule = ""
      try s.string("proration", into: &rule)
      if !rule.isEmpty {
        guard let parsed = ProrationRule(rawValue: rule) else {
          throw InputError(field: "subscriptions.proration", rule: "'\(rule)' must be one of by_day, none")
        }
        config.dunning.subscriptions.proration = parsed
      }
    }
    if let p = try reader.section("processor") {
      try p.known([
        "kind", "simulated_db", "max_in_flight", "max_requests_per_second", "slow_ms", "timeout_ms", "api_base",
        "secret_key_file", "timeout_seconds",
      ])
      var kind = "simulated"
      try p.string("kind", into: &kind)
      guard let parsed = ProcessorKind(rawValue: kind) else {
        throw InputError(field: "processor.kind", rule: "'\(kind)' is not a known processor (simulated, stripe)")
      }
      config.processorKind = parsed
      if parsed == .stripe {
        // Stripe's own limit in live mode is 100 calls a second; 25 leaves room for the
        // host's other uses of the same key (and is test mode's limit).
        config.maxRequestsPerSecond = 25
        try p.string("api_base", into: &config.stripe.apiBase)
        config.stripe.apiBase = try StripeSettings.checkedBase(config.stripe.apiBase)
        try p.string("secret_key_file", into: &config.stripe.secretKeyFile)
        try p.int("timeout_seconds", into: &config.stripe.timeoutSeconds, range: 1...600)
      } else {
        for key in ["api_base", "secret_key_file", "timeout_seconds"] where p.object[key] != nil {
          throw InputError(
            field: "processor.\(key)", rule: "is a setting of the Stripe processor (\"kind\": \"stripe\")")
        }
      }
      var path = ""
      try p.string("simulated_db", into: &path)
      if !path.isEmpty { config.simulatedProcessorPath = path }
      try p.int("max_in_flight", into: &config.maxInFlight, range: 1...1024)
      var rate = 0
      try p.int("max_requests_per_second", into: &rate, range: 1...100_000)
      if rate > 0 { config.maxRequestsPerSecond = rate }
      try p.int("slow_ms", into: &config.slowMilliseconds, range: 0...600_000)
      try p.int("timeout_ms", into: &config.timeoutMilliseconds, range: 0...600_000)
    }
    if let daemon = try reader.section("daemon") {
      try daemon.known(["batch_size"])
      try daemon.int("batch_size", into: &config.batchSize, range: 1...100_000)
    }
    if let mail = try reader.section("mail") {
      try config.mail.read(mail)
    }
    if let api = try reader.section("api") {
      try api.known(["enabled", "socket", "socket_mode", "socket_group", "listen", "stripe_webhook_secret_file"])
      try api.bool("enabled", into: &config.api.enabled)
      var socket = ""
      try api.string("socket", into: &socket)
      if !socket.isEmpty {
        guard socket.hasPrefix("/"), socket.utf8.count < 108 else {
          throw InputError(field: "api.socket", rule: "'\(socket)' must be an absolute path shorter than 108 bytes")
        }
        config.api.socketPath = socket
      }
      var mode = ""
      try api.string("socket_mode", into: &mode)
      if !mode.isEmpty {
        guard mode.count == 4, mode.hasPrefix("0"), let value = Int(mode, radix: 8) else {
          throw InputError(field: "api.socket_mode", rule: "'\(mode)' must be an octal mode such as \"0660\"")
        }
        config.api.socketMode = value
      }
      var group = ""
      try api.string("socket_group", into: &group)
      if !group.isEmpty {
        guard group.utf8.count <= 32, group.first != "-",
          group.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) })
        else {
          throw InputError(
            field: "api.socket_group", rule: "'\(group)' must be a group name or number (letters, digits, _ - .)")
        }
        config.api.socketGroup = group
      }
      var listen = ""
      try api.string("listen", into: &listen)
      if !listen.isEmpty { config.api.listen = try APISettings.address(listen) }
      var secretFile = ""
      try api.string("stripe_webhook_secret_file", into: &secretFile)
      if !secretFile.isEmpty { config.api.stripeWebhookSecretFile = secretFile }
    }
    return config
  }

  /// Seconds in "HH:MM" or "HH:MM:SS" (two digits each, minutes and seconds below 60), or nil.
  static func clockTime(_ text: String) -> Int? {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 2 || parts.count == 3,
      parts.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
      let h = Int(parts[0]), let m = Int(parts[1]), m < 60
    else { return nil }
    let s = parts.count == 3 ? Int(parts[2]) ?? 60 : 0
    guard s < 60 else { return nil }
    return h * 3600 + m * 60 + s
  }

  /// Typed access to one JSON object, naming `section.key` in every error.
  /// A parsed JSON value that keeps booleans, numbers and strings apart.
  public enum JSONValue: Decodable, Sendable, Equatable {
    /// `data` as a JSON value, or nil when it is not JSON; a key named twice in one object
    /// is refused, naming its path, since readers disagree on which of the two counts.
    public static func parse(_ data: Data) throws -> JSONValue? {
      guard let value = try? JSONDecoder().decode(JSONValue.self, from: data) else { return nil }
      if let path = JSONKeys.firstDuplicate(in: data) {
        throw InputError(field: path, rule: "is named twice in one JSON object; name each field once")
      }
      return value
    }

    case bool(Bool)
    case int(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
    case null

    public init(from decoder: Decoder) throws {
      let c = try decoder.singleValueContainer()
      if c.decodeNil() {
        self = .null
      } else if let b = try? c.decode(Bool.self) {
        self = .bool(b)
      } else if let i = try? c.decode(Int.self) {
        self = .int(i)
      } else if let d = try? c.decode(Double.self) {
        self = .number(d)
      } else if let s = try? c.decode(String.self) {
        self = .string(s)
      } else if let a = try? c.decode([JSONValue].self) {
        self = .array(a)
      } else {
        self = .object(try c.decode([String: JSONValue].self))
      }
    }
  }

  struct Reader {
    let object: [String: JSONValue]
    let path: String

    func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func known(_ keys: Set<String>) throws {
      if let unknown = object.keys.sorted().first(where: { !keys.contains($0) }) {
        throw InputError(
          field: name(unknown), rule: "is not a known setting (known: \(keys.sorted().joined(separator: ", ")))")
      }
    }

    func section(_ key: String) throws -> Reader? {
      guard let value = object[key] else { return nil }
      guard case .object(let object) = value else { throw InputError(field: name(key), rule: "must be an object") }
      return Reader(object: object, path: name(key))
    }

    func int(_ key: String, into target: inout Int, range: ClosedRange<Int>) throws {
      guard let value = object[key] else { return }
      guard case .int(let int) = value, range.contains(int)
      else {
        throw InputError(
          field: name(key), rule: "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
      }
      target = int
    }

    func ints(_ key: String, into target: inout [Int]) throws {
      guard let value = object[key] else { return }
      guard case .array(let array) = value, !array.isEmpty else {
        throw InputError(field: name(key), rule: "must be a list of whole numbers")
      }
      target = try array.map {
        guard case .int(let i) = $0 else {
          throw InputError(field: name(key), rule: "must be a list of whole numbers")
        }
        return i
      }
    }

    func string(_ key: String, into target: inout String) throws {
      guard let value = object[key] else { return }
      guard case .string(let s) = value, !s.isEmpty else {
        throw InputError(field: name(key), rule: "must be a non-empty string")
      }
      target = s
    }

    func bool(_ key: String, into target: inout Bool) throws {
      guard let value = object[key] else { return }
      guard case .bool(let b) = value else { throw InputError(field: name(key), rule: "must be true or false") }
      target = b
    }
  }
}

/// How customer messages leave: the transport and its settings, the sender, and the retry
/// policy. Every key is optional; the defaults spool to `<db>.outbox/` beside the ledger.
public struct MailConfig: Sendable, Equatable {
  /// Where messages go.
  public enum Transport: String, Sendable, Equatable, CaseIterable {
    /// One `.eml` file per message in `spoolDirectory` (the default).
    case spool
    /// Piped to a sendmail-compatible command.
    case sendmail
    /// Over SMTP to a relay.
    case smtp
  }

  public var transport = Transport.spool
  public var from = "billing@localhost"
  public var fromName: String? = "Billing"
  /// Default: the domain of `from`.
  public var messageIDDomain: String?
  /// Default: `<db>.outbox` beside the ledger.
  public var spoolDirectory: String?
  /// Split on spaces; the message goes to its standard input.
  public var sendmailCommand = ["/usr/sbin/sendmail", "-i", "-t"]
  public var smtpHost = "localhost"
  public var smtpPort = 25
  public var smtpStartTLS = false
  /// PEM certificates to trust for STARTTLS instead of the system's roots.
  public var smtpCAFile: String?
  public var smtpUsername: String?
  public var smtpPassword: String?
  /// Default: the host's name.
  public var smtpHelo: String?
  /// For each connection, reply and command; also bounds a sendmail run.
  public var timeoutSeconds = 30
  public var maxAttempts = 10
  public var backoffSeconds = 60
  public var backoffMaxSeconds = 21_600
  /// Messages taken from the outbox per round.
  public var batchSize = 100

  /// The defaults: spool beside the ledger, 10 attempts from 1 minute to 6 hours.
  public init() {}

  /// The spool directory when the config names none: `<db>.outbox` beside the ledger.
  public static func defaultSpool(databasePath: String) -> String {
    (databasePath.hasSuffix(".db") ? String(databasePath.dropLast(3)) : databasePath) + ".outbox"
  }

  mutating func read(_ r: LedgerConfig.Reader) throws {
    try r.known([
      "transport", "from", "from_name", "message_id_domain", "spool_dir", "sendmail_command", "smtp", "max_attempts",
      "backoff_seconds", "backoff_max_seconds", "batch_size", "timeout_seconds",
    ])
    var transportName = transport.rawValue
    try r.string("transport", into: &transportName)
    guard let chosen = Transport(rawValue: transportName) else {
      throw InputError(field: "mail.transport", rule: "'\(transportName)' is not a transport (spool, sendmail, smtp)")
    }
    transport = chosen
    if r.object["from"] != nil {
      try r.string("from", into: &from)
      from = try Validate.email(from, field: "mail.from")
    }
    var name = fromName ?? ""
    try r.string("from_name", into: &name)
    fromName = try Validate.displayName(name, field: "mail.from_name")
    var domain = ""
    try r.string("message_id_domain", into: &domain)
    if !domain.isEmpty {
      _ = try Validate.email("x@" + domain, field: "mail.message_id_domain")
      messageIDDomain = domain
    }
    var spool = ""
    try r.string("spool_dir", into: &spool)
    if !spool.isEmpty { spoolDirectory = spool }
    var command = ""
    try r.string("sendmail_command", into: &command)
    if !command.isEmpty {
      sendmailCommand = command.split(separator: " ").map(String.init)
      guard sendmailCommand.first?.hasPrefix("/") == true else {
        throw InputError(
          field: "mail.sendmail_command", rule: "must start with an absolute path (e.g. /usr/sbin/sendmail -i -t)")
      }
    }
    try r.int("timeout_seconds", into: &timeoutSeconds, range: 1...600)
    try r.int("max_attempts", into: &maxAttempts, range: 1...100)
    try r.int("backoff_seconds", into: &backoffSeconds, range: 1...86_400)
    try r.int("backoff_max_seconds", into: &backoffMaxSeconds, range: 1...604_800)
    try r.int("batch_size", into: &batchSize, range: 1...10_000)
    if let smtp = try r.section("smtp") {
      try smtp.known([
        "host", "port", "starttls", "ca_file", "username", "password", "password_file", "helo", "timeout_seconds",
      ])
      try smtp.string("host", into: &smtpHost)
      try smtp.int("port", into: &smtpPort, range: 1...65_535)
      try smtp.bool("starttls", into: &smtpStartTLS)
      var caFile = ""
      try smtp.string("ca_file", into: &caFile)
      if !caFile.isEmpty {
        guard FileManager.default.isReadableFile(atPath: caFile) else {
          throw InputError(field: "mail.smtp.ca_file", rule: "cannot read \(caFile)")
        }
        smtpCAFile = caFile
      }
      var user = ""
      try smtp.string("username", into: &user)
      if !user.isEmpty { smtpUsername = user }
      var password = ""
      try smtp.string("password", into: &password)
      var passwordFile = ""
      try smtp.string("password_file", into: &passwordFile)
      if !passwordFile.isEmpty {
        guard password.isEmpty else {
          throw InputError(field: "mail.smtp.password_file", rule: "give password or password_file, not both")
        }
        guard let data = FileManager.default.contents(atPath: passwordFile) else {
          throw InputError(field: "mail.smtp.password_file", rule: "cannot read \(passwordFile)")
        }
        password = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
      }
      if !password.isEmpty { smtpPassword = password }
      if (smtpUsername == nil) != (smtpPassword == nil) {
        throw InputError(field: "mail.smtp.username", rule: "username and password (or password_file) go together")
      }
      var helo = ""
      try smtp.string("helo", into: &helo)
      if !helo.isEmpty { smtpHelo = helo }
      try smtp.int("timeout_seconds", into: &timeoutSeconds, range: 1...600)
    }
  }
}

/// Which processor charges the cards.
public enum ProcessorKind: String, Sendable, Equatable {
  case simulated
  case stripe
}

/// How ledgerd reaches Stripe. The secret key itself is never in the configuration: it is
/// read from `secret_key_file`, or from `$CREDENTIALS_DIRECTORY/stripe-key` when systemd
/// passes it with `LoadCredential=`.
public struct StripeSettings: Sendable, Equatable {
  public var apiBase = "https://api.stripe.com"
  public var secretKeyFile = ""
  /// How long one HTTP call may take before its charge is left pending for lookup.
  public var timeoutSeconds = 30

  public init() {}

  /// `https://host[:port]`, or `http://` to a loopback address (a local emulator in tests):
  /// a key is never sent in clear over a network.
  static func checkedBase(_ raw: String) throws -> String {
    let base = raw.hasSuffix("/") ? String(raw.dropLast()) : raw
    guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty,
      url.path.isEmpty, url.query == nil, url.user == nil
    else {
      throw InputError(
        field: "processor.api_base", rule: "'\(raw)' must be a URL like https://api.stripe.com, without a path")
    }
    let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
    guard scheme == "https" || (scheme == "http" && loopback) else {
      throw InputError(
        field: "processor.api_base",
        rule: "'\(raw)' must use https (plain http only to 127.0.0.1, ::1 or localhost, for a local emulator)")
    }
    return base
  }
}

/// Where the HTTP API listens, and what it trusts.
public struct APISettings: Sendable, Equatable {
  /// Off: `serve` runs without the API.
  public var enabled = true
  /// The Unix socket (default: `$RUNTIME_DIRECTORY/api.sock` under systemd, else
  /// `<db>.api.sock` beside the ledger).
  public var socketPath: String?
  /// The socket's mode.
  public var socketMode = 0o660
  /// The socket's group (a name or number), for a dashboard's user on this host; the
  /// daemon's own group when nil. The daemon must be a member of it.
  public var socketGroup: String?
  /// A TCP address as well, only when configured ("127.0.0.1:8080").
  public var listen: Address?
  /// Stripe's webhook signing secrets (`whsec_…`, one per line: two during a rotation);
  /// `$CREDENTIALS_DIRECTORY/stripe-webhook-secret` wins when present.
  public var stripeWebhookSecretFile: String?

  public init() {}

  /// A host and port to listen on.
  public struct Address: Sendable, Equatable {
    public let host: String
    public let port: Int
  }

  /// "HOST:PORT", the host an IPv4 address, `[IPv6]` or a name.
  static func address(_ text: String) throws -> Address {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
      (1...65_535).contains(port)
    else {
      throw InputError(field: "api.listen", rule: "'\(text)' must be HOST:PORT with a port from 1 to 65535")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard !host.isEmpty else { throw InputError(field: "api.listen", rule: "'\(text)' names no host") }
    return Address(host: host, port: port)
  }

  /// The socket's path for the ledger at `databasePath`.
  public func socket(databasePath: String) -> String {
    if let socketPath { return socketPath }
    if let runtime = ProcessInfo.processInfo.environment["RUNTIME_DIRECTORY"], !runtime.isEmpty {
      return runtime.split(separator: ":").first.map { "\($0)/api.sock" } ?? runtime + "/api.sock"
    }
    return (databasePath.hasSuffix(".db") ? String(databasePath.dropLast(3)) : databasePath) + ".api.sock"
  }
}

/// A secret kept in a file: systemd's credential `$CREDENTIALS_DIRECTORY/<credential>` when
/// present, else `path`. A file other users may read is refused, and no error quotes the
/// content.
public enum SecretFile {
  /// The file's text, or nil when neither the credential nor `path` is given.
  public static func read(credential: String, path: String?, field: String, environment: [String: String]) throws
    -> (text: String, source: String)?
  {
    var path = path
    if let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty,
      FileManager.default.fileExists(atPath: dir + "/" + credential)
    {
      path = dir + "/" + credential
    }
    guard let path, !path.isEmpty else { return nil }
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
      let data = FileManager.default.contents(atPath: path)
    else {
      throw InputError(field: field, rule: "cannot read \(path)")
    }
    if let mode = attributes[.posixPermissions] as? Int, mode & 0o007 != 0 {
      throw InputError(
        field: field,
        rule: "\(path) may be read by other users (mode \(String(mode, radix: 8))); make it 0600 or 0400")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw InputError(field: field, rule: "\(path) is not UTF-8 text")
    }
    return (text, path)
  }
}
