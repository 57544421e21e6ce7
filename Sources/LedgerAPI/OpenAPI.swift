import Foundation

/// The OpenAPI 3.1 document of the whole API, served at `/openapi.json`: the resource routes
/// from the same declarations the server runs (`Routes.all`), and the operational endpoints.
enum OpenAPI {
  /// The routes outside `Routes.all`, as (method, path).
  static let operational: [(String, String)] = [
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/openapi.json"),
    ("POST", "/webhooks/stripe"),
  ]

  static func document() -> Data {
    var paths: [String: [String: Any]] = [:]
    for route in Routes.all {
      paths[route.path, default: [:]][route.method.lowercased()] = operation(route)
    }
    let plain: (String, String, [String: Any]) -> [String: Any] = { id, summary, ok in
      ["operationId": id, "summary": summary, "security": [] as [Any], "responses": ["200": ok]]
    }
    paths["/healthz", default: [:]]["get"] = plain(
      "healthz", "The process is alive.", jsonResponse("Alive", ref("Status")))
    paths["/readyz", default: [:]]["get"] = {
      var op = plain(
        "readyz", "The ledger is open, the daemon serving, and its last tick succeeded.",
        jsonResponse("Ready", ref("Status")))
      op["responses"] = [
        "200": jsonResponse("Ready", ref("Status")), "503": jsonResponse("Not ready, and why", ref("Status")),
      ]
      return op
    }()
    paths["/metrics", default: [:]]["get"] = plain(
      "metrics", "Prometheus text format: charges, processor calls, backlogs, ticks; no per-account label.",
      ["description": "Metrics", "content": ["text/plain": ["schema": ["type": "string"]]]])
    paths["/openapi.json", default: [:]]["get"] = plain(
      "openapi", "This document.", jsonResponse("The OpenAPI document", ["type": "object"]))
    paths["/webhooks/stripe", default: [:]]["post"] = [
      "operationId": "stripeWebhook",
      "summary":
        "Stripe's events, signed (Stripe-Signature, 5 minutes' tolerance); kept once per event id and applied.",
      "security": [] as [Any],
      "parameters": [
        [
          "name": "Stripe-Signature", "in": "header", "required": true,
          "schema": ["type": "string", "pattern": "^[ -~]+$", "maxLength": 1024],
        ]
      ],
      "requestBody": ["required": true, "content": ["application/json": ["schema": ["type": "object"]]]],
      "responses": [
        "200": jsonResponse(
          "Kept (or a repeated delivery)",
          [
            "type": "object", "required": ["received", "result"],
            "properties": ["received": ["type": "string"], "result": ["type": "string"]],
          ]),
        "400": jsonResponse("Unsigned, wrongly signed, too old, or not an event", ref("Error")),
        "404": jsonResponse("Not configured", ref("Error")),
        "default": jsonResponse("Error", ref("Error")),
      ],
    ]
    let document: [String: Any] = [
      "openapi": "3.1.0",
      "info": [
        "title": "ledgerd",
        "version": "1",
        "description":
          "The billing ledger's API for a host's dashboard and billing services. Amounts are integer minor units with their currency. Every POST takes an Idempotency-Key: its first answer is replayed for 24 hours, and a different request under it is refused.",
      ],
      "servers": [["url": "/"]],
      "security": [["bearer": [] as [Any]]],
      "paths": paths,
      "components": [
        "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "description": "An API key (ldk_…)."]],
        "schemas": schemas,
      ],
    ]
    return (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes]))
      ?? Data()
  }

  static func operation(_ route: Route) -> [String: Any] {
    var parameters: [[String: Any]] = route.parameters.map { name in
      [
        "name": name, "in": "path", "required": true,
        "schema": name == "invoice"
          ? ["type": "string", "minLength": 1, "maxLength": 32] : ["type": "integer", "minimum": 1],
      ]
    }
    parameters += route.query.map { field in
      [
        "name": field.name, "in": "query", "required": false, "description": field.summary,
        "schema": schema(field.type),
      ]
    }
    if route.method != "GET" {
      parameters.append([
        "name": "Idempotency-Key", "in": "header", "required": false,
        "description": "The first answer under this key is replayed for 24 hours; a different request is refused.",
        "schema": ["type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"],
      ])
    }
    var responses: [String: Any] = [
      "200": jsonResponse("OK", answerSchema(route.answer)),
      "400": jsonResponse("A field broke a rule (`param` names it)", ref("Error")),
      "401": jsonResponse("No live API key", ref("Error")),
      "403": jsonResponse("The key's role or account does not allow it", ref("Error")),
      "404": jsonResponse("No such resource", ref("Error")),
      "503": jsonResponse("The ledger is busy; nothing was written", ref("Error")),
      "default": jsonResponse("Error", ref("Error")),
    ]
    if route.method != "GET" {
      responses["409"] = jsonResponse(
        "The resource's state refuses it, or the Idempotency-Key was used for another request", ref("Error"))
      responses["413"] = jsonResponse("The body is too large", ref("Error"))
    }
    var operation: [String: Any] = [
      "operationId": route.operationID, "summary": route.summary, "parameters": parameters, "responses": responses,
    ]
    if !route.body.isEmpty {
      var properties: [String: Any] = [:]
      for field in route.body {
        var property = schema(field.type)
        property["description"] = field.summary
        properties[field.name] = property
      }
      operation["requestBody"] = [
        "required": route.body.contains(where: \.required),
        "content": [
          "application/json": [
            "schema": [
              "type": "object", "additionalProperties": false, "properties": properties,
              "required": route.body.filter(\.required).map(\.name),
            ]
          ]
        ],
      ]
    }
    return operation
  }

  static func answerSchema(_ answer: Answer) -> [String: Any] {
    switch answer {
    case .object(let name): return ref(name)
    case .page(let name):
      return [
        "type": "object", "required": ["data", "has_more"],
        "properties": [
          "data": ["type": "array", "items": ref(name)], "has_more": ["type": "boolean"],
          "next_cursor": ["type": "string"],
        ],
      ]
    }
  }

  static func schema(_ type: FieldType) -> [String: Any] {
    switch type {
    case .string(let maxLength): return ["type": "string", "maxLength": maxLength]
    case .integer(let minimum, let maximum): return ["type": "integer", "minimum": minimum, "maximum": maximum]
    case .boolean: return ["type": "boolean"]
    case .money: return ref("AmountIn")
    case .date: return ["type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"]
    case .choice(let choices): return ["type": "string", "enum": choices]
    }
  }

  static func typeName(_ type: FieldType) -> String {
    switch type {
    case .string: return "a string"
    case .integer: return "an integer"
    case .boolean: return "true or false"
    case .money: return "an amount {\"minor\": integer, \"currency\": \"EUR\"}"
    case .date: return "a date YYYY-MM-DD"
    case .choice(let choices): return "one of \(choices.joined(separator: ", "))"
    }
  }

  static func ref(_ name: String) -> [String: Any] { ["$ref": "#/components/schemas/\(name)"] }

  static func jsonResponse(_ description: String, _ schema: [String: Any]) -> [String: Any] {
    ["description": description, "content": ["application/json": ["schema": schema]]]
  }

  static func object(_ required: [String], _ properties: [String: Any]) -> [String: Any] {
    ["type": "object", "required": required, "properties": properties]
  }

  static var string: [String: Any] { ["type": "string"] }
  static var integer: [String: Any] { ["type": "integer"] }
  static var boolean: [String: Any] { ["type": "boolean"] }
  static func array(_ items: [String: Any]) -> [String: Any] { ["type": "array", "items": items] }
  static func choice(_ values: [String]) -> [String: Any] { ["type": "string", "enum": values] }

  static var schemas: [String: Any] {
    [
      "Status": object(["status"], ["status": string, "reason": string]),
      "Error": object(
        ["error"],
        [
          "error": object(
            ["type", "code", "message"],
            ["type": string, "code": string, "param": string, "message": string])
        ]),
      "AmountIn": [
        "type": "object", "additionalProperties": false, "required": ["minor", "currency"],
        "properties": [
          "minor": ["type": "integer", "minimum": 1, "maximum": 100_000_000_000],
          "currency": ["type": "string", "pattern": "^[A-Z]{3}$"],
        ],
      ],
      "Money": object(
        ["minor", "currency", "amount"], ["minor": integer, "currency": string, "amount": string]),
      "Account": object(
        ["id", "email", "name", "locale", "plan", "status", "created_at"],
        [
          "id": integer, "email": string, "name": string, "locale": choice(["fr", "en"]), "plan": string,
          "status": choice(["active", "past_due", "downgraded", "closed"]), "created_at": string,
        ]),
      "Card": object(
        ["id", "account_id", "token", "brand", "last4", "expiry", "status", "is_default", "created_at"],
        [
          "id": integer, "account_id": integer, "token": string, "brand": string, "last4": string, "expiry": string,
          "postal_code": string, "country": string, "status": string, "is_default": boolean, "created_at": string,
        ]),
      "CardRemoval": object(["removed"], ["removed": ref("Card"), "new_default": ref("Card")]),
      "InvoiceLine": object(
        ["position", "kind", "description", "quantity", "unit_amount", "amount"],
        [
          "position": integer, "kind": string, "description": string, "quantity": integer,
          "unit_amount": ref("Money"), "amount": ref("Money"),
        ]),
      "Invoice": object(
        [
          "id", "number", "account_id", "status", "method", "issue_date", "due_date", "total", "paid", "due",
          "paused", "lines",
        ],
        [
          "id": integer, "number": string, "account_id": integer,
          "status": choice(["open", "paid", "void", "uncollectible"]), "method": choice(["card", "transfer"]),
          "payment_reference": string, "issue_date": string, "due_date": string, "total": ref("Money"),
          "paid": ref("Money"), "due": ref("Money"), "paused": boolean, "grace_deadline": string,
          "void_reason": string, "lines": array(ref("InvoiceLine")),
        ]),
      "Event": object(
        ["id", "at", "actor", "kind", "reason"],
        [
          "id": integer, "at": string, "account_id": integer, "invoice": string, "actor": string, "kind": string,
          "reason": string,
        ]),
      "ChargeAttempt": object(
        ["id", "created_at", "card_id", "card", "invoices", "amount", "status"],
        [
          "id": integer, "created_at": string, "resolved_at": string, "card_id": integer, "card": string,
          "invoices": array(string), "amount": ref("Money"),
          "status": choice(["pending", "succeeded", "declined", "error"]), "raw_code": string, "reason": string,
          "retry_class": string, "processor_ref": string,
        ]),
      "Dunning": object(
        [
          "account_id", "status", "plan", "invoices_in_dunning", "paused_invoices", "transfers_in_clearing", "due",
        ],
        [
          "account_id": integer, "status": string, "plan": string, "past_due_since": string,
          "grace_deadline": string, "invoices_in_dunning": integer, "paused_invoices": integer,
          "transfers_in_clearing": integer, "due": array(ref("Money")),
        ]),
      "PaymentRecord": object(
        ["payment_id", "amount", "paid_invoices", "paid_invoice_ids", "allocated", "credit"],
        [
          "payment_id": integer, "amount": ref("Money"), "paid_invoices": array(string),
          "paid_invoice_ids": array(integer), "allocated": ref("Money"), "credit": ref("Money"),
        ]),
      "TransferAnswer": object(
        ["invoice", "hold"],
        [
          "invoice": ref("Invoice"),
          "hold": choice(["window", "awaiting_acceptance", "window_over", "window_used"]),
          "window_ends_at": string,
        ]),
      "SubscriptionChange": object(
        ["account_id", "summary", "effective"],
        [
          "account_id": integer, "summary": string, "effective": string, "invoice": ref("Invoice"),
          "credit_note": ["type": "object"], "prorated": ["type": "object"],
        ]),
      "Explanation": object(
        ["account", "timeline", "next"],
        ["account": ref("Account"), "timeline": array(ref("Event")), "next": array(string)]),
    ]
  }
}
