#!/usr/bin/env python3
"""The HTTP API tests' tools: independent peers of ledgerd's API (Stripe's own library to sign
webhooks, prometheus-client to read /metrics).

  apitool.py stripe-send --url URL --secret S [--secret S2 ...] --event FILE
                         [--age SECONDS] [--tamper]
      Signs the event file's bytes as Stripe does (stripe.WebhookSignature: t=, one v1= per
      secret, the first secret's signature checked with stripe.WebhookSignature.verify_header),
      POSTs them to URL with Stripe-Signature, and prints {"status": N, "body": ...}.
      --age signs with a timestamp that many seconds old; --tamper changes the body after
      signing.

  apitool.py metrics --url URL
      Reads /metrics and parses it with prometheus_client's text parser; prints
      {"families": {name: type}, "samples": [[name, labels, value], ...]}; exits 1 if the
      text does not parse.

  apitool.py freeport
      Prints a free TCP port on 127.0.0.1.
"""
import argparse
import json
import socket
import sys
import time
import urllib.error
import urllib.request


def post(url, body, headers):
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def stripe_send(args):
    import stripe

    payload = open(args.event, "rb").read().decode()
    timestamp = int(time.time()) - args.age
    signed = "%d.%s" % (timestamp, payload)
    signatures = [stripe.WebhookSignature._compute_signature(signed, secret) for secret in args.secret]
    header = "t=%d,%s" % (timestamp, ",".join("v1=" + s for s in signatures))
    # The header is Stripe's own: its verifier accepts it (without the tolerance when aged).
    stripe.WebhookSignature.verify_header(payload, header, args.secret[0], tolerance=None)
    if args.tamper:
        payload = payload.replace("}", " }", 1)
    status, body = post(
        args.url, payload.encode(), {"Content-Type": "application/json", "Stripe-Signature": header}
    )
    print(json.dumps({"status": status, "body": json.loads(body) if body else None}))


def metrics(args):
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(args.url, timeout=10) as response:
        text = response.read().decode()
    families, samples = {}, []
    try:
        for family in text_string_to_metric_families(text):
            families[family.name] = family.type
            for sample in family.samples:
                samples.append([sample.name, sample.labels, sample.value])
    except Exception as error:  # the parser's refusal is the finding
        print("unparsable /metrics: %s" % error, file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"families": families, "samples": samples}))


def freeport(_):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("stripe-send")
    send.add_argument("--url", required=True)
    send.add_argument("--secret", action="append", required=True)
    send.add_argument("--event", required=True)
    send.add_argument("--age", type=int, default=0)
    send.add_argument("--tamper", action="store_true")
    send.set_defaults(run=stripe_send)
    m = sub.add_parser("metrics")
    m.add_argument("--url", required=True)
    m.set_defaults(run=metrics)
    f = sub.add_parser("freeport")
    f.set_defaults(run=freeport)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
