"""A minimal client of the signed API, shared by the tests and the bench, and a worked example
for integrators: sign the exact bytes you send, with a fresh nonce each time.

    import requests
    from shop.api.client import call
    r = call(requests.Session(), "https://shop.example", KEY, SECRET, "POST", "/api/v1/orders",
             {"product_id": 3, "quantity": 1}, idempotency_key="my-order-42")
"""

import json
import secrets
import time

from shop.api import signing


def signed_headers(
    key: str, secret: str, method: str, path: str, body: bytes = b"", *, timestamp=None, nonce=None
) -> dict[str, str]:
    """The four X-Kashop-* headers for one request (a new nonce unless one is given)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    return {
        signing.KEY_HEADER: key,
        signing.TIMESTAMP_HEADER: stamp,
        signing.NONCE_HEADER: nonce,
        signing.SIGNATURE_HEADER: signing.signature(secret, method, path, stamp, nonce, body),
    }


def encode(payload) -> bytes:
    return b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()


def call(
    http, base_url, key, secret, method, path, payload=None, *, idempotency_key=None, timeout=30
):
    """Send one signed request with `http` (a requests.Session) and return its response."""
    body = encode(payload)
    headers = signed_headers(key, secret, method, path, body)
    if payload is not None:
        headers["Content-Type"] = "application/json"
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return http.request(method, base_url + path, data=body, headers=headers, timeout=timeout)
