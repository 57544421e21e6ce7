import Foundation
import HTTPTypes
import Hummingbird
import LedgerCore
import LedgerEngine
import LedgerSQLite
import LedgerStore
import Logging
import Metrics
import NIOCore
import ServiceLifecycle

/// The HTTP API inside `ledgerd serve`: the resources for a host's dashboard and billing
/// services, Stripe's webhooks in, `/metrics`, `/healthz`, `/readyz` and `/openapi.json`.
public struct LedgerAPI: Sendable {
  let database: APIDatabase
  let config: LedgerConfig
  let health: DaemonHealth
  let metrics: APIMetrics
  let stripeSecrets: [String]
  let socketGroup: gid_t?
  let logger: Logger
  let document: Data

  /// The largest request body taken (a webhook's event included).
  static let maxBody = 256 * 1024

  public init(
    databasePath: String, config: LedgerConfig, clock: any LedgerClock, discipline: WriteDiscipline,
    health: DaemonHealth, logger: Logger
  ) throws {
    var discipline = discipline
    // A request waits a few seconds for another process's write, then answers 503.
    discipline.lockTimeout = .seconds(5)
    self.database = APIDatabase(path: databasePath, clock: clock, discipline: discipline)
    self.config = config
    self.health = health
    self.metrics = APIMetrics.shared
    self.stripeSecrets = try StripeWebhookSecrets.load(config.api)
    self.socketGroup = try config.api.socketGroup.map(SocketGroup.resolve)
    self.logger = logger
    self.document = OpenAPI.document()
  }

  /// One Hummingbird application per address: the Unix socket, and TCP when configured.
  public func applications(databasePath: String) -> [any Service] {
    let socket = config.api.socket(databasePath: databasePath)
    var services: [any Service] = []
    // A socket a previous run left behind (it was killed) would refuse the bind.
    if let kind = try? FileManager.default.attributesOfItem(atPath: socket)[.type] as? FileAttributeType,
      kind == .typeSocket
    {
      try? FileManager.default.removeItem(atPath: socket)
    }
    let mode = config.api.socketMode
    let group = socketGroup
    let logger = self.logger
    services.append(
      Application(
        router: router(), configuration: ApplicationConfiguration(address: .unixDomainSocket(path: socket)),
        onServerRunning: { _ in
          if let group, chown(socket, uid_t.max, group) != 0 {
            logger.error("API socket \(socket) not given to group \(group): \(String(cString: strerror(errno)))")
          }
          chmod(socket, mode_t(mode))
          logger.notice("API listening on \(socket)")
        }, logger: quiet(logger)))
    if let listen = config.api.listen {
      services.append(
        Application(
          router: router(), configuration: ApplicationConfiguration(address: .hostname(listen.host, port: listen.port)),
          onServerRunning: { channel in
            logger.notice("API listening on \(channel.localAddress.map { "\($0)" } ?? "\(listen.host):\(listen.port)")")
          }, logger: quiet(logger)))
    }
    return services
  }

  func quiet(_ logger: Logger) -> Logger {
    var logger = logger
    logger.logLevel = max(logger.logLevel, .warning)
    return logger
  }

