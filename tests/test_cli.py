"""The operator CLI, `flask --app app shop ...`.

A few tests run the real entry point in a subprocess on a fresh instance folder, to prove
that what an owner types works end to end (first-run secrets, migrations, exit codes). The
many bad-input cases go through Flask's CLI runner on the test app, which is much faster.
With `--json` every command must print exactly one JSON object on stdout: `json.loads` of
the whole of stdout fails on anything else.
"""

import json
import os
import shlex
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import click
import pytest

from shop import migrations, plugins, settings
from shop.accounts import service as accounts
from shop.accounts.models import User
from shop.audit.models import AuditLog
from shop.db import db
from shop.plugins import manager
from shop.plugins.discovery import discover
from shop.settings import registry as settings_registry

ROOT = Path(__file__).resolve().parent.parent
SHOP_ENV = (
    "SHOP_SECRET_KEY",
    "SHOP_MASTER_KEY",
    "SHOP_DATABASE_URL",
    "SHOP_REDIS_URL",
    "SHOP_SAFE_MODE",
)


# the real entry point ------------------------------------------------------------------------


def run_shop(instance: Path, *args: str, as_json: bool = True):
    """Run `python -m flask --app app shop ARGS [--json]` as an owner would, from the repo."""
    env = {k: v for k, v in os.environ.items() if k not in SHOP_ENV}
    env["SHOP_INSTANCE"] = str(instance)
    cmd = [sys.executable, "-m", "flask", "--app", "app", "shop", *args]
    proc = subprocess.run(
        cmd + (["--json"] if as_json else []),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if not as_json:
        return proc.returncode, proc.stdout, proc.stderr
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{args}: stdout is not one JSON object\n{proc.stdout}\n{proc.stderr}")


def test_first_run_creates_secrets_and_database_and_init_is_idempotent(tmp_path):
    instance = tmp_path / "instance"
    assert not instance.exists()
    code, out = run_shop(
        instance, "init", "--admin-email", "Boss@Example.com", "--admin-password", "boss-pass-1"
    )
    assert code == 0, out
    assert out["created"] is True and isinstance(out["owner_id"], int)
    assert len(out["invite_code"]) == 8

    for name in ("secret_key", "master_key"):
        secret = instance / name
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, name
        assert len(bytes.fromhex(secret.read_text().strip())) == 32
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700

    raw = sqlite3.connect(instance / "shop.sqlite3")
    try:
        versions = [v for (v,) in raw.execute("SELECT version FROM schema_migrations")]
        [(role, email)] = raw.execute("SELECT role, email FROM users").fetchall()
    finally:
        raw.close()
    assert versions == list(range(1, len(migrations.MIGRATIONS) + 1))
    assert role == "owner" and "example.com" not in email.lower()

    again = run_shop(
        instance, "init", "--admin-email", "boss@example.com", "--admin-password", "boss-pass-1"
    )
    assert again == (0, {**out, "created": False})

    code, out = run_shop(
        instance, "init", "--admin-email", "other@example.com", "--admin-password", "other-pass-1"
    )
    assert code == 2
    assert out["error"]["code"] == "bad_input" and "owner" in out["error"]["message"]


def test_settings_round_trip_and_human_output_through_the_entry_point(tmp_path):
    instance = tmp_path / "instance"
    assert run_shop(instance, "settings", "set", "shop.name", "Moon Cards") == (
        0,
        {"key": "shop.name", "value": "Moon Cards"},
    )
    code, out = run_shop(instance, "settings", "get")
    assert code == 0 and out["settings"]["shop.name"] == "Moon Cards"

    code, stdout, _ = run_shop(instance, "settings", "get", "shop.name", as_json=False)
    assert code == 0
    assert stdout.splitlines() == ["key: shop.name", "value: Moon Cards"]

    code, stdout, stderr = run_shop(instance, "settings", "get", "shop.nope", as_json=False)
    assert code == 2 and stdout == ""
    assert stderr.startswith("error: unknown setting 'shop.nope'")


def test_audit_through_the_entry_point_fails_on_plaintext_email(tmp_path):
    instance = tmp_path / "instance"
    run_shop(instance, "init", "--admin-email", "boss@example.com", "--admin-password", "pass-123x")
    code, out = run_shop(instance, "audit")
    assert code == 0 and out["ok"] is True
    assert out["checks"]["personal_data_encrypted"] == "ok"

    raw = sqlite3.connect(instance / "shop.sqlite3")
    with raw:
        raw.execute("UPDATE users SET email = 'boss@example.com'")
    raw.close()

    code, out = run_shop(instance, "audit")
    assert code == 1 and out["ok"] is False
    assert out["checks"]["personal_data_encrypted"] == ["user 1: email is stored in clear"]


# the CLI runner on the test app --------------------------------------------------------------


@pytest.fixture
def cli(app):
    """Invoke `shop ARGS --json` on the test app; returns (exit code, the one JSON object).
    ARGS are separate strings, or one string split like a shell would."""
    runner = app.test_cli_runner()

    def invoke(*args: str):
        if len(args) == 1:
            args = tuple(shlex.split(args[0]))
        result = runner.invoke(args=["shop", *args, "--json"])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        try:
            return result.exit_code, json.loads(result.stdout)
        except json.JSONDecodeError:
            pytest.fail(f"{args}: stdout is not one JSON object: {result.stdout!r}")

    return invoke


def in_app(app, fn):
    with app.app_context():
        return fn()


def count_users(app) -> int:
    return in_app(app, lambda: User.select().count())


def assert_bad_input(result, *words: str):
    code, out = result
    assert code == 2, out
    assert set(out) == {"error"} and set(out["error"]) == {"code", "message"}
    for word in words:
        assert word in out["error"]["message"]


INIT = ("init", "--admin-email", "boss@example.com", "--admin-password", "boss-pass-1")


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("boss@example.com", "short", "at least 8 characters"),
        ("not-an-email", "boss-pass-1", "valid email"),
        ("boss@example", "boss-pass-1", "valid email"),
    ],
)
def test_init_refuses_bad_input_and_creates_nothing(app, cli, email, password, message):
    result = cli("init", "--admin-email", email, "--admin-password", password)
    assert_bad_input(result, message)
    assert count_users(app) == 0


