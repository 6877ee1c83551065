"""Selling commands: products, card keys, wallet credits, settling and refunding orders, and
the refunds on their way back through payment gateways.

Amounts are typed as decimal strings ("10.00") and printed as integers in fen. Options that
a person may forget (--name, --price, --reason) are checked by the service rather than by
click, so a missing one is a JSON error (exit 2) like any other bad input.
"""

import sys

import click

from shop.accounts.models import User
from shop.catalog import service as catalog
from shop.catalog.models import KINDS, Product
from shop.cli.base import BadInput, CheckFailed, command, find_by_id, shop_cli
from shop.inventory import service as inventory
from shop.money import parse_amount
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import refunds
from shop.payments import service as payments
from shop.payments.models import REFUND_STATUSES

# "-5" is an amount to refuse with a message, not an unknown option to print usage for
NEGATIVE_OK = {"ignore_unknown_options": True}


@shop_cli.group(name="product")
def product_group():
    """Manage products."""


@command(group=product_group, name="add")
@click.option("--name", default="", help="The product's name.")
@click.option("--price", default="", help="Unit price, e.g. 10.00.")
@click.option("--cost", default="0", show_default=True, help="Unit cost, e.g. 6.00.")
@click.option("--kind", default="card", show_default=True, help=f"One of {', '.join(KINDS)}.")
@click.option("--category", default="", help="Category name; created when missing.")
@click.option("--min-qty", default="1", show_default=True)
@click.option("--max-qty", default="100", show_default=True)
@click.option(
    "--free", is_flag=True, help="Given away: a price of 0 is allowed, and paid by nobody."
)
def product_add(name, price, cost, kind, category, min_qty, max_qty, free):
    """Add a visible product; prints its id."""
    raw = {
        "name": name,
        "price": price,
        "cost": cost,
        "kind": kind,
        "min_qty": min_qty,
        "max_qty": max_qty,
        "visible": "1",
        **({"free": "1"} if free else {}),
    }
    product, warnings = catalog.add_product(raw, category_name=category)
    return {"id": product.id, **({"warnings": warnings} if warnings else {})}


@shop_cli.group(name="keys")
def keys_group():
    """Manage card keys."""


@command(group=keys_group, name="import")
@click.argument("product_id")
@click.argument("file")
def keys_import(product_id, file):
    """Import card keys from FILE (one per line; - reads standard input).

    Prints how many were imported, refused as duplicates and skipped as too long to be keys
    (with a warning when any were)."""
    product = _product(product_id)
    if file == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(file, encoding="utf-8-sig") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read {file}: {exc}", "bad_file") from None
    result = inventory.import_keys(product, text.splitlines())
    counts = {key: result[key] for key in ("imported", "duplicates", "too_long")}
    warnings = inventory.import_warnings(result)
    return {**counts, **({"warnings": warnings} if warnings else {})}


@shop_cli.group(name="wallet")
def wallet_group():
    """Credit customers' wallets."""


@command(group=wallet_group, name="credit", context_settings=NEGATIVE_OK)
@click.argument("user_id")
@click.argument("amount")
@click.option("--memo", default="", help="Why, for the ledger and the audit log.")
def wallet_credit(user_id, amount, memo):
    """Add AMOUNT (e.g. 50.00) to a user's wallet; prints the new balance in fen."""
    user = find_by_id(User, user_id, "user")
    return {"wallet": payments.credit_wallet(user.id, parse_amount(amount), memo=memo)}


@shop_cli.group(name="orders")
def orders_group():
    """Settle and refund orders."""


@command(group=orders_group, name="settle")
@click.argument("order_no")
def orders_settle(order_no):
    """Confirm a delivered order now and settle its escrow."""
    order = orders.complete(_order(order_no), reason="confirmed by the operator")
    return {"order_no": order.order_no, "status": order.status}


@command(group=orders_group, name="refund")
@click.argument("order_no")
@click.option("--reason", default="", help="Shown to the customer; required.")
def orders_refund(order_no, reason):
    """Refund a whole order; the customer sees the reason.

    The money goes to the payer, or back through the gateway it came by when it can refund."""
    order = orders.refund(_order(order_no), reason)
    return {"order_no": order.order_no, "status": order.status}


@command(group=orders_group, name="refunds")
@click.option("--status", type=click.Choice(REFUND_STATUSES), help="Only refunds in this state.")
def orders_refunds(status):
    """List the refunds going back through gateways, newest first."""
    return {"refunds": [refunds.as_dict(r) for r in refunds.listing(status or "")]}


@command(group=orders_group, name="refund-retry")
@click.argument("order_no")
def orders_refund_retry(order_no):
    """Ask the gateway again now for an order's refund.

    For a pending or failed gateway refund; exits 1 when the gateway still did not take it."""
    result = refunds.as_dict(refunds.retry(_order(order_no)))
    if result["status"] != "sent":
        raise CheckFailed(result)
    return result


@command(group=orders_group, name="refund-reroute")
@click.argument("order_no")
def orders_refund_reroute(order_no):
    """Reroute a gateway refund to the wallet or the refund queue.

    Gives up on the gateway: the money goes to the buyer's wallet, or a guest's into the manual
    refund queue. Check the gateway's panel first: a timed-out attempt may have gone through."""
    return refunds.as_dict(refunds.reroute(_order(order_no)))


def _product(product_id: str) -> Product:
    return find_by_id(Product, product_id, "product")


def _order(order_no: str) -> Order:
    found = Order.get_or_none(Order.order_no == order_no.strip())
    if found is None:
        raise BadInput(f"no order {order_no}", "not_found")
    return found
