from shop.accounts.models import User


def load_user(session_id: str):
    """flask-login's loader: the id is "<user id>.<session version>"; a stale version (the
    password changed, or staff ended the sessions) or a disabled account signs out."""
    user_id, _, version = session_id.partition(".")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = User.get_or_none(User.id == int(user_id))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user