  /// Every route, the operational endpoints and the webhook.
  func router() -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.addMiddleware { ErrorShape(metrics: metrics) }
    router.get("/healthz") { _, _ in json(200, Data("{\"status\":\"alive\"}".utf8)) }
    router.get("/readyz") { _, _ in
      if let reason = health.notReadyReason {
        return json(503, try JSONEncoder().encode(["status": "not_ready", "reason": reason]))
      }
      do {
        _ = try await database.run { store in try store.read { try store.ledgerID() } }
      } catch {
        return json(503, try JSONEncoder().encode(["status": "not_ready", "reason": "the ledger cannot be read"]))
      }
      return json(200, Data("{\"status\":\"ready\"}".utf8))
    }
    router.get("/openapi.json") { _, _ in json(200, document) }
    router.get("/metrics") { _, _ in
      let text = try await metrics.scrape(database)
      return Response(
        status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: text)))
    }
    router.post("/webhooks/stripe") { request, _ in
      let body = try await request.body.collect(upTo: Self.maxBody)
      let answer = try await stripeWebhook(
        body: Data(buffer: body), signature: request.headers[HTTPField.Name("Stripe-Signature")!])
      return json(answer.status, answer.body)
    }
    for route in Routes.all {
      let path = route.path.replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: "")
      router.on(RouterPath(path), method: HTTPRequest.Method(rawValue: route.method)!) { request, context in
        try await handle(route, request, context)
      }
    }
    return router
  }

  /// Authenticates, checks the query and body against the route, and runs it; a POST or
  /// DELETE under an Idempotency-Key runs in one transaction with the answer it keeps.
  func handle(_ route: Route, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
    let started = ContinuousClock.now
    defer { metrics.request(route.operationID, after: ContinuousClock.now - started) }
    guard let authorization = request.headers[.authorization], authorization.hasPrefix("Bearer ") else {
      throw APIError.unauthenticated
    }
    let secret = String(authorization.dropFirst("Bearer ".count))
    var found: [String: String] = [:]
    for name in route.parameters { found[name] = context.parameters.get(name) }
    let parameters = found
    let query = try Self.checkedQuery(request.uri.queryParameters, route)
    let raw = route.method == "GET" ? Data() : Data(buffer: try await request.body.collect(upTo: Self.maxBody))
    let body = try Self.checkedBody(raw, route)
    let idempotencyKey = request.headers[HTTPField.Name("Idempotency-Key")!]
    if let idempotencyKey {
      guard route.method != "GET" else {
        throw APIError.invalid("Idempotency-Key", "is for POST and DELETE requests")
      }
      guard (1...255).contains(idempotencyKey.utf8.count), idempotencyKey.allSatisfy({ $0.isASCII && !$0.isWhitespace })
      else {
        throw APIError.invalid("Idempotency-Key", "must be 1 to 255 printable ASCII characters without spaces")
      }
    }
    let fingerprint = SHA256.hex(Array("\(route.method) \(request.uri.path)\n".utf8) + Array(raw))
    let config = self.config
    let answer: (status: Int, body: Data, replayed: Bool) = try await database.run { store in
      guard let key = try store.authenticate(secret: secret) else { throw APIError.unauthenticated }
      store.eventSource = (key: key.name, describing: "API key '\(key.name)'")
      let call = Call(store: store, key: key, parameters: parameters, query: query, body: body, config: config)
      guard route.method != "GET" else {
        // One read transaction: a page or a dunning state is one snapshot of the ledger.
        return (200, try store.read { try Self.encode(try route.handler(call)) }, false)
      }
      return try store.write {
        if let idempotencyKey {
          if let kept = try store.idempotentAnswer(apiKey: key.id, key: idempotencyKey) {
            guard kept.requestSHA256 == fingerprint else {
              throw APIError(
                status: 409, type: "idempotency_error", code: "idempotency_key_reused", param: "Idempotency-Key",
                message:
                  "'\(idempotencyKey)' was used with a different request in the last 24 hours; use a new key for a new request"
              )
            }
            return (kept.status, Data(kept.body.utf8), true)
          }
        }
        let data = try Self.encode(try route.handler(call))
        if let idempotencyKey {
          try store.keepIdempotentAnswer(
            apiKey: key.id, key: idempotencyKey,
            answer: IdempotentAnswer(
              requestSHA256: fingerprint, status: 200, body: String(decoding: data, as: UTF8.self)))
        }
        return (200, data, false)
      }
    }
    var response = json(answer.status, answer.body)
    if answer.replayed { response.headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
    return response
  }

  static func encode(_ value: any Encodable & Sendable) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    return try encoder.encode(value)
  }

  /// The query, checked against the route's parameters: unknown names and bad values refused.
  static func checkedQuery(_ parameters: Parameters, _ route: Route) throws -> [String: String] {
    var query: [String: String] = [:]
    for (name, value) in parameters {
      let name = String(name)
      guard let field = route.query.first(where: { $0.name == name }) else {
        throw APIError.invalid(name, "is not a parameter of \(route.method) \(route.path)")
      }
      let value = String(value)
      switch field.type {
      case .integer(let minimum, let maximum):
        guard let number = Int64(value), number >= minimum, number <= maximum else {
          throw APIError.invalid(name, "'\(value)' must be an integer from \(minimum) to \(maximum)")
        }
      case .choice(let choices):
        guard choices.contains(value) else {
          throw APIError.invalid(name, "'\(value)' must be one of \(choices.joined(separator: ", "))")
        }
      case .string(let maxLength):
        guard value.count <= maxLength else { throw APIError.invalid(name, "is longer than \(maxLength)") }
      default: break
      }
      query[name] = value
    }
    return query
  }

  /// The body, checked against the route's fields: a JSON object, only known fields, each
  /// of its type, the required ones present. Amounts are integers; never a float.
  static func checkedBody(_ raw: Data, _ route: Route) throws -> [String: LedgerConfig.JSONValue] {
    if raw.isEmpty || raw.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
      if let required = route.body.first(where: \.required) { throw APIError.invalid(required.name, "is required") }
      return [:]
    }
    let parsed: LedgerConfig.JSONValue?
    do { parsed = try LedgerConfig.JSONValue.parse(raw) } catch let e as InputError {
      throw APIError.invalid(e.field, e.rule)  // the key as sent, not turned into a parameter name
    }
    guard case .object(let object)? = parsed else {
      throw APIError.invalid("body", "must be a JSON object")
    }
    for name in object.keys where !route.body.contains(where: { $0.name == name }) {
      throw APIError.invalid(
        name,
        route.body.isEmpty
          ? "\(route.method) \(route.path) takes no body fields"
          : "is not a field of \(route.method) \(route.path) (\(route.body.map(\.name).joined(separator: ", ")))")
    }
    for field in route.body {
      guard let value = object[field.name], value != .null else {
        if field.required { throw APIError.invalid(field.name, "is required") }
        continue
      }
      try check(value, field)
    }
    return object.filter { $0.value != .null }
  }

  static func check(_ value: LedgerConfig.JSONValue, _ field: Field) throws {
    switch (field.type, value) {
    case (.string(let maxLength), .string(let s)):
      guard s.count <= maxLength else { throw APIError.invalid(field.name, "is longer than \(maxLength) characters") }
    case (.choice(let choices), .string(let s)):
      guard choices.contains(s) else {
        throw APIError.invalid(field.name, "'\(s)' must be one of \(choices.joined(separator: ", "))")
      }
    case (.date, .string(let s)):
      _ = try CivilDate(iso8601: s, field: field.name)
    case (.boolean, .bool): break
    case (.integer(let minimum, let maximum), .int(let i)):
      guard Int64(i) >= minimum, Int64(i) <= maximum else {
        throw APIError.invalid(field.name, "must be from \(minimum) to \(maximum)")
      }
    case (.money, .object(let money)):
      guard case .int? = money["minor"] else {
        throw APIError.invalid("\(field.name).minor", "must be an integer amount in minor units (1230 for 12.30 EUR)")
      }
      guard case .string? = money["currency"] else {
        throw APIError.invalid("\(field.name).currency", "must be an ISO 4217 code such as \"EUR\"")
      }
      if let other = money.keys.first(where: { $0 != "minor" && $0 != "currency" }) {
        throw APIError.invalid("\(field.name).\(other)", "is not a field of an amount (minor, currency)")
      }
    default:
      throw APIError.invalid(field.name, "must be \(OpenAPI.typeName(field.type))")
    }
  }
}

