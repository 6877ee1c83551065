"""The signed JSON API: signatures, every refusal, orders paid from the wallet, idempotency,
the OpenAPI reference, key management, and real concurrency against a running server."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import requests
from conftest import login, submit
from flask import session
from openapi_spec_validator import validate as validate_spec
from selling import card_product, customer, free_product
from werkzeug.security import generate_password_hash

from shop import invariants, ledger, plugins
from shop.accounts import service as accounts
from shop.api import client as api_client
from shop.api import keys, signing
from shop.api.models import ApiKey, ApiNonce
from shop.api.openapi import document
from shop.catalog.models import Product
from shop.clock import now
from shop.inventory.models import CardKey
from shop.ledger.models import Journal
from shop.orders import service as orders
from shop.orders.models import Order, OrderEvent

ROOT = Path(__file__).resolve().parent.parent
ORDERS = "/api/v1/orders"


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch):
    """Password hashing is not under test here; a cheap hash keeps 200 buyers quick to make."""
    monkeypatch.setattr(
        accounts, "hash_password", lambda p: generate_password_hash(p, "pbkdf2:sha256:1")
    )


@dataclass
class Buyer:
    user: object
    key: str
    secret: str


def new_buyer(email="buyer@example.com", wallet=10_000) -> Buyer:
    user = customer(email, wallet=wallet)
    key, secret = keys.create(user.id, "test")
    return Buyer(user, key.key_id, secret)


@pytest.fixture
def buyer(app, owner):
    return new_buyer()


def call(client, who: Buyer, method, path, payload=None, *, idem=None, body=None, **sign):
    """A signed request through the test client; `body` sends raw bytes instead of JSON."""
    raw = api_client.encode(payload) if body is None else body
    headers = api_client.signed_headers(who.key, who.secret, method, path, raw, **sign)
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return client.open(path, method=method, data=raw, headers=headers)


def buy(client, who, product_id, quantity=1, idem="order-1", **extra):
    payload = {"product_id": product_id, "quantity": quantity, **extra}
    return call(client, who, "POST", "/api/v1/orders", payload, idem=idem)


def wallet(user) -> int:
    return ledger.balance(ledger.user_account(user.id, "wallet"))


def conforms(response, path: str, method: str = "get"):
    """The answer is declared for this operation and status in the OpenAPI document and
    matches its schema; returns the JSON."""
    doc = document()
    declared = doc["paths"][path][method]["responses"].get(str(response.status_code))
    assert declared, f"{method} {path} does not document status {response.status_code}"
    if "$ref" in declared:
        declared = doc["components"]["responses"][declared["$ref"].rsplit("/", 1)[1]]
    schema = {**declared["content"]["application/json"]["schema"], **doc}
    data = response.get_json()
    jsonschema.Draft202012Validator(schema).validate(data)
    return data


def healthy():
    assert {k: v for k, v in invariants.run_all().items() if v} == {}


# signatures --------------------------------------------------------------------------------


def test_signed_request_is_answered_and_marks_the_key_used(client, buyer):
    response = call(client, buyer, "GET", "/api/v1/balance")
    assert response.status_code == 200
    assert conforms(response, "/api/v1/balance")["wallet"] == 10_000
    key = ApiKey.get(ApiKey.key_id == buyer.key)
    assert key.last_used_at is not None
    assert ApiNonce.select().where(ApiNonce.api_key_id == key.id).count() == 1


def test_last_used_is_written_at_most_once_a_minute(client, buyer):
    call(client, buyer, "GET", "/api/v1/balance")
    first = ApiKey.get(ApiKey.key_id == buyer.key).last_used_at
    call(client, buyer, "GET", "/api/v1/balance")
    assert ApiKey.get(ApiKey.key_id == buyer.key).last_used_at == first
    ApiKey.update(last_used_at=first - timedelta(minutes=2)).execute()
    call(client, buyer, "GET", "/api/v1/balance")
    assert ApiKey.get(ApiKey.key_id == buyer.key).last_used_at > first


def unauthorized(response, code):
    assert response.status_code == 401, response.get_data(as_text=True)
    assert "WWW-Authenticate" in response.headers
    assert conforms(response, "/api/v1/balance")["error"]["code"] == code


def order_refused(response, status, code):
    """A POST /orders answered with `status` and the documented error `code`."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert conforms(response, "/api/v1/orders", "post")["error"]["code"] == code


