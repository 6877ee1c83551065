"""Foundation commands: init, settings, users, plugins, audit, worker."""

import logging

import click
from flask import current_app

from shop import invariants, plugins, settings
from shop.accounts import service as accounts
from shop.accounts.models import User
from shop.cli.base import BadInput, CheckFailed, command, find_by_id, shop_cli
from shop.i18n import LANGUAGES


@command(name="init")
@click.option("--admin-email", required=True, help="The owner's email.")
@click.option("--admin-password", required=True, help="The owner's password (8+ characters).")
@click.option("--shop-name", default="Kashop", show_default=True)
@click.option("--language", default="zh_CN", type=click.Choice(list(LANGUAGES)))
@click.option("--demo", is_flag=True, help="Load the demo catalog.")
def init_cmd(admin_email, admin_password, shop_name, language, demo):
    """Set the shop up without the browser.

    Creates the owner and the basic settings. Safe to run on every deploy: with the same
    owner email it changes nothing and answers created=false; another email is refused
    once the shop has an owner.
    """
    from shop.setup.service import initialize

    owner, created = initialize(shop_name, admin_email, admin_password, language, demo)
    return {"owner_id": owner.id, "created": created, "invite_code": owner.invite_code}


@shop_cli.group(name="settings")
def settings_group():
    """Read and change the shop's settings."""


@command(group=settings_group, name="get")
@click.argument("key", required=False)
def settings_get(key):
    """Print one setting, or all of them.

    Secret settings show as *** so the output can be pasted into a support request.
    """
    if key is None:
        values = settings.get_all()
        return {"settings": {s.key: "***" if s.secret else values[s.key] for s in settings.specs()}}
    item = settings.spec(key)
    return {"key": key, "value": "***" if item.secret else settings.get(key)}


@command(group=settings_group, name="set")
@click.argument("key")
@click.argument("value")
def settings_set(key, value):
    """Change a setting, validated as in the admin."""
    return {"key": key, "value": settings.set_value(key, value)}


@shop_cli.group(name="user")
def user_group():
    """Create accounts and change their role."""


@command(group=user_group, name="add")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", default="customer", show_default=True)
@click.option("--phone", default=None)
@click.option("--referrer", default=None, help="The invite code of the referrer.")
def user_add(email, password, role, phone, referrer):
    """Create an account; prints its id and invite code.

    ROLE is customer or staff (owner only while the shop has none). --referrer binds the
    account to the user whose invite code it is, as a registration through their invite
    link would.
    """
    user = accounts.register(email, password, phone=phone, role=role, referrer_code=referrer)
    return {"id": user.id, "invite_code": user.invite_code}


@command(group=user_group, name="role")
@click.argument("user_id")
@click.argument("role", type=click.Choice(["customer", "staff"]))
def user_role(user_id, role):
    """Make a customer staff, or staff a customer; their sessions end."""
    user = find_by_id(User, user_id, "user")
    accounts.set_role(user, role, actor=None)
    return {"id": user.id, "role": user.role}


@shop_cli.group(name="plugins")
def plugins_group():
    """List, enable and disable plugins."""


@command(group=plugins_group, name="list")
def plugins_list():
    """List installed plugins and whether each is enabled."""
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
    """Enable a plugin by name (takes effect without a restart)."""
    return _toggle(name, True)


@command(group=plugins_group, name="disable")
@click.argument("name")
def plugins_disable(name):
    """Disable a plugin by name (takes effect without a restart)."""
    return _toggle(name, False)


@command(group=plugins_group, name="set")
@click.argument("name")
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
def plugins_set(name, pairs):
    """Change a plugin's settings, checked as in the admin. A VALUE of "-" is read from a line
    of stdin, which keeps a merchant key out of the shell history and the process list."""
    raw = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BadInput(f"{pair!r} is not KEY=VALUE", "bad_setting")
        raw[key] = (
            click.get_text_stream("stdin").readline().rstrip("\r\n") if value == "-" else value
        )
    reg = plugins.registry()
    values = reg.save_settings(name, raw)
    secret = {s.key for s in reg.info(name).settings if s.type == "secret"}
    return {
        "name": name,
        "settings": {k: ("***" if v else "") if k in secret else v for k, v in values.items()},
    }


@command(name="audit")
def audit_cmd():
    """Check the shop's invariants on the live data.

    Runs every check of DESIGN.md's invariants that exists so far and names each with "ok"
    or its problems; exits 1 when any check fails.
    """
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
