"""The OpenAPI 3.1 document served at /api/v1/openapi.json: the API's reference.

Built as data rather than kept as a JSON file so each error status is declared once, with
the exact error codes the API answers it with (the tests validate real answers against these
schemas, so the document cannot drift from the code unnoticed).
"""

import functools

from shop.api import keys, signing
from shop.api.service import BALANCE_KINDS, CURRENCY, MAX_IDEMPOTENCY_KEY
from shop.orders.service import MAX_QUANTITY
from shop.orders.state import TRANSITIONS

SIGNING = f"""Every route except this document needs a signed request. Send four headers:

- `{signing.KEY_HEADER}`: the key id (`kk_...`), from the account page or
  `flask --app app shop apikey create USER_ID`.
- `{signing.TIMESTAMP_HEADER}`: unix seconds; refused when more than {keys.SKEW_SECONDS} s
  from the shop's clock.
- `{signing.NONCE_HEADER}`: 16 to 128 printable ASCII characters, never reused by the key.
- `{signing.SIGNATURE_HEADER}`: lower-case hex HMAC-SHA256, keyed with the secret as the text
  it was shown as (UTF-8), of

      METHOD + "\\n" + PATH_WITH_QUERY + "\\n" + TIMESTAMP + "\\n" + NONCE + "\\n"
      + hex SHA-256 of the raw body

  `PATH_WITH_QUERY` is the request target exactly as sent (`/api/v1/orders/K...`); the body
  of a GET is empty, so its hash is that of the empty string.

Amounts are integers in minor units (fen) of `{CURRENCY}`. Errors are
`{{"error": {{"code", "message"}}}}`; the code is stable, the message is for people."""


def _error(description: str, *codes: str) -> dict:
    schema = {"$ref": "#/components/schemas/Error"}
    if codes:
        schema = {
            "allOf": [
                schema,
                {"properties": {"error": {"properties": {"code": {"enum": list(codes)}}}}},
            ]
        }
    codes_text = ", ".join(f"`{c}`" for c in codes)
    return {
        "description": f"{description} Codes: {codes_text}." if codes else description,
        "content": {"application/json": {"schema": schema}},
    }


def _json(schema_name: str, description: str, headers: dict | None = None) -> dict:
    response = {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }
    if headers:
        response["headers"] = headers
    return response


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/responses/{name}"}