def test_init_with_demo_then_again_changes_nothing(app, cli):
    code, first = cli(*INIT, "--shop-name", "Moon Cards", "--language", "en", "--demo")
    assert code == 0 and first["created"] is True
    code, second = cli(*INIT, "--shop-name", "Other Name", "--demo")
    assert code == 0 and second == {**first, "created": False}
    assert count_users(app) == 1
    assert in_app(app, lambda: settings.get("shop.name")) == "Moon Cards"


def test_init_after_setup_refuses_another_owner_and_a_weak_password(app, cli):
    cli(*INIT)
    assert_bad_input(
        cli("init", "--admin-email", "new@example.com", "--admin-password", "new-pass-12"),
        "already has an owner",
    )
    assert_bad_input(
        cli("init", "--admin-email", "boss@example.com", "--admin-password", "short"),
        "at least 8",
    )
    assert count_users(app) == 1


def test_init_refuses_an_email_that_belongs_to_a_customer(app, cli):
    code, _ = cli("user", "add", "--email", "boss@example.com", "--password", "cust-pass-1")
    assert code == 0
    assert_bad_input(cli(*INIT), "not the owner")
    assert in_app(app, accounts.owner_exists) is False


def test_usage_errors_still_print_one_json_object(cli):
    assert_bad_input(cli("init", "--admin-password", "boss-pass-1"), "--admin-email")
    code, out = cli(*INIT, "--language", "klingon")
    assert code == 2 and out["error"]["code"] == "usage" and "klingon" in out["error"]["message"]


def test_settings_get_all_and_one(cli):
    code, out = cli("settings", "get")
    assert code == 0
    assert {"shop.name", "shop.language", "theme.active"} <= set(out["settings"])
    assert cli("settings", "get", "shop.name") == (0, {"key": "shop.name", "value": "Kashop"})


def test_settings_set_is_visible_to_get(cli):
    assert cli("settings", "set", "shop.name", "  Moon Cards ") == (
        0,
        {"key": "shop.name", "value": "Moon Cards"},
    )
    assert cli("settings", "get", "shop.name")[1]["value"] == "Moon Cards"
    assert cli("settings", "get")[1]["settings"]["shop.name"] == "Moon Cards"


