"""Issuing, revoking and checking API keys; recording the nonces their requests use.

A request is checked in two steps. `authenticate` reads only (headers, clock, key, HMAC) so a
forged request never takes a write lock. Then the nonce is recorded, which is the write that
makes a replay fail: for a request that changes something, in the same transaction as the
change (`Acceptance`), so an API order costs one commit.
"""

import hmac
import re
import secrets
import string
from datetime import UTC, timedelta

from shop.accounts.models import User
from shop.api import signing
from shop.api.models import ApiKey, ApiNonce
from shop.audit import record
from shop.clock import now
from shop.db import db, raw_one, run
from shop.messages import N_, Refusal

KEY_PREFIX = "kk_"
KEY_ALPHABET = string.ascii_letters + string.digits
SKEW_SECONDS = 300
# A request stamped up to SKEW in the future is accepted, and stays replayable until SKEW
# after its stamp: its nonce must be remembered for twice the window after it arrived.
NONCE_TTL = timedelta(seconds=2 * SKEW_SECONDS)
TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")  # not str.isdigit: it accepts "²", which int() refuses
NONCE_RE = re.compile(r"[!-~]{16,128}")  # printable ASCII, no spaces
SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hint; writing it per request costs
MAX_LABEL = 80
MAX_ACTIVE_KEYS = 20


class ApiKeyError(Refusal):
    """A refused key operation (unknown user, too many keys, not your key)."""


class AuthError(Exception):
    """A request that is not signed as DESIGN.md says: always HTTP 401."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# issuing -----------------------------------------------------------------------------------


def create(user_id, label: str = "", actor=None) -> tuple[ApiKey, str]:
    """Issue a key for the user; returns (key, secret). The secret is not shown again."""
    number = _int(user_id)
    user = User.get_or_none(User.id == number) if number else None
    if user is None or not user.is_active:
        raise ApiKeyError(N_("No active user %(id)s."), id=user_id)
    label = (label or "").strip()
    if len(label) > MAX_LABEL:
        raise ApiKeyError(N_("The label is longer than %(count)d characters."), count=MAX_LABEL)
    secret = secrets.token_hex(32)
    with db.atomic():
        active = ApiKey.select().where((ApiKey.user == user.id) & ApiKey.enabled).count()
        if active >= MAX_ACTIVE_KEYS:
            raise ApiKeyError(
                N_("Revoke a key first: at most %(count)d keys are active."), count=MAX_ACTIVE_KEYS
            )
        key = ApiKey.create(
            key_id=KEY_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(24)),
            secret=secret,
            user=user.id,
            label=label,
        )
        record("apikey.create", target=f"user:{user.id}", actor=actor, key=key.key_id)
    return key, secret


def revoke(key_id: str, user=None, actor=None) -> ApiKey:
    """Disable a key for good. With `user`, only that user's key is found."""
    query = ApiKey.key_id == (key_id or "").strip()
    if user is not None:
        query &= ApiKey.user == user.id
    with db.atomic():
        key = ApiKey.get_or_none(query)
        if key is None:
            raise ApiKeyError(N_("No such API key."))
        if key.enabled:
            key.enabled, key.revoked_at = False, now()
            key.save(only=[ApiKey.enabled, ApiKey.revoked_at])
            record("apikey.revoke", target=f"user:{key.user_id}", actor=actor, key=key.key_id)
    return key


def keys_of(user):
    return ApiKey.select().where(ApiKey.user == user.id).order_by(ApiKey.id.desc())


def _int(value) -> int | None:
    """A user id typed by a person; bounded so PostgreSQL is never asked about 10**30."""
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[0-9]{1,12}", text) else None


_USER_COLUMNS = ", ".join(
    f'"{f.column_name}"' for f in User._meta.sorted_fields if f.name not in ("email", "phone")
)


# checking ----------------------------------------------------------------------------------


