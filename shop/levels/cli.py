"""`levels add|list|upgrade` and `user set-level`: distributor levels from the command line.

Amounts are typed as decimal strings ("100.00") and printed as integers in fen."""

import click

from shop.accounts.models import User
from shop.cli.base import command, find_by_id, shop_cli
from shop.cli.core import user_group
from shop.levels import service as levels

# "-5" is a value to refuse with a message, not an unknown option to print usage for
NEGATIVE_OK = {"ignore_unknown_options": True}


@shop_cli.group(name="levels")
def levels_group():
    """Distributor levels."""


@command(group=levels_group, name="add", context_settings=NEGATIVE_OK)
@click.option("--name", default="", help="The level's name, e.g. agent.")
@click.option("--discount-bps", default="0", show_default=True, help="Discount, 500 = 5%.")
@click.option("--min-spend", default="", help="Upgrade at this spend, e.g. 100.00.")
@click.option("--min-referrals", default="", help="Upgrade at this many direct referrals.")
@click.option("--rank", default="", help="Higher ranks are better; default: above the rest.")
@click.option("--manual", is_flag=True, help="Only staff give this level; never automatic.")
@click.option("--commission-rates", default="", help="Its members' rates, e.g. 12,6,3.")
def levels_add(name, discount_bps, min_spend, min_referrals, rank, manual, commission_rates):
    """Add a level; prints its id.

    With --min-spend and/or --min-referrals the level is reached by itself once every rule
    given is met (unless --manual); without either, staff give it with `user set-level`.
    """
    raw = {
        "name": name,
        "discount_bps": discount_bps,
        "min_spend": min_spend,
        "min_referrals": min_referrals,
        "rank": rank,
        "auto": "" if manual or not (min_spend or min_referrals) else "1",
        "commission_rates": commission_rates,
    }
    return {"id": levels.create_level(raw).id}


@command(group=levels_group, name="list")
def levels_list():
    """List the levels and their rules.

    Lowest rank first, each with its discount, upgrade rules and member count.
    """
    return {"levels": [levels.level_json(level) for level in levels.all_levels()]}


@command(group=levels_group, name="upgrade")
def levels_upgrade():
    """Upgrade users whose rules are met.

    Moves users up to the highest automatic level their spend and direct referrals reach
    now, never down; the worker runs this every hour too.
    """
    return {"upgraded": levels.upgrade_all()}


@command(group=user_group, name="set-level")
@click.argument("user_id")
@click.argument("level")
def user_set_level(user_id, level):
    """Set a user's distributor level.

    LEVEL is a level's name or id; `none` clears it. The change is audited.
    """
    user = find_by_id(User, user_id, "user")
    found = levels.find_level(level)
    levels.set_user_level(user, found, actor=None)
    return {"user_id": user.id, "level": found.name if found else None}
