"""Money as integers of the minor unit (fen). People type "10.00"; the shop stores 1000.

Parsing goes through Decimal and refuses anything with more than two decimals, so no float
ever touches an amount (DESIGN.md invariant 1).
"""

from decimal import Decimal, InvalidOperation

MAX_AMOUNT = 10**12  # ten billion yuan: far above any real order, far below BIGINT


class AmountError(ValueError):
    pass


def parse_amount(text: str, allow_zero: bool = False) -> int:
    """ "10.00" → 1000. Refuses negatives, more than two decimals, junk and absurd sizes."""
    raw = str(text).strip().replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise AmountError(f"{text!r} is not an amount like 10.00") from None
    if not value.is_finite():
        raise AmountError(f"{text!r} is not an amount like 10.00")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise AmountError(f"{text!r} has more than two decimals")
    fen = int(fen)
    if fen < 0 or (fen == 0 and not allow_zero):
        raise AmountError(f"{text!r} must be more than zero")
    if fen > MAX_AMOUNT:
        raise AmountError(f"{text!r} is too large")
    return fen


def format_amount(fen: int) -> str:
    """1000 → "10.00" (exact integer arithmetic)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"
