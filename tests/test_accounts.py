"""Accounts as a visitor uses them: setup, register, sign in and out, passwords."""

import pytest
from conftest import login, submit

from shop.accounts import service
from shop.accounts.models import User


def users(app):
    with app.app_context():
        return list(User.select())


def register(client, email="alice@example.com", password="alice-pass-1", **extra):
    data = {"email": email, "password": password, "confirm": password, **extra}
    return submit(client, "/register", data)


def test_first_visit_shows_setup_then_setup_creates_owner(client, app):
    first = client.get("/")
    assert first.status_code == 302 and first.headers["Location"].endswith("/setup")
    response = submit(
        client,
        "/setup",
        {
            "shop_name": "Moon Cards",
            "email": "boss@example.com",
            "password": "boss-pass-1",
            "language": "en",
        },
    )
    assert response.status_code == 302
    [owner] = users(app)
    assert owner.role == "owner" and owner.email == "boss@example.com"
    assert "Moon Cards" in client.get("/").get_data(as_text=True)
    assert client.get("/setup").status_code == 302  # setup cannot run twice


def test_setup_refuses_weak_password_and_creates_nothing(client, app):
    client.set_cookie("lang", "en")  # a fresh shop speaks zh_CN until setup says otherwise
    response = submit(
        client,
        "/setup",
        {"shop_name": "S", "email": "boss@example.com", "password": "short", "language": "en"},
    )
    assert response.status_code == 400
    assert "at least 8 characters" in response.get_data(as_text=True)
    assert users(app) == []


@pytest.mark.pg
def test_register_signs_in_and_gives_an_invite_code(client, app, owner):
    response = register(client)
    assert response.status_code == 302
    account = client.get("/account").get_data(as_text=True)
    assert "a***@example.com" in account
    with app.app_context():
        alice = service.find_by_email("Alice@Example.com ")
    assert alice is not None and alice.role == "customer"
    assert len(alice.invite_code) == 8 and alice.invite_code in account


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", "good-pass-1", "valid email"),
        ("bob@example.com", "short", "at least 8 characters"),
        ("owner@example.com", "good-pass-1", "already exists"),
        ("OWNER@example.com ", "good-pass-1", "already exists"),
    ],
)
def test_register_bad_input_is_refused_with_a_message(client, app, owner, email, password, message):
    before = len(users(app))
    response = register(client, email=email, password=password)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert len(users(app)) == before


def test_register_with_unknown_invite_code_is_refused(client, app, owner):
    response = register(client, invite_code="NOPE2345")
    assert response.status_code == 400
    assert "invite code" in response.get_data(as_text=True)


def test_email_is_not_stored_in_clear(app, owner, tmp_path):
    with app.app_context():
        service.register("secret.person@example.com", "long-enough-1", phone="13812345678")
    raw = b"".join(p.read_bytes() for p in (tmp_path / "instance").glob("shop.sqlite3*"))
    assert b"secret.person" not in raw
    assert b"13812345678" not in raw
    assert b"owner@example.com" not in raw


def test_login_wrong_password_is_generic_and_throttled(client, app, owner):
    for _ in range(5):
        response = login(client, "owner@example.com", "wrong-password")
        assert response.status_code == 400
        assert "Wrong email or password" in response.get_data(as_text=True)
    unknown = login(client, "nobody@example.com", "wrong-password")
    assert "Wrong email or password" in unknown.get_data(as_text=True)
    blocked = login(client, "owner@example.com", "owner-pass-1")
    assert blocked.status_code == 429
    assert client.get("/account").status_code == 302  # still signed out


def test_login_rotates_the_session(client, app, owner):
    with client.session_transaction() as sess:
        sess["planted"] = "attacker"
    assert login(client, *owner).status_code == 302
    with client.session_transaction() as sess:
        assert "planted" not in sess
    assert client.get("/account").status_code == 200


def test_password_change_ends_other_sessions(app, owner):
    first, second = app.test_client(), app.test_client()
    login(first, *owner)
    login(second, *owner)
    data = {"current": owner[1], "password": "new-pass-123", "confirm": "new-pass-123"}
    assert submit(first, "/account", data).status_code == 302
    assert first.get("/account").status_code == 200
    assert second.get("/account").status_code == 302
    assert login(second, owner[0], "new-pass-123").status_code == 302


def test_password_change_wrong_current_changes_nothing(client, app, owner):
    login(client, *owner)
    data = {"current": "wrong-one", "password": "new-pass-123", "confirm": "new-pass-123"}
    response = submit(client, "/account", data)
    assert response.status_code == 400
    assert "current password is wrong" in response.get_data(as_text=True)
    client.post("/logout", data={})
    fresh = app.test_client()
    assert login(fresh, *owner).status_code == 302


def test_reset_token_works_once(client, app, owner):
    with app.app_context():
        user = service.find_by_email(owner[0])
        token = service.make_reset_token(user, app.secret_key)
    url = f"/password/reset/{token}"
    response = submit(client, url, {"password": "reset-pass-1", "confirm": "reset-pass-1"})
    assert response.status_code == 302
    assert login(app.test_client(), owner[0], "reset-pass-1").status_code == 302
    again = client.get(url)
    assert again.status_code == 302 and "/password/forgot" in again.headers["Location"]