@pytest.mark.parametrize("header", signing.HEADERS)
def test_missing_header_is_401(client, buyer, header):
    headers = api_client.signed_headers(buyer.key, buyer.secret, "GET", "/api/v1/balance")
    del headers[header]
    unauthorized(client.get("/api/v1/balance", headers=headers), "missing_signature")


@pytest.mark.parametrize("skew", [-301, 310, -(10**6)])  # +310: the clock moves on meanwhile
def test_clock_skew_over_300_seconds_is_401(client, buyer, skew):
    stamp = int(time.time()) + skew
    response = call(client, buyer, "GET", "/api/v1/balance", timestamp=stamp)
    unauthorized(response, "stale_timestamp")


def test_skew_inside_the_window_is_accepted(client, buyer):
    for skew in (-290, 290):
        stamp = int(time.time()) + skew
        assert call(client, buyer, "GET", "/api/v1/balance", timestamp=stamp).status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("X-Kashop-Timestamp", "12.5", "bad_timestamp"),
        ("X-Kashop-Timestamp", "-1", "bad_timestamp"),
        ("X-Kashop-Timestamp", "\u00b2", "bad_timestamp"),
        ("X-Kashop-Nonce", "short", "bad_nonce"),
        ("X-Kashop-Nonce", "x" * 129, "bad_nonce"),
        ("X-Kashop-Nonce", "has spaces in the nonce", "bad_nonce"),
        ("X-Kashop-Signature", "0" * 64, "bad_signature"),
        ("X-Kashop-Signature", "zz", "bad_signature"),
        ("X-Kashop-Signature", "é" * 64, "bad_signature"),
        ("X-Kashop-Key", "kk_doesnotexist000000000000", "invalid_key"),
    ],
)
def test_malformed_or_wrong_header_is_401(client, buyer, field, value, code):
    headers = api_client.signed_headers(buyer.key, buyer.secret, "GET", "/api/v1/balance")
    headers[field] = value
    unauthorized(client.get("/api/v1/balance", headers=headers), code)


def test_signature_with_another_secret_is_401(client, buyer):
    forger = Buyer(buyer.user, buyer.key, "0" * 64)
    unauthorized(call(client, forger, "GET", "/api/v1/balance"), "bad_signature")


def test_signature_for_another_path_or_method_is_401(client, buyer):
    headers = api_client.signed_headers(buyer.key, buyer.secret, "GET", "/api/v1/catalog")
    unauthorized(client.get("/api/v1/balance", headers=headers), "bad_signature")
    headers = api_client.signed_headers(buyer.key, buyer.secret, "POST", "/api/v1/balance")
    unauthorized(client.get("/api/v1/balance", headers=headers), "bad_signature")


def test_query_string_is_part_of_what_is_signed(client, buyer):
    signed = api_client.signed_headers(buyer.key, buyer.secret, "GET", "/api/v1/catalog?a=1")
    assert client.get("/api/v1/catalog?a=1", headers=signed).status_code == 200
    signed = api_client.signed_headers(buyer.key, buyer.secret, "GET", "/api/v1/catalog?a=1")
    unauthorized(client.get("/api/v1/catalog?a=2", headers=signed), "bad_signature")


def test_tampered_body_with_the_original_signature_is_401(client, buyer):
    product = card_product(keys=5)
    signed_for = api_client.encode({"product_id": product.id, "quantity": 1})
    sent = api_client.encode({"product_id": product.id, "quantity": 5})
    headers = api_client.signed_headers(
        buyer.key, buyer.secret, "POST", "/api/v1/orders", signed_for
    )
    headers["Idempotency-Key"] = "tamper"
    response = client.post("/api/v1/orders", data=sent, headers=headers)
    unauthorized(response, "bad_signature")
    assert Order.select().count() == 0 and wallet(buyer.user) == 10_000


def test_the_api_ignores_the_browser_session(app, client, buyer):
    """A signed-in browser's cookie lends an API call nothing: the API does not even open
    the session (no cookie to verify or re-sign per call), and its answers set no cookie."""
    login(client, "buyer@example.com", "buyer-pass-1")
    cookie = client.get_cookie("session").value
    with app.test_request_context("/api/v1/balance", headers={"Cookie": f"session={cookie}"}):
        assert app.session_interface.is_null_session(session)
    with app.test_request_context("/account", headers={"Cookie": f"session={cookie}"}):
        assert "_user_id" in session
    unauthorized(client.get("/api/v1/balance"), "missing_signature")
    headers = api_client.signed_headers(buyer.key, buyer.secret, "GET", "/api/v1/balance")
    response = client.get("/api/v1/balance", headers=headers)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_replayed_nonce_is_401(client, buyer):
    headers = api_client.signed_headers(buyer.key, buyer.secret, "GET", "/api/v1/balance")
    assert client.get("/api/v1/balance", headers=headers).status_code == 200
    unauthorized(client.get("/api/v1/balance", headers=headers), "replayed_nonce")


