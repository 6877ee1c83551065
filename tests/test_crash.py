"""A real process killed between a payment's commit and its delivery (invariant 5): on
restart the worker delivers the order exactly once, and the gateway's retry changes nothing."""

import os
import signal
import subprocess
import sys

import pytest
from processes import ROOT, Started, shop_env, wait_for
from selling import card_product

from shop import invariants, ledger
from shop.inventory.models import CardKey
from shop.orders import service as orders
from shop.orders.models import Order, OrderEvent
from shop.payments import service as payments

PAY = (
    "import sys\n"
    "from shop import create_app\n"
    "from shop.payments import service\n"
    "app = create_app()\n"
    "with app.app_context():\n"
    "    print(service.record_payment('sandbox', 'crash-txn', sys.argv[1], int(sys.argv[2])))\n"
)


def child_env(**extra):
    keep = {k: os.environ[k] for k in ("SHOP_INSTANCE", "SHOP_DATABASE_URL")}
    return shop_env(**keep, **extra)


@pytest.mark.pg
def test_killed_after_payment_commit_is_delivered_once_after_restart(app, tmp_path):
    with app.app_context():
        product = card_product(keys=3)
        order = orders.place_order(
            product.id, 2, contact="buyer@example.com", query_password="open-1"
        )
    args = [sys.executable, "-c", PAY, order.order_no, str(order.amount)]
    died = subprocess.run(
        args,
        cwd=ROOT,
        env=child_env(SHOP_CRASH_AT="payment.committed"),
        capture_output=True,
        timeout=60,
    )
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]
    with app.app_context():
        paid = Order.get_by_id(order.id)
        assert paid.status == "paid"  # the money is in, the keys are not handed over yet
        assert ledger.balance(ledger.system_account("escrow")) > 0
        assert CardKey.select().where(CardKey.state == "sold").count() == 0

    worker = Started(
        ["-m", "flask", "--app", "app", "shop", "worker"],
        ROOT,
        child_env(),
        tmp_path / "worker.log",
    )
    try:

        def delivered():
            with app.app_context():
                return Order.get_by_id(order.id).status == "delivered"

        assert wait_for(delivered, timeout=45), worker.log()[-3000:]
    finally:
        worker.stop(signal.SIGINT)
        worker.cleanup()

    retry = subprocess.run(args, cwd=ROOT, env=child_env(), capture_output=True, timeout=60)
    assert retry.returncode == 0 and retry.stdout.strip() == b"already"
    with app.app_context():
        sold = list(CardKey.select().where(CardKey.state == "sold"))
        assert len(sold) == 2 and {k.order_id for k in sold} == {order.id}
        events = [e.to_status for e in OrderEvent.select().where(OrderEvent.order == order.id)]
        assert events.count("delivered") == 1 and events.count("paid") == 1
        assert len(orders.delivered_items(Order.get_by_id(order.id))) == 2
        assert payments.record_payment("sandbox", "crash-txn", order.order_no, 2000) == "already"
        assert {k: v for k, v in invariants.run_all().items() if v} == {}
