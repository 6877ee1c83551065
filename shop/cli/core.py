"""Foundation commands: init, settings, users, plugins, audit, worker."""

import logging

import click
from flask import current_app

from shop import invariants, plugins, settings
from shop.accounts import service as accounts
from shop.cli.base import BadInput, CheckFailed, command, shop_cli
from shop.i18n import LANGUAGES


@command(name="init")
@click.option("--admin-email", required=True, help="The owner's email.")
@click.option("--admin-password", required=True, help="The owner's password (8+ characters).")
@click.option("--shop-name", default="Kashop", show_default=True)
@click.option("--language", default="zh_CN", type=click.Choice(list(LANGUAGES)))
@click.option("--demo", is_flag=True, help="Load the demo catalog.")
def init_cmd(admin_email, admin_password, shop_name, language, demo):
    """Set the shop up without the browser; safe to run again."""
    from shop.setup.service import initialize

    owner, created = initialize(shop_name, admin_email, admin_password, language, demo)
    return {"owner_id": owner.id, "created": created, "invite_code": owner.invite_code}


@shop_cli.group(name="settings")
def settings_group():
    """Read and change settings."""


@command(group=settings_group, name="get")
@click.argument("key", required=False)
def settings_get(key):
    """Print one setting, or all of them."""
    if key is None:
        return {"settings": settings.get_all()}
    item = settings.spec(key)
    return {"key": key, "value": "***" if item.secret else settings.get(key)}


@command(group=settings_group, name="set")
@click.argument("key")
@click.argument("value")
def settings_set(key, value):
    """Change a setting; the value is validated as in the admin."""
    return {"key": key, "value": settings.set_value(key, value)}


@shop_cli.group(name="user")
def user_group():
    """Manage accounts."""


@command(group=user_group, name="add")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", default="customer", show_default=True)
@click.option("--phone", default=None)
@click.option("--referrer", default=None, help="The invite code of the referrer.")
def user_add(email, password, role, phone, referrer):
    """Create an account."""
    user = accounts.register(email, password, phone=phone, role=role, referrer_code=referrer)
    return {"id": user.id, "invite_code": user.invite_code}


@shop_cli.group(name="plugins")
def plugins_group():
    """List, enable and disable plugins."""


@command(group=plugins_group, name="list")
def plugins_list():
    reg = plugins.registry()
    return {
        "safe_mode": reg.safe_mode,
        "plugins": [
            {
                "name": name,
                "version": info.version,
                "enabled": reg.is_enabled(name),
                "description": info.description,
                "source": info.source,
            }
            for name, info in sorted(reg.plugins.items())
        ],
    }


def _toggle(name: str, enabled: bool) -> dict:
    reg = plugins.registry()
    if reg.safe_mode:
        raise BadInput("safe mode is on (SHOP_SAFE_MODE): no plugin is loaded", "safe_mode")
    reg.set_enabled(name, enabled)
    return {"name": name, "enabled": enabled}


@command(group=plugins_group, name="enable")
@click.argument("name")
def plugins_enable(name):
    return _toggle(name, True)


@command(group=plugins_group, name="disable")
@click.argument("name")
def plugins_disable(name):
    return _toggle(name, False)


@command(name="audit")
def audit_cmd():
    """Check the shop's invariants on the live database; exit 1 when one fails."""
    results = invariants.run_all()
    failed = {name: problems for name, problems in results.items() if problems}
    result = {"ok": not failed, "checks": {n: (p or "ok") for n, p in results.items()}}
    if failed:
        raise CheckFailed(result)
    return result


@command(name="worker")
@click.option("--workers", default=2, show_default=True, help="Worker threads.")
@click.option(
    "--exit-with",
    type=int,
    metavar="PID",
    help="Stop when the parent process PID ends (app.py passes its own).",
)
def worker_cmd(workers, exit_with):
    """Run the background worker in the foreground.

    `python app.py` starts it beside the web server; production runs it as a service of its
    own. SIGINT finishes running tasks and stops, SIGTERM stops at once, SIGHUP restarts.
    Progress is logged on stderr.
    """
    from shop.worker import run_consumer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_consumer(current_app._get_current_object(), workers=workers, exit_with=exit_with)
    return {"stopped": True}
