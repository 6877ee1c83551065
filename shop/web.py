"""Small request helpers shared by the views."""

from urllib.parse import urlparse

from flask import request


def client_ip() -> str:
    """The client's address. Behind a proxy, SHOP_TRUSTED_PROXIES makes werkzeug's ProxyFix
    put the real client here from X-Forwarded-For; the header is never read directly."""
    return request.remote_addr or ""


def safe_next_url(target: str | None) -> str | None:
    """Only same-site paths are followed after login, never another host (open redirect)."""
    if not target:
        return None
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target
