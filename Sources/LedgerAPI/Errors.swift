import Foundation
import LedgerCore
import LedgerSQLite
import LedgerStore

/// An error as the API answers it: `{"error": {"type", "code", "param", "message"}}`, with
/// the field and the rule the command line names.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
  public let status: Int
  public let type: String
  public let code: String
  public let param: String?
  public let message: String

  public init(status: Int, type: String, code: String, param: String? = nil, message: String) {
    self.status = status
    self.type = type
    self.code = code
    self.param = param
    self.message = message
  }

  public var description: String { "\(status) \(code): \(message)" }

  static func invalid(_ param: String, _ rule: String) -> APIError {
    APIError(status: 400, type: "invalid_request_error", code: "parameter_invalid", param: param, message: rule)
  }

  static let unauthenticated = APIError(
    status: 401, type: "authentication_error", code: "api_key_invalid",
    message: "a live API key is required: Authorization: Bearer ldk_…")

  static func forbidden(_ message: String) -> APIError {
    APIError(status: 403, type: "permission_error", code: "forbidden", message: message)
  }

  static func notFound(_ param: String?, _ message: String) -> APIError {
    APIError(status: 404, type: "invalid_request_error", code: "resource_missing", param: param, message: message)
  }

  /// What a ledger error becomes: the field named as the API's parameter (`--postal-code`
  /// is `postal_code`).
  static func from(_ error: Error) -> APIError? {
    switch error {
    case let e as APIError: return e
    case let e as InputError: return .invalid(parameter(e.field), e.rule)
    case let e as NotFoundError: return .notFound(parameter(e.field), e.description)
    case let e as StateError:
      return APIError(status: 409, type: "invalid_request_error", code: "invalid_state", message: e.description)
    case let e as SQLiteError where e.isBusy:
      return busy(e.description)
    case let e as WriteLockBusy:
      return busy(e.description)
    default: return nil
    }
  }

  static func busy(_ detail: String) -> APIError {
    APIError(
      status: 503, type: "api_error", code: "ledger_busy",
      message: "the ledger is busy; nothing was written; send the same request again: \(detail)")
  }

  static func parameter(_ field: String) -> String {
    var name = field
    while name.hasPrefix("-") { name.removeFirst() }
    return name.replacingOccurrences(of: "-", with: "_")
  }

  /// The JSON body.
  var body: Data {
    var inner: [String: String] = ["type": type, "code": code, "message": message]
    if let param { inner["param"] = param }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(["error": inner])) ?? Data("{\"error\":{}}".utf8)
  }
}