def test_settings_unknown_key_is_refused(app, cli):
    assert_bad_input(cli("settings", "get", "shop.colour"), "unknown setting 'shop.colour'")
    assert_bad_input(cli("settings", "set", "shop.colour", "red"), "unknown setting")
    assert in_app(app, lambda: AuditLog.select().count()) == 0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("shop.name", "   ", "shop.name: a value is required"),
        ("shop.name", "x" * 81, "shop.name: at most 80"),
        ("shop.language", "fr", "shop.language: 'fr' is not one of"),
        ("theme.active", "no-such-theme", "theme.active: There is no theme named"),
        (
            "orders.reserve_minutes",
            "0",
            "orders.reserve_minutes: must be between 1 and 1440 minutes",
        ),
        ("orders.reserve_minutes", "soon", "orders.reserve_minutes: 'soon' is not a whole number"),
        ("escrow.hours", "721", "escrow.hours: must be between 0 and 720 hours"),
        (
            "withdrawal.fee_bps",
            "10001",
            "withdrawal.fee_bps: must be between 0 and 10000 basis points",
        ),
        ("refunds.max_attempts", "0", "refunds.max_attempts: must be between 1 and 50"),
    ],
)
def test_settings_bad_value_is_refused_and_nothing_changes(app, cli, key, value, message):
    before = cli("settings", "get")[1]
    assert_bad_input(cli("settings", "set", key, value), message)
    assert cli("settings", "get")[1] == before


def test_settings_get_masks_secret_settings(cli, monkeypatch):
    item = settings_registry.SettingSpec(
        "test.token", "hunter2-token", "a secret", str, secret=True
    )
    monkeypatch.setitem(settings_registry._REGISTRY, item.key, item)
    assert cli("settings", "get", "test.token")[1]["value"] == "***"
    assert cli("settings", "get")[1]["settings"]["test.token"] == "***"


def test_user_add_returns_id_and_invite_code(app, cli):
    code, out = cli("user add --email Staff@Example.com --password staff-pass-1 --role staff")
    assert code == 0 and set(out) == {"id", "invite_code"}
    user = in_app(app, lambda: User.get_by_id(out["id"]))
    assert user.role == "staff" and user.invite_code == out["invite_code"]
    assert user.email == "Staff@Example.com" and user.referrer_id is None


def test_user_add_binds_the_referrer(app, cli):
    _, alice = cli("user", "add", "--email", "alice@example.com", "--password", "alice-pass-1")
    code, bob = cli(
        "user",
        "add",
        "--email",
        "bob@example.com",
        "--password",
        "bob-pass-12",
        "--referrer",
        alice["invite_code"].lower(),
    )
    assert code == 0
    assert in_app(app, lambda: User.get_by_id(bob["id"]).referrer_id) == alice["id"]
    assert in_app(app, lambda: User.get_by_id(bob["id"]).role) == "customer"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--email", "ALICE@example.com ", "--password", "other-pass-1"), "already exists"),
        (("--email", "carol@example.com", "--password", "short"), "at least 8"),
        (("--email", "carol@@example.com", "--password", "carol-pass-1"), "valid email"),
        (
            ("--email", "carol@example.com", "--password", "carol-pass-1", "--role", "admin"),
            "Unknown role 'admin'",
        ),
        (
            (
                "--email",
                "carol@example.com",
                "--password",
                "carol-pass-1",
                "--referrer",
                "ZZZZ9999",
            ),
            "invite code",
        ),
    ],
)
def test_user_add_refuses_bad_input_and_creates_nothing(app, cli, extra, message):
    cli("user", "add", "--email", "alice@example.com", "--password", "alice-pass-1")
    assert_bad_input(cli("user", "add", *extra), message)
    assert count_users(app) == 1


@pytest.fixture
def probe_plugin(app, tmp_path, monkeypatch):
    """A plugin folder of our own, so enable/disable have something real to toggle."""
    folder = tmp_path / "plugins" / "cli_probe"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(
        json.dumps({"name": "cli_probe", "version": "1.2", "description": "probe"})
    )
    (folder / "__init__.py").write_text("")
    monkeypatch.setattr(manager, "discover", lambda: discover(tmp_path / "plugins"))
    monkeypatch.delitem(sys.modules, "kashop_plugins.cli_probe", raising=False)
    with app.app_context():
        plugins.init()
    yield "cli_probe"
    sys.modules.pop("kashop_plugins.cli_probe", None)


def test_plugins_list_enable_disable(cli, probe_plugin):
    code, out = cli("plugins", "list")
    assert code == 0 and out["safe_mode"] is False and isinstance(out["plugins"], list)
    [probe] = [p for p in out["plugins"] if p["name"] == probe_plugin]
    assert probe["enabled"] is False and probe["version"] == "1.2"

    assert cli("plugins", "enable", probe_plugin) == (0, {"name": probe_plugin, "enabled": True})
    assert [p["enabled"] for p in cli("plugins", "list")[1]["plugins"]] == [True]
    assert cli("plugins", "disable", probe_plugin) == (0, {"name": probe_plugin, "enabled": False})
    assert [p["enabled"] for p in cli("plugins", "list")[1]["plugins"]] == [False]


