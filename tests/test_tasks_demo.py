"""The background jobs run the order services on their schedule, the worker delivers what a
crash left paid as it starts, and the demo catalog gives a shop that sells at once."""

import json
from datetime import datetime, timedelta

import pytest
from selling import card_product

from shop.catalog.models import Category, Product
from shop.inventory.models import CardKey
from shop.orders import service as orders
from shop.orders.models import Order
from shop.payments import service as payments


@pytest.fixture
def tasks(app, monkeypatch):
    """The tasks module, imported only now: its huey queue is created in the test's instance
    folder, and tasks run in the test's app instead of building one of their own."""
    from shop import tasks, worker

    monkeypatch.setattr(worker, "_app", app)
    return tasks


@pytest.mark.parametrize(
    "name, runs_at, skips",
    [
        ("expire_orders", (0, 1, 37), ()),
        ("resume_paid", (0, 1, 37), ()),
        ("complete_orders", (0, 5, 55), (1, 3, 37)),
    ],
)
def test_schedules(tasks, name, runs_at, skips):
    task = getattr(tasks, name).task_class()
    at = lambda minute: datetime(2025, 1, 1, 12, minute)  # noqa: E731
    assert all(task.validate_datetime(at(m)) for m in runs_at)
    assert not any(task.validate_datetime(at(m)) for m in skips)


def test_tasks_run_the_order_services(app, tasks, monkeypatch):
    with app.app_context():
        product = card_product(keys=2)
        unpaid = orders.place_order(product.id, 1, contact="a@example.com", query_password="pw-1")
        paid = orders.place_order(product.id, 1, contact="b@example.com", query_password="pw-2")
        payments.record_payment("sandbox", "t1", paid.order_no, paid.amount)
    later = paid.expires_at + timedelta(days=2)
    monkeypatch.setattr(orders, "now", lambda: later)
    assert tasks.expire_orders.call_local() == 1
    assert tasks.complete_orders.call_local() == 1
    with app.app_context():
        assert Order.get_by_id(unpaid.id).status == "expired"
        assert Order.get_by_id(paid.id).status == "completed"
        assert Product.get_by_id(product.id).stock == 1


def test_resume_paid_delivers_an_order_left_paid(app, tasks, monkeypatch):
    with app.app_context():
        product = card_product(keys=1)
        order = orders.place_order(product.id, 1, contact="a@example.com", query_password="pw-1")
        with monkeypatch.context() as crash:
            # the process "dies" between the payment's commit and the delivery
            crash.setattr(orders, "deliver", lambda order_id: Order.get_by_id(order_id))
            payments.record_payment("sandbox", "t1", order.order_no, order.amount)
        assert Order.get_by_id(order.id).status == "paid"
    monkeypatch.setattr(orders, "now", lambda: order.expires_at)
    assert tasks.resume_paid.call_local() == 1
    assert tasks.resume_paid.call_local() == 0  # never twice
    with app.app_context():
        assert Order.get_by_id(order.id).status == "delivered"
        assert CardKey.select().where(CardKey.state == "sold").count() == 1


def test_worker_queues_resume_paid_as_it_starts(app, tasks, monkeypatch):
    from shop import worker

    queued, ran = [], []
    monkeypatch.setattr(tasks, "resume_paid", lambda: queued.append("resume_paid"))

    class Consumer:
        def __init__(self, huey, **options):
            pass

        def run(self):
            ran.append(queued[:])

    monkeypatch.setattr("huey.consumer.Consumer", Consumer)
    worker.run_consumer(app)
    assert ran == [["resume_paid"]]


def test_demo_catalog_sells_at_once_and_loads_once(app):
    runner = app.test_cli_runner()
    args = ["shop", "init", "--admin-email", "boss@example.com", "--admin-password"]
    first = runner.invoke(args=[*args, "boss-pass-1", "--demo", "--json"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        products = list(Product.select())
        kinds = {p.kind for p in products}
        assert kinds == {"card", "recharge", "manual"} and len(products) >= 10
        assert 2 <= Category.select().count() <= 3
        cards = [p for p in products if p.kind == "card"]
        assert all(p.stock == 20 and p.visible for p in cards)
        assert any("Steam" in p.name for p in products)
        recharge = next(p for p in products if p.kind == "recharge")
        assert recharge.fields and recharge.fields[0]["required"]
        order = orders.place_order(
            cards[0].id, 1, contact="guest@example.com", query_password="open-sesame"
        )
        payments.record_payment("sandbox", "demo-1", order.order_no, order.amount)
        delivered = orders.delivered_items(Order.get_by_id(order.id))
        assert len(delivered) == 1 and delivered[0].startswith("DEMO-")
        counts = (Product.select().count(), CardKey.select().count())
    again = runner.invoke(args=[*args, "boss-pass-1", "--demo", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["created"] is False
    with app.app_context():
        assert (Product.select().count(), CardKey.select().count()) == counts
