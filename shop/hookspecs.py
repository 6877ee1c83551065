"""The hooks a Kashop plugin can implement: the one place that says what plugins may do.

Implement a hook in a plugin module with ``@hookimpl`` and a function of the same name taking
any subset of the arguments below. Hooks named for an event (``order_paid``, ``notify``...)
are told something happened: an exception there is logged and never breaks the order. Hooks
that return values (``payment_gateways``...) are collected from every enabled plugin.
"""

import pluggy

hookspec = pluggy.HookspecMarker("kashop")
hookimpl = pluggy.HookimplMarker("kashop")


@hookspec
def app_started(app):
    """The Flask app is built; register blueprints or template filters here."""


@hookspec
def order_created(order):
    """An order was placed and its stock reserved; it awaits payment."""


@hookspec
def order_paid(order):
    """Payment for the order is in escrow."""


@hookspec
def order_delivered(order):
    """The goods of the order were handed to the customer."""


@hookspec
def order_completed(order):
    """The customer confirmed (or the escrow window passed) and the escrow settled."""


@hookspec
def order_refunded(order):
    """The order was refunded; the money is back with the payer, or on its way back through
    the gateway it was paid with."""


@hookspec
def payment_gateways():
    """Return a list of payment gateway objects this plugin offers."""


@hookspec
def supplier_connectors():
    """Return a list of upstream supplier connector objects this plugin offers."""


@hookspec(firstresult=True)
def deliver(order, product):
    """Deliver an order of a product kind this plugin handles; return a result or None."""


@hookspec
def price_adjust(product, user, price):
    """Return a new unit price in minor units for this viewer, or None to leave it."""


@hookspec
def risk_check(order):
    """Return a reason string to hold the paid order for staff review, or None."""


@hookspec
def notify(event, payload):
    """Something the shop tells people about: `event` like "order.paid", `payload` a dict."""


@hookspec
def admin_menu():
    """Return a list of ``(label, url)`` pairs added to the admin navigation."""


@hookspec
def template_slot(name, context):
    """Return HTML (escaped or Markup) to place in the theme's named slot, or None."""
