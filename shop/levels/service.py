"""Distributor levels: what a member pays, creating and editing levels, and moving users
between them. Each change is one function owning its transaction and its audit record.

A member's unit price is the lower of the normal (tier) price and their level's price: the
level's fixed price for the product if staff set one, else the tier price less the level's
discount. The discount never takes a price below the product's cost (a blanket percentage
must not turn every upstream product into a loss); a fixed price may, because staff typed
that number for that product, and they are warned when they do.
"""

import re
from collections.abc import Mapping

from peewee import JOIN, fn

from shop.accounts.models import User
from shop.audit import record
from shop.catalog.models import Product
from shop.db import db
from shop.distribution import rates as referral_rates
from shop.levels.models import FULL_BPS, Level, LevelPrice
from shop.messages import N_, Refusal
from shop.money import AmountError, parse_amount
from shop.orders.models import Order
from shop.settings import SettingError

MAX_NAME = 40
MAX_RANK = 1000
MAX_REFERRALS = 1_000_000
NO_LEVEL = "none"  # what the CLI takes to clear a user's level
TRUE = ("1", "on", "true", "yes", "y")


class LevelError(Refusal):
    """A refused level change; the message is fit to show the person who asked."""


# prices --------------------------------------------------------------------------------------


def member_price(product: Product, price: int, user) -> int:
    """The unit price for `user` given the normal `price`: never above it, never below 0, and a
    discount never below the product's cost (unless the normal price already is). One query,
    and none for a guest or a user without a level."""
    level_id = getattr(user, "level_id", None)
    if not level_id:
        return price
    row = (
        Level.select(Level.discount_bps, LevelPrice.price)
        .join(
            LevelPrice,
            JOIN.LEFT_OUTER,
            on=((LevelPrice.level == Level.id) & (LevelPrice.product == product.id)),
        )
        .where(Level.id == level_id)
        .tuples()
        .first()
    )
    if row is None:
        return price
    discount_bps, fixed = row
    if fixed is not None:
        return max(0, min(price, fixed))
    discounted = price * (FULL_BPS - discount_bps) // FULL_BPS
    return max(0, min(price, max(discounted, product.cost)))


# levels --------------------------------------------------------------------------------------


def _int(text, message: str, low: int, high: int) -> int:
    """`text` as a whole number from `low` to `high`, else LevelError(`message`), which
    names the bounds as %(low)d and %(high)d."""
    text = str(text).strip()
    if not re.fullmatch(r"-?[0-9]{1,9}", text) or not low <= int(text) <= high:
        raise LevelError(message, low=low, high=high)
    return int(text)


def _clean(raw: Mapping, current: Level | None) -> dict:
    """Column values from what staff typed; raises LevelError naming the first problem."""
    name = " ".join(str(raw.get("name") or "").split())
    if not name:
        raise LevelError(N_("A level needs a name."))
    if len(name) > MAX_NAME:
        raise LevelError(N_("The name is longer than %(count)d characters."), count=MAX_NAME)
    if name.isdigit() or name.lower() == NO_LEVEL:
        raise LevelError(
            N_("%(name)s cannot name a level: it would read as an id or as no level."),
            name=repr(name),
        )
    others = Level.select().where(Level.id != (current.id if current else 0))
    if others.where(Level.name == name).exists():
        raise LevelError(N_("There is already a level named %(name)s."), name=name)
    discount = _int(
        raw.get("discount_bps") or 0,
        N_("The discount must be a whole number of basis points from %(low)d to %(high)d."),
        0,
        FULL_BPS,
    )
    rank_text = str(raw.get("rank") or "").strip()
    if rank_text:
        rank = _int(
            rank_text, N_("The rank must be a whole number from %(low)d to %(high)d."), 0, MAX_RANK
        )
    else:
        rank = current.rank if current else (Level.select(fn.MAX(Level.rank)).scalar() or 0) + 1
    if others.where(Level.rank == rank).exists():
        raise LevelError(N_("Another level already has the rank %(rank)d."), rank=rank)
    spend_text = str(raw.get("min_spend") or "").strip()
    try:
        min_spend = parse_amount(spend_text, allow_zero=True) if spend_text else None
    except AmountError:
        raise LevelError(N_("The minimum spend must be an amount like 100.00.")) from None
    referrals_text = str(raw.get("min_referrals") or "").strip()
    min_referrals = (
        _int(
            referrals_text,
            N_("The minimum referrals must be a whole number from %(low)d to %(high)d."),
            0,
            MAX_REFERRALS,
        )
        if referrals_text
        else None
    )
    rates_text = str(raw.get("commission_rates") or "").strip()
    try:
        commission_rates = referral_rates.parse_rates(rates_text) if rates_text else None
    except SettingError as exc:
        raise LevelError(N_("Commission rates: %(reason)s"), reason=exc.translated()) from None
    auto = str(raw.get("auto") or "").strip().lower() in TRUE
    if auto and min_spend is None and min_referrals is None:
        raise LevelError(
            N_("An automatic level needs a minimum spend or a minimum number of referrals.")
        )
    return {
        "name": name,
        "rank": rank,
        "discount_bps": discount,
        "min_spend": min_spend,
        "min_referrals": min_referrals,
        "auto": auto,
        "commission_rates": commission_rates,
    }


