import Foundation
import Testing

/// `Tests/Tools/apitool.py`: Stripe's library signing webhooks, prometheus-client reading /metrics.
let apitool = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
  .appendingPathComponent("Tools/apitool.py").path

/// An answer of the API, as curl got it.
struct HTTPAnswer {
  let status: Int
  let headers: String
  let text: String

  var object: [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
  }

  /// `error.param` of an error answer.
  var param: String? { (object["error"] as? [String: Any])?["param"] as? String }
}

/// A running `ledgerd serve` with its API on the Unix socket and on a loopback port.
final class APIServer {
  let w: Workspace
  let port: Int
  let process: Process
  var base: String { "http://127.0.0.1:\(port)" }
  var socket: String { w.directory + "/ledger.api.sock" }

  /// Starts serve with `config` (a JSON object's members, without braces) plus the API's
  /// port, and waits for /readyz.
  init(_ w: Workspace, config: String = #""dunning": {"collection_time": "when_due"}"#, apiExtra: String = "")
    throws
  {
    self.w = w
    let free = try w.run("python3", [apitool, "freeport"])
    port = Int(free.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    let path = w.directory + "/api.json"
    let api = #""api": {"listen": "127.0.0.1:\#(port)"\#(apiExtra.isEmpty ? "" : ", " + apiExtra)}"#
    try Data("{\(config), \(api)}".utf8).write(to: URL(fileURLWithPath: path))
    w.environment["LEDGERD_CONFIG"] = path
    process = try w.launch(["serve"])
    let ready = waitUntil(seconds: 30) {
      (try? self.get("/readyz").status) == 200 || !process.isRunning
    }
    guard ready, process.isRunning else { throw Failure("serve did not become ready: \(w.serveLog())") }
  }

  /// One request through curl: over the Unix socket when `unix`, else the port.
  func call(
    _ method: String, _ path: String, key: String? = nil, body: String? = nil, idempotencyKey: String? = nil,
    unix: Bool = false, headers extra: [String] = []
  ) throws -> HTTPAnswer {
    let out = w.directory + "/.http-\(UUID().uuidString)"
    let head = out + ".headers"
    var args = ["-sS", "-o", out, "-D", head, "-w", "%{http_code}", "-X", method, "--max-time", "30"]
    if unix { args += ["--unix-socket", socket] }
    if let key { args += ["-H", "Authorization: Bearer \(key)"] }
    if let idempotencyKey { args += ["-H", "Idempotency-Key: \(idempotencyKey)"] }
    for header in extra { args += ["-H", header] }
    if let body { args += ["-H", "Content-Type: application/json", "--data-binary", body] }
    args.append((unix ? "http://localhost" : base) + path)
    let outcome = try w.run("curl", args)
    defer {
      try? FileManager.default.removeItem(atPath: out)
      try? FileManager.default.removeItem(atPath: head)
    }
    guard let status = Int(outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), status > 0 else {
      throw Failure("curl \(method) \(path): \(outcome.stderr)")
    }
    return HTTPAnswer(
      status: status, headers: (try? String(contentsOfFile: head, encoding: .utf8)) ?? "",
      text: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
  }

  func get(_ path: String, key: String? = nil) throws -> HTTPAnswer { try call("GET", path, key: key) }

  /// SIGTERM, and the exit awaited.
  func stop() {
    guard process.isRunning else { return }
    process.terminate()
    _ = waitForExit(process, seconds: 15)
  }

  deinit { stop() }
}

extension Workspace {
  /// A key made with `ledgerd api-key create`; returns the secret it printed once.
  func apiKey(_ name: String, role: String, account: Int? = nil) throws -> String {
    let created = try json(
      ["api-key", "create", name, "--role", role] + (account.map { ["--account", String($0)] } ?? []))
    return created["secret"] as? String ?? ""
  }
}
