"""Encryption at rest and blind indexes for personal data and card-key secrets.

Call `configure(config.master_key)` once at startup; lookups go through `blind_index`.
"""

from .blind_index import blind_index, normalize_email, normalize_phone, normalize_text
from .keyring import DecryptionError, configure, decrypt, encrypt, key_id, reencrypt

__all__ = [
    "DecryptionError",
    "blind_index",
    "configure",
    "decrypt",
    "encrypt",
    "key_id",
    "normalize_email",
    "normalize_phone",
    "normalize_text",
    "reencrypt",
]
