"""Equality lookups over encrypted columns, without decrypting every row.

Every encryption of a value differs, so "find the customer with this email" cannot compare
ciphertexts. Beside each searchable encrypted column sits a keyed blind index: an HMAC of the
normalised value. Without the master key an index cannot be recomputed, so a stolen database does
not give away whose email or phone is in it by hashing guesses.

Indexes are keyed by the CURRENT master key only. Rotating the master key therefore means
re-indexing: the rotate command must recompute every blind index (from the decrypted value) in the
same pass that calls `reencrypt`, or lookups of existing rows stop matching.
"""

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable

from .keyring import active


def normalize_text(value: str) -> str:
    """The default: surrounding whitespace is never part of what the person meant."""
    return value.strip()


def normalize_email(value: str) -> str:
    """Emails match regardless of case and spacing; NFKC folds full-width input (Ａ＠ｂ)."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def normalize_phone(value: str) -> str:
    """Phones match regardless of spaces, dashes and parentheses; a leading + is kept.

    "+86 138-1234-5678" and "13812345678" stay different: guessing a country code would merge
    numbers that are not the same.
    """
    value = unicodedata.normalize("NFKC", value).strip()
    digits = re.sub(r"[^0-9]", "", value)
    return "+" + digits if digits and value.startswith("+") else digits


def blind_index(purpose: str, value: str, normalize: Callable[[str], str] = normalize_text) -> str:
    """Hex HMAC-SHA256 of `normalize(value)` under the blind-index key for `purpose`.

    Use the same `purpose` and `normalize` when storing and when looking up. An empty value is
    refused rather than indexed, since every empty row would otherwise match every empty search.
    """
    normalized = normalize(value)
    if not normalized:
        raise ValueError("nothing to index: the value is empty once normalised")
    return hmac.new(active().index_key(purpose), normalized.encode(), hashlib.sha256).hexdigest()
