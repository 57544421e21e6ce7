import Foundation
import Testing

@testable import LedgerCore

@Suite("JSONKeys.firstDuplicate")
struct JSONKeysTests {
  @Test(
    "a key named twice in one object is found with its path",
    arguments: [
      (#"{"a": 1, "a": 2}"#, "a"),
      (#"{"amount": {"minor": 1200, "currency": "EUR", "minor": 1}}"#, "amount.minor"),
      (#"{"amount": {"minor": 1}, "amount": {"minor": 2}}"#, "amount"),
      (#"{"lines": [{"a": 1}, {"b": 1, "b": 2}]}"#, "lines[1].b"),
      (#"[[], [0, {"x": {"y": 1, "y": 1}}]]"#, "[1][1].x.y"),
      (#"{"token": "tok_a", "to\u006ben": "tok_b"}"#, "token"),
      (#"{"a\"b": 1, "a\u0022b": 2}"#, #"a"b"#),
      (#"{"é": 1, "e\u0301": 2}"#, "é"),
    ])
  func found(json: String, path: String) {
    #expect(JSONKeys.firstDuplicate(in: Data(json.utf8)) == path, "\(json)")
  }

  @Test(
    "the same name in other objects, or as a value, is no duplicate",
    arguments: [
      #"{"a": "a", "b": "a"}"#,
      #"{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}"#,
      #"{"a": "}{\"a\": 1, ", "a\\": 2, "b": ["a", "a"]}"#,
      #"[{"a": 1}, {"a": 1}]"#,
      #""a""#,
      #"{}"#,
    ])
  func notFound(json: String) {
    #expect(JSONKeys.firstDuplicate(in: Data(json.utf8)) == nil, "\(json)")
  }
}
