import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `Tests/Tools/stripetool.py`: a Stripe-shaped server, or a proxy in front of localstripe.
let stripetool = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("Tools/stripetool.py").path

/// A Stripe-shaped HTTP server on 127.0.0.1 started by the test (`stripetool.py serve`):
/// its own PaymentIntents, or (`upstream`) localstripe's with the keys and decline codes
/// localstripe lacks. Its `/_charges` and `/_requests` are a test's ground truth.
final class StripeServer {
  let key: String
  let port: Int
  let log: String
  private var process: Process?
  private let w: Workspace

  init(_ w: Workspace, key: String, upstream: String? = nil, port fixed: Int? = nil) throws {
    self.w = w
    self.key = key
    let portFile = w.directory + "/stripe-\(UUID().uuidString).port"
    log = w.directory + "/stripe-requests.log"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments =
      ["python3", stripetool, "serve", "--port-file", portFile, "--key", key, "--log", log]
      + (upstream.map { ["--upstream", $0] } ?? []) + (fixed.map { ["--port", String($0)] } ?? [])
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    self.process = process
    var port: Int?
    let started = waitUntil(seconds: 15) {
      port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap {
        Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
      }
      return port != nil || !process.isRunning
    }
    guard started, let port else { throw Failure("stripetool.py did not start") }
    self.port = port
  }

  var base: String { "http://127.0.0.1:\(port)" }

  /// A free port on 127.0.0.1, for a server started later.
  static func freePort(_ w: Workspace) throws -> Int {
    let free = try w.run("python3", [stripetool, "freeport"])
    guard let port = Int(free.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
      throw Failure("no free port: \(free.stderr)")
    }
    return port
  }

  /// Sets the server's faults (`/_control`), e.g. `{"lose_next": 1}`.
  func control(_ json: String) throws {
    let out = try w.run("curl", ["-sS", "-f", "-X", "POST", base + "/_control", "-d", json])
    guard out.status == 0 else { throw Failure("stripetool /_control: \(out.stderr)") }
  }

  /// Every charge the server made, in order.
  func charges() throws -> [[String: Any]] {
    let out = try w.run("curl", ["-sS", "-f", base + "/_charges"])
    return (try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]]) ?? []
  }

  /// Answers to /v1/ requests by HTTP status.
  func answered(_ status: String) throws -> Int {
    let out = try w.run("curl", ["-sS", "-f", base + "/_requests"])
    let object = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
    return (object?["by_status"] as? [String: Any])?[status] as? Int ?? 0
  }

  /// A Stripe API call with the key (`-d` fields), its JSON answer.
  func api(_ method: String, _ path: String, _ fields: [String] = []) throws -> [String: Any] {
    let out = try w.run(
      "curl", ["-sS", "-X", method, "-u", key + ":", base + path] + fields.flatMap { ["-d", $0] })
    guard let object = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any] else {
      throw Failure("\(method) \(path): \(out.stdout) \(out.stderr)")
    }
    return object
  }

  func stop() {
    guard let process, process.isRunning else { return }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    self.process = nil
  }

  deinit { stop() }
}

/// localstripe (PyPI), the stateful Stripe emulator, on a free port of 127.0.0.1.
final class LocalStripe {
  let port: Int
  private var process: Process?

  init(_ w: Workspace) throws {
    let port = try StripeServer.freePort(w)
    self.port = port
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // --from-scratch: its state file in /tmp is shared by every instance otherwise.
    process.arguments = ["localstripe", "--port", String(port), "--from-scratch"]
    process.currentDirectoryURL = URL(fileURLWithPath: w.directory)
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    self.process = process
    let up = waitUntil(seconds: 20) {
      (try? w.run("curl", ["-sS", "-o", "/dev/null", "-u", "sk_test_x:", "http://127.0.0.1:\(port)/v1/customers"]))?
        .status == 0 || !process.isRunning
    }
    guard up, process.isRunning else { throw Failure("localstripe did not start (run .ci/setup)") }
  }

  var base: String { "http://127.0.0.1:\(port)" }

  func stop() {
    guard let process, process.isRunning else { return }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    self.process = nil
  }

  deinit { stop() }
}

extension Workspace {
  /// A secret key for a test: unique, so that a test can look for it everywhere.
  static func stripeTestKey() -> String {
    "sk_test_" + String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(24))
  }

  /// The ledger configured for Stripe at `server` (the key in a 0600 file), charging when
  /// due; every later command of the workspace uses it. Returns the config's path.
  @discardableResult
  func useStripe(_ server: StripeServer, processor: String = "", key: String? = nil) throws -> String {
    try useStripe(base: server.base, key: key ?? server.key, processor: processor)
  }

  /// The same for a server at `base` that may not be listening yet.
  @discardableResult
  func useStripe(base: String, key: String, processor: String = "") throws -> String {
    let keyFile = directory + "/stripe-key"
    try? FileManager.default.removeItem(atPath: keyFile)
    _ = FileManager.default.createFile(
      atPath: keyFile, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600])
    let path = directory + "/stripe.json"
    var settings = processor.isEmpty ? [] : [processor]
    if !processor.contains("max_requests_per_second") { settings.append(#""max_requests_per_second": 50"#) }
    if !processor.contains("timeout_seconds") { settings.append(#""timeout_seconds": 2"#) }
    let json = """
      {"dunning": {"collection_time": "when_due"},
       "processor": {"kind": "stripe", "api_base": "\(base)", "secret_key_file": "\(keyFile)",
                     \(settings.joined(separator: ", "))}}
      """
    try Data(json.utf8).write(to: URL(fileURLWithPath: path))
    environment["LEDGERD_CONFIG"] = path
    return path
  }

  /// An account on the 19.00 EUR `pro` plan billed from today, with its Stripe customer
  /// and one card (`token`, a PaymentMethod id); the plan is made if missing.
  @discardableResult
  func stripeAccount(_ name: String, token: String, customer: String? = nil) throws -> Int {
    if try value("SELECT count(*) FROM plans WHERE code = 'pro'") != "1" {
      try ok(["plan", "add", "pro", "--name", "Pro", "--price", "19.00", "--currency", "EUR"])
    }
    let account = try json([
      "account", "add", "--email", "\(name.lowercased())@example.com", "--name", name, "--plan", "pro",
      "--processor-customer", customer ?? "cus_\(name)",
    ])
    let id = account["id"] as? Int ?? 0
    try ok(["card", "add", String(id), "--token", token, "--brand", "visa", "--last4", "4242", "--expiry", "12/2030"])
    return id
  }

  /// `ledgerd run-due` up to the workspace's time: what is due is done once.
  func runDue(environment: [String: String] = [:]) throws -> Outcome {
    try ledgerd(["run-due", "--until", now], environment: environment)
  }

  /// One value of a read-only SQL query, trimmed.
  func value(_ sql: String) throws -> String {
    try sqlite(sql).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// The workspace's clock set to the real time (a Stripe-shaped server stamps what it
  /// makes with it), `plus` seconds ahead.
  func useRealTime(plus seconds: TimeInterval = 0) {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    now = formatter.string(from: Date().addingTimeInterval(seconds))
  }
}
