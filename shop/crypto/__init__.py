"""Encryption at rest for personal data and card-key secrets.

Call `configure(config.master_key)` once at startup.
"""

from .keyring import DecryptionError, configure, decrypt, encrypt, key_id, reencrypt

__all__ = [
    "DecryptionError",
    "configure",
    "decrypt",
    "encrypt",
    "key_id",
    "reencrypt",
]