def create_level(raw: Mapping, actor=None) -> Level:
    """A new level from typed values: name, discount_bps, rank (default: above the highest),
    min_spend ("100.00"), min_referrals, auto."""
    with db.atomic():
        values = _clean(raw, None)
        level = Level.create(**values)
        record("level.create", target=f"level:{level.id}", actor=actor, **values)
    return level


def update_level(level: Level, raw: Mapping, actor=None) -> Level:
    with db.atomic():
        values = _clean(raw, level)
        changes = {k: [getattr(level, k), v] for k, v in values.items() if getattr(level, k) != v}
        if changes:
            Level.update(**values).where(Level.id == level.id).execute()
            record("level.update", target=f"level:{level.id}", actor=actor, **changes)
    return Level.get_by_id(level.id)


def set_fixed_prices(level: Level, typed: Mapping[int, str], actor=None) -> list[Product]:
    """Save the fixed prices of `level`: product id → typed price ("" removes it). Every
    price is checked before any is written. Returns the products now fixed below their
    cost, for staff to be warned about."""
    products = {p.id: p for p in Product.select().where(Product.id.in_(list(typed)))}
    wanted: dict[int, int | None] = {}
    for product_id, text in typed.items():
        product = products.get(product_id)
        if product is None:
            raise LevelError(N_("No product %(id)s."), id=product_id)
        text = str(text or "").strip()
        if not text:
            wanted[product_id] = None
            continue
        try:
            wanted[product_id] = parse_amount(text, allow_zero=product.free)
        except AmountError:
            raise LevelError(
                N_(
                    "The fixed price of %(product)s must be an amount like 9.50, "
                    "above zero unless the product is free."
                ),
                product=product.name,
            ) from None
    current = {
        lp.product_id: lp.price
        for lp in LevelPrice.select().where(
            (LevelPrice.level == level.id) & LevelPrice.product.in_(list(wanted))
        )
    }
    changes = {pid: [current.get(pid), price] for pid, price in wanted.items()}
    changes = {pid: pair for pid, pair in changes.items() if pair[0] != pair[1]}
    with db.atomic():
        for product_id, (_old, price) in changes.items():
            LevelPrice.delete().where(
                (LevelPrice.level == level.id) & (LevelPrice.product == product_id)
            ).execute()
            if price is not None:
                LevelPrice.create(level=level.id, product=product_id, price=price)
        if changes:
            record("level.prices", target=f"level:{level.id}", actor=actor, prices=changes)
    return [
        products[pid]
        for pid, price in wanted.items()
        if price is not None and price < products[pid].cost
    ]


def fixed_prices(level: Level) -> dict[int, int]:
    return {lp.product_id: lp.price for lp in LevelPrice.select().where(LevelPrice.level == level)}


def find_level(text: str) -> Level | None:
    """A level by id or name; `none` (or nothing) means no level."""
    text = (text or "").strip()
    if not text or text.lower() == NO_LEVEL:
        return None
    found = Level.get_or_none(Level.id == int(text) if text.isdigit() else Level.name == text)
    if found is None:
        raise LevelError(N_("No level %(level)s."), level=repr(text))
    return found


