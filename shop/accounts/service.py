"""Every change to an account goes through here; views and the CLI only parse input."""

import re
import secrets
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from peewee import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from shop import plugins
from shop.accounts.models import ROLES, User
from shop.audit import record
from shop.clock import now
from shop.crypto import blind_index, normalize_email, normalize_phone
from shop.db import db
from shop.messages import N_, Refusal
from shop.security import throttle

EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}$")
PHONE_RE = re.compile(r"^\+?[0-9]{6,15}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
INVITE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed by hand
LOGIN_LIMIT = 5
LOGIN_WINDOW = timedelta(minutes=15)
RESET_MAX_AGE = 3600
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16), method="scrypt")


class AccountError(Refusal):
    """A refused account change; the message is fit to show the person who asked."""


class TooManyAttempts(AccountError):
    """Sign-ins from this address for this email are throttled for now (HTTP 429)."""


def email_index(email: str) -> str:
    return blind_index("user.email", email, normalize_email)


def phone_index(phone: str) -> str:
    return blind_index("user.phone", phone, normalize_phone)


def clean_email(raw: str) -> str:
    email = (raw or "").strip()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise AccountError(N_("Enter a valid email address, like name@example.com."))
    return email


def clean_phone(raw: str) -> str:
    phone = re.sub(r"[\s()-]", "", raw or "")
    if not PHONE_RE.match(phone):
        raise AccountError(N_("Enter a valid phone number: digits only, 6 to 15 of them."))
    return phone


def check_password_strength(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(
            N_("The password must have at least %(count)d characters."), count=MIN_PASSWORD
        )
    if len(password) > MAX_PASSWORD:
        raise AccountError(
            N_("The password may have at most %(count)d characters."), count=MAX_PASSWORD
        )


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(8))


def find_by_email(email: str) -> User | None:
    return User.get_or_none(User.email_index == email_index(email))


def find_by_invite_code(code: str) -> User | None:
    code = (code or "").strip().upper()
    if not code:
        return None
    return User.get_or_none(User.invite_code == code)


def register(
    email: str,
    password: str,
    *,
    phone: str | None = None,
    role: str = "customer",
    referrer_code: str | None = None,
    locale: str | None = None,
    actor=None,
) -> User:
    """Create an account. The referrer, if any, is bound now and never by the user again."""
    email = clean_email(email)
    check_password_strength(password)
    if role not in ROLES:
        raise AccountError(
            N_("Unknown role %(role)s; choose one of: %(roles)s."),
            role=repr(role),
            roles=", ".join(ROLES),
        )
    if role == "owner" and owner_exists():
        raise AccountError(N_("The shop already has its owner; add staff instead."))
    phone = clean_phone(phone) if phone else None
    referrer = None
    if referrer_code:
        referrer = find_by_invite_code(referrer_code)
        if referrer is None:
            raise AccountError(
                N_("No account has the invite code %(code)s."), code=repr(referrer_code)
            )
    pw_hash = hash_password(password)
    for _ in range(5):
        try:
            with db.atomic():
                if find_by_email(email) is not None:
                    raise AccountError(N_("An account with this email already exists."))
                if phone and User.get_or_none(User.phone_index == phone_index(phone)):
                    raise AccountError(N_("An account with this phone number already exists."))
                user = User.create(
                    email=email,
                    email_index=email_index(email),
                    phone=phone,
                    phone_index=phone_index(phone) if phone else None,
                    password_hash=pw_hash,
                    role=role,
                    invite_code=new_invite_code(),
                    referrer=referrer,
                    locale=locale,
                )
                record("user.register", target=f"user:{user.id}", actor=actor, role=role)
            break
        except IntegrityError as exc:
            # a concurrent registration of the same email, or an invite code collision
            if find_by_email(email) is not None:
                raise AccountError(N_("An account with this email already exists.")) from exc
    else:
        raise AccountError(N_("Could not allocate an invite code; please try again."))
    plugins.notify(event="user.registered", user=user)
    return user


def _login_key(email: str, ip: str) -> str:
    return "login:" + blind_index("throttle", f"{ip}|{email}")[:48]


