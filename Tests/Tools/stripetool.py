#!/usr/bin/env python3
"""The card-processor tests' tools: a Stripe-shaped HTTP server (standard library only).

  stripetool.py serve --port-file F [--port P] --key KEY [--upstream URL] [--log FILE]
      Listens on 127.0.0.1:P (0, the default, picks a free port) and writes the port to F
      (renamed into place) once it listens. Requests are form-encoded as Stripe takes them
      (`metadata[k]=v`, `created[gte]=N`, `expand[]=x`); answers are JSON, amounts integers
      in minor units. Every /v1/ request needs `Authorization: Bearer KEY` (or HTTP Basic
      with KEY as user and an empty password), else 401 with the key masked. --log appends
      one JSON line per request: {"t", "method", "path", "status", "idempotency_key",
      "replayed"} (plus "dropped": true for a connection closed unanswered). The
      Authorization header is never written anywhere.

      Without --upstream the server keeps its own state:
        POST /v1/payment_intents   amount, currency, customer, payment_method, confirm,
                                   off_session, metadata[...]; other params are ignored.
                                   The payment method decides the outcome:
            pm_card_visa, pm_ok...  200 succeeded, latest_charge "ch_...", charge made
            pm_decline_CODE         402 card_error card_declined, decline_code CODE
            pm_code_CODE            402 card_error code CODE, no decline_code
            pm_auth_required        402 card_error authentication_required (both codes)
            pm_requires_action      200 requires_action with next_action, no charge
            pm_processing           200 processing (charge pending); any later read of
                                    it (by id or listed) finds it succeeded, charge too
            other pm_...            400 resource_missing, param payment_method
          A 402 records a failed charge and carries the intent (requires_payment_method,
          last_payment_error) in error.payment_intent. Without confirm=true the intent
          stays requires_confirmation and nothing is charged.
        GET /v1/payment_intents/ID 404 resource_missing (param intent) if unknown.
        GET /v1/payment_intents    customer, created / created[gte|gt|lte|lt], limit (1-100,
                                   default 10), starting_after, ending_before; newest first.
        GET /_charges              Every charge made, in order, with the idempotency key of
                                   the request that made it and status
                                   succeeded|failed|pending.

      With --upstream URL (e.g. a localstripe) every /v1/ request is forwarded (method,
      path, query, body, Authorization) and its answer returned, except that a 402 whose
      error has no decline_code comes back with type card_error and, when its code is
      card_declined, decline_code generic_decline; and a listing of PaymentIntents
      (`customer`, `created[...]`, which localstripe refuses) is made of all of
      localstripe's, filtered, ordered newest first and paged here. /_charges answers 404.

      In both modes:
        Idempotency-Key (POST only, as Stripe): the first request's status and body are
        kept with its method, path and parameters (order-insensitive). The same key and
        parameters again get the same bytes with `Idempotent-Replayed: true` and nothing is
        done again; other parameters get 400 idempotency_error; a key whose first request
        is still running gets 409 idempotency_key_in_use. Kept are what Stripe keeps:
        successes, 402s and 5xx; other 4xx (validation) and 429s leave the key unused.
        Keys never expire.
        GET /_requests             {"count": N, "by_status": {"200": n, "429": n, ...}} over
                                   /v1/ requests ("dropped" counts connections closed
                                   unanswered).
        GET /_control              The fault settings and what is left of the counters.
        POST /_control             A JSON object merged into them (null removes a key).
        POST /_control/reset       Clears them (and the rate limit's window).
      /_ endpoints need no Authorization. Control keys:
        rate_limit_per_second: N   A /v1/ request when N others were answered (not 429) in
                                   the last second gets 429 rate_limit, before anything else.
      The counted faults below apply to PaymentIntent creations (POST /v1/payment_intents)
      that would be processed (not replays, not idempotency errors); each use takes one:
        fail_next: K               500 api_error; nothing done, key not kept.
        fail_after_charge_next: K  Processed and kept, then answered 500 api_error; a
                                   replay of the key returns the kept answer.
        lose_next: K               Processed and kept, then the connection is closed with
                                   no response at all.
        delay_next: K, delay_ms: M Processed and kept, then the answer is held M ms.
        unavailable_replays_next: K  The next K requests under a key already kept (replays,
                                   and other bodies under it) get 503 api_error, nothing
                                   done: Stripe down when the ledger asks again.
        processing_next: K         A creation answered `succeeded` is answered (and kept)
                                   as processing with latest_charge null and
                                   amount_received 0; the intent itself stays succeeded,
                                   so a GET of it finds it succeeded.

  stripetool.py freeport
      Prints a free TCP port on 127.0.0.1.
"""
import argparse
import base64
import collections
import hmac
import json
import os
import random
import re
import signal
import socket
import string
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTERS = ("fail_next", "fail_after_charge_next", "lose_next", "delay_next", "processing_next",
            "unavailable_replays_next")
