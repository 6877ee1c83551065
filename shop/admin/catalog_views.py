"""Admin pages for the catalog: categories, products, and a product's card keys.

Each handler reads the form and calls one service function; a refused change shows its
message with a 4xx status and nothing written. Card keys are only ever shown masked here;
their plaintext leaves the shop only through the audited export.
"""

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from peewee import JOIN, fn

from shop.admin.dashboard import card_provider
from shop.admin.nav import nav_item
from shop.admin.views import PAGE_SIZE, bp, staff_required
from shop.catalog import service as catalog
from shop.catalog.models import KINDS, LOW_STOCK, Category, Product
from shop.crypto import mask_secret
from shop.inventory import service as inventory
from shop.inventory.models import STATES, CardKey
from shop.money import format_amount
from shop.orders.models import Order

nav_item(_l("Products"), "admin.products", 10)
nav_item(_l("Categories"), "admin.categories", 12)


@card_provider
def _low_stock():
    count = Product.select().where(LOW_STOCK).count()
    return [(str(_l("Low-stock products")), count, url_for("admin.products", low=1))]


# categories ----------------------------------------------------------------------------------


@bp.route("/categories", methods=["GET", "POST"])
@staff_required
def categories():
    errors, form = {}, {"visible": "1"}
    if request.method == "POST":
        try:
            category = catalog.create_category(request.form, actor=current_user)
        except catalog.CatalogError as exc:
            errors, form = exc.translated_errors(), request.form
        else:
            flash(_("Category %(name)s added.", name=category.name), "success")
            return redirect(url_for("admin.categories"), 303)
    rows = (
        Category.select(Category, fn.COUNT(Product.id).alias("products"))
        .join(Product, JOIN.LEFT_OUTER)
        .group_by(Category)
        .order_by(Category.sort_order, Category.id)
    )
    page = render_template("admin/categories.html", rows=rows, errors=errors, form=form)
    return page, 400 if errors else 200


@bp.route("/categories/<int:category_id>", methods=["GET", "POST"])
@staff_required
def category_edit(category_id):
    category = Category.get_or_none(Category.id == category_id) or abort(404)
    errors, form = {}, {**category.__data__, "visible": "1" if category.visible else ""}
    if request.method == "POST":
        try:
            catalog.update_category(category, request.form, actor=current_user)
        except catalog.CatalogError as exc:
            errors, form = exc.translated_errors(), request.form
        else:
            flash(_("Category saved."), "success")
            return redirect(url_for("admin.categories"), 303)
    page = render_template("admin/category_form.html", category=category, errors=errors, form=form)
    return page, 400 if errors else 200


# products ------------------------------------------------------------------------------------


@bp.route("/products")
@staff_required
def products():
    page = max(request.args.get("page", 1, type=int), 1)
    q = request.args.get("q", "").strip()
    low = request.args.get("low") == "1"
    category = request.args.get("category", type=int)
    query = (
        Product.select(Product, Category)
        .join(Category, JOIN.LEFT_OUTER)
        .order_by(Product.sort_order, Product.id)
    )
    if q:
        query = query.where(Product.name.contains(q))
    if low:
        query = query.where(LOW_STOCK)
    if category:
        query = query.where(Product.category == category)
    rows = list(query.paginate(page, PAGE_SIZE))
    return render_template(
        "admin/products.html",
        rows=rows,
        page=page,
        page_size=PAGE_SIZE,
        q=q,
        low=low,
        category=category,
    )


def _form_of(product: Product) -> dict:
    """The edit form's values for a saved product, in the formats staff type."""
    return {
        **product.__data__,
        "category_id": product.category_id or "",
        "price": format_amount(product.price),
        "cost": format_amount(product.cost),
        "free": "1" if product.free else "",
        "visible": "1" if product.visible else "",
        "fields": catalog.format_fields(product.fields),
        "tiers": catalog.format_tiers(product.tiers),
    }


def _product_page(product, form, errors, status=200):
    page = render_template(
        "admin/product_form.html",
        product=product,
        form=form,
        errors=errors,
        kinds=KINDS,
        categories=Category.select().order_by(Category.sort_order, Category.id),
    )
    return page, status


def _flash_warnings(warnings):
    for warning in warnings:
        flash(warning.translated(), "warning")


@bp.route("/products/new", methods=["GET", "POST"])
@staff_required
def product_new():
    if request.method == "GET":
        defaults = {"kind": "card", "visible": "1", "min_qty": "1", "max_qty": "100"}
        return _product_page(None, defaults, {})
    try:
        product, warnings = catalog.create_product(
            request.form, request.files.get("image_file"), actor=current_user
        )
    except catalog.CatalogError as exc:
        return _product_page(None, request.form, exc.translated_errors(), 400)
    flash(_("Product %(name)s added.", name=product.name), "success")
    _flash_warnings(warnings)
    target = "admin.product_keys" if product.kind == "card" else "admin.product_edit"
    return redirect(url_for(target, product_id=product.id), 303)


