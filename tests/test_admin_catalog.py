"""The admin's catalog pages as staff use them: products, categories, images, card keys."""

import io
import re
from pathlib import Path

import pytest
from conftest import csrf_from, login, submit

from shop.accounts import service as accounts
from shop.audit.models import AuditLog
from shop.catalog.models import Category, Product
from shop.inventory.models import CardKey

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
GOOD = {"name": "Steam 钱包充值卡 ¥50", "kind": "card", "price": "50.00", "cost": "46.00"}


@pytest.fixture
def staff(client, owner):
    login(client, *owner)
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def products(app):
    with app.app_context():
        return list(Product.select().order_by(Product.id))


def actions(app, prefix):
    with app.app_context():
        return [a for a in AuditLog.select() if a.action.startswith(prefix)]


def new_product(staff, **fields):
    return submit(staff, "/admin/products/new", {**GOOD, "visible": "1", **fields})


def test_create_product(app, staff):
    response = new_product(
        staff,
        min_qty="1",
        max_qty="20",
        tiers="10=49.00\n5=49.50",
        fields="account|Steam 账号|[A-Za-z0-9_]{3,32}|required",
    )
    assert response.status_code == 303
    [product] = products(app)
    assert (product.price, product.cost, product.stock, product.max_qty) == (5000, 4600, 0, 20)
    assert product.tiers == [(5, 4950), (10, 4900)]
    assert product.fields[0]["pattern"] == "[A-Za-z0-9_]{3,32}"
    assert response.headers["Location"].endswith(f"/admin/products/{product.id}/keys")
    [created] = actions(app, "product.create")
    assert created.target == f"product:{product.id}" and created.actor_id is not None
    listing = text(staff.get("/admin/products"))
    assert "Steam 钱包充值卡 ¥50" in listing and "50.00" in listing and "low stock" in listing


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": ""}, "needs a name"),
        ({"name": "x" * 121}, "longer than 120"),
        ({"price": "abc"}, "not an amount"),
        ({"price": "1.234"}, "more than two decimals"),
        ({"price": "-5"}, "more than zero"),
        ({"price": "0"}, "tick &#39;free&#39;"),
        ({"cost": "-1"}, "Cost"),
        ({"kind": "gift"}, "kind must be one of"),
        ({"min_qty": "0"}, "minimum quantity must be a whole number from 1"),
        (
            {"min_qty": "5", "max_qty": "2"},
            "The maximum quantity (2) must be at least the minimum quantity (5).",
        ),
        (  # a blank maximum is 100, and was saved below the minimum
            {"min_qty": "200", "max_qty": ""},
            "The maximum quantity (100) must be at least the minimum quantity (200).",
        ),
        ({"max_qty": "0"}, "maximum quantity must be a whole number from 1 to 100000"),
        ({"max_qty": "100001"}, "maximum quantity"),
        ({"max_qty": "2.5"}, "maximum quantity"),
        ({"fields": "account|Account|([a-z]"}, "does not compile"),
        ({"fields": "Bad Name|Account"}, "lowercase letters"),
        ({"tiers": "10=9.505"}, "more than two decimals"),
        ({"tiers": "ten=9.50"}, "quantity=price"),
        ({"tiers": "10=60.00"}, "not below the unit price"),
        ({"image": "https://evil.example/x.png"}, "path on this shop"),
        ({"category_id": "999"}, "existing category"),
    ],
)
def test_bad_product_input_is_400_with_a_message_and_creates_nothing(app, staff, fields, message):
    response = new_product(staff, **fields)
    assert response.status_code == 400
    assert message in text(response)
    assert "Nothing was saved" in text(response)
    assert products(app) == [] and actions(app, "product.") == []


def test_free_product_may_cost_nothing_only_when_ticked(app, staff):
    assert new_product(staff, price="0.00", free="1").status_code == 303
    [product] = products(app)
    assert product.price == 0 and product.free


def test_price_below_cost_is_saved_with_a_warning(app, staff):
    response = new_product(staff, price="40.00", cost="46.00")
    assert response.status_code == 303
    page = text(staff.get(response.headers["Location"]))
    assert "flash-warning" in page and "below the cost" in page
    assert products(app)[0].price == 4000


