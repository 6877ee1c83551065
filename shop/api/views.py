"""The signed JSON API, /api/v1. Thin: authenticate, parse, call `service`, answer JSON.

Every route but the OpenAPI document needs a signed request (see `keys`). CSRF protection
is off for this blueprint: requests carry an HMAC signature, never a browser session.
"""

import functools

from flask import Blueprint, jsonify, request, url_for

from shop.api import keys, service, signing
from shop.api.openapi import document
from shop.orders.service import OrderError
from shop.web import client_ip

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def api_error(status: int, code: str, message: str):
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = "Kashop-HMAC-SHA256"
    return response


def signed(view):
    """Run `view(user, ...)` for a correctly signed request, else answer 401; refused
    operations become JSON errors. A GET's nonce is recorded before the view runs. A POST
    view is called as `view(user, accept, ...)` and calls `accept()` inside the transaction
    that makes its change (see `keys.Acceptance`)."""

    @functools.wraps(view)
    def wrapper(**kwargs):
        body = request.get_data(cache=True)
        target = signing.request_target(request.environ)
        try:
            key, nonce = keys.authenticate(request.method, target, request.headers, body)
            if request.method == "GET":
                keys.record_alone(key, nonce)
                return view(key.user, **kwargs)
            accept = keys.Acceptance(key, nonce)
            try:
                return view(key.user, accept, **kwargs)
            finally:
                accept.settle()
        except keys.AuthError as exc:
            return api_error(401, exc.code, str(exc))
        except OrderError as exc:
            return api_error(exc.status, exc.code, str(exc))

    return wrapper


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())


@bp.get("/catalog")
@signed
def catalog(user):
    return jsonify(products=service.catalog(user))


@bp.get("/products/<int:product_id>")
@signed
def product(user, product_id):
    return jsonify(service.product(user, product_id))


@bp.post("/orders")
@signed
def place_order(user, accept):
    order, created = service.place_order(
        user,
        request.get_data(cache=True),
        request.headers.get("Idempotency-Key"),
        client_ip(),
        accept,
    )
    response = jsonify(order)
    if created:
        response.status_code = 201
        response.headers["Location"] = url_for(".order", order_no=order["order_no"])
    return response


@bp.get("/orders/<order_no>")
@signed
def order(user, order_no):
    return jsonify(service.order_json(service.own_order(user, order_no)))


@bp.post("/orders/<order_no>/confirm")
@signed
def confirm(user, accept, order_no):
    return jsonify(service.confirm(user, order_no, accept))


@bp.get("/balance")
@signed
def balance(user):
    return jsonify(service.balances(user))