@pytest.mark.parametrize("action", ["enable", "disable"])
def test_plugins_unknown_name_is_refused(app, cli, action):
    assert_bad_input(cli("plugins", action, "no_such_plugin"), "unknown plugin 'no_such_plugin'")
    assert in_app(app, lambda: AuditLog.select().count()) == 0


def test_plugins_cannot_be_toggled_in_safe_mode(app, cli, probe_plugin):
    with app.app_context():
        plugins.init(safe_mode=True)
    assert cli("plugins", "list")[1] == {"safe_mode": True, "plugins": []}
    code, out = cli("plugins", "enable", probe_plugin)
    assert code == 2 and out["error"]["code"] == "safe_mode"


def test_audit_passes_on_a_healthy_shop_and_names_the_failing_check(app, cli):
    cli(*INIT)
    cli("user add --email alice@example.com --password alice-pass-1 --phone 13812345678")
    code, out = cli("audit")
    assert code == 0 and out["ok"] is True
    assert set(out["checks"].values()) == {"ok"}

    with app.app_context():
        db.execute_sql("UPDATE users SET phone = ? WHERE phone IS NOT NULL", ("13812345678",))
    code, out = cli("audit")
    assert code == 1 and out["ok"] is False
    assert out["checks"]["personal_data_encrypted"] == ["user 2: phone is stored in clear"]


def test_without_json_output_is_for_people(app):
    result = app.test_cli_runner().invoke(
        args=["shop", "user", "add", "--email", "alice@example.com", "--password", "alice-pass-1"]
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "id: 1" and lines[1].startswith("invite_code: ")
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.stdout)


def test_help_lists_every_command_with_its_purpose(app):
    """Each group's --help names all its commands with a summary that is not cut short, and
    every command has help of its own and takes --json."""
    from shop.cli import shop_cli

    runner = app.test_cli_runner()

    def check(group, path):
        result = runner.invoke(args=[*path, "--help"])
        listing = result.stdout.partition("Commands:")[2]
        assert result.exit_code == 0 and listing and "..." not in listing, result.stdout
        for name, cmd in group.commands.items():
            assert cmd.help, [*path, name]
            assert f"\n  {name} " in result.stdout
            if isinstance(cmd, click.Group):
                check(cmd, [*path, name])
            else:
                assert "--json" in {opt for p in cmd.params for opt in p.opts}, [*path, name]

    assert {"init", "settings", "user", "plugins", "audit", "worker"} <= set(shop_cli.commands)
    check(shop_cli, ["shop"])


def test_user_role_makes_staff_and_refuses_owner_and_unknown_users(app, cli, owner):
    _, alice = cli("user", "add", "--email", "alice@example.com", "--password", "alice-pass-1")
    code, out = cli("user", "role", str(alice["id"]), "staff")
    assert code == 0 and out == {"id": alice["id"], "role": "staff"}
    assert in_app(app, lambda: User.get_by_id(alice["id"]).role) == "staff"
    assert_bad_input(cli("user", "role", "999", "staff"), "no user 999")
    code, _ = cli("user", "role", str(alice["id"]), "owner")
    assert code == 2  # not a choice: the shop has one owner
    assert_bad_input(
        cli("user add --email second@example.com --password second-pass-1 --role owner"),
        "already has its owner",
    )
    assert in_app(app, lambda: User.get_by_id(alice["id"]).role) == "staff"


USER_COMMANDS = [
    ("wallet", "credit", "{id}", "5.00"),
    ("user", "role", "{id}", "staff"),
    ("user", "set-level", "{id}", "none"),
    ("points", "violation", "{id}", "--kind", "fraud"),
    ("apikey", "create", "{id}"),
]


@pytest.mark.parametrize("command", USER_COMMANDS, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("user_id", ["99", "0", "x", "1" * 30])
def test_every_command_naming_a_user_refuses_a_missing_one_as_not_found(app, cli, command, user_id):
    """Malformed or unknown, a user id is `not_found`, whichever command it was given to."""
    code, out = cli(*(part.format(id=user_id) for part in command))
    assert code == 2
    assert out["error"] == {"code": "not_found", "message": f"no user {user_id}"}
    assert in_app(app, lambda: AuditLog.select().count()) == 0
