"""Admin list of refunds going back through payment gateways, and the dashboard's count of
the failed ones, which wait for staff to try again or reroute them from the order's page."""

from flask import render_template, request, url_for
from flask_babel import lazy_gettext as _l

from shop.admin.dashboard import card_provider
from shop.admin.nav import nav_item
from shop.admin.views import PAGE_SIZE, bp, staff_required
from shop.payments import refunds
from shop.payments.models import REFUND_STATUSES, GatewayRefund

nav_item(_l("Gateway refunds"), "admin.refunds_page", 6)


@card_provider
def _failed_refunds():
    failed = GatewayRefund.select().where(GatewayRefund.status == "failed").count()
    return [
        (str(_l("Gateway refunds failed")), failed, url_for("admin.refunds_page", status="failed"))
    ]


@bp.route("/refunds")
@staff_required
def refunds_page():
    page = max(request.args.get("page", 1, type=int), 1)
    status = request.args.get("status", "")
    if status not in REFUND_STATUSES:
        status = ""
    return render_template(
        "admin/refunds.html",
        rows=list(refunds.listing(status).paginate(page, PAGE_SIZE)),
        statuses=REFUND_STATUSES,
        status=status,
        page=page,
        page_size=PAGE_SIZE,
    )
