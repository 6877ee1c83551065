"""Money as integers of the minor unit (fen). People type "10.00"; the shop stores 1000.

Parsing goes through Decimal and refuses anything with more than two decimals, so no float
ever touches an amount (DESIGN.md invariant 1).
"""

from decimal import Decimal, InvalidOperation

from shop.messages import N_, Refusal

MAX_AMOUNT = 10**12  # ten billion yuan: far above any real order, far below BIGINT


class AmountError(Refusal):
    """An amount the shop refuses; the message is shown to the person who typed it."""


def parse_amount(text: str, allow_zero: bool = False) -> int:
    """ "10.00" → 1000. Refuses negatives, more than two decimals, junk and absurd sizes."""
    raw = str(text).strip().replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise AmountError(N_("%(text)s is not an amount like 10.00"), text=repr(text)) from None
    if not value.is_finite():
        raise AmountError(N_("%(text)s is not an amount like 10.00"), text=repr(text))
    fen = value * 100
    if fen != fen.to_integral_value():
        raise AmountError(N_("%(text)s has more than two decimals"), text=repr(text))
    fen = int(fen)
    if fen < 0 or (fen == 0 and not allow_zero):
        raise AmountError(N_("%(text)s must be more than zero"), text=repr(text))
    if fen > MAX_AMOUNT:
        raise AmountError(N_("%(text)s is too large"), text=repr(text))
    return fen


def format_amount(fen: int) -> str:
    """1000 → "10.00" (exact integer arithmetic)."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"
