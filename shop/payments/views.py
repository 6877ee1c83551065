"""Where gateways call back (`/pay/<name>/notify`) and where buyers come back from a cashier
(`/pay/<name>/return`). Both hand the request to the gateway: verifying a callback is the
gateway's protocol, crediting it is `service.record_payment`.

The notify route is exempt from CSRF: a gateway's server posts there without our form token,
and its signature is what authenticates it.
"""

from flask import Blueprint, abort, request

from shop.payments import service

bp = Blueprint("payments", __name__, url_prefix="/pay")


def _gateway(name: str):
    """The enabled gateway called `name`; an unknown or disabled one does not exist here."""
    found = service.gateways().get(name)
    if found is None:
        abort(404)
    return found


@bp.route("/<name>/notify", methods=["GET", "POST"])
def notify(name):
    return _gateway(name).handle_notify(request)


@bp.route("/<name>/return")
def returned(name):
    return _gateway(name).handle_return(request)


@bp.app_context_processor
def sandbox_banner():
    """The theme's base.html warns on every page while a gateway that takes no real money is
    offered. Asked per render rather than set when a plugin starts, so enabling or disabling
    the sandbox in the admin shows at once, without a restart."""
    return {"sandbox_banner": any(not g.real_money for g in service.gateways().values())}