def test_description_is_sanitised(app, staff):
    description = (
        "<p onclick='steal()'>Fast <strong>delivery</strong><script>alert(1)</script></p>"
        "<style>body{display:none}</style>"
        '<img src=x onerror="alert(2)"><img src="https://evil.example/track.png">'
        '<img src="/uploads/ok.png" alt="ok">'
        '<a href="javascript:alert(3)">bad</a><a href="https://example.com/help">help</a>'
        "<iframe src='https://evil.example'></iframe>"
    )
    assert new_product(staff, description=description).status_code == 303
    stored = products(app)[0].description
    for banned in ("script", "alert", "onclick", "onerror", "style", "evil.example", "iframe"):
        assert banned not in stored, banned
    assert "<strong>delivery</strong>" in stored
    assert '<img src="/uploads/ok.png" alt="ok">' in stored
    assert '<a href="https://example.com/help" rel="noopener nofollow">help</a>' in stored


def test_image_upload_is_checked_stored_and_served(app, staff, tmp_path):
    response = new_product(staff, image_file=(io.BytesIO(PNG), "photo.png"))
    assert response.status_code == 303
    [product] = products(app)
    assert re.fullmatch(r"/uploads/[0-9a-f]{32}\.png", product.image)
    assert (Path(app.instance_path) / product.image.lstrip("/")).read_bytes() == PNG
    served = staff.get(product.image)
    assert served.status_code == 200 and served.data == PNG
    assert staff.get("/uploads/..%2Fsecret_key").status_code == 404


def test_a_replaced_image_leaves_the_disk_unless_something_still_shows_it(app, staff):
    new_product(staff, image_file=(io.BytesIO(PNG), "first.png"))
    new_product(staff, image_file=(io.BytesIO(PNG), "second.png"))
    first, second = products(app)
    uploads = Path(app.instance_path)

    def replace(product, **fields):
        url = f"/admin/products/{product.id}"
        form = {**GOOD, "visible": "1", "image": product.image, **fields}
        assert submit(staff, url, form).status_code == 303
        return products(app)[product.id - first.id]

    # another product's description shows the second image: replacing it keeps the file
    replace(first, description=f'<p><img src="{second.image}" alt="also"></p>')
    replace(second, image_file=(io.BytesIO(PNG), "newer.png"))
    assert (uploads / second.image.lstrip("/")).exists()

    # the first image, shown nowhere else, goes when the product gets a new one
    updated = replace(first, image_file=(io.BytesIO(PNG), "third.png"))
    assert updated.image != first.image
    assert not (uploads / first.image.lstrip("/")).exists()
    assert (uploads / updated.image.lstrip("/")).read_bytes() == PNG
    assert staff.get(updated.image).status_code == 200


@pytest.mark.parametrize(
    "upload, message",
    [
        ((io.BytesIO(b"<svg onload=alert(1)>"), "x.png"), "PNG, JPEG, WebP or GIF"),
        ((io.BytesIO(b"GIF89a" + b"\x00" * (2 * 1024 * 1024)), "big.gif"), "larger than 2 MB"),
    ],
)
def test_bad_image_is_refused(app, staff, upload, message):
    response = new_product(staff, image_file=upload)
    assert response.status_code == 400 and message in text(response)
    assert products(app) == []
    assert not (Path(app.instance_path) / "uploads").exists()


def test_edit_and_hide_product(app, staff):
    new_product(staff)
    product = products(app)[0]
    url = f"/admin/products/{product.id}"
    form = {**GOOD, "price": "55.00", "visible": "1", "low_stock_threshold": "3"}
    assert submit(staff, url, form).status_code == 303
    assert products(app)[0].price == 5500
    [update] = actions(app, "product.update")
    assert '"price": [5000, 5500]' in update.detail
    assert submit(staff, url, {**form, "price": "x"}).status_code == 400
    assert products(app)[0].price == 5500
    hide = submit(staff, f"{url}/visibility", {"visible": "0"}, form_url="/admin/products")
    assert hide.status_code == 303 and not products(app)[0].visible
    assert actions(app, "product.hide")


def test_categories(app, staff):
    added = submit(staff, "/admin/categories", {"name": "游戏点卡", "visible": "1"})
    assert added.status_code == 303
    again = submit(staff, "/admin/categories", {"name": "游戏点卡"})
    assert again.status_code == 400 and "already a category" in text(again)
    with app.app_context():
        [category] = list(Category.select())
    assert category.slug  # a Chinese name still gets a usable slug
    edit = submit(staff, f"/admin/categories/{category.id}", {"name": "Game cards", "slug": "game"})
    assert edit.status_code == 303
    with app.app_context():
        category = Category.get_by_id(category.id)
    assert (category.name, category.slug, category.visible) == ("Game cards", "game", False)
    assert new_product(staff, category_id=str(category.id)).status_code == 303
    assert products(app)[0].category_id == category.id