def authenticate(method: str, path: str, headers, body: bytes) -> tuple[ApiKey, str]:
    """The enabled key that signed this request, and its nonce; raises AuthError otherwise.
    The nonce is not recorded here (see `record_alone` and `Acceptance`)."""
    values = {name: headers.get(name, "").strip() for name in signing.HEADERS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise AuthError("missing_signature", f"Sign the request: {', '.join(missing)} missing.")
    stamp, nonce = values[signing.TIMESTAMP_HEADER], values[signing.NONCE_HEADER]
    if not TIMESTAMP_RE.fullmatch(stamp):
        raise AuthError("bad_timestamp", "X-Kashop-Timestamp must be unix seconds.")
    if abs(int(now().replace(tzinfo=UTC).timestamp()) - int(stamp)) > SKEW_SECONDS:
        raise AuthError(
            "stale_timestamp",
            f"X-Kashop-Timestamp is more than {SKEW_SECONDS} s from the shop's clock.",
        )
    if not NONCE_RE.fullmatch(nonce):
        raise AuthError("bad_nonce", "X-Kashop-Nonce must be 16 to 128 printable characters.")
    key = raw_one(ApiKey, 'SELECT * FROM "api_key" WHERE "key_id" = ?', values[signing.KEY_HEADER])
    if key is not None:
        # no contact columns: decrypting an email nobody reads costs more than the query
        key.user = raw_one(User, f'SELECT {_USER_COLUMNS} FROM "users" WHERE "id" = ?', key.user_id)
    if key is None or not key.enabled or not key.user.is_active:
        raise AuthError("invalid_key", "Unknown or disabled API key.")
    given = values[signing.SIGNATURE_HEADER].lower()
    expected = signing.signature(key.secret, method, path, stamp, nonce, body)
    # the shape check first: compare_digest refuses non-ASCII str instead of answering False
    if not SIGNATURE_RE.fullmatch(given) or not hmac.compare_digest(expected, given):
        raise AuthError("bad_signature", "The signature does not match the request.")
    return key, nonce


def record_alone(key: ApiKey, nonce: str) -> None:
    """Record the nonce in a transaction of its own; AuthError `replayed_nonce` if this key
    used it before. A GET records it before it reads anything."""
    with db.atomic():
        _use(key, nonce)


class Acceptance:
    """A signed POST's nonce, recorded inside the transaction that makes the request's change
    (the view calls it there), so the change and the nonce commit together: one commit per
    API order, and of two concurrent copies of a request only the first can record it and run.

    `settle()` runs after the view. If the nonce did not commit with a change (the request was
    refused: sold out, a short wallet, a bad body), it is recorded on its own then: a refused
    request must not be replayable later, when it might pass.
    """

    def __init__(self, key: ApiKey, nonce: str):
        self.key, self.nonce, self.committed = key, nonce, False

    def __call__(self) -> None:
        _use(self.key, self.nonce)
        db.after_commit(self._mark_committed)

    def _mark_committed(self) -> None:
        self.committed = True

    def settle(self) -> None:
        if not self.committed:
            record_alone(self.key, self.nonce)
            self.committed = True


def _use(key: ApiKey, nonce: str) -> None:
    if not _record_nonce(key, nonce):
        raise AuthError("replayed_nonce", "This nonce was used before; sign with a new one.")
    current = now()
    if key.last_used_at is None or key.last_used_at < current - TOUCH_EVERY:
        ApiKey.update(last_used_at=current).where(ApiKey.id == key.id).execute()


def _record_nonce(key: ApiKey, nonce: str) -> bool:
    """Insert the nonce; False when the key has used it already (no exception, so the
    surrounding transaction stays usable on PostgreSQL)."""
    inserted = run(
        'INSERT INTO "api_nonce" ("api_key_id", "nonce", "created_at") VALUES (?, ?, ?) '
        "ON CONFLICT DO NOTHING",
        (key.id, nonce, now()),
    ).rowcount
    return inserted == 1


def prune_nonces() -> int:
    """Forget nonces whose requests can no longer be replayed (their timestamp is stale)."""
    return ApiNonce.delete().where(ApiNonce.created_at < now() - NONCE_TTL).execute()
