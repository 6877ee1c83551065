"""Periodic background jobs. Each area adds its jobs here as thin wrappers of a service
function, so the same work can be run by hand from the CLI."""

from datetime import timedelta

from huey import crontab

from shop.clock import now
from shop.levels import service as levels
from shop.orders import service as orders
from shop.payments import refunds
from shop.points import maturation
from shop.worker import huey, in_app_context


@huey.periodic_task(crontab(minute="*/30"))
@in_app_context
def prune_throttles():
    """Forget old failed-attempt counters so the table stays small."""
    from shop.security.throttle import Throttle

    Throttle.delete().where(Throttle.window_start < now() - timedelta(days=1)).execute()


@huey.periodic_task(crontab(minute="*/5"))
@in_app_context
def prune_api_nonces():
    """Forget API nonces too old to be replayed; the table holds only the recent window."""
    from shop.api.keys import prune_nonces

    prune_nonces()


@huey.periodic_task(crontab(minute="*"))
@in_app_context
def expire_orders() -> int:
    """Expire unpaid orders past their reservation, giving their keys back to stock: with a
    15-minute default, a minute's delay is the most a buyer waits for a key to free up."""
    return orders.expire_due()


@huey.periodic_task(crontab(minute="*/5"))
@in_app_context
def complete_orders() -> int:
    """Auto-confirm delivered orders whose escrow window (hours) has passed, and settle."""
    return orders.complete_due()


@huey.periodic_task(crontab(minute="*"))
@in_app_context
def resume_paid() -> int:
    """Deliver paid orders a crash left undelivered (invariant 5). Also queued once when the
    worker starts, so a restart delivers them without waiting for the next minute."""
    return orders.resume_paid()


@huey.periodic_task(crontab(minute="*"))
@in_app_context
def send_refunds() -> int:
    """Send refunds back through their payment gateways: those refunded automatically, those
    a crash left unsent, and those whose wait after a failed attempt is over. Also queued once
    when the worker starts."""
    return refunds.send_due()


@huey.periodic_task(crontab(minute="7"))
@in_app_context
def upgrade_levels() -> int:
    """Move users up to the levels their spend and referrals reach. Completing an order
    upgrades its buyer at once; this catches referrals, which grow when others register."""
    return levels.upgrade_all()


@huey.periodic_task(crontab(minute="17", hour="3"))
@in_app_context
def mature_points() -> int:
    """Award referral points to invited users who matured (days are the rule's unit: once a
    day, at a quiet hour, is enough)."""
    return maturation.mature()