RESPONSES = {
    "Unauthorized": _error(
        "The request is not signed as described above.",
        "missing_signature",
        "bad_timestamp",
        "stale_timestamp",
        "bad_nonce",
        "invalid_key",
        "bad_signature",
        "replayed_nonce",
    ),
    "NotFound": _error(
        "No such product or order, or the order is another user's (the two look the same).",
        "not_found",
    ),
    "BadOrderRequest": _error(
        "The order request is malformed or outside the product's rules; nothing was changed.",
        "bad_json",
        "bad_product_id",
        "bad_quantity",
        "bad_fields",
        "bad_price",
        "idempotency_key_required",
        "bad_idempotency_key",
    ),
    "PaymentRequired": _error(
        "The wallet is too low for the order; nothing was changed.", "insufficient_balance"
    ),
    "OrderConflict": _error(
        "`sold_out`: not enough stock left (nothing was changed). `idempotency_conflict`: "
        "the Idempotency-Key was used before with another body.",
        "sold_out",
        "idempotency_conflict",
    ),
    "NotDelivered": _error("Only a delivered order can be confirmed.", "not_delivered"),
    "ServerError": _error("Something failed on the shop's side.", "server_error"),
}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Field": {
        "type": "object",
        "description": "Something the buyer must send in `fields` (e.g. the account to top up).",
        "required": ["name", "label", "pattern", "required"],
        "properties": {
            "name": {"type": "string"},
            "label": {"type": "string"},
            "pattern": {
                "type": ["string", "null"],
                "description": "A regular expression the whole value must match.",
            },
            "required": {"type": "boolean"},
        },
    },
    "Product": {
        "type": "object",
        "required": [
            "id",
            "name",
            "kind",
            "price",
            "currency",
            "stock",
            "min_quantity",
            "max_quantity",
            "fields",
        ],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "kind": {"enum": ["card", "recharge", "manual"]},
            "price": {
                "type": "integer",
                "minimum": 0,
                "description": "Unit price for one, at the key owner's level, in minor units.",
            },
            "currency": {"const": CURRENCY},
            "stock": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "Card keys available; null where stock is not counted.",
            },
            "min_quantity": {"type": "integer", "minimum": 1},
            "max_quantity": {"type": "integer", "maximum": MAX_QUANTITY},
            "fields": {"type": "array", "items": {"$ref": "#/components/schemas/Field"}},
        },
    },
    "Catalog": {
        "type": "object",
        "required": ["products"],
        "properties": {
            "products": {"type": "array", "items": {"$ref": "#/components/schemas/Product"}}
        },
    },
    "OrderRequest": {
        "type": "object",
        "required": ["product_id", "quantity"],
        "description": "Any other member (such as a price) is ignored: the shop prices orders.",
        "properties": {
            "product_id": {"type": "integer", "minimum": 1},
            "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "Order": {
        "type": "object",
        "required": [
            "order_no",
            "status",
            "product_id",
            "quantity",
            "amount",
            "currency",
            "items",
            "created_at",
        ],
        "properties": {
            "order_no": {"type": "string"},
            "status": {"enum": sorted(s for s in TRANSITIONS if s)},
            "product_id": {"type": "integer"},
            "quantity": {"type": "integer", "minimum": 1},
            "amount": {"type": "integer", "minimum": 0, "description": "Paid, minor units."},
            "currency": {"const": CURRENCY},
            "items": {
                "type": "array",
                "description": "The delivered goods; empty until the order is delivered.",
                "items": {
                    "type": "object",
                    "required": ["secret"],
                    "properties": {"secret": {"type": "string"}},
                },
            },
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Balance": {
        "type": "object",
        "required": list(BALANCE_KINDS),
        "properties": {
            kind: {
                "type": "integer",
                "minimum": 0,
                "description": "Points." if kind == "points" else "Minor units.",
            }
            for kind in BALANCE_KINDS
        },
    },
}

ORDER_NO = {"name": "order_no", "in": "path", "required": True, "schema": {"type": "string"}}


def _operation(summary: str, ok: dict, *errors: tuple[str, str], **extra) -> dict:
    responses = {**ok, "401": _ref("Unauthorized")}
    responses.update({status: _ref(name) for status, name in errors})
    responses["500"] = _ref("ServerError")
    return {"summary": summary, "responses": responses, **extra}


PATHS = {
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document (not signed).",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
    "/api/v1/catalog": {
        "get": _operation(
            "Products visible to the key's user, with their price and stock.",
            {"200": _json("Catalog", "The catalog.")},
        )
    },
    "/api/v1/products/{product_id}": {
        "get": _operation(
            "One product, as in the catalog.",
            {"200": _json("Product", "The product.")},
            ("404", "NotFound"),
            parameters=[
                {
                    "name": "product_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                }
            ],
        )
    },
    "/api/v1/orders": {
        "post": _operation(
            "Buy: an order paid from the key owner's wallet (a free product's takes nothing from "
            "it), delivered at once when it can be.",
            {
                "201": _json(
                    "Order",
                    "The new order, with its delivered items.",
                    {
                        "Location": {
                            "description": "Where to fetch the order again.",
                            "schema": {"type": "string"},
                        }
                    },
                ),
                "200": _json(
                    "Order", "The order this Idempotency-Key and body created before (a replay)."
                ),
            },
            ("400", "BadOrderRequest"),
            ("402", "PaymentRequired"),
            ("404", "NotFound"),
            ("409", "OrderConflict"),
            parameters=[
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "description": "Your unique name for this order: sending the same key and "
                    "body again returns the same order instead of buying twice.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
                }
            ],
            requestBody={
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/OrderRequest"}}
                },
            },
        )
    },
    "/api/v1/orders/{order_no}": {
        "get": _operation(
            "One of the key owner's orders, with its delivered items.",
            {"200": _json("Order", "The order.")},
            ("404", "NotFound"),
            parameters=[ORDER_NO],
        )
    },
    "/api/v1/orders/{order_no}/confirm": {
        "post": _operation(
            "Confirm receipt: the order completes and its payment settles to the shop.",
            {"200": _json("Order", "The completed order.")},
            ("404", "NotFound"),
            ("409", "NotDelivered"),
            parameters=[ORDER_NO],
        )
    },
    "/api/v1/balance": {
        "get": _operation(
            "The key owner's balances.", {"200": _json("Balance", "Balances, integers.")}
        )
    },
}

SECURITY_SCHEMES = {
    name: {"type": "apiKey", "in": "header", "name": header}
    for name, header in (
        ("key", signing.KEY_HEADER),
        ("timestamp", signing.TIMESTAMP_HEADER),
        ("nonce", signing.NONCE_HEADER),
        ("signature", signing.SIGNATURE_HEADER),
    )
}


@functools.cache
def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kashop API", "version": "1.0.0", "description": SIGNING},
        "servers": [{"url": "/"}],
        "security": [dict.fromkeys(SECURITY_SCHEMES, [])],
        "paths": PATHS,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": SCHEMAS,
            "responses": RESPONSES,
        },
    }
