"""The selling commands of the operator CLI: what they print, and that bad input is exit 2
with a JSON error and nothing changed."""

import json

import pytest

from shop import ledger
from shop.accounts import service as accounts
from shop.catalog.models import Category, Product
from shop.inventory import service as inventory
from shop.inventory.models import CardKey
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import service as payments


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def run(*args, input=None):
        result = runner.invoke(args=["shop", *args, "--json"], input=input)
        return result.exit_code, json.loads(result.stdout)

    return run


def add_card_product(cli, *extra):
    code, out = cli("product", "add", "--name", "Steam ¥50", "--price", "50.00", *extra)
    assert code == 0, out
    return out["id"]


def test_product_add_creates_the_category_once(app, cli):
    first = add_card_product(cli, "--cost", "45.50", "--category", "Game cards")
    code, out = cli(
        "product", "add", "--name", "Top-up", "--price", "10", "--kind", "recharge",
        "--category", "Game cards", "--min-qty", "2", "--max-qty", "5",
    )  # fmt: skip
    assert code == 0
    with app.app_context():
        product = Product.get_by_id(first)
        assert (product.price, product.cost, product.kind, product.stock) == (5000, 4550, "card", 0)
        second = Product.get_by_id(out["id"])
        assert (second.kind, second.min_qty, second.max_qty) == ("recharge", 2, 5)
        assert second.stock is None
        assert Category.select().count() == 1
        assert product.category_id == second.category_id


def test_product_add_below_cost_warns(cli):
    code, out = cli("product", "add", "--name", "Loss", "--price", "5.00", "--cost", "6.00")
    assert code == 0 and "below the cost" in out["warnings"][0]


def test_product_add_free_is_given_away_at_no_charge(app, cli):
    """`--free` is what lets a price of 0 through (without it, 0 is refused below); a buyer
    then gets its key without paying anything."""
    code, out = cli("product", "add", "--name", "Gift", "--price", "0", "--free")
    assert code == 0
    with app.app_context():
        product = Product.get_by_id(out["id"])
        assert (product.price, product.free) == (0, True)
        inventory.import_keys(product, ["GIFT-1"])
        buyer = accounts.register("taker@example.com", "taker-pass-1")
        order = orders.place_order(product.id, 1, user=buyer)
        assert (order.status, order.amount, order.gateway) == ("delivered", 0, "free")


@pytest.mark.parametrize(
    "args, field",
    [
        (["--price", "10.00"], "name"),
        (["--name", "X"], "price"),
        (["--name", "X", "--price", "1.234"], "price"),
        (["--name", "X", "--price", "-5"], "price"),
        (["--name", "X", "--price", "abc"], "price"),
        (["--name", "X", "--price", "0"], "price"),
        (["--name", "X", "--price", "1", "--cost", "-1"], "cost"),
        (["--name", "X", "--price", "1", "--kind", "gift"], "kind"),
        (["--name", "X", "--price", "1", "--min-qty", "0"], "minimum quantity"),
        (["--name", "X", "--price", "1", "--min-qty", "5", "--max-qty", "4"], "maximum"),
        (["--name", "X", "--price", "1", "--max-qty", "100001"], "maximum"),
    ],
)
def test_product_add_bad_input_is_exit_2_and_adds_nothing(app, cli, args, field):
    code, out = cli("product", "add", "--category", "New", *args)
    assert code == 2
    assert field in out["error"]["message"].lower()
    with app.app_context():
        assert Product.select().count() == 0 and Category.select().count() == 0


def test_product_add_says_the_maximum_is_below_the_minimum(cli):
    code, out = cli(
        "product", "add", "--name", "X", "--price", "1", "--min-qty", "5", "--max-qty", "2"
    )
    assert code == 2
    assert out["error"]["message"] == (
        "The maximum quantity (2) must be at least the minimum quantity (5)."
    )
    code, out = cli("product", "add", "--name", "X", "--price", "1", "--min-qty", "200")
    assert code == 2  # the default maximum (100) is below it
    assert "maximum quantity (100) must be at least the minimum quantity (200)" in str(out)


def test_keys_import_from_file_and_stdin_counts_duplicates(app, cli, tmp_path):
    product_id = add_card_product(cli)
    path = tmp_path / "keys.txt"
    path.write_text("AAAA-1111\nBBBB-2222\n\nAAAA-1111\n", encoding="utf-8")
    assert cli("keys", "import", str(product_id), str(path)) == (
        0,
        {"imported": 2, "duplicates": 1, "too_long": 0},
    )
    code, out = cli("keys", "import", str(product_id), "-", input="BBBB-2222\nCCCC-3333\n")
    assert (code, out) == (0, {"imported": 1, "duplicates": 1, "too_long": 0})
    with app.app_context():
        assert Product.get_by_id(product_id).stock == 3
        assert CardKey.select().count() == 3