def test_the_same_nonce_under_another_key_is_its_own(client, buyer):
    other = new_buyer("other@example.com")
    nonce = "n" * 32
    assert call(client, buyer, "GET", "/api/v1/balance", nonce=nonce).status_code == 200
    assert call(client, other, "GET", "/api/v1/balance", nonce=nonce).status_code == 200


def test_a_refused_order_cannot_be_replayed_after_it_could_succeed(client, app, owner):
    """The nonce of a request that failed (short wallet) is kept although the order's
    transaction rolled back: replaying it after a top-up must not buy."""
    poor = new_buyer("poor@example.com", wallet=500)
    product = card_product(keys=2)
    body = api_client.encode({"product_id": product.id, "quantity": 1})
    headers = api_client.signed_headers(poor.key, poor.secret, "POST", "/api/v1/orders", body)
    headers["Idempotency-Key"] = "try-1"
    assert client.post("/api/v1/orders", data=body, headers=headers).status_code == 402
    ledger.transfer(
        ledger.system_account("equity"), ledger.user_account(poor.user.id, "wallet"), 5000, "t"
    )
    unauthorized(client.post("/api/v1/orders", data=body, headers=headers), "replayed_nonce")
    assert Order.select().count() == 0


def test_a_successful_order_cannot_be_replayed(client, buyer):
    product = card_product(keys=3)
    body = api_client.encode({"product_id": product.id, "quantity": 1})
    headers = api_client.signed_headers(buyer.key, buyer.secret, "POST", "/api/v1/orders", body)
    headers["Idempotency-Key"] = "once"
    assert client.post("/api/v1/orders", data=body, headers=headers).status_code == 201
    unauthorized(client.post("/api/v1/orders", data=body, headers=headers), "replayed_nonce")
    assert Order.select().count() == 1


def test_revoked_key_and_disabled_user_are_401(client, buyer):
    assert call(client, buyer, "GET", "/api/v1/balance").status_code == 200
    keys.revoke(buyer.key)
    unauthorized(call(client, buyer, "GET", "/api/v1/balance"), "invalid_key")
    second = new_buyer("second@example.com")
    second.user.is_active = False
    second.user.save()
    unauthorized(call(client, second, "GET", "/api/v1/balance"), "invalid_key")


def test_old_nonces_are_pruned_and_recent_ones_kept(client, buyer):
    call(client, buyer, "GET", "/api/v1/balance")
    old = now() - keys.NONCE_TTL - timedelta(seconds=1)
    ApiNonce.insert(api_key_id=1, nonce="o" * 20, created_at=old).execute()
    assert keys.prune_nonces() == 1
    assert ApiNonce.select().count() == 1


# catalog -----------------------------------------------------------------------------------


def test_catalog_shows_price_stock_bounds_and_fields(client, buyer):
    cards = card_product(keys=4, price=1250, min_qty=1, max_qty=10, tiers_json="[[5, 1000]]")
    fields = [{"name": "account", "label": "QQ number", "pattern": "[0-9]{5,12}"}]
    topup = Product.create(
        name="QQ top-up", kind="recharge", price=3000, fields_json=json.dumps(fields)
    )
    Product.create(name="Hidden", kind="card", price=1, stock=0, visible=False)
    response = call(client, buyer, "GET", "/api/v1/catalog")
    products = conforms(response, "/api/v1/catalog")["products"]
    assert [p["name"] for p in products] == ["Game Card 10", "QQ top-up"]
    card, recharge = products
    assert card == {
        "id": cards.id,
        "name": "Game Card 10",
        "kind": "card",
        "price": 1250,  # one unit: the 5+ tier does not apply
        "currency": "CNY",
        "stock": 4,
        "min_quantity": 1,
        "max_quantity": 10,
        "fields": [],
    }
    assert recharge["id"] == topup.id and recharge["stock"] is None
    assert recharge["fields"] == [
        {"name": "account", "label": "QQ number", "pattern": "[0-9]{5,12}", "required": True}
    ]


