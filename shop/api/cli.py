"""`flask --app app shop apikey create|revoke`: keys for scripts and docking shops."""

import click

from shop.accounts.models import User
from shop.api import keys
from shop.cli.base import command, find_by_id, shop_cli


@shop_cli.group(name="apikey")
def apikey_group():
    """Issue and revoke API keys."""


@command(group=apikey_group, name="create")
@click.argument("user_id")
@click.option("--label", default="", help="A name to tell the key apart.")
def apikey_create(user_id, label):
    """Issue a key for a user; the secret is printed this once."""
    key, secret = keys.create(find_by_id(User, user_id, "user").id, label)
    return {"key": key.key_id, "secret": secret}


@command(group=apikey_group, name="revoke")
@click.argument("key")
def apikey_revoke(key):
    """Disable a key for good (a leaked secret)."""
    return {"key": keys.revoke(key).key_id, "enabled": False}
