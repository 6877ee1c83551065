"""What screens show instead of personal data: enough to recognise a value, not to use it.

Staff see 138****5678 and a***@example.com; revealing the full value is a separate, audited
action. Masks count characters, so None and empty values become "" rather than raising.
"""


def _reveal(value: str, head: int, tail: int, min_hidden: int) -> str | None:
    """Keep `head` and `tail` characters if at least `min_hidden` stay starred, else None."""
    hidden = len(value) - head - tail
    if hidden < min_hidden:
        return None
    return value[:head] + "*" * hidden + value[len(value) - tail :]


def mask_phone(value: str | None) -> str:
    """138****5678: first 3 and last 4; a short number keeps only its last 2, or nothing."""
    value = (value or "").strip()
    return _reveal(value, 3, 4, 4) or _reveal(value, 0, 2, 4) or "*" * len(value)


def mask_email(value: str | None) -> str:
    """a***@example.com: the domain is shown, the local part only by its first character."""
    value = (value or "").strip()
    local, at, domain = value.rpartition("@")
    if not at:
        return mask(value)
    return (local[0] if len(local) > 1 else "") + "***@" + domain


def mask_secret(value: str | None) -> str:
    """ABCD***********5678: first and last 4 of a card key, if at least half stays hidden."""
    value = (value or "").strip()
    return _reveal(value, 4, 4, 8) or "*" * len(value)


def mask(value: str | None) -> str:
    """Anything else (contact, recharge account): first and last 2 of longer values."""
    value = (value or "").strip()
    return _reveal(value, 2, 2, 4) or "*" * len(value)
