from shop import settings
from shop.accounts import service as accounts
from shop.accounts.models import User
from shop.accounts.service import AccountError
from shop.audit import record
from shop.db import db
from shop.messages import N_
from shop.settings.registry import parse_text

settings.register("shop.name", "Kashop", N_("The shop's name, shown on every page"), parse_text(80))


def initialize(shop_name: str, email: str, password: str, language: str, demo: bool = False):
    """Create the owner and basic settings. Running it again with the same owner email changes
    nothing and succeeds, so scripts can call it on every deploy. Returns (owner, created).

    The input is checked before anything else, so a bad password is refused the same way on
    every run, not only on the first one."""
    email = accounts.clean_email(email)
    accounts.check_password_strength(password)
    with db.atomic():
        existing = accounts.find_by_email(email)
        if existing is not None:
            if existing.role != "owner":
                raise AccountError(N_("An account with this email exists and is not the owner."))
            owner, created = existing, False
        elif User.select().where(User.role == "owner").exists():
            raise AccountError(N_("The shop already has an owner; sign in as the owner instead."))
        else:
            owner = accounts.register(email, password, role="owner", locale=language)
            created = True
            settings.set_value("shop.name", shop_name, actor=owner)
            settings.set_value("shop.language", language, actor=owner)
            record("shop.setup", actor=owner, demo=demo)
        if demo:
            from shop import demo as demo_data

            demo_data.load(actor=owner)
    return owner, created
