#!/usr/bin/env python3
"""The webhook tests' receiver: an HTTP endpoint that verifies what ledgerd sends with the
`standardwebhooks` package (the specification's own Python library), not with ledgerd's code.

  webhook_receiver.py serve --port P --dir D
      Listens on 127.0.0.1:P. The secrets are read from D/secrets.json at each request
      ({"/path": "whsec_..."}): a POST to a path verifies its body and headers with
      Webhook(secret).verify. Each request is appended to D/received.jsonl (one JSON object a
      line, written and synced before the answer leaves): path, the three headers, the body,
      whether it verified (and why not), the status answered. The status is 200, or what
      D/status holds (e.g. 503) while that file exists; a request that does not verify gets 400.
      While D/delay exists, each request waits that many seconds after it is recorded and
      before it is answered. D/ready is created once it listens.

  webhook_receiver.py freeport
      Prints a free TCP port on 127.0.0.1.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--dir", required=True)
    sub.add_parser("freeport")
    args = parser.parse_args()
    if args.command == "freeport":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])
        return 0
    return run(args.port, args.dir)


def run(port: int, directory: str) -> int:
    os.makedirs(directory, exist_ok=True)
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = {
                "path": self.path,
                "webhook_id": headers.get("webhook-id"),
                "webhook_timestamp": headers.get("webhook-timestamp"),
                "webhook_signature": headers.get("webhook-signature"),
                "content_type": headers.get("content-type"),
                "body": body.decode("utf-8", "replace"),
                "verified": False,
                "error": None,
            }
            try:
                secrets = json.load(open(os.path.join(directory, "secrets.json")))
                secret = secrets.get(self.path)
                if secret is None:
                    raise ValueError(f"no secret for {self.path}")
                Webhook(secret).verify(body, headers)
                record["verified"] = True
            except Exception as error:  # what failed is recorded for the test to show
                record["error"] = f"{type(error).__name__}: {error}"
            status = 400
            if record["verified"]:
                status = 200
                try:
                    status = int(open(os.path.join(directory, "status")).read().strip())
                except FileNotFoundError:
                    pass
            record["answered"] = status
            with log_lock:
                with open(os.path.join(directory, "received.jsonl"), "a") as f:
                    f.write(json.dumps(record, sort_keys=True) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            try:
                time.sleep(float(open(os.path.join(directory, "delay")).read().strip()))
            except FileNotFoundError:
                pass
            answer = b"ok" if status == 200 else f"status {status}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    open(os.path.join(directory, "ready"), "w").close()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