def test_keys_import_reports_lines_too_long_to_be_keys(app, cli):
    product_id = add_card_product(cli)
    code, out = cli("keys", "import", str(product_id), "-", input=f"{'K' * 600}\nAAAA-1111\n")
    assert code == 0
    assert (out["imported"], out["duplicates"], out["too_long"]) == (1, 0, 1)
    assert out["warnings"] == ["Too long to be keys (over 512 characters), skipped: 1."]
    with app.app_context():
        assert Product.get_by_id(product_id).stock == 1

    people = app.test_cli_runner().invoke(
        args=["shop", "keys", "import", str(product_id), "-"], input=f"{'K' * 513}\nBBBB-2222\n"
    )
    assert people.exit_code == 0
    assert people.stdout.splitlines() == ["imported: 1", "duplicates: 0", "too_long: 1"]
    assert "warning: Too long to be keys (over 512 characters), skipped: 1." in people.stderr


def test_keys_import_bad_input(app, cli, tmp_path):
    product_id = add_card_product(cli)
    assert cli("keys", "import", "999", "-", input="K\n")[0] == 2
    assert cli("keys", "import", "abc", "-", input="K\n")[0] == 2
    code, out = cli("keys", "import", str(product_id), str(tmp_path / "missing.txt"))
    assert code == 2 and "cannot read" in out["error"]["message"]
    _, manual = cli("product", "add", "--name", "M", "--price", "1", "--kind", "manual")
    code, out = cli("keys", "import", str(manual["id"]), "-", input="K\n")
    assert code == 2 and "card" in out["error"]["message"]
    with app.app_context():
        assert CardKey.select().count() == 0


def test_wallet_credit(app, cli):
    with app.app_context():
        user = accounts.register("buyer@example.com", "buyer-pass-1")
    assert cli("wallet", "credit", str(user.id), "50.00", "--memo", "cash") == (0, {"wallet": 5000})
    assert cli("wallet", "credit", str(user.id), "0.50") == (0, {"wallet": 5050})
    for amount in ("1.234", "-5", "abc", "0"):
        code, out = cli("wallet", "credit", str(user.id), amount)
        assert code == 2 and out["error"]["message"], amount
    assert cli("wallet", "credit", "999", "1.00")[0] == 2
    with app.app_context():
        assert ledger.balance(ledger.user_account(user.id, "wallet")) == 5050


def paid_order(app, cli, quantity=1):
    product_id = add_card_product(cli, "--cost", "40.00")
    cli("keys", "import", str(product_id), "-", input="AAAA-1111\nBBBB-2222\n")
    with app.app_context():
        order = orders.place_order(
            product_id, quantity, contact="guest@example.com", query_password="open-sesame"
        )
        payments.record_payment("sandbox", "txn-1", order.order_no, order.amount)
    return order.order_no


def test_orders_settle(app, cli):
    order_no = paid_order(app, cli)
    assert cli("orders", "settle", order_no) == (0, {"order_no": order_no, "status": "completed"})
    with app.app_context():
        assert ledger.balance(ledger.system_account("escrow")) == 0
        assert ledger.balance(ledger.system_account("revenue")) == 1000
    code, out = cli("orders", "settle", order_no)  # completed already: wrong state
    assert code == 2 and out["error"]["code"] == "not_delivered"
    assert "completed" in out["error"]["message"]
    code, out = cli("orders", "settle", "K000000NOPE")
    assert code == 2 and out["error"]["code"] == "not_found"


def test_orders_settle_a_paid_order_waiting_for_delivery_keeps_the_services_code(app, cli):
    _, manual = cli("product", "add", "--name", "Top-up", "--price", "10.00", "--kind", "manual")
    with app.app_context():
        order = orders.place_order(
            manual["id"], 1, contact="guest@example.com", query_password="open-sesame"
        )
        payments.record_payment("sandbox", "txn-1", order.order_no, order.amount)
        assert Order.get_by_id(order.id).status == "paid"
    code, out = cli("orders", "settle", order.order_no)
    assert code == 2
    assert out["error"] == {
        "code": "not_delivered",
        "message": "This order is paid; only delivered orders complete.",
    }
    with app.app_context():
        assert Order.get_by_id(order.id).status == "paid"


def test_orders_refund_needs_a_reason(app, cli):
    order_no = paid_order(app, cli)
    code, out = cli("orders", "refund", order_no)
    assert code == 2 and out["error"]["code"] == "reason_required"
    assert "reason" in out["error"]["message"]
    with app.app_context():
        assert Order.get(Order.order_no == order_no).status == "delivered"
    assert cli("orders", "refund", order_no, "--reason", "The key was used") == (
        0,
        {"order_no": order_no, "status": "refunded"},
    )
    with app.app_context():
        order = Order.get(Order.order_no == order_no)
        assert order.reason == "The key was used"
        assert ledger.balance(ledger.system_account("escrow")) == 0
    assert cli("orders", "refund", order_no, "--reason", "again")[0] == 2
    assert cli("orders", "refund", "K000000NOPE", "--reason", "x")[0] == 2
