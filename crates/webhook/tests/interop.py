"""An independent implementation of the three webhook schemes, from Python's standard library.

Usage (body on stdin, bytes as they are):
  interop.py sign SCHEME SECRET ID TIMESTAMP      prints "name: value" header lines
  interop.py verify SCHEME SECRET HEADERS_JSON    prints "ok" or "mismatch"
"""
import base64
import hashlib
import hmac
import json
import sys


def standard_key(secret):
    if secret.startswith("whsec_"):
        secret = secret[len("whsec_"):]
    return base64.b64decode(secret)


def mac(key, message):
    return hmac.new(key, message, hashlib.sha256).digest()


def sign(scheme, secret, msg_id, timestamp, body):
    if scheme == "standard":
        digest = mac(standard_key(secret), f"{msg_id}.{timestamp}.".encode() + body)
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }
    if scheme == "timestamped":
        digest = mac(secret.encode(), f"{timestamp}.".encode() + body)
        return {"x-webhook-signature": f"t={timestamp},v1={digest.hex()}"}
    if scheme == "github":
        digest = mac(secret.encode(), body)
        return {"x-hub-signature-256": "sha256=" + digest.hex(), "x-github-delivery": msg_id}
    raise SystemExit(f"unknown scheme {scheme}")


def verify(scheme, secret, headers, body):
    headers = {name.lower(): value for name, value in headers.items()}
    if scheme == "standard":
        expected = mac(
            standard_key(secret),
            f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body,
        )
        for entry in headers["webhook-signature"].split(" "):
            version, _, encoded = entry.partition(",")
            if version == "v1" and hmac.compare_digest(base64.b64decode(encoded), expected):
                return True
        return False
    if scheme == "timestamped":
        items = [item.split("=", 1) for item in headers["x-webhook-signature"].split(",")]
        timestamp = [value for key, value in items if key == "t"][0]
        expected = mac(secret.encode(), f"{timestamp}.".encode() + body).hex()
        return any(hmac.compare_digest(value, expected) for key, value in items if key == "v1")
    if scheme == "github":
        expected = "sha256=" + mac(secret.encode(), body).hex()
        return hmac.compare_digest(headers["x-hub-signature-256"], expected)
    raise SystemExit(f"unknown scheme {scheme}")


def main():
    body = sys.stdin.buffer.read()
    command, scheme, secret = sys.argv[1:4]
    if command == "sign":
        for name, value in sign(scheme, secret, sys.argv[4], sys.argv[5], body).items():
            print(f"{name}: {value}")
    elif command == "verify":
        print("ok" if verify(scheme, secret, json.loads(sys.argv[4]), body) else "mismatch")
    else:
        raise SystemExit(f"unknown command {command}")


main()
