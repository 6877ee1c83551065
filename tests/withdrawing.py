"""Helpers for withdrawal tests on an app: a referrer holding commission, a request made
through the service, and what the tests compare before and after."""

from shop import ledger
from shop.accounts import service as accounts
from shop.withdrawals import service as withdrawals
from shop.withdrawals.models import Withdrawal

ACCOUNT = "6222021234567890123"
MASKED = "62***************23"
REFERRER = ("referrer@example.com", "referrer-pass-1")


def referrer_with_commission(app, amount: int = 5000) -> int:
    """A signed-up referrer holding `amount` of available commission, credited straight
    through the ledger (the commission engine is another area's); returns the user id."""
    with app.app_context():
        user = accounts.register(*REFERRER)
        ledger.transfer(
            ledger.system_account("revenue"),
            ledger.user_account(user.id, "commission_available"),
            amount,
            "test.commission",
        )
        return user.id


def requested(app, user_id: int, amount: int = 2000) -> int:
    with app.app_context():
        return withdrawals.request(user_id, amount, "bank", "王小明", ACCOUNT).id


def balances(app, user_id: int) -> dict:
    with app.app_context():
        return {
            **withdrawals.balances(user_id),
            "wallet": ledger.balance(ledger.user_account(user_id, "wallet")),
            "payout": ledger.balance(ledger.system_account("payout")),
        }


def stored(app) -> list[tuple]:
    with app.app_context():
        return [
            (w.id, w.status, w.amount, w.reason, w.reference)
            for w in Withdrawal.select().order_by(Withdrawal.id)
        ]
