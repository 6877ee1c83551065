"""Encryption at rest, blind indexes and masking for personal data and card-key secrets.

Call `configure(config.master_key)` once at startup; models declare `EncryptedField(purpose)`,
lookups go through `blind_index`, and screens show `mask_*` output.
"""

from .blind_index import blind_index, normalize_email, normalize_phone, normalize_text
from .fields import EncryptedField
from .keyring import (
    DecryptionError,
    configure,
    decrypt,
    encrypt,
    key_id,
    looks_encrypted,
    reencrypt,
)
from .masking import mask, mask_email, mask_phone, mask_secret

__all__ = [
    "DecryptionError",
    "EncryptedField",
    "blind_index",
    "configure",
    "decrypt",
    "encrypt",
    "key_id",
    "looks_encrypted",
    "mask",
    "mask_email",
    "mask_phone",
    "mask_secret",
    "normalize_email",
    "normalize_phone",
    "normalize_text",
    "reencrypt",
]
