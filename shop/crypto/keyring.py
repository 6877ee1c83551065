"""Keys that seal personal data and card-key secrets at rest (design invariant 7).

The master key (instance/master_key or SHOP_MASTER_KEY) is the only secret an owner keeps. Each
purpose ("user.email", "cardkey.secret", "supplier.credentials", ...) gets its own AES-256 key
derived from it with HKDF, and the purpose is also bound as GCM associated data, so a ciphertext
copied into another column fails to decrypt instead of showing up in the wrong place.

A token is ASCII, so it fits any TEXT column on SQLite and PostgreSQL:

    v1.<key id>.<base64url(nonce || ciphertext || tag)>

The key id is a fingerprint of the master key that sealed the token, so nothing needs numbering:
after a rotation the old master key stays configured for reading while every write uses the new
one, and `reencrypt` moves old tokens across.

Sealing and opening run through `cryptography`'s AESGCM (OpenSSL): about 1.5 µs a token here,
where pycryptodome's GCM takes about 180 µs to set up its hash tables for every nonce, which
was an eighth of an API order. pycryptodome derives the sub-keys (HKDF, once per purpose) and
the tests check every token against its independent GCM, so the format stays the standard one.
"""

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable

from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF
from Crypto.Random import get_random_bytes
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
NONCE_BYTES = 12  # random per token: 96 bits is the GCM nonce size that needs no extra hashing
TAG_BYTES = 16
MIN_MASTER_KEY_BYTES = 32
HKDF_SALT = b"kashop"
_TOKEN = re.compile(r"v1\.([0-9a-f]{8})\.([A-Za-z0-9_-]+)")


class DecryptionError(ValueError):
    """A token that is malformed, tampered with, sealed for another purpose or by an unknown key.

    Raised instead of returning anything, so corrupt data can never reach a screen or a customer.
    """


def key_id(master_key: bytes) -> str:
    """Name a master key by a fingerprint, so tokens say which key sealed them without config.

    It is an HMAC rather than a plain hash so the id reveals nothing that helps guess the key.
    """
    return hmac.new(master_key, b"kashop key id", hashlib.sha256).hexdigest()[:8]


def _check_master_key(key: bytes) -> bytes:
    if not isinstance(key, bytes | bytearray):
        raise TypeError("a master key must be bytes")
    if len(key) < MIN_MASTER_KEY_BYTES:
        raise ValueError(f"a master key must be at least {MIN_MASTER_KEY_BYTES} bytes")
    return bytes(key)


def _check_purpose(purpose: str) -> str:
    if not isinstance(purpose, str) or not purpose:
        raise ValueError("a purpose must be a non-empty string such as 'user.email'")
    return purpose


def _parse(token: str) -> tuple[str, bytes]:
    """Split a token into its key id and raw bytes, accepting only the exact form we write.

    The base64 body must re-encode to itself: otherwise the spare bits of the last character
    could change without changing the bytes, and an edited token would still decrypt.
    """
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise DecryptionError("not a Kashop ciphertext")
    kid, body = match.groups()
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error as exc:
        raise DecryptionError("ciphertext is not valid base64") from exc
    if _b64(raw) != body or len(raw) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError("ciphertext is truncated or not canonical")
    return kid, raw


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Keyring:
    """The current master key, which seals, and older ones, which only open tokens they sealed."""

    def __init__(self, master_key: bytes, old_master_keys: Iterable[bytes] = ()):
        current = _check_master_key(master_key)
        self.current_id = key_id(current)
        self._masters = {self.current_id: current}
        for key in map(_check_master_key, old_master_keys):
            kid = key_id(key)
            if self._masters.setdefault(kid, key) != key:
                raise ValueError(f"two master keys share the id {kid}; generate a new key")
        self._subkeys: dict[tuple[str, str], bytes] = {}
        self._aeads: dict[tuple[str, str], AESGCM] = {}

    def _subkey(self, kid: str, label: str) -> bytes:
        """Derive (once) the sub-key for `label` from master key `kid`."""
        cached = self._subkeys.get((kid, label))
        if cached is None:
            cached = HKDF(self._masters[kid], 32, HKDF_SALT, SHA256, context=label.encode())
            self._subkeys[(kid, label)] = cached
        return cached

    def index_key(self, purpose: str) -> bytes:
        """The blind-index key for `purpose`: current master key, separate "bidx:" namespace."""
        return self._subkey(self.current_id, "bidx:" + _check_purpose(purpose))

    def _aead(self, kid: str, purpose: str) -> AESGCM:
        """The AES-256-GCM cipher of `purpose` under master key `kid` (built once: it holds
        no per-message state, the nonce is given to each call)."""
        aead = self._aeads.get((kid, purpose))
        if aead is None:
            aead = AESGCM(self._subkey(kid, "enc:" + _check_purpose(purpose)))
            self._aeads[(kid, purpose)] = aead
        return aead

    def encrypt(self, purpose: str, plaintext: str) -> str:
        if not isinstance(plaintext, str):
            raise TypeError(f"only str is encrypted, got {type(plaintext).__name__}")
        kid = self.current_id
        nonce = get_random_bytes(NONCE_BYTES)
        sealed = self._aead(kid, purpose).encrypt(
            nonce, plaintext.encode("utf-8"), f"{VERSION}.{kid}.{purpose}".encode()
        )  # ciphertext || tag
        return f"{VERSION}.{kid}.{_b64(nonce + sealed)}"

    def decrypt(self, purpose: str, token: str) -> str:
        kid, raw = _parse(token)
        if kid not in self._masters:
            raise DecryptionError(f"ciphertext was sealed by unknown master key {kid}")
        aead = self._aead(kid, purpose)
        try:
            plaintext = aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], f"{VERSION}.{kid}.{purpose}".encode()
            )
        except InvalidTag as exc:
            raise DecryptionError("ciphertext was altered or belongs to another purpose") from exc
        return plaintext.decode("utf-8")

    def reencrypt(self, purpose: str, token: str) -> str:
        """Seal `token`'s plaintext under the current key; a current token comes back unchanged.

        Returning it unchanged lets a rotate command skip rows that need no write.
        """
        plaintext = self.decrypt(purpose, token)
        if _parse(token)[0] == self.current_id:
            return token
        return self.encrypt(purpose, plaintext)


_active: Keyring | None = None


def configure(master_key: bytes, old_master_keys: Iterable[bytes] = ()) -> None:
    """Install the process-wide keyring: `master_key` seals, every listed key can open.

    The swap is one assignment, so a request in flight sees either the old keyring or the new one.
    """
    global _active
    _active = Keyring(master_key, old_master_keys)


def active() -> Keyring:
    """The configured keyring; failing loudly beats writing plaintext or an unreadable value."""
    if _active is None:
        raise RuntimeError(
            "the Kashop keyring is not configured: call shop.crypto.configure(master_key) first"
        )
    return _active


def encrypt(purpose: str, plaintext: str) -> str:
    """Seal `plaintext` for the column named by `purpose`; every call gives a different token."""
    return active().encrypt(purpose, plaintext)


def decrypt(purpose: str, token: str) -> str:
    """Open a token sealed for `purpose`, or raise DecryptionError."""
    return active().decrypt(purpose, token)


def reencrypt(purpose: str, token: str) -> str:
    """Move a token sealed by an old master key under the current one (for a rotate command)."""
    return active().reencrypt(purpose, token)


def looks_encrypted(value: str) -> bool:
    """True when a stored value has the shape of a Kashop ciphertext (for the audit check)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None
