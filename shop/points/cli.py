"""`points mature` and `points violation`: referral credit points from the command line."""

import click

from shop.accounts.models import User
from shop.cli.base import command, find_by_id, shop_cli
from shop.points import maturation
from shop.points.models import VIOLATION_KINDS


@shop_cli.group(name="points")
def points_group():
    """Referral credit points."""


@command(group=points_group, name="mature")
def points_mature():
    """Award matured referral points.

    Runs the referral check now (the worker runs it daily): every invited user who matured
    and their referrer get their points, once.
    """
    return {"awarded": maturation.mature()}


@command(group=points_group, name="violation")
@click.argument("user_id")
@click.option("--kind", default="", help=f"One of {', '.join(VIOLATION_KINDS)}.")
@click.option("--note", default="", help="What happened, for staff.")
@click.option("--order", "order_no", default="", help="The order it concerns, if any.")
def points_violation(user_id, kind, note, order_no):
    """Record a violation against a user.

    The user and their referrer then get no referral points for this user.
    """
    user = find_by_id(User, user_id, "user")
    violation = maturation.record_violation(user, kind, note, order_no)
    return {"id": violation.id, "user_id": user.id, "kind": violation.kind}