def test_product_is_one_catalog_entry_and_hidden_is_404(client, buyer):
    product = card_product(keys=2)
    hidden = Product.create(name="Hidden", kind="card", price=1, stock=0, visible=False)
    one = call(client, buyer, "GET", f"/api/v1/products/{product.id}")
    assert conforms(one, "/api/v1/products/{product_id}")["stock"] == 2
    catalog = call(client, buyer, "GET", "/api/v1/catalog").get_json()["products"]
    assert one.get_json() == catalog[0]
    for missing in (hidden.id, 999999):
        response = call(client, buyer, "GET", f"/api/v1/products/{missing}")
        assert response.status_code == 404
        assert conforms(response, "/api/v1/products/{product_id}")["error"]["code"] == "not_found"


# orders ------------------------------------------------------------------------------------


@pytest.mark.pg
def test_order_is_paid_from_the_wallet_and_delivered(client, buyer):
    product = card_product(keys=5, price=1000)
    response = buy(client, buyer, product.id, 3)
    assert response.status_code == 201, response.get_data(as_text=True)
    order = conforms(response, "/api/v1/orders", "post")
    assert order["status"] == "delivered" and order["amount"] == 3000
    assert order["quantity"] == 3 and order["product_id"] == product.id
    secrets = [item["secret"] for item in order["items"]]
    assert len(set(secrets)) == 3
    assert set(secrets) <= {f"KEY-{product.id}-{i:05d}" for i in range(5)}
    assert response.headers["Location"].endswith(f"/api/v1/orders/{order['order_no']}")
    assert wallet(buyer.user) == 10_000 - 3000
    assert Product.get_by_id(product.id).stock == 2
    again = call(client, buyer, "GET", f"/api/v1/orders/{order['order_no']}")
    assert conforms(again, "/api/v1/orders/{order_no}") == order
    healthy()


def _history(order) -> list[tuple]:
    events = OrderEvent.select().where(OrderEvent.order == order.id).order_by(OrderEvent.id)
    return [(e.from_status, e.to_status, e.actor_id, e.reason) for e in events]


@pytest.mark.pg
def test_an_api_order_written_paid_keeps_its_whole_history(client, buyer, monkeypatch):
    """Inserted paid and delivered in one transaction, the order still shows every step of its
    lifecycle (the buyer placed and paid it, the shop delivered it), each order hook fires
    once, and the product counts the sale with its stock."""
    fired = []
    real_fire = plugins.fire
    monkeypatch.setattr(
        plugins, "fire", lambda hook, **kw: fired.append(hook) or real_fire(hook, **kw)
    )
    product = card_product(keys=5)
    response = buy(client, buyer, product.id, 2)
    assert response.status_code == 201, response.get_data(as_text=True)
    order = Order.get(Order.order_no == response.get_json()["order_no"])
    uid = buyer.user.id
    assert _history(order) == [
        (None, "pending", uid, ""),
        ("pending", "paid", uid, ""),
        ("paid", "delivered", None, ""),
    ]
    assert [h for h in fired if h.startswith("order_")] == [
        "order_created",
        "order_paid",
        "order_delivered",
    ]
    assert order.paid_at and order.delivered_at and order.settle_after > order.delivered_at
    sold = CardKey.select().where(CardKey.order_id == order.id)
    assert [k.state for k in sold] == ["sold", "sold"] and all(k.sold_at for k in sold)
    stored = Product.get_by_id(product.id)
    assert (stored.stock, stored.sold_count) == (3, 2)
    healthy()


@pytest.mark.pg
def test_an_api_order_held_for_review_keeps_its_keys_reserved(client, buyer, monkeypatch):
    """A risk_check plugin holds the paid order: its keys are reserved for it, not sold and
    not shown, until staff release it."""
    real_fire = plugins.fire
    monkeypatch.setattr(
        plugins,
        "fire",
        lambda hook, **kw: ["velocity"] if hook == "risk_check" else real_fire(hook, **kw),
    )
    product = card_product(keys=3)
    response = buy(client, buyer, product.id, 2)
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["status"] == "held" and answer["items"] == []
    order = Order.get(Order.order_no == answer["order_no"])
    assert _history(order)[-1] == ("paid", "held", None, "velocity")
    assert len(_history(order)) == 3

    def key_states():
        return [k.state for k in CardKey.select().where(CardKey.order_id == order.id)]

    assert key_states() == ["reserved", "reserved"]
    stored = Product.get_by_id(product.id)
    assert (stored.stock, stored.sold_count) == (1, 0)
    assert wallet(buyer.user) == 10_000 - 2 * product.price
    healthy()

    monkeypatch.undo()
    released = orders.release_held(order, actor=None)
    assert released.status == "delivered"
    assert key_states() == ["sold", "sold"]
    assert Product.get_by_id(product.id).sold_count == 2
    healthy()


