import functools
import json
import re
import sys

import click
from flask.cli import AppGroup

shop_cli = AppGroup("shop", help="Run and script the shop.")
ID_RE = re.compile(r"[0-9]{1,18}")  # more digits would overflow the database's integer


class BadInput(Exception):
    """Input the command refuses: exit 2 and nothing changed."""

    def __init__(self, message: str, code: str = "bad_input"):
        super().__init__(message)
        self.code = code


class CheckFailed(Exception):
    """A check the command ran failed: exit 1, with the result still printed."""

    def __init__(self, result: dict):
        super().__init__("check failed")
        self.result = result


def find_by_id(model, text: str, what: str):
    """The row a command names by its id (a user, a product). A malformed id and one that
    names nothing are the same refusal, `not_found` (exit 2): either way the row the person
    meant is not there, and scripts check one code for it whichever command they ran."""
    number = int(text) if ID_RE.fullmatch(text.strip()) else None
    found = model.get_or_none(model.id == number) if number is not None else None
    if found is None:
        raise BadInput(f"no {what} {text}", "not_found")
    return found


class JSONCommand(click.Command):
    """A command whose usage errors (a missing option, a bad choice) still print one JSON
    object when `--json` was asked for, so scripts read every failure the same way."""

    def parse_args(self, ctx, args):
        as_json = "--json" in args  # checked first: parsing consumes the list
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            if not as_json:
                raise
            _emit({"error": {"code": "usage", "message": exc.format_message()}}, True, 2)
            ctx.exit(2)


def command(group=shop_cli, name=None, **kwargs):
    """Declare a command with a `--json` flag. The function returns a dict; it is printed as
    JSON with --json, or as `key: value` lines for people (its "warnings", a list of
    sentences, as `warning: ...` lines on standard error). Service errors (ValueError) become
    exit 2 with their message and code; CheckFailed becomes exit 1."""

    def decorate(fn):
        @group.command(name=name, cls=JSONCommand, **kwargs)
        @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
        @functools.wraps(fn)
        def wrapper(*args, as_json=False, **kw):
            try:
                result, code = fn(*args, **kw), 0
            except CheckFailed as exc:
                result, code = exc.result, 1
            except BadInput as exc:
                result, code = {"error": {"code": exc.code, "message": str(exc)}}, 2
            except ValueError as exc:
                result, code = {"error": {"code": _code(exc), "message": str(exc)}}, 2
            _emit(result, as_json, code)
            sys.exit(code)

        return wrapper

    return decorate


def _code(exc: ValueError) -> str:
    """The refusal's own code when the service gave it one (an order's `not_delivered`, a
    gateway refund's `refund_busy`): the same stable code the API answers, so a script can
    tell a wrong state from a typo. Anything else is plain `bad_input`."""
    code = getattr(exc, "code", None)
    return code if isinstance(code, str) and code else "bad_input"


def _emit(result: dict, as_json: bool, code: int) -> None:
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
        return
    if "error" in result and code == 2:
        click.echo(f"error: {result['error']['message']}", err=True)
        return
    for key, value in result.items():
        if key == "warnings":
            _warn(value)
            continue
        if isinstance(value, list | dict):
            value = json.dumps(value, ensure_ascii=False, indent=2, default=str)
        click.echo(f"{key}: {value}")


def _warn(warnings: list) -> None:
    """A result's warnings as `warning: ...` lines on standard error, each one a sentence a
    person reads, not a JSON list: the command did its work, but something needs a look."""
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
