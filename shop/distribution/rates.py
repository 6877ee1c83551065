"""Commission rates: how much of what a buyer paid each referrer above them earns.

Rates are percentages of the amount paid, one per depth of the referrer chain, nearest first:
"10,5,2" pays the buyer's referrer 10 %, theirs 5 %, and the next 2 %. People type percentages
(2.5 is fine); the shop keeps basis points (2.5 % = 250 bp) so no float touches an amount.

Where a rate comes from, in order:
1. the product's own rates (`ProductRates`), else the setting `commission.rates`;
2. then each function registered with `level_rate`, which may replace the rate of one
   beneficiary: the distributor levels area pays an agent more than a member this way.
"""

import logging
import re
from collections.abc import Callable
from decimal import Decimal

from shop import settings
from shop.audit import record
from shop.clock import now
from shop.db import db
from shop.distribution.models import ProductRates
from shop.messages import N_
from shop.settings import SettingError

log = logging.getLogger(__name__)

BPS = 10_000  # basis points in 100 %
MAX_LEVELS = 5
PERCENT_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?")  # plain decimals: no sign, no 1e1

LevelRate = Callable[[object, object, int, int], int | None]
_LEVEL_RATES: list[LevelRate] = []


def parse_rates(raw: str) -> str:
    """ "10, 5, 2.5%" → "10,5,2.5": 1 to 5 percentages between 0 and 100 with at most two
    decimals, adding up to at most 100. Refused with a reason fit for the person typing."""
    parts = [p.strip().removesuffix("%").strip() for p in str(raw).replace("，", ",").split(",")]
    if not 1 <= len(parts) <= MAX_LEVELS or not all(parts):
        raise SettingError(
            N_("Enter 1 to %(count)d percentages separated by commas, like 10,5,2."),
            count=MAX_LEVELS,
        )
    bps = [_percent_to_bps(p) for p in parts]
    if sum(bps) > BPS:
        raise SettingError(N_("The rates add up to more than 100 percent."))
    return format_rates(bps)


def _percent_to_bps(text: str) -> int:
    if not PERCENT_RE.fullmatch(text):
        raise SettingError(
            N_("%(value)s is not a percentage with at most two decimals."), value=repr(text)
        )
    bps = int(Decimal(text) * 100)
    if bps > BPS:
        raise SettingError(N_("%(value)s is not between 0 and 100."), value=repr(text))
    return bps


def to_bps(rates: str) -> list[int]:
    """ "10,5,2.5" (already checked by `parse_rates`) → [1000, 500, 250]."""
    return [int(Decimal(p) * 100) for p in rates.split(",")]


def format_rates(bps: list[int]) -> str:
    """[1000, 500, 250] → "10,5,2.5"."""
    return ",".join(format_percent(b) for b in bps)


def format_percent(bps: int) -> str:
    """250 → "2.5"; 1000 → "10"."""
    whole, part = divmod(bps, 100)
    return f"{whole}.{part:02d}".rstrip("0").rstrip(".") if part else str(whole)


settings.register(
    "commission.rates",
    "10,5,2",
    N_(
        "Commission per referral level in percent of the amount paid, nearest referrer first "
        "(1 to 5 levels, e.g. 10,5,2)"
    ),
    parse_rates,
)


def shop_rates() -> list[int]:
    return to_bps(settings.get("commission.rates"))


def product_rates(product_id: int) -> list[int] | None:
    row = ProductRates.get_or_none(ProductRates.product == product_id)
    return to_bps(row.rates) if row else None


def depth_rates(product_id: int) -> list[int]:
    """The base rate of each depth for an order of this product, nearest referrer first."""
    return product_rates(product_id) or shop_rates()


def set_product_rates(product, raw: str, actor) -> str | None:
    """Staff give a product its own rates, or (blank) return it to the shop's rates. Returns
    the stored rates, or None when cleared. Refused with SettingError; audited."""
    raw = (raw or "").strip()
    with db.atomic():
        if not raw:
            ProductRates.delete().where(ProductRates.product == product.id).execute()
            record("commission.product_rates", target=f"product:{product.id}", actor=actor)
            return None
        rates = parse_rates(raw)
        ProductRates.insert(product=product.id, rates=rates, updated_at=now()).on_conflict(
            conflict_target=[ProductRates.product],
            update={ProductRates.rates: rates, ProductRates.updated_at: now()},
        ).execute()
        record("commission.product_rates", target=f"product:{product.id}", actor=actor, rates=rates)
    return rates


def level_rate(fn: LevelRate) -> LevelRate:
    """Register `fn(order, beneficiary, depth, rate_bps) -> int | None`: the rate in basis
    points this beneficiary earns at this depth, or None to keep `rate_bps`. Functions run in
    the order registered, each given the rate the one before left. A rate outside 0..10000 is
    logged and ignored; whatever the rates, the order's margin caps the total."""
    _LEVEL_RATES.append(fn)
    return fn


def beneficiary_rate(order, beneficiary, depth: int, base_bps: int) -> int:
    bps = base_bps
    for fn in _LEVEL_RATES:
        offered = fn(order, beneficiary, depth, bps)
        if offered is None:
            continue
        if type(offered) is not int or not 0 <= offered <= BPS:
            log.warning("%s returned rate %r; ignored", fn.__name__, offered)
            continue
        bps = offered
    return bps
