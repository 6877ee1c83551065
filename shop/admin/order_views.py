"""Admin pages for orders: the list with its filters, one order's page, and the staff actions
on it (refund, settle now, deliver by hand, release a held order, reveal its secrets, and for
a refund stuck on its way back through a gateway: ask the gateway again, or give the money to
the buyer's wallet / the manual refund queue instead).

Each action is a POST calling one service function. A refused action shows the order page
again with the reason and a 4xx status; the order is unchanged.
"""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from shop import localtime
from shop.admin.dashboard import card_provider
from shop.admin.nav import nav_item
from shop.admin.views import PAGE_SIZE, bp, staff_required
from shop.money import format_amount
from shop.orders import service as orders
from shop.orders import staff
from shop.orders.models import Order, OrderEvent
from shop.orders.service import OrderError
from shop.orders.state import IllegalTransition, StaleOrder
from shop.payments import refunds
from shop.payments.refunds import RefundError

nav_item(_l("Orders"), "admin.orders_page", 5)


@card_provider
def _order_queues():
    q = staff.queues(localtime.day_start(localtime.today()))  # the owner's day, not UTC's
    listed = "admin.orders_page"
    return [
        (str(_l("Paid, awaiting delivery")), q["paid"], url_for(listed, status="paid")),
        (str(_l("Held for review")), q["held"], url_for(listed, status="held")),
        (str(_l("Orders today")), q["orders_since"], url_for(listed)),
        (str(_l("Sales today")), format_amount(q["sales_since"]), None),
    ]


@bp.route("/orders")
@staff_required
def orders_page():
    page = max(request.args.get("page", 1, type=int), 1)
    status = request.args.get("status", "")
    number = request.args.get("q", "")
    rows = list(staff.search(status, number).paginate(page, PAGE_SIZE))
    return render_template(
        "admin/orders.html",
        rows=rows,
        statuses=staff.STATUSES,
        status=status,
        q=number,
        page=page,
        page_size=PAGE_SIZE,
    )


def _order_page(order: Order, revealed: dict | None = None, status: int = 200):
    page = render_template(
        "admin/order.html",
        order=order,
        shown=revealed if revealed is not None else staff.shown(order),
        revealed=revealed is not None,
        events=order.events.order_by(OrderEvent.id),
        refund=refunds.for_order(order),
    )
    return page, status


def _order(order_no: str) -> Order:
    return Order.get_or_none(Order.order_no == order_no) or abort(404)


@bp.route("/orders/<order_no>")
@staff_required
def order_detail(order_no):
    return _order_page(_order(order_no))


@bp.route("/orders/<order_no>/reveal", methods=["POST"])
@staff_required
def order_reveal(order_no):
    order = _order(order_no)
    return _order_page(order, revealed=staff.reveal(order, current_user))


def _act(order_no: str, action, done):
    """Run one staff action on the order; on refusal show why, with its status. `done` is
    the message, or a function of the order giving it."""
    order = _order(order_no)
    try:
        action(order)
    except (OrderError, RefundError) as exc:
        flash(exc.translated(), "error")
        return _order_page(Order.get_by_id(order.id), status=exc.status)
    except (StaleOrder, IllegalTransition):
        flash(_("The order changed meanwhile; check its status and try again."), "error")
        return _order_page(Order.get_by_id(order.id), status=409)
    flash(done(order) if callable(done) else done, "success")
    return redirect(url_for("admin.order_detail", order_no=order.order_no), 303)


@bp.route("/orders/<order_no>/refund", methods=["POST"])
@staff_required
def order_refund(order_no):
    reason = request.form.get("reason", "")
    return _act(
        order_no, lambda o: orders.refund(o, reason, actor=current_user), _("Order refunded.")
    )


@bp.route("/orders/<order_no>/settle", methods=["POST"])
@staff_required
def order_settle(order_no):
    return _act(
        order_no,
        lambda o: orders.complete(o, actor=current_user, reason="confirmed by staff"),
        _("Order confirmed and settled."),
    )


@bp.route("/orders/<order_no>/deliver", methods=["POST"])
@staff_required
def order_deliver(order_no):
    lines = request.form.get("items", "").splitlines()
    return _act(
        order_no,
        lambda o: orders.deliver_manually(o, lines, actor=current_user),
        _("Order delivered."),
    )


@bp.route("/orders/<order_no>/release", methods=["POST"])
@staff_required
def order_release(order_no):
    return _act(
        order_no,
        lambda o: orders.release_held(o, actor=current_user),
        _("Order released for delivery."),
    )


@bp.route("/orders/<order_no>/refund/retry", methods=["POST"])
@staff_required
def order_refund_retry(order_no):
    return _act(
        order_no,
        lambda o: refunds.retry(o, actor=current_user),
        _("The gateway was asked again; its answer is shown below."),
    )


@bp.route("/orders/<order_no>/refund/reroute", methods=["POST"])
@staff_required
def order_refund_reroute(order_no):
    return _act(
        order_no,
        lambda o: refunds.reroute(o, actor=current_user),
        lambda o: (
            _("The refund went to the buyer's wallet instead.")
            if o.user_id
            else _("The refund was moved to the manual refund queue.")
        ),
    )