SETTINGS = ("rate_limit_per_second", "delay_ms")
IN_FLIGHT = object()
_random = random.SystemRandom()

CARD_MESSAGES = {
    "card_declined": "Your card was declined.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "incorrect_number": "Your card number is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
}


def new_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(_random.choice(string.ascii_letters + string.digits) for _ in range(length))


def encode(obj) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode()


def error(type_: str, message: str, **fields) -> dict:
    return {"error": {"type": type_, **fields, "message": message}}


def write_atomically(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def parse_form(pairs) -> dict:
    """Stripe's bracket syntax: `metadata[a]=1` gives {"metadata": {"a": "1"}}, `expand[]=x`
    gives {"expand": ["x"]}. A key used with two shapes keeps the first."""
    out = {}
    for key, value in pairs:
        head, bracket, rest = key.partition("[")
        parts = [head] + rest[:-1].split("][") if bracket and rest.endswith("]") else [key]
        append = len(parts) > 1 and parts[-1] == ""
        if append:
            parts.pop()
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            if append:
                items = node.setdefault(parts[-1], [])
                if isinstance(items, list):
                    items.append(value)
            else:
                node[parts[-1]] = value
    return out


def mask(key: str) -> str:
    """A key as Stripe shows it in an error: its prefix, stars, at most its last four."""
    prefix = re.match(r"(?:[a-z]{2}_(?:test|live)_)?", key).group(0)
    rest = key[len(prefix):]
    return prefix + "*" * max(len(rest) - 4, 4) + (rest[-4:] if len(rest) > 8 else "")


class State:
    """Everything the server remembers, behind one lock (the server is threaded)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.intents = {}  # id -> PaymentIntent, in creation order
        self.charges = []
        self.keys = {}  # idempotency key -> (fingerprint, status, body) or IN_FLIGHT
        self.control = {}
        self.window = collections.deque()  # monotonic times of /v1/ requests not answered 429
        self.by_status = collections.Counter()

    def take(self, name: str) -> bool:
        """Uses one of a counted fault if any is left."""
        with self.lock:
            left = self.control.get(name) or 0
            if left > 0:
                self.control[name] = left - 1
            return left > 0

    def admit(self) -> bool:
        """False if the rate limit is reached; otherwise the request counts toward it."""
        with self.lock:
            now = time.monotonic()
            while self.window and now - self.window[0] >= 1.0:
                self.window.popleft()
            limit = self.control.get("rate_limit_per_second")
            if limit is not None and len(self.window) >= limit:
                return False
            self.window.append(now)
            return True


class Processor:
    """The server's own PaymentIntents (no --upstream)."""

    def __init__(self, state: State):
        self.state = state

    def handle(self, method: str, path: str, params: dict, key):
        """(status, JSON body) of a /v1/ request."""
        with self.state.lock:
            status, obj = self.answer(method, path, params, key)
            return status, encode(obj)

    def answer(self, method: str, path: str, params: dict, key):
        if path == "/v1/payment_intents" and method == "POST":
            return self.create(params, key)
        if path == "/v1/payment_intents" and method == "GET":
            return self.list(params)
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)", path)
        if match and method == "GET":
            intent = self.state.intents.get(match.group(1))
            if intent is None:
                return 404, error("invalid_request_error", "No such payment_intent: '%s'" % match.group(1),
                                  code="resource_missing", param="intent")
            return 200, self.settle(intent)
        return 404, error("invalid_request_error", "Unrecognized request URL (%s: %s)." % (method, path))

    @staticmethod
    def invalid(param: str, message: str, code: str = "parameter_invalid"):
        return 400, error("invalid_request_error", message, code=code, param=param)

    def validate(self, p: dict):
        for name in ("amount", "currency", "customer", "payment_method"):
            if not p.get(name):
                return self.invalid(name, "Missing required param: %s." % name, "parameter_missing")
        amount, currency, customer, method = (p[n] for n in ("amount", "currency", "customer", "payment_method"))
        if not isinstance(amount, str) or not re.fullmatch(r"[0-9]+", amount) or int(amount) < 1:
            return self.invalid("amount", "Invalid positive integer", "parameter_invalid_integer")
        if not isinstance(currency, str) or not re.fullmatch(r"[a-z]{3}", currency):
            return self.invalid("currency", "Invalid currency: %s." % currency)
        if not isinstance(customer, str) or not customer.startswith("cus_"):
            return self.invalid("customer", "No such customer: '%s'" % customer, "resource_missing")
        if not isinstance(method, str) or self.outcome(method) is None:
            return self.invalid("payment_method", "No such PaymentMethod: '%s'" % method, "resource_missing")
        return None

    @staticmethod
    def outcome(method: str):
        """What a payment method id does: (status, error code, decline code)."""
        if method == "pm_card_visa" or method.startswith("pm_ok"):
            return "succeeded", None, None
        if method.startswith("pm_decline_") and len(method) > len("pm_decline_"):
            return "declined", "card_declined", method[len("pm_decline_"):]
        if method.startswith("pm_code_") and len(method) > len("pm_code_"):
            return "declined", method[len("pm_code_"):], None
        if method == "pm_auth_required":
            return "declined", "authentication_required", "authentication_required"
        if method == "pm_requires_action":
            return "requires_action", None, None
        if method == "pm_processing":
            return "processing", None, None
        return None

    def charge(self, intent: dict, key, status: str) -> dict:
        record = {"id": new_id("ch_"), "payment_intent": intent["id"], "idempotency_key": key,
                  "amount": intent["amount"], "currency": intent["currency"], "customer": intent["customer"],
                  "payment_method": intent["payment_method"], "metadata": dict(intent["metadata"]),
                  "status": status, "created": int(time.time())}
        self.state.charges.append(record)
        intent["latest_charge"] = record["id"]
        return record

    def create(self, p: dict, key):
        problem = self.validate(p)
        if problem:
            return problem
        metadata = p.get("metadata")
        intent = {
            "id": new_id("pi_"), "object": "payment_intent", "amount": int(p["amount"]), "amount_received": 0,
            "currency": p["currency"], "customer": p["customer"], "payment_method": p["payment_method"],
            "status": "requires_confirmation", "created": int(time.time()),
            "metadata": {k: v for k, v in metadata.items() if isinstance(v, str)} if isinstance(metadata, dict) else {},
            "description": p.get("description") if isinstance(p.get("description"), str) else None,
            "latest_charge": None, "last_payment_error": None, "next_action": None, "livemode": False,
        }
        self.state.intents[intent["id"]] = intent
        if p.get("confirm") != "true":
            return 200, intent
        status, code, decline_code = self.outcome(p["payment_method"])
        if status == "succeeded":
            self.charge(intent, key, "succeeded")
            intent.update(status="succeeded", amount_received=intent["amount"])
        elif status == "processing":
            self.charge(intent, key, "pending")
            intent["status"] = "processing"
        elif status == "requires_action":
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "use_stripe_sdk",
                                     "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""}}
        else:
            charge = self.charge(intent, key, "failed")
            failure = {"type": "card_error", "code": code, "charge": charge["id"],
                       "message": CARD_MESSAGES.get(code, CARD_MESSAGES["card_declined"])}
            if decline_code:
                failure["decline_code"] = decline_code
            intent.update(status="requires_payment_method", last_payment_error=failure)
            return 402, {"error": dict(failure, payment_intent=json.loads(json.dumps(intent)))}
        return 200, intent

    def settle(self, intent: dict) -> dict:
        """A processing intent has succeeded by the time anyone looks again."""
        if intent["status"] == "processing":
            intent.update(status="succeeded", amount_received=intent["amount"])
            for charge in self.state.charges:
                if charge["id"] == intent["latest_charge"]:
                    charge["status"] = "succeeded"
        return intent

    def list(self, p: dict):
        limit = p.get("limit", "10")
        if not isinstance(limit, str) or not re.fullmatch(r"[0-9]+", limit) or not 1 <= int(limit) <= 100:
            return self.invalid("limit", "This value must be between 1 and 100.")
        limit = int(limit)
        created = p.get("created")
        bounds = created if isinstance(created, dict) else {} if created is None else {"eq": created}
        tests = {"gte": int.__ge__, "gt": int.__gt__, "lte": int.__le__, "lt": int.__lt__, "eq": int.__eq__}
        for op, value in bounds.items():
            if op not in tests or not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+", value):
                return self.invalid("created", "Invalid created: must be an integer or a range.")
        ordered = [i for _, i in sorted(enumerate(self.state.intents.values()),
                                        key=lambda e: (e[1]["created"], e[0]), reverse=True)]
        ids = [i["id"] for i in ordered]
        for cursor in ("starting_after", "ending_before"):
            if cursor in p and p[cursor] not in ids:
                return self.invalid(cursor, "No such payment_intent: '%s'" % p[cursor], "resource_missing")

        def wanted(intent):
            return (p.get("customer") in (None, intent["customer"])
                    and all(tests[op](intent["created"], int(v)) for op, v in bounds.items()))

        if "ending_before" in p:
            matched = [i for i in ordered[:ids.index(p["ending_before"])] if wanted(i)]
            page, has_more = matched[-limit:], len(matched) > limit
        else:
            start = ids.index(p["starting_after"]) + 1 if "starting_after" in p else 0
            matched = [i for i in ordered[start:] if wanted(i)]
            page, has_more = matched[:limit], len(matched) > limit
        return 200, {"object": "list", "url": "/v1/payment_intents", "has_more": has_more,
                     "data": [self.settle(i) for i in page]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stripetool"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.route()

    def do_POST(self):
        self.route()

    def do_DELETE(self):
        self.route()

    # Answers

    def reply(self, status: int, body, headers=None) -> None:
        payload = body if isinstance(body, bytes) else encode(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", new_id("req_", 14))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        try:
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up waiting (delay_next)
            self.close_connection = True
        self.record(status)

    def drop(self, status: int) -> None:
        """Closes the connection without a byte of response."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()
        self.record(status, dropped=True)

    def record(self, status: int, dropped: bool = False) -> None:
        server = self.server
        if self.path.startswith("/v1/"):
            with server.state.lock:
                server.state.by_status["dropped" if dropped else str(status)] += 1
        if server.log_path:
            line = {"t": time.time(), "method": self.command, "path": urllib.parse.urlsplit(self.path).path,
                    "status": status, "idempotency_key": self.idempotency_key, "replayed": self.replayed}
            if dropped:
                line["dropped"] = True
            with server.log_lock, open(server.log_path, "a") as f:
                f.write(json.dumps(line) + "\n")

    # Requests

    def route(self) -> None:
        self.idempotency_key, self.replayed = None, False
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if url.path.startswith("/_"):
            self.test_endpoint(url.path, body)
        elif url.path.startswith("/v1/"):
            self.api(url, body)
        else:
            message = "Unrecognized request URL (%s: %s)." % (self.command, url.path)
            self.reply(404, error("invalid_request_error", message))

    def authorized(self):
        """(whether the request carries the key, the key it carries)."""
        scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
        supplied, password = "", ""
        if scheme.lower() == "bearer":
            supplied = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                supplied, _, password = base64.b64decode(credentials.strip()).decode().partition(":")
            except ValueError:
                pass
        ok = bool(supplied) and not password and hmac.compare_digest(supplied.encode(), self.server.key.encode())
        return ok, supplied

    def api(self, url, body: bytes) -> None:
        state = self.server.state
        if not state.admit():
            return self.reply(429, error("invalid_request_error", "Too many requests hit the API too quickly. "
                                         "We recommend an exponential backoff of your requests.", code="rate_limit"))
        ok, supplied = self.authorized()
        if not ok:
            message = ("Invalid API Key provided: %s" % mask(supplied) if supplied else
                       "You did not provide an API key. You need to provide your API key in the Authorization "
                       "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').")
            return self.reply(401, error("invalid_request_error", message),
                              {"WWW-Authenticate": 'Basic realm="Stripe"'})
        pairs = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        if self.command == "POST":
            pairs += urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        key = self.headers.get("Idempotency-Key") if self.command == "POST" else None
        self.idempotency_key = key
        fingerprint = (self.command, url.path, tuple(sorted(pairs)))
        if key is not None:
            with state.lock:
                kept = state.keys.get(key)
                if kept is None:
                    state.keys[key] = IN_FLIGHT
            if kept is IN_FLIGHT:
                return self.reply(409, error("invalid_request_error", "There is currently another in-progress "
                                             "request using this Idempotency-Key. Try again later.",
                                             code="idempotency_key_in_use"))
            if kept is not None and kept is not IN_FLIGHT and state.take("unavailable_replays_next"):
                return self.reply(503, error("api_error", "Stripe is briefly unavailable. Try again later."))
            if kept is not None:
                if kept[0] != fingerprint:
                    return self.reply(400, error("idempotency_error", "Keys for idempotent requests can only be used "
                                                 "with the same parameters they were first used with. Try using a key "
                                                 "other than '%s' if you meant to execute a different request." % key))
                self.replayed = True
                return self.reply(kept[1], kept[2], {"Idempotency-Key": key, "Idempotent-Replayed": "true"})
        kept = False
        try:
            kept = self.process(url, body, pairs, key, fingerprint)
        finally:
            if key is not None and not kept:
                with state.lock:
                    state.keys.pop(key, None)

    def process(self, url, body: bytes, pairs, key, fingerprint) -> bool:
        """Does the request and answers it; True if its answer was kept under the key."""
        state = self.server.state
        creation = self.command == "POST" and url.path == "/v1/payment_intents"
        if creation and state.take("fail_next"):
            self.reply(500, error("api_error", "An unknown error occurred while processing the request."))
            return False
        if self.server.upstream and self.command == "GET" and url.path == "/v1/payment_intents":
            try:
                status, payload = self.forward_list(pairs)
            except (urllib.error.URLError, OSError, ValueError) as e:
                self.reply(502, error("api_error", "The upstream did not answer: %s" % e))
                return False
        elif self.server.upstream:
            try:
                status, payload = self.forward(url, body)
            except (urllib.error.URLError, OSError) as e:
                self.reply(502, error("api_error", "The upstream did not answer: %s" % e))
                return False
            if status == 402:
                payload = self.rewrite_decline(payload)
        else:
            status, payload = self.server.processor.handle(self.command, url.path, parse_form(pairs), key)
        if creation and status == 200:
            payload = self.maybe_processing(payload)
        keep = key is not None and (status < 400 or status == 402 or status >= 500)
        if keep:
            with state.lock:
                state.keys[key] = (fingerprint, status, payload)
        if creation:
            if state.take("delay_next"):
                time.sleep((state.control.get("delay_ms") or 0) / 1000)
            if state.take("fail_after_charge_next"):
                self.reply(500, error("api_error", "An unknown error occurred while processing the request."))
                return keep
            if state.take("lose_next"):
                self.drop(status)
                return keep
        self.reply(status, payload, {"Idempotency-Key": key} if key is not None else None)
        return keep

    def forward_list(self, pairs):
        """localstripe lists PaymentIntents oldest first and refuses `customer` and `created`:
        every page is fetched from it, then filtered, ordered and paged here as Stripe does."""
        listed, after = State(), None
        while True:
            query = "limit=100" + ("&starting_after=" + urllib.parse.quote(after) if after else "")
            status, payload = self.forward(urllib.parse.urlsplit("/v1/payment_intents?" + query), b"")
            if status != 200:
                return status, payload
            page = json.loads(payload)
            for intent in page.get("data", []):
                listed.intents[intent["id"]] = intent
            if not page.get("has_more") or not page.get("data") or page["data"][-1]["id"] == after:
                break
            after = page["data"][-1]["id"]
        status, obj = Processor(listed).list(parse_form(pairs))
        return status, encode(obj)

    def forward(self, url, body: bytes):
        target = self.server.upstream + url.path + ("?" + url.query if url.query else "")
        request = urllib.request.Request(target, data=body if self.command == "POST" else None, method=self.command)
        for name in ("Authorization", "Content-Type", "Stripe-Version", "Stripe-Account"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            with self.server.opener.open(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    @staticmethod
    def rewrite_decline(payload: bytes) -> bytes:
        """A 402 without decline_code becomes a card_error (generic_decline for card_declined)."""
        try:
            doc = json.loads(payload)
        except ValueError:
            return payload
        err = doc.get("error") if isinstance(doc, dict) else None
        if not isinstance(err, dict) or "decline_code" in err:
            return payload
        err["type"] = "card_error"
        if err.get("code") == "card_declined":
            err["decline_code"] = "generic_decline"
        return encode(doc)

    def maybe_processing(self, payload: bytes) -> bytes:
        try:
            doc = json.loads(payload)
        except ValueError:
            return payload
        if not isinstance(doc, dict) or doc.get("status") != "succeeded":
            return payload
        if not self.server.state.take("processing_next"):
            return payload
        doc.update(status="processing", latest_charge=None, amount_received=0)
        return encode(doc)

    def test_endpoint(self, path: str, body: bytes) -> None:
        state = self.server.state
        route = (self.command, path)
        if route == ("POST", "/_control"):
            try:
                changes = json.loads(body or b"{}")
                assert isinstance(changes, dict)
            except (ValueError, AssertionError):
                return self.reply(400, {"error": "the body must be a JSON object"})
            for name, value in changes.items():
                if name not in COUNTERS + SETTINGS:
                    return self.reply(400, {"error": "unknown control key %r" % name})
                if value is not None and (type(value) is not int or value < 0):
                    return self.reply(400, {"error": "%s must be a non-negative integer or null" % name})
        with state.lock:  # the answer is made under the lock, sent after it
            if route == ("POST", "/_control"):
                for name, value in changes.items():
                    if value is None:
                        state.control.pop(name, None)
                    else:
                        state.control[name] = value
            if route == ("POST", "/_control/reset"):
                state.control.clear()
                state.window.clear()
            if route in (("GET", "/_control"), ("POST", "/_control"), ("POST", "/_control/reset")):
                status, answer = 200, encode(state.control)
            elif route == ("GET", "/_charges") and not self.server.upstream:
                status, answer = 200, encode(state.charges)
            elif route == ("GET", "/_requests"):
                status, answer = 200, encode({"count": sum(state.by_status.values()),
                                              "by_status": dict(state.by_status)})
            else:
                status, answer = 404, encode({"error": "no such test endpoint: %s %s" % route})
        self.reply(status, answer)


def serve(args) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.key = args.key
    server.state = State()
    server.processor = Processor(server.state)
    server.upstream = args.upstream.rstrip("/") if args.upstream else None
    server.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never an environment proxy
    server.log_path = args.log
    server.log_lock = threading.Lock()
    write_atomically(args.port_file, b"%d\n" % server.server_address[1])
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port-file", required=True)
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--key", required=True)
    s.add_argument("--upstream")
    s.add_argument("--log")
    sub.add_parser("freeport")
    args = parser.parse_args()
    if args.command == "serve":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            serve(args)
        except KeyboardInterrupt:
            pass
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])


if __name__ == "__main__":
    main()