def keys_page(product_id):
    return f"/admin/products/{product_id}/keys"


def import_keys(staff, product_id, paste="", file=None):
    data = {"keys": paste}
    if file is not None:
        data["keys_file"] = (io.BytesIO(file.encode()), "keys.txt")
    url = keys_page(product_id)
    return submit(staff, f"{url}/import", data, form_url=url, follow_redirects=True)


SECRETS = ["AAAA-1111-2222-3333-ZZZZ", "BBBB-4444-5555-6666-YYYY", "CCCC-7777-8888-9999-XXXX"]


@pytest.fixture
def stocked(app, staff):
    new_product(staff)
    product = products(app)[0]
    page = import_keys(staff, product.id, f"{SECRETS[0]}\n{SECRETS[0]}\n\n{SECRETS[1]}\n")
    assert "Imported 2, duplicates 1." in text(page)
    return product.id


def test_import_counts_duplicates_in_the_paste_and_in_stock(app, staff, stocked):
    # B is in stock already, C is both pasted and in the file, D only in the file
    page = import_keys(staff, stocked, f"{SECRETS[1]}\n{SECRETS[2]}", f"{SECRETS[2]}\nDDDD-0000\n")
    assert "Imported 2, duplicates 2." in text(page)
    with app.app_context():
        assert Product.get_by_id(stocked).stock == 4 and CardKey.select().count() == 4
    empty = import_keys(staff, stocked, "  \n")
    assert empty.status_code == 400 and "one key per line" in text(empty)
    binary = submit(
        staff,
        f"{keys_page(stocked)}/import",
        {"keys_file": (io.BytesIO(b"\xff\xfe\x00bad"), "keys.bin")},
        form_url=keys_page(stocked),
    )
    assert binary.status_code == 400 and "UTF-8" in text(binary)


def test_import_warns_about_lines_too_long_to_be_keys(app, staff, stocked):
    page = import_keys(staff, stocked, f"{'K' * 600}\nDDDD-0000\n")
    assert "Imported 1, duplicates 0." in text(page)
    assert "Too long to be keys (over 512 characters), skipped: 1." in text(page)
    with app.app_context():
        assert Product.get_by_id(stocked).stock == 3


def test_keys_are_listed_masked(app, staff, stocked):
    page = text(staff.get(keys_page(stocked)))
    assert "AAAA****************ZZZZ" in page
    for secret in SECRETS[:2]:
        assert secret not in page
    assert "available" in page


def test_void_a_key(app, staff, stocked):
    with app.app_context():
        key = CardKey.select().first()
    url = f"/admin/keys/{key.id}/void"
    response = submit(staff, url, {}, form_url=keys_page(stocked))
    assert response.status_code == 303
    with app.app_context():
        assert CardKey.get_by_id(key.id).state == "void"
        assert Product.get_by_id(stocked).stock == 1
    again = submit(staff, url, {}, form_url=keys_page(stocked))
    assert again.status_code == 409 and "only available keys" in text(again)
    assert len(actions(app, "keys.void")) == 1


def test_export_unsold_is_a_download_and_audited(app, staff, stocked):
    url = f"{keys_page(stocked)}/export"
    response = submit(staff, url, {}, form_url=keys_page(stocked))
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    assert text(response).split() == SECRETS[:2]
    [export] = actions(app, "keys.export")
    assert export.actor_id is not None and '"count": 2' in export.detail
    assert staff.get(url).status_code == 405  # never by following a link


def test_customers_and_visitors_are_kept_out(app, stocked):
    client = app.test_client()
    urls = ["/admin/products", "/admin/products/new", keys_page(stocked)]
    assert all(client.get(url).status_code == 302 for url in urls)  # to the login page
    with app.app_context():
        accounts.register("cust@example.com", "cust-pass-1")
    login(client, "cust@example.com", "cust-pass-1")
    assert all(client.get(url).status_code == 403 for url in urls)
    token = csrf_from(client, "/account")
    for url in (f"{keys_page(stocked)}/export", f"{keys_page(stocked)}/import"):
        response = client.post(url, data={"csrf_token": token, "keys": "EVIL-KEY-0000"})
        assert response.status_code == 403
    assert actions(app, "keys.export") == []
    with app.app_context():
        assert CardKey.select().count() == 2


def test_post_without_csrf_token_changes_nothing(app, staff):
    response = staff.post("/admin/products/new", data={**GOOD, "visible": "1"})
    assert response.status_code == 400
    assert products(app) == []