@pytest.mark.pg
def test_same_idempotency_key_and_body_is_the_same_order(client, buyer):
    product = card_product(keys=5)
    first = buy(client, buyer, product.id, 1, idem="abc")
    # the same body in another key order and spacing is the same request
    raw = json.dumps({"quantity": 1, "product_id": product.id}, indent=2).encode()
    again = call(client, buyer, "POST", "/api/v1/orders", body=raw, idem="abc")
    assert first.status_code == 201 and again.status_code == 200
    assert conforms(again, "/api/v1/orders", "post") == first.get_json()
    conflict = buy(client, buyer, product.id, 2, idem="abc")
    order_refused(conflict, 409, "idempotency_conflict")
    assert Order.select().count() == 1 and wallet(buyer.user) == 9000
    assert Product.get_by_id(product.id).stock == 4


@pytest.mark.pg
def test_a_retry_after_the_last_key_sold_still_gets_its_order(client, buyer):
    """The answer to the order that took the last key was lost; the client retries with the
    same Idempotency-Key: it gets that order with its key, not "sold out"."""
    product = card_product(keys=1)
    first = buy(client, buyer, product.id, 1, idem="last-one")
    retry = buy(client, buyer, product.id, 1, idem="last-one")
    assert first.status_code == 201 and retry.status_code == 200
    assert conforms(retry, "/api/v1/orders", "post") == first.get_json()
    assert len(retry.get_json()["items"]) == 1
    changed = buy(client, buyer, product.id, 2, idem="last-one")
    order_refused(changed, 409, "idempotency_conflict")
    assert Order.select().count() == 1 and wallet(buyer.user) == 9000


def test_idempotency_keys_are_per_user(client, buyer):
    other = new_buyer("other@example.com")
    product = card_product(keys=5)
    mine = buy(client, buyer, product.id, 1, idem="same")
    theirs = buy(client, other, product.id, 1, idem="same")
    assert mine.status_code == theirs.status_code == 201
    assert mine.get_json()["order_no"] != theirs.get_json()["order_no"]


@pytest.mark.parametrize(
    ("idem", "code"), [(None, "idempotency_key_required"), ("k" * 129, "bad_idempotency_key")]
)
def test_idempotency_key_is_required_and_bounded(client, buyer, idem, code):
    product = card_product(keys=2)
    payload = {"product_id": product.id, "quantity": 1}
    response = call(client, buyer, "POST", "/api/v1/orders", payload, idem=idem)
    order_refused(response, 400, code)
    assert Order.select().count() == 0 and wallet(buyer.user) == 10_000


def test_sold_out_is_409_and_changes_nothing(client, buyer):
    product = card_product(keys=2)
    response = buy(client, buyer, product.id, 3)
    order_refused(response, 409, "sold_out")
    assert Order.select().count() == 0 and wallet(buyer.user) == 10_000
    assert Product.get_by_id(product.id).stock == 2


def test_short_wallet_is_402_and_changes_nothing(client, app, owner):
    poor = new_buyer("poor@example.com", wallet=1500)
    product = card_product(keys=3, price=1000)
    response = buy(client, poor, product.id, 2)
    order_refused(response, 402, "insufficient_balance")
    assert wallet(poor.user) == 1500 and Product.get_by_id(product.id).stock == 3
    assert Order.select().count() == 0
    assert CardKey.select().where(CardKey.state == "available").count() == 3
    healthy()


def test_sold_out_is_said_before_a_short_wallet(client, app, owner):
    """Topping up would not help a buyer of a sold-out product: they hear "sold out"."""
    poor = new_buyer("poor@example.com", wallet=100)
    product = card_product(keys=1, price=1000)
    response = buy(client, poor, product.id, 2)
    order_refused(response, 409, "sold_out")
    assert wallet(poor.user) == 100 and Order.select().count() == 0


