"""Building the Flask application: instance, database, extensions, plugins, blueprints."""

import logging

from flask import Flask, g, redirect, request, url_for
from flask_babel import Babel, get_locale
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from shop import crypto, migrations, plugins, settings, themes
from shop import db as shop_db
from shop.config import load_config
from shop.db import db
from shop.i18n import select_locale
from shop.security.headers import add_security_headers

log = logging.getLogger("shop")
csrf = CSRFProtect()
login_manager = LoginManager()


def create_app(overrides: dict | None = None) -> Flask:
    cfg = load_config()
    app = Flask("shop")
    app.jinja_environment = themes.ThemedEnvironment
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
    app.config.update(overrides or {})
    app.instance_path = str(cfg.path)

    crypto.configure(cfg.master_key)
    shop_db.bind(cfg.database_url)
    migrations.run()

    csrf.init_app(app)
    Babel(app, locale_selector=select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.session_protection = "strong"
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
    from shop.accounts.views import bp as accounts_bp
    from shop.admin.views import bp as admin_bp
    from shop.catalog.views import bp as catalog_bp
    from shop.setup.views import bp as setup_bp
    from shop.storefront.views import bp as storefront_bp

    for bp in (setup_bp, accounts_bp, storefront_bp, catalog_bp, admin_bp):
        app.register_blueprint(bp)


def _register_request_hooks(app: Flask) -> None:
    from shop.accounts.service import owner_exists
    from shop.accounts.session import load_user

    login_manager.user_loader(load_user)
    state = {"set_up": False}

    @app.before_request
    def open_db_and_require_setup():
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
            "get_locale": get_locale,
        }