/// A JSON response.
func json(_ status: Int, _ body: Data) -> Response {
  Response(
    status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"],
    body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
}

/// Every error leaves in the API's shape; one the ledger did not expect is logged and
/// answered 500 without its details.
struct ErrorShape: RouterMiddleware {
  typealias Context = BasicRequestContext
  let metrics: APIMetrics

  func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
    -> Response
  {
    let response: Response
    do {
      response = try await next(request, context)
    } catch {
      let shaped: APIError
      if let known = APIError.from(error) {
        shaped = known
      } else if let http = error as? HTTPError {
        let status = Int(http.status.code)
        shaped = APIError(
          status: status, type: "invalid_request_error",
          code: status == 404 ? "route_missing" : status == 413 ? "body_too_large" : "bad_request",
          message: status == 404
            ? "no route \(request.method) \(request.uri.path); see /openapi.json"
            : http.body ?? http.status.reasonPhrase)
      } else {
        context.logger.error("API \(request.method) \(request.uri.path) failed: \(String(describing: error))")
        shaped = APIError(
          status: 500, type: "api_error", code: "internal_error",
          message: "the request failed inside ledgerd; nothing it would have changed was kept")
      }
      var response = json(shaped.status, shaped.body)
      if shaped.status == 503 { response.headers[.retryAfter] = "1" }
      metrics.answered(shaped.status)
      return response
    }
    metrics.answered(Int(response.status.code))
    return response
  }
}
