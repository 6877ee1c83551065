"""Order numbers: a date for people, then 128 random bits so nobody can guess another's.

The date is the shop's day (shop.localtime), the one its owner and buyers live in, so an
order placed just after midnight in Shanghai is not numbered with the day before."""

import base64
import secrets

from shop import localtime


def new_order_no(prefix: str = "K") -> str:
    rand = base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=")
    return f"{prefix}{localtime.today():%y%m%d}{rand}"