def authenticate(email: str, password: str, ip: str = "") -> User:
    """Return the user for valid credentials, else raise one message for every failure.

    A wrong email and a wrong password look the same, and repeated failures from one address
    for one email are throttled, so passwords cannot be guessed online. Each try is counted
    before the slow hash check, so parallel tries cannot all pass under the limit; the right
    password clears the count, since whoever knows it is not guessing.
    """
    key = _login_key((email or "").strip().lower(), ip)
    if not throttle.attempt(key, LOGIN_LIMIT, LOGIN_WINDOW).allowed:
        raise TooManyAttempts(N_("Too many failed sign-ins. Please wait 15 minutes and try again."))
    user = find_by_email(email) if EMAIL_RE.match((email or "").strip()) else None
    # an unknown email costs the same hash check as a known one: no timing oracle
    stored = user.password_hash if user is not None else _DUMMY_HASH
    if not check_password_hash(stored, password or "") or user is None:
        raise AccountError(N_("Wrong email or password."))
    throttle.clear(key)
    if not user.is_active:
        raise AccountError(N_("This account is disabled. Contact the shop."))
    User.update(last_login_at=now()).where(User.id == user.id).execute()
    return user


def change_password(user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current or ""):
        raise AccountError(N_("The current password is wrong."))
    set_password(user, new)


def set_password(user: User, new: str, actor=None) -> None:
    """Store a new password and end every other session of the user."""
    check_password_strength(new)
    with db.atomic():
        User.update(
            password_hash=hash_password(new), session_version=User.session_version + 1
        ).where(User.id == user.id).execute()
        record("user.password", target=f"user:{user.id}", actor=actor or user)
    user.password_hash = User.get_by_id(user.id).password_hash
    user.session_version += 1


def _reset_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="kashop.password-reset")


def make_reset_token(user: User, secret_key: str) -> str:
    """A signed token that dies after an hour or as soon as the password changes."""
    return _reset_serializer(secret_key).dumps({"u": user.id, "v": user.session_version})


def user_for_reset_token(token: str, secret_key: str) -> User:
    try:
        data = _reset_serializer(secret_key).loads(token, max_age=RESET_MAX_AGE)
    except SignatureExpired:
        raise AccountError(N_("This reset link has expired. Ask for a new one.")) from None
    except BadSignature:
        raise AccountError(N_("This reset link is not valid. Ask for a new one.")) from None
    user = User.get_or_none(User.id == data.get("u"))
    if user is None or user.session_version != data.get("v"):
        raise AccountError(N_("This reset link was already used. Ask for a new one."))
    return user


def request_password_reset(email: str, secret_key: str, url_for_token) -> None:
    """Send a reset link if the account exists; say nothing either way (no account probing)."""
    try:
        user = find_by_email(clean_email(email))
    except AccountError:
        return
    if user is None:
        return
    link = url_for_token(make_reset_token(user, secret_key))
    plugins.notify(event="user.password_reset", user=user, link=link, to=user.email)


def set_role(user: User, role: str, actor) -> None:
    """Make a customer staff or staff a customer. The shop has one owner, so that role is
    never taken, and given only while nobody has it. The user's sessions end, so the new
    role applies from their next request rather than whenever they sign in again."""
    if role not in ROLES:
        raise AccountError(
            N_("Unknown role %(role)s; choose one of: %(roles)s."),
            role=repr(role),
            roles=", ".join(ROLES),
        )
    if user.role == "owner" or (role == "owner" and owner_exists()):
        raise AccountError(N_("The shop has one owner; that role cannot be given or taken."))
    if role == user.role:
        return
    with db.atomic():
        User.update(role=role, session_version=User.session_version + 1).where(
            (User.id == user.id) & (User.role != "owner")
        ).execute()
        record("user.role", target=f"user:{user.id}", actor=actor, role=role, was=user.role)
    user.role = role


def set_locale(user: User, locale: str) -> None:
    """Remember a signed-in user's language: it outranks the cookie when pages pick one, so
    the switch must change it, and it then follows the user to other devices."""
    User.update(locale=locale).where(User.id == user.id).execute()
    user.locale = locale


def owner_exists() -> bool:
    return User.select().where(User.role == "owner").exists()
