"""Order numbers: a date for people, then 128 random bits so nobody can guess another's."""

import base64
import secrets

from shop.clock import now


def new_order_no(prefix: str = "K") -> str:
    rand = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")
    return f"{prefix}{now():%y%m%d}{rand}"