def all_levels() -> list[Level]:
    """The levels, lowest rank first, each with `members`: how many users hold it."""
    members = fn.COUNT(User.id).alias("members")
    return list(
        Level.select(Level, members)
        .join(User, JOIN.LEFT_OUTER, on=(User.level_id == Level.id))
        .group_by(Level)
        .order_by(Level.rank)
    )


def level_json(level: Level) -> dict:
    return {
        "id": level.id,
        "name": level.name,
        "rank": level.rank,
        "discount_bps": level.discount_bps,
        "min_spend": level.min_spend,
        "min_referrals": level.min_referrals,
        "auto": level.auto,
        "commission_rates": level.commission_rates,
        "members": getattr(level, "members", None),
    }


# members -------------------------------------------------------------------------------------


def set_user_level(user: User, level: Level | None, actor) -> User:
    """Staff put a user on a level (or none), audited; an automatic upgrade may later move
    them up again, never down."""
    with db.atomic():
        old = User.select(User.level_id).where(User.id == user.id).scalar()
        new = level.id if level else None
        User.update(level_id=new).where(User.id == user.id).execute()
        record(
            "user.level", target=f"user:{user.id}", actor=actor, level=new, previous=old, by="staff"
        )
    user.level_id = new
    return user


def progress(user_id: int) -> tuple[int, int]:
    """(cumulative spend: the money paid for the user's completed orders, in fen, points not
    counted; direct referrals: users whose referrer is this user)."""
    spend = Order.select(fn.COALESCE(fn.SUM(Order.amount), 0)).where(
        (Order.user == user_id) & (Order.status == "completed")
    )
    referrals = User.select(fn.COUNT(User.id)).where(User.referrer == user_id)
    return int(spend.scalar() or 0), int(referrals.scalar() or 0)


def qualifies(level: Level, spend: int, referrals: int) -> bool:
    """Every rule the level sets is met; a level without rules is for staff to give."""
    if not level.auto or (level.min_spend is None and level.min_referrals is None):
        return False
    return (level.min_spend is None or spend >= level.min_spend) and (
        level.min_referrals is None or referrals >= level.min_referrals
    )


def upgrade(user_id: int) -> Level | None:
    """Move the user up to the highest automatic level they qualify for, if it ranks above
    their current one; never down. Returns the new level, or None when nothing changed.
    The update is a compare-and-set on the level the user had, so two completions racing
    for one user upgrade (and audit) once."""
    with db.atomic():
        current_id = User.select(User.level_id).where(User.id == user_id).scalar()
        current = Level.get_or_none(Level.id == current_id) if current_id else None
        spend, referrals = progress(user_id)
        reached = [
            lv
            for lv in Level.select().order_by(Level.rank.desc())
            if qualifies(lv, spend, referrals)
        ]
        if not reached or (current is not None and reached[0].rank <= current.rank):
            return None
        target = reached[0]
        same = User.level_id.is_null() if current_id is None else User.level_id == current_id
        if not User.update(level_id=target.id).where((User.id == user_id) & same).execute():
            return None
        record(
            "user.level",
            target=f"user:{user_id}",
            level=target.id,
            previous=current_id,
            by="automatic",
            spend=spend,
            referrals=referrals,
        )
    return target


def upgrade_all() -> int:
    """Upgrade everyone who spent or referred anyone (the periodic job and `levels upgrade`):
    referrals change when someone else registers, not when this user buys. Returns how many
    users moved up."""
    if not Level.select().where(Level.auto).exists():
        return 0
    spenders = Order.select(Order.user).where(
        (Order.status == "completed") & Order.user.is_null(False)
    )
    referrers = User.select(User.referrer).where(User.referrer.is_null(False))
    ids = {row[0] for q in (spenders, referrers) for row in q.distinct().tuples()}
    return sum(1 for user_id in sorted(ids) if upgrade(user_id) is not None)


@referral_rates.level_rate
def level_commission_rate(order, beneficiary, depth: int, rate_bps: int) -> int | None:
    """A member of a level with its own commission rates earns those at each depth they set;
    deeper than the level's list, or without a level, the shop's or product's rate stands."""
    level_id = getattr(beneficiary, "level_id", None)
    if not level_id:
        return None
    rates = Level.select(Level.commission_rates).where(Level.id == level_id).scalar()
    if not rates:
        return None
    bps = referral_rates.to_bps(rates)
    return bps[depth - 1] if depth <= len(bps) else None
