"""The request signature of DESIGN.md, computed the same way by the shop and by its clients.

    signature = hex HMAC-SHA256(secret, METHOD "\\n" PATH_WITH_QUERY "\\n" TIMESTAMP "\\n"
                                        NONCE "\\n" hex SHA-256(raw body))

The secret is used as the text it is shown as (64 hex characters, UTF-8 encoded), so a client
in any language can paste it into its HMAC call. PATH_WITH_QUERY is the request target exactly
as it went over the wire ("/api/v1/catalog", "/api/v1/x?a=1"): the shop reads it from the raw
request line rather than rebuilding it, so percent-encoding cannot make the two sides differ.
"""

import hashlib
import hmac
from urllib.parse import quote, urlsplit

KEY_HEADER = "X-Kashop-Key"
TIMESTAMP_HEADER = "X-Kashop-Timestamp"
NONCE_HEADER = "X-Kashop-Nonce"
SIGNATURE_HEADER = "X-Kashop-Signature"
HEADERS = (KEY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)


def string_to_sign(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    parts = (method.upper(), path, str(timestamp), nonce, hashlib.sha256(body).hexdigest())
    return "\n".join(parts).encode("utf-8")


def signature(
    secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes = b""
) -> str:
    message = string_to_sign(method, path, timestamp, nonce, body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def request_target(environ: dict) -> str:
    """The path and query the client sent and signed. gunicorn and werkzeug keep the raw
    request line in RAW_URI (REQUEST_URI elsewhere); an absolute-form target loses its host."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
        query = environ.get("QUERY_STRING", "")
        return f"{path}?{query}" if query else path
    if not raw.startswith("/"):
        parts = urlsplit(raw)
        return f"{parts.path}?{parts.query}" if parts.query else parts.path
    return raw
