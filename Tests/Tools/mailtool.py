#!/usr/bin/env python3
"""The mail tests' tools.

  mailtool.py serve --port P --dir D [--tempfail N] [--reject ADDR] [--data-delay S]
                    [--tls-cert CERT --tls-key KEY] [--auth USER:PASSWORD]
      An SMTP server (aiosmtpd) on 127.0.0.1:P. Each accepted message is written to D as
      NNNN.json (envelope and the message parsed by Python's `email` module) beside the raw
      NNNN.eml, both renamed into place once complete. --tempfail N answers the first N DATA
      commands with 451; --reject ADDR answers 550 to RCPT TO for that address; --data-delay
      keeps each message, then waits S seconds before its 250 (noting each wait in
      D/data-started.log). --tls-cert/--tls-key offer STARTTLS and
      require it; --auth requires AUTH with that user and password. D/ready is created once
      it listens.

  mailtool.py parse FILE...
      Parses .eml files with the `email` module and prints one JSON object per file.

  mailtool.py freeport
      Prints a free TCP port on 127.0.0.1.
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import socket
import sys
import time


def describe(raw: bytes) -> dict:
    """The message as the tests check it: headers decoded, body decoded from its transfer encoding."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(preferencelist=("plain",))
    return {
        "from": str(message["From"]),
        "to": str(message["To"]),
        "subject": str(message["Subject"]),
        "date": str(message["Date"]),
        "message_id": str(message["Message-ID"]),
        "mime_version": str(message["MIME-Version"]),
        "content_type": message.get_content_type(),
        "charset": message.get_content_charset(),
        "transfer_encoding": str(message["Content-Transfer-Encoding"]),
        "body": body.get_content() if body is not None else "",
        "defects": [type(d).__name__ for d in message.defects],
        "header_names": list(message.keys()),
    }


def write_atomically(path: str, data: bytes) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Handler:
    def __init__(self, directory, tempfail, reject, data_delay):
        self.directory = directory
        self.tempfail = tempfail
        self.reject = {a.lower() for a in reject}
        self.data_delay = data_delay
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 try again later"
        self.count += 1
        base = os.path.join(self.directory, "%04d" % self.count)
        raw = envelope.original_content or envelope.content
        summary = describe(raw)
        summary["mail_from"] = envelope.mail_from
        summary["rcpt_tos"] = envelope.rcpt_tos
        summary["tls"] = session.ssl is not None
        summary["auth"] = session.auth_data.decode() if isinstance(session.auth_data, bytes) else session.auth_data
        write_atomically(base + ".eml", raw)
        write_atomically(base + ".json", json.dumps(summary).encode())
        if self.data_delay:
            # Kept, but the 250 is late: a client that dies now never learns the message
            # arrived (the classic SMTP duplicate).
            with open(os.path.join(self.directory, "data-started.log"), "a") as f:
                f.write("%s\n" % envelope.rcpt_tos)
            await asyncio.sleep(self.data_delay)
        return "250 OK queued as %04d" % self.count


def serve(args) -> None:
    from aiosmtpd.controller import Controller

    os.makedirs(args.dir, exist_ok=True)
    handler = Handler(args.dir, args.tempfail, args.reject or [], args.data_delay)
    options = {}
    if args.tls_cert:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        from aiosmtpd.smtp import AuthResult

        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok, auth_data=auth_data.login if ok else None)

        options.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(args.tls_cert))
    controller = Controller(handler, hostname="127.0.0.1", port=args.port, decode_data=False, **options)
    controller.start()
    open(os.path.join(args.dir, "ready"), "w").close()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--dir", required=True)
    s.add_argument("--tempfail", type=int, default=0)
    s.add_argument("--reject", action="append")
    s.add_argument("--data-delay", type=float, default=0)
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.add_argument("--auth")
    p = sub.add_parser("parse")
    p.add_argument("files", nargs="+")
    sub.add_parser("freeport")
    args = parser.parse_args()
    if args.command == "serve":
        import signal

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve(args)
    elif args.command == "parse":
        for name in args.files:
            with open(name, "rb") as f:
                print(json.dumps(describe(f.read())))
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])


if __name__ == "__main__":
    main()