@pytest.mark.parametrize("quantity", [0, -1, 1.5, 2.0, "2", "abc", 10**30, True, None, [1]])
def test_bad_quantity_is_400(client, buyer, quantity):
    product = card_product(keys=3, max_qty=10)
    response = buy(client, buyer, product.id, quantity)
    order_refused(response, 400, "bad_quantity")
    assert Order.select().count() == 0 and Product.get_by_id(product.id).stock == 3


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json", "bad_json"),
        (b"", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"product_id": "1", "quantity": 1}', "bad_product_id"),
        (b'{"product_id": true, "quantity": 1}', "bad_product_id"),
        (b'{"quantity": 1}', "bad_product_id"),
        (b'{"product_id": 1, "quantity": 1, "fields": ["x"]}', "bad_fields"),
        (b'{"product_id": 1, "quantity": 1, "fields": {"account": 5}}', "bad_fields"),
    ],
)
def test_malformed_order_body_is_400_with_a_message(client, buyer, body, code):
    card_product(keys=3)
    response = call(client, buyer, "POST", "/api/v1/orders", body=body, idem="x")
    assert response.status_code == 400
    error = conforms(response, "/api/v1/orders", "post")["error"]
    assert error["code"] == code and error["message"]
    assert Order.select().count() == 0


def test_unknown_product_is_404(client, buyer):
    response = buy(client, buyer, 424242, 1)
    order_refused(response, 404, "not_found")


