"""Building the Flask application: instance, database, extensions, plugins, blueprints."""

import logging

from flask import Flask, g, redirect, request, url_for
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from shop import crypto, group_commit, migrations, plugins, settings, themes
from shop import db as shop_db
from shop.config import load_config
from shop.db import db
from shop.i18n import current_language, select_locale
from shop.localtime import zone_name
from shop.security.headers import add_security_headers
from shop.security.sessions import ShopSessionInterface
from shop.settings import service as settings_service

log = logging.getLogger("shop")
csrf = CSRFProtect()
login_manager = LoginManager()


def create_app(overrides: dict | None = None) -> Flask:
    cfg = load_config()
    app = Flask("shop")
    app.jinja_environment = themes.ThemedEnvironment
    app.session_interface = ShopSessionInterface()
    app.config.update(
        SECRET_KEY=cfg.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        SHOP_INSTANCE=str(cfg.path),
        SHOP_REDIS_URL=cfg.redis_url,
    )
    if cfg.public_url and cfg.public_url.startswith("https://"):
        # served over TLS: cookies must never travel over plain HTTP
        app.config.update(
            SESSION_COOKIE_SECURE=True, REMEMBER_COOKIE_SECURE=True, PREFERRED_URL_SCHEME="https"
        )
    if cfg.trusted_proxies:
        # behind nginx/Caddy: the client address and scheme come from X-Forwarded-*, which
        # is trusted only for the configured number of proxy hops
        n = cfg.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.config.update(overrides or {})
    app.instance_path = str(cfg.path)

    crypto.configure(cfg.master_key)
    shop_db.bind(cfg.database_url)
    migrations.run()
    # the settings cache is per process; values read from another database must not leak in
    settings_service.invalidate()

    csrf.init_app(app)
    Babel(app, locale_selector=select_locale, timezone_selector=zone_name)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    # Sessions are not pinned to an IP: phones hop networks. Rotation on login and the
    # session version (bumped on password change) end stolen or stale sessions instead.
    login_manager.session_protection = None
    themes.init_app(app)
    plugins.init(safe_mode=cfg.safe_mode)

    _register_blueprints(app)
    _register_request_hooks(app)
    from shop.cli import shop_cli
    from shop.errors import register_error_handlers

    register_error_handlers(app)
    app.cli.add_command(shop_cli)
    plugins.fire("app_started", app=app)
    return app


def _register_blueprints(app: Flask) -> None:
    # the *_admin imports add their pages to the admin blueprint before it is registered
    from shop.accounts.views import bp as accounts_bp
    from shop.admin.views import bp as admin_bp
    from shop.api.account import bp as api_keys_bp
    from shop.api.views import bp as api_bp
    from shop.catalog.views import bp as catalog_bp
    from shop.distribution import admin_views as distribution_admin  # noqa: F401
    from shop.distribution.views import bp as distribution_bp
    from shop.orders.views import bp as orders_bp
    from shop.payments import admin_views as payments_admin  # noqa: F401
    from shop.payments.views import bp as payments_bp
    from shop.payments.views import notify as payment_notify
    from shop.setup.views import bp as setup_bp
    from shop.storefront.views import bp as storefront_bp
    from shop.withdrawals import admin_views as withdrawals_admin  # noqa: F401
    from shop.withdrawals.views import bp as withdrawals_bp

    for bp in (
        setup_bp,
        accounts_bp,
        storefront_bp,
        catalog_bp,
        orders_bp,
        payments_bp,
        admin_bp,
        api_keys_bp,
        api_bp,
        withdrawals_bp,
        distribution_bp,
    ):
        app.register_blueprint(bp)
    csrf.exempt(payment_notify)  # gateways sign their callbacks; they have no form token
    csrf.exempt(api_bp)  # signed with HMAC, never with a browser session


def _register_request_hooks(app: Flask) -> None:
    from shop.accounts.service import owner_exists
    from shop.accounts.session import load_user

    login_manager.user_loader(load_user)
    state = {"set_up": False}

    @app.before_request
    def open_db_and_require_setup():
        group_commit.wait_for_writer()
        db.connect(reuse_if_open=True)
        if not state["set_up"]:
            state["set_up"] = owner_exists()
            exempt = request.endpoint in ("setup.setup", "theme_static", None)
            if not state["set_up"] and not exempt:
                return redirect(url_for("setup.setup"))
        g.safe_mode = plugins.registry().safe_mode
        return None

    @app.teardown_request
    def close_db(exc):
        if not db.is_closed():
            db.close()

    app.after_request(add_security_headers)

    @app.context_processor
    def shop_context():
        return {
            "shop_name": settings.get("shop.name"),
            "slot": lambda name, **ctx: plugins.render_slot(name, ctx),
            "ui_language": current_language(),
        }