def test_forged_reset_token_is_refused(client, owner):
    response = client.get("/password/reset/forged.token.value", follow_redirects=True)
    assert "not valid" in response.get_data(as_text=True)


def test_post_without_csrf_token_is_refused(client, app, owner):
    response = client.post(
        "/register",
        data={"email": "x@example.com", "password": "p" * 10, "confirm": "p" * 10},
    )
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)
    assert len(users(app)) == 1


def test_pages_carry_security_headers_and_no_inline_script(client, owner):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.get_data(as_text=True)


def test_open_redirect_after_login_is_ignored(client, owner):
    token_page = "/login"
    response = submit(
        client,
        "/login?next=https://evil.example/",
        {"email": owner[0], "password": owner[1]},
        form_url=token_page,
    )
    assert response.headers["Location"] == "/"


# over HTTPS flask-wtf also checks that a form was posted from this site (Referer)
HTTPS = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_REFERER": "https://localhost/login"}


def test_behind_a_proxy_the_throttle_counts_the_real_client(db_url, tmp_path, monkeypatch):
    """With SHOP_TRUSTED_PROXIES=1 two customers behind nginx are two addresses: one
    attacker's failures do not lock the other out."""
    from shop import create_app
    from shop.setup.service import initialize

    monkeypatch.setenv("SHOP_INSTANCE", str(tmp_path / "proxied"))
    monkeypatch.setenv("SHOP_DATABASE_URL", db_url)
    monkeypatch.setenv("SHOP_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("SHOP_PUBLIC_URL", "https://shop.example.com")
    app = create_app({"TESTING": True})
    with app.app_context():
        initialize("S", "owner@example.com", "owner-pass-1", "en")
    attacker = app.test_client()
    attacker.environ_base.update(HTTP_X_FORWARDED_FOR="203.0.113.9", **HTTPS)
    for _ in range(6):
        login(attacker, "owner@example.com", "wrong-password")
    assert login(attacker, "owner@example.com", "owner-pass-1").status_code == 429
    owner = app.test_client()
    owner.environ_base.update(HTTP_X_FORWARDED_FOR="198.51.100.7", **HTTPS)
    response = login(owner, "owner@example.com", "owner-pass-1")
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def role_of(app, user_id):
    with app.app_context():
        return User.get_by_id(user_id).role


def change_role(client, user_id, role):
    url = f"/admin/users/{user_id}"
    return submit(client, f"{url}/role", {"role": role}, form_url=url)


def test_the_owner_makes_a_customer_staff_and_back(app, owner):
    with app.app_context():
        alice = service.register("alice@example.com", "alice-pass-1")
        owner_id = User.get(User.role == "owner").id
    helper = app.test_client()
    login(helper, "alice@example.com", "alice-pass-1")
    assert helper.get("/admin/").status_code == 403

    boss = app.test_client()
    login(boss, *owner)
    made = change_role(boss, alice.id, "staff")
    assert made.status_code == 303 and role_of(app, alice.id) == "staff"
    # the change ends alice's session: she signs in again and then has the admin
    assert helper.get("/admin/").status_code == 302
    login(helper, "alice@example.com", "alice-pass-1")
    assert helper.get("/admin/").status_code == 200

    # staff cannot hand out roles, neither to others nor to themselves
    assert change_role(helper, alice.id, "customer").status_code == 403
    assert role_of(app, alice.id) == "staff"

    back = change_role(boss, alice.id, "customer")
    assert back.status_code == 303 and role_of(app, alice.id) == "customer"
    assert helper.get("/admin/").status_code == 302  # signed out again
    assert role_of(app, owner_id) == "owner"


@pytest.mark.parametrize(
    ("role", "message"),
    [("owner", "The shop has one owner"), ("admin", "Unknown role"), ("", "Unknown role")],
)
def test_a_second_owner_or_an_unknown_role_is_refused(client, app, owner, role, message):
    with app.app_context():
        alice = service.register("alice@example.com", "alice-pass-1")
        owner_id = User.get(User.role == "owner").id
    login(client, *owner)
    refused = change_role(client, alice.id, role)
    assert refused.status_code == 400
    assert message in refused.get_data(as_text=True)
    assert role_of(app, alice.id) == "customer"
    # nor can the owner's own role be taken: the shop would have none
    with app.app_context(), pytest.raises(service.AccountError):
        service.set_role(User.get_by_id(owner_id), "staff", actor=None)
    assert role_of(app, owner_id) == "owner"


def test_registering_a_second_owner_is_refused(app, owner):
    with app.app_context(), pytest.raises(service.AccountError, match="already has its owner"):
        service.register("second@example.com", "second-pass-1", role="owner")
    assert [u.email for u in users(app) if u.role == "owner"] == ["owner@example.com"]
