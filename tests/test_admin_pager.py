"""Admin lists page newest first; the pager keeps the list's filters."""

from conftest import login

from shop.accounts.models import User
from shop.accounts.service import hash_password, new_invite_code


def test_users_list_pages_and_orders_keep_their_filters(app, client, owner):
    with app.app_context():
        pw = hash_password("user-pass-1")
        for i in range(55):
            User.create(
                email=f"u{i}@example.com",
                email_index=f"idx-{i}",
                password_hash=pw,
                invite_code=new_invite_code(),
            )
    login(client, *owner)
    first = client.get("/admin/users").get_data(as_text=True)
    assert 'href="/admin/users?page=2">Older' in first and "Newer" not in first
    second = client.get("/admin/users?page=2").get_data(as_text=True)
    assert 'href="/admin/users?page=1">' in second
    filtered = client.get("/admin/orders?status=paid&q=K26").get_data(as_text=True)
    assert '<nav class="pager">' in filtered and "Older" not in filtered