def test_recharge_fields_are_checked_against_their_pattern(client, buyer):
    fields = [{"name": "account", "label": "QQ", "pattern": "[0-9]{5,12}"}]
    product = Product.create(name="QQ", kind="recharge", price=100, fields_json=json.dumps(fields))
    bad = buy(client, buyer, product.id, 1, idem="r1", fields={"account": "abc"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_fields"
    good = buy(client, buyer, product.id, 1, idem="r2", fields={"account": "123456"})
    # a recharge waits for staff (or a supplier plugin): paid, no items yet
    assert good.status_code == 201
    assert good.get_json()["status"] == "paid" and good.get_json()["items"] == []
    waiting = Order.get(Order.order_no == good.get_json()["order_no"])
    uid = buyer.user.id
    assert _history(waiting) == [(None, "pending", uid, ""), ("pending", "paid", uid, "")]


def test_client_sent_price_and_amount_are_ignored(client, buyer):
    product = card_product(keys=2, price=1000)
    response = buy(client, buyer, product.id, 1, price=1, amount=1, unit_price=0)
    assert response.status_code == 201
    assert response.get_json()["amount"] == 1000 and wallet(buyer.user) == 9000


@pytest.mark.pg
def test_a_free_product_is_delivered_without_touching_the_wallet(client, app, owner, monkeypatch):
    """Nothing to pay: the order still goes through every step with its hooks, paid "free",
    and no money moves, so an empty wallet is no obstacle."""
    fired = []
    real_fire = plugins.fire
    monkeypatch.setattr(
        plugins, "fire", lambda hook, **kw: fired.append(hook) or real_fire(hook, **kw)
    )
    broke = new_buyer("broke@example.com", wallet=0)
    product = free_product(keys=3)
    response = buy(client, broke, product.id, 2)
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = conforms(response, "/api/v1/orders", "post")
    assert answer["status"] == "delivered" and answer["amount"] == 0
    assert len({item["secret"] for item in answer["items"]}) == 2
    order = Order.get(Order.order_no == answer["order_no"])
    assert order.gateway == "free"
    assert [step[:2] for step in _history(order)] == [
        (None, "pending"),
        ("pending", "paid"),
        ("paid", "delivered"),
    ]
    assert [h for h in fired if h.startswith("order_")] == [
        "order_created",
        "order_paid",
        "order_delivered",
    ]
    assert wallet(broke.user) == 0 and Product.get_by_id(product.id).stock == 1
    assert not Journal.select().where(Journal.ref == order.order_no).exists()
    healthy()


def test_a_zero_price_for_a_product_not_marked_free_is_400_and_changes_nothing(client, buyer):
    product = card_product(keys=2, price=0, cost=0)
    response = buy(client, buyer, product.id, 1)
    order_refused(response, 400, "bad_price")
    assert response.get_json()["error"]["message"] == "This product cannot be sold at no charge."
    assert Order.select().count() == 0 and wallet(buyer.user) == 10_000
    assert Product.get_by_id(product.id).stock == 2
    healthy()


def test_another_users_order_is_404_like_a_missing_one(client, buyer):
    product = card_product(keys=2)
    order_no = buy(client, buyer, product.id).get_json()["order_no"]
    other = new_buyer("other@example.com")
    theirs = call(client, other, "GET", f"/api/v1/orders/{order_no}")
    missing = call(client, other, "GET", "/api/v1/orders/K000000NOSUCHORDER")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_json() == missing.get_json()
    conforms(theirs, "/api/v1/orders/{order_no}")
    confirm = call(client, other, "POST", f"/api/v1/orders/{order_no}/confirm")
    assert confirm.status_code == 404
    assert Order.get(Order.order_no == order_no).status == "delivered"


@pytest.mark.pg
def test_confirm_completes_and_settles_the_escrow(client, buyer):
    product = card_product(keys=2, price=1000, cost=600)
    order_no = buy(client, buyer, product.id).get_json()["order_no"]
    assert ledger.balance(ledger.system_account("escrow")) == 1000
    path = f"/api/v1/orders/{order_no}/confirm"
    response = call(client, buyer, "POST", path)
    assert response.status_code == 200
    order = conforms(response, "/api/v1/orders/{order_no}/confirm", "post")
    assert order["status"] == "completed" and len(order["items"]) == 1
    assert ledger.balance(ledger.system_account("escrow")) == 0
    assert ledger.balance(ledger.system_account("cost_of_goods")) == 600
    assert ledger.balance(ledger.system_account("revenue")) == 400
    again = call(client, buyer, "POST", path)
    assert again.status_code == 409
    assert conforms(again, "/api/v1/orders/{order_no}/confirm", "post")["error"]["code"] == (
        "not_delivered"
    )
    healthy()


def test_balance_reads_every_ledger_account(client, buyer):
    uid = buyer.user.id
    ledger.transfer(
        ledger.system_account("points_pool"), ledger.user_account(uid, "points"), 70, "t"
    )
    ledger.transfer(
        ledger.system_account("revenue"), ledger.user_account(uid, "commission_available"), 30, "t"
    )
    ledger.transfer(
        ledger.system_account("revenue"), ledger.user_account(uid, "commission_pending"), 20, "t"
    )
    response = call(client, buyer, "GET", "/api/v1/balance")
    assert conforms(response, "/api/v1/balance") == {
        "wallet": 10_000,
        "commission_pending": 20,
        "commission_available": 30,
        "points": 70,
    }


# the reference -----------------------------------------------------------------------------


def test_openapi_is_valid_and_describes_every_route(app, client, owner):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    validate_spec(doc)
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert routes and routes == documented
    for path, method in routes - {("/api/v1/openapi.json", "get")}:
        responses = doc["paths"][path][method]["responses"]
        assert {"401", "500"} <= set(responses), (path, method)


def test_unknown_api_route_is_a_json_404(client, buyer):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


# keys: account page and CLI ----------------------------------------------------------------


def test_account_page_creates_a_key_whose_secret_is_shown_once(client, app, owner):
    customer("alice@example.com")
    login(client, "alice@example.com", "buyer-pass-1")
    assert "/account/api-keys" in client.get("/account").get_data(as_text=True)
    created = submit(client, "/account/api-keys", {"label": "my bot"})
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    page = created.get_data(as_text=True)
    key = ApiKey.get(ApiKey.label == "my bot")
    secret = key.secret
    assert key.key_id in page and secret in page
    assert secret not in client.get("/account/api-keys").get_data(as_text=True)
    who = Buyer(key.user, key.key_id, secret)
    assert call(client, who, "GET", "/api/v1/balance").status_code == 200


def test_secret_is_encrypted_at_rest(app, buyer):
    cursor = ApiKey._meta.database.execute_sql("SELECT secret FROM api_key")
    [(stored,)] = list(cursor)
    assert stored != buyer.secret and stored.startswith("v1.")


def test_account_page_revokes_only_your_own_key(client, app, owner):
    mine = new_buyer("alice@example.com")
    theirs = new_buyer("bob@example.com")
    login(client, "alice@example.com", "buyer-pass-1")
    page = "/account/api-keys"
    submit(client, f"/account/api-keys/{theirs.key}/revoke", {}, form_url=page)
    assert ApiKey.get(ApiKey.key_id == theirs.key).enabled
    response = submit(client, f"/account/api-keys/{mine.key}/revoke", {}, form_url=page)
    assert response.status_code == 302
    assert not ApiKey.get(ApiKey.key_id == mine.key).enabled
    assert "revoked" in client.get(page).get_data(as_text=True)
    unauthorized(call(client, mine, "GET", "/api/v1/balance"), "invalid_key")


def test_account_key_forms_need_csrf_and_a_session(client, app, owner):
    mine = new_buyer("alice@example.com")
    assert client.get("/account/api-keys").status_code == 302  # signed out: to the login
    login(client, "alice@example.com", "buyer-pass-1")
    assert client.post(f"/account/api-keys/{mine.key}/revoke").status_code == 400
    assert client.post("/account/api-keys", data={"label": "x"}).status_code == 400
    assert ApiKey.get(ApiKey.key_id == mine.key).enabled and ApiKey.select().count() == 1


def test_cli_creates_a_key_that_signs(app, client, buyer):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["shop", "apikey", "create", str(buyer.user.id), "--label", "erp", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"key", "secret"} and out["key"].startswith("kk_")
    who = Buyer(buyer.user, out["key"], out["secret"])
    assert call(client, who, "GET", "/api/v1/balance").status_code == 200
    revoked = runner.invoke(args=["shop", "apikey", "revoke", out["key"], "--json"])
    assert revoked.exit_code == 0 and json.loads(revoked.output)["enabled"] is False
    unauthorized(call(client, who, "GET", "/api/v1/balance"), "invalid_key")


def test_a_user_holds_at_most_20_active_keys(app, buyer):
    for _ in range(keys.MAX_ACTIVE_KEYS - 1):
        keys.create(buyer.user.id)
    with pytest.raises(keys.ApiKeyError):
        keys.create(buyer.user.id)
    keys.revoke(buyer.key)
    keys.create(buyer.user.id)
    assert ApiKey.select().where(ApiKey.enabled).count() == keys.MAX_ACTIVE_KEYS


@pytest.mark.parametrize("user_id", ["999999", "0", "abc", "1" * 40])
def test_cli_refuses_an_unknown_user(app, owner, user_id):
    result = app.test_cli_runner().invoke(args=["shop", "apikey", "create", user_id, "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["error"]["code"] == "not_found"
    assert ApiKey.select().count() == 0


# concurrency against a real server ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(app, owner, tmp_path):
    """`python app.py` (gunicorn, 4 workers) on the test's instance and database."""
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--workers", "4", "--no-worker"],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(base + "/api/v1/openapi.json", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the server did not start: " + (tmp_path / "server.log").read_text())
        time.sleep(0.2)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def in_parallel(jobs):
    """Run the callables at once (released together by a barrier); their results in order."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except Exception as exc:  # a crash must fail the test, not vanish in a thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request hung"
    return results


@pytest.mark.pg
def test_200_buyers_race_for_50_keys_on_a_real_server(server):
    price = 1000
    product = card_product(keys=50, price=price)
    buyers = [new_buyer(f"racer{i}@example.com", wallet=price) for i in range(200)]

    def attempt(who):
        def job():
            payload = {"product_id": product.id, "quantity": 1}
            idem = f"race-{who.user.id}"
            with requests.Session() as http:
                r = api_client.call(
                    http, server, who.key, who.secret, "POST", ORDERS, payload, idempotency_key=idem
                )
            return who, r.status_code, r.json()

        return job

    results = in_parallel([attempt(b) for b in buyers])
    crashed = [r for r in results if isinstance(r, Exception)]
    assert not crashed, crashed[:3]
    statuses = sorted(status for _, status, _ in results)
    assert statuses.count(201) == 50 and statuses.count(409) == 150, statuses
    sold_out = [body for _, status, body in results if status == 409]
    assert all(body["error"]["code"] == "sold_out" for body in sold_out)
    secrets = [i["secret"] for _, status, body in results if status == 201 for i in body["items"]]
    assert len(secrets) == len(set(secrets)) == 50
    assert set(secrets) == {f"KEY-{product.id}-{i:05d}" for i in range(50)}
    for who, status, _ in results:
        assert wallet(who.user) == (0 if status == 201 else price)
    assert Product.get_by_id(product.id).stock == 0
    assert CardKey.select().where(CardKey.state == "sold").count() == 50
    assert ledger.balance(ledger.system_account("escrow")) == 50 * price
    healthy()


@pytest.mark.pg
def test_one_idempotency_key_sent_by_10_threads_is_one_order(server):
    product = card_product(keys=5, price=1000)
    who = new_buyer("twin@example.com", wallet=10_000)

    def job():
        payload = {"product_id": product.id, "quantity": 1}
        with requests.Session() as http:
            r = api_client.call(
                http,
                server,
                who.key,
                who.secret,
                "POST",
                ORDERS,
                payload,
                idempotency_key="the-one",
            )
        return r.status_code, r.json()

    results = in_parallel([job] * 10)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(status for status, _ in results) == [200] * 9 + [201], results
    assert len({body["order_no"] for _, body in results}) == 1
    assert len({body["items"][0]["secret"] for _, body in results}) == 1
    assert Order.select().count() == 1
    assert wallet(who.user) == 9000 and Product.get_by_id(product.id).stock == 4
    healthy()
