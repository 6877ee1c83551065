"""Multi-level commission: who earns what on an order, and the money's way through the ledger.

Who: walk up the referrer chain from the buyer (a registered buyer's bound referrer; for a
guest, the referrer whose invite cookie the order carried) as many levels as there are rates.
Depth is the distance from the buyer and never shifts: a member who earns nothing (a staff or
owner account, a disabled account, or the buyer themself, e.g. a guest whose contact is a
member's email) is skipped, their share stays with the shop, and the members above still earn
at their own depth.

What: each depth's rate (see `rates`) of the amount actually paid (`Order.amount`, after any
discount), floored to the fen. The total never exceeds the order's margin (amount − cost):
when it would, every share is scaled down in proportion (floored, so the sum stays within the
margin) and the shop's revenue on the order is never negative (DESIGN.md invariant 8).

The money, each movement one journal in the transaction of the order change that causes it:
- paid: escrow → each beneficiary's commission_pending (`on_paid`);
- completed: commission_pending → commission_available, less any debt it repays first, which
  goes to commission_debt (`on_settled`); the settlement splits only what is left in escrow
  (`pending_total` is the settlement's holder);
- refunded before that: commission_pending → escrow, and the escrow refunds the payer;
- refunded after completion: commission_available → escrow as far as the balance allows, the
  rest is owed (commission_debt runs negative) and netted from the user's later commission.
`Commission` rows record each share and its status for the screens and the audit.
"""

from dataclasses import dataclass, replace

from peewee import fn

from shop import ledger
from shop.accounts.models import User
from shop.accounts.service import email_index, phone_index
from shop.clock import now
from shop.db import is_postgres, run
from shop.distribution import rates, referrals
from shop.distribution.models import Commission
from shop.ledger.models import Account
from shop.orders import settlement
from shop.orders.models import Order


@dataclass(frozen=True)
class Share:
    depth: int
    user: User
    rate_bps: int
    amount: int


def debt_account(user_id: int):
    return ledger.system_account(f"commission_debt:{user_id}")


def owed(user_id: int) -> int:
    """What the user owes back from clawed-back commission (0 when nothing)."""
    held = Account.select(Account.balance).where(Account.code == f"commission_debt:{user_id}")
    return max(-(held.scalar() or 0), 0)


def _first_referrer_id(order: Order) -> int | None:
    """Who referred the buyer: one indexed read, since most orders have nobody to pay."""
    if order.user_id:
        row = run('SELECT "referrer_id" FROM "users" WHERE "id" = ?', (order.user_id,)).fetchone()
        return row[0] if row else None
    return order.referrer_id


def _chain(first_id: int, levels: int) -> list[User]:
    first = User.get_or_none(User.id == first_id)
    if first is None or levels < 1:
        return []
    return [first, *referrals.upline(first, levels - 1)]


def _buyer_ids(order: Order) -> set[int]:
    """The accounts that are the buyer: the signed-in buyer, or for a guest the members whose
    email or phone the guest gave as contact (a referrer buying through their own link)."""
    if order.user_id:
        return {order.user_id}
    contact = order.contact or ""
    if "@" in contact:
        match = User.email_index == email_index(contact)
    else:
        match = User.phone_index == phone_index(contact)
    return {u.id for u in User.select(User.id).where(match)}