@bp.route("/products/<int:product_id>", methods=["GET", "POST"])
@staff_required
def product_edit(product_id):
    product = Product.get_or_none(Product.id == product_id) or abort(404)
    if request.method == "GET":
        return _product_page(product, _form_of(product), {})
    try:
        product, warnings = catalog.update_product(
            product, request.form, request.files.get("image_file"), actor=current_user
        )
    except catalog.CatalogError as exc:
        return _product_page(product, request.form, exc.translated_errors(), 400)
    flash(_("Product saved."), "success")
    _flash_warnings(warnings)
    return redirect(url_for("admin.product_edit", product_id=product.id), 303)


@bp.route("/products/<int:product_id>/visibility", methods=["POST"])
@staff_required
def product_visibility(product_id):
    product = Product.get_or_none(Product.id == product_id) or abort(404)
    visible = request.form.get("visible") == "1"
    catalog.set_visible(product, visible, actor=current_user)
    message = _("%(name)s is on sale.") if visible else _("%(name)s is hidden from the shop.")
    flash(message % {"name": product.name}, "success")
    return redirect(url_for("admin.products"), 303)


# card keys -----------------------------------------------------------------------------------


def _keys_page(product: Product, status: int = 200):
    page = max(request.args.get("page", 1, type=int), 1)
    state = request.args.get("state", "")
    query = CardKey.select().where(CardKey.product == product.id).order_by(CardKey.id.desc())
    if state in STATES:
        query = query.where(CardKey.state == state)
    keys = list(query.paginate(page, PAGE_SIZE))
    order_ids = {k.order_id for k in keys if k.order_id}
    order_nos = {
        o.id: o.order_no
        for o in Order.select(Order.id, Order.order_no).where(Order.id.in_(list(order_ids)))
    }
    rows = [
        {
            "id": k.id,
            "masked": mask_secret(k.secret),
            "state": k.state,
            "order_no": order_nos.get(k.order_id, ""),
            "batch": k.batch,
            "created_at": k.created_at,
        }
        for k in keys
    ]
    html = render_template(
        "admin/keys.html",
        product=product,
        rows=rows,
        counts=inventory.counts(product.id),
        states=STATES,
        state=state,
        page=page,
        page_size=PAGE_SIZE,
    )
    return html, status


def _product(product_id: int) -> Product:
    return Product.get_or_none(Product.id == product_id) or abort(404)


@bp.route("/products/<int:product_id>/keys")
@staff_required
def product_keys(product_id):
    return _keys_page(_product(product_id))


@bp.route("/products/<int:product_id>/keys/import", methods=["POST"])
@staff_required
def keys_import(product_id):
    product = _product(product_id)
    lines = request.form.get("keys", "").splitlines()
    upload = request.files.get("keys_file")
    if upload and upload.filename:
        try:
            lines += upload.read().decode("utf-8-sig").splitlines()
        except UnicodeDecodeError:
            flash(_("The file is not UTF-8 text: save it as text, one key per line."), "error")
            return _keys_page(product, 400)
    if not any(line.strip() for line in lines):
        flash(_("Paste the keys or choose a file, one key per line."), "error")
        return _keys_page(product, 400)
    try:
        result = inventory.import_keys(product, lines, actor=current_user)
    except inventory.InventoryError as exc:
        flash(exc.translated(), "error")
        return _keys_page(product, 400)
    flash(
        _(
            "Imported %(imported)d, duplicates %(duplicates)d.",
            imported=result["imported"],
            duplicates=result["duplicates"],
        ),
        "success",
    )
    for warning in inventory.import_warnings(result):
        flash(warning.translated(), "warning")
    return redirect(url_for("admin.product_keys", product_id=product.id), 303)


@bp.route("/keys/<int:key_id>/void", methods=["POST"])
@staff_required
def key_void(key_id):
    key = CardKey.get_or_none(CardKey.id == key_id) or abort(404)
    try:
        inventory.void_key(key.id, actor=current_user)
    except inventory.InventoryError as exc:
        flash(exc.translated(), "error")
        return _keys_page(key.product, 409)
    flash(_("Key %(id)d voided.", id=key.id), "success")
    return redirect(url_for("admin.product_keys", product_id=key.product_id), 303)


@bp.route("/products/<int:product_id>/keys/export", methods=["POST"])
@staff_required
def keys_export(product_id):
    """The unsold keys as a text file. A POST: it is audited, and a link could be followed
    (prefetched, or sent by someone else) without staff meaning to take the keys out."""
    product = _product(product_id)
    secrets = inventory.export_unsold(product, actor=current_user)
    body = "".join(f"{s}\n" for s in secrets)
    return Response(
        body,
        mimetype="text/plain",
        headers={
            "Content-Disposition": f'attachment; filename="product-{product.id}-unsold.txt"',
            "Cache-Control": "no-store",
        },
    )
