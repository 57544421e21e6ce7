import Foundation

/// Keys an object of a JSON text names twice. JSON parsers keep one of the two silently, and
/// not the same one (Foundation's decoder the first, `JSONSerialization` the last), so a body
/// or a config file that names a field twice means two things to two readers. The ledger
/// refuses it instead.
public enum JSONKeys {
  /// The path of the first key named twice in one object (`amount.minor`, `lines[1].amount`),
  /// or nil. `json` must already be valid JSON (decoded once): this only walks its structure.
  /// Keys are compared as decoded strings, so `"token"` and `"to\u006ben"` are the same key.
  public static func firstDuplicate(in json: Data) -> String? {
    let bytes = [UInt8](json)
    var stack: [Frame] = []
    var i = 0
    while i < bytes.count {
      switch bytes[i] {
      case UInt8(ascii: "\""):
        let end = closingQuote(bytes, from: i + 1)
        if var top = stack.last, top.isObject, top.expectingKey {
          let key = decodedString(bytes[i...end])
          guard top.keys.insert(key).inserted else {
            return path(stack.dropLast().map(\.label) + [key])
          }
          top.label = key
          top.expectingKey = false
          stack[stack.count - 1] = top
        }
        i = end
      case UInt8(ascii: "{"): stack.append(Frame(isObject: true, expectingKey: true))
      case UInt8(ascii: "["): stack.append(Frame(isObject: false, expectingKey: false, label: "[0]"))
      case UInt8(ascii: "}"), UInt8(ascii: "]"): _ = stack.popLast()
      case UInt8(ascii: ","):
        if !stack.isEmpty {
          if stack[stack.count - 1].isObject {
            stack[stack.count - 1].expectingKey = true
          } else {
            stack[stack.count - 1].index += 1
            stack[stack.count - 1].label = "[\(stack[stack.count - 1].index)]"
          }
        }
      default: break
      }
      i += 1
    }
    return nil
  }

  /// One object or array being walked; `label` names its current member in a path.
  private struct Frame {
    let isObject: Bool
    var expectingKey: Bool
    var keys: Set<String> = []
    var index = 0
    var label = ""
  }

  /// `amount`, `minor` and `lines`, `[1]` joined as `amount.minor` and `lines[1]`.
  private static func path(_ labels: [String]) -> String {
    var path = ""
    for label in labels where !label.isEmpty {
      if label.hasPrefix("[") || path.isEmpty { path += label } else { path += "." + label }
    }
    return path
  }

  /// The index of the quote that closes the string opened before `start`.
  private static func closingQuote(_ bytes: [UInt8], from start: Int) -> Int {
    var i = start
    while i < bytes.count {
      if bytes[i] == UInt8(ascii: "\\") {
        i += 2
        continue
      }
      if bytes[i] == UInt8(ascii: "\"") { return i }
      i += 1
    }
    return bytes.count - 1
  }

  /// A JSON string literal (quotes included) as the string it stands for.
  private static func decodedString(_ literal: ArraySlice<UInt8>) -> String {
    let inner = literal.dropFirst().dropLast()
    if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
    return (try? JSONDecoder().decode(String.self, from: Data(literal))) ?? String(decoding: inner, as: UTF8.self)
  }
}