def shares(order: Order) -> list[Share]:
    """Each beneficiary's commission on the order, capped by its margin (see the module)."""
    first_id = _first_referrer_id(order)
    if first_id is None:
        return []
    base = rates.depth_rates(order.product_id)
    chain = _chain(first_id, len(base))
    if not chain:
        return []
    buyers = _buyer_ids(order)
    found = []
    for depth, user in enumerate(chain, 1):
        if user.id in buyers or user.is_staff or not user.is_active:
            continue
        bps = rates.beneficiary_rate(order, user, depth, base[depth - 1])
        amount = order.amount * bps // rates.BPS
        if amount > 0:
            found.append(Share(depth, user, bps, amount))
    margin = order.amount - min(order.cost, order.amount)
    total = sum(s.amount for s in found)
    if total <= margin:
        return found
    scaled = [replace(s, amount=s.amount * margin // total) for s in found]
    return [s for s in scaled if s.amount > 0]


def on_paid(order: Order) -> list[Commission]:
    """The order was just paid: its commission leaves escrow for the beneficiaries' pending
    balances, where they see it at once. Called by the payment, in its transaction."""
    found = shares(order)
    if not found:
        return []
    entries = [(ledger.system_account("escrow"), -sum(s.amount for s in found))]
    entries += [(ledger.user_account(s.user.id, "commission_pending"), s.amount) for s in found]
    ledger.post(
        entries, "commission.pending", ref=order.order_no, idem_key=f"commission:{order.order_no}"
    )
    rows = [
        Commission(
            order=order.id,
            user=s.user.id,
            depth=s.depth,
            rate_bps=s.rate_bps,
            amount=s.amount,
            status="pending",
        )
        for s in found
    ]
    Commission.bulk_create(rows)
    return rows


@settlement.holder
def pending_total(order: Order) -> int:
    """The order's pending commission: taken out of escrow at payment, so the settlement
    splits the rest."""
    total = (
        Commission.select(fn.COALESCE(fn.SUM(Commission.amount), 0))
        .where((Commission.order == order.id) & (Commission.status == "pending"))
        .scalar()
    )
    return int(total)


def _rows(order: Order, status: str) -> list[Commission]:
    # ordered by user so concurrent orders lock the same users' accounts in the same order
    query = Commission.select().where(
        (Commission.order == order.id) & (Commission.status == status)
    )
    return list(query.order_by(Commission.user))


def _balance_locked(code: str) -> int:
    """An account's balance, locked until the transaction ends (on PostgreSQL; SQLite's
    writers hold the whole database already), so what is decided from it still holds when the
    posting lands. A missing account holds 0."""
    query = Account.select(Account.balance).where(Account.code == code)
    if is_postgres():
        query = query.for_update()
    return query.scalar() or 0


def on_settled(order: Order) -> None:
    """The order completed: its pending commission becomes available, each share first paying
    down what its beneficiary owes from earlier claw-backs. Called by the settlement."""
    rows = _rows(order, "pending")
    if not rows:
        return
    entries = []
    for row in rows:
        debt = max(-_balance_locked(f"commission_debt:{row.user_id}"), 0)
        row.netted = min(debt, row.amount)
        entries.append((ledger.user_account(row.user_id, "commission_pending"), -row.amount))
        if row.netted:
            entries.append((debt_account(row.user_id), row.netted))
        if row.amount > row.netted:
            entries.append(
                (ledger.user_account(row.user_id, "commission_available"), row.amount - row.netted)
            )
    ledger.post(
        entries, "commission.release", ref=order.order_no, idem_key=f"release:{order.order_no}"
    )
    settled = now()
    for row in rows:
        Commission.update(status="available", netted=row.netted, settled_at=settled).where(
            Commission.id == row.id
        ).execute()


def on_refund(order: Order, actor=None) -> None:
    """The order is being refunded: its commission goes back to escrow, which then refunds the
    payer. Pending commission is reversed whole. Available commission is clawed back as far as
    each balance allows (a user may have withdrawn or spent it); the rest becomes their debt."""
    escrow = ledger.system_account("escrow")
    moment = now()
    pending = _rows(order, "pending")
    if pending:
        entries = [(escrow, sum(r.amount for r in pending))]
        entries += [
            (ledger.user_account(r.user_id, "commission_pending"), -r.amount) for r in pending
        ]
        ledger.post(
            entries,
            "commission.reverse",
            ref=order.order_no,
            idem_key=f"reverse:{order.order_no}",
            actor=actor,
        )
        Commission.update(status="reversed", reversed_at=moment).where(
            Commission.id.in_([r.id for r in pending])
        ).execute()
    available = _rows(order, "available")
    if not available:
        return
    entries = [(escrow, sum(r.amount for r in available))]
    for row in available:
        code = f"user:{row.user_id}:commission_available"
        taken = min(max(_balance_locked(code), 0), row.amount)
        row.debt = row.amount - taken
        if taken:
            entries.append((ledger.user_account(row.user_id, "commission_available"), -taken))
        if row.debt:
            entries.append((debt_account(row.user_id), -row.debt))
    ledger.post(
        entries,
        "commission.clawback",
        ref=order.order_no,
        idem_key=f"clawback:{order.order_no}",
        actor=actor,
    )
    for row in available:
        Commission.update(status="clawed_back", debt=row.debt, reversed_at=moment).where(
            Commission.id == row.id
        ).execute()
