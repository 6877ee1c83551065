"""Periodic background jobs. Each area adds its jobs here as thin wrappers of a service
function, so the same work can be run by hand from the CLI."""

from datetime import timedelta

from huey import crontab

from shop.clock import now
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
