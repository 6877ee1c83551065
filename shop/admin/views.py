"""Admin pages. Each handler parses the form and calls one service function."""

from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from shop import localtime, plugins, settings, themes
from shop.accounts.models import User
from shop.admin import dashboard as dashboard_data
from shop.admin.nav import entries
from shop.audit.models import AuditLog
from shop.crypto import mask_email, mask_phone
from shop.levels.models import Level
from shop.money import format_amount
from shop.plugins import PluginError
from shop.settings import SettingError

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50


def staff_required(view):
    @wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not current_user.is_staff:
            abort(403)
        return view(*args, **kwargs)

    return wrapper


@bp.context_processor
def admin_context():
    return {
        "admin_nav": entries(),
        "safe_mode": plugins.registry().safe_mode,
        "money": format_amount,
        "shop_timezone": localtime.zone_name(),  # said in the header: staff read every time in it
    }


@bp.route("/")
@staff_required
def dashboard():
    return render_template("admin/dashboard.html", cards=dashboard_data.cards())


@bp.route("/settings", methods=["GET", "POST"])
@staff_required
def settings_page():
    errors = {}
    if request.method == "POST":
        for item in settings.specs():
            field = f"setting:{item.key}"
            if field not in request.form:
                continue
            raw = request.form[field]
            if item.secret and not raw:
                continue
            if str(raw) == str(settings.get(item.key)):
                continue
            try:
                settings.set_value(item.key, raw, actor=current_user)
            except SettingError as exc:
                errors[item.key] = exc.translated()
        if not errors:
            flash(_("Settings saved."), "success")
            return redirect(url_for("admin.settings_page"))
    values = settings.get_all()
    page = render_template(
        "admin/settings.html", specs=settings.specs(), values=values, errors=errors
    )
    return page, 400 if errors else 200


@bp.route("/users")
@staff_required
def users():
    page = max(request.args.get("page", 1, type=int), 1)
    query = User.select().order_by(User.id.desc()).paginate(page, PAGE_SIZE)
    level_names = dict(Level.select(Level.id, Level.name).tuples())
    rows = [
        {
            "id": u.id,
            "email": mask_email(u.email),
            "phone": mask_phone(u.phone or ""),
            "role": u.role,
            "invite_code": u.invite_code,
            "referrer_id": u.referrer_id,
            "level": level_names.get(u.level_id, ""),
            "created_at": u.created_at,
            "is_active": u.is_active,
        }
        for u in query
    ]
    return render_template("admin/users.html", rows=rows, page=page, page_size=PAGE_SIZE)


def _plugins_page(status: int = 200):
    reg = plugins.registry()
    items = [
        {"info": info, "enabled": reg.is_enabled(name), "settings": reg.settings(name)}
        for name, info in sorted(reg.plugins.items())
    ]
    return render_template("admin/plugins.html", items=items), status


def _plugin_or_404(name: str):
    reg = plugins.registry()
    if name not in reg.plugins:
        abort(404)
    return reg.info(name)


@bp.route("/plugins", methods=["GET"])
@staff_required
def plugins_page():
    return _plugins_page()


@bp.route("/plugins/<name>/toggle", methods=["POST"])
@staff_required
def plugin_toggle(name):
    _plugin_or_404(name)
    try:
        plugins.registry().set_enabled(name, request.form.get("enabled") == "1", actor=current_user)
    except PluginError as exc:
        flash(exc.translated(), "error")
        return _plugins_page(400)
    flash(_("Plugin %(name)s updated.", name=name), "success")
    return redirect(url_for("admin.plugins_page")), 303


@bp.route("/plugins/<name>/settings", methods=["POST"])
@staff_required
def plugin_settings(name):
    info = _plugin_or_404(name)
    raw = {s.key: request.form.get(f"setting:{s.key}", "") for s in info.settings}
    for s in info.settings:
        if s.type == "bool":
            raw[s.key] = "1" if request.form.get(f"setting:{s.key}") else "0"
    try:
        plugins.registry().save_settings(name, raw, actor=current_user)
    except PluginError as exc:
        flash(exc.translated(), "error")
        return _plugins_page(400)
    flash(_("Settings of %(name)s saved.", name=name), "success")
    return redirect(url_for("admin.plugins_page")), 303


@bp.route("/themes", methods=["GET", "POST"])
@staff_required
def themes_page():
    status = 200
    if request.method == "POST":
        try:
            settings.set_value("theme.active", request.form.get("theme", ""), actor=current_user)
        except SettingError as exc:
            # bad input answers 400 on the page itself, with nothing changed
            flash(exc.translated(), "error")
            status = 400
        else:
            flash(_("Theme switched."), "success")
            return redirect(url_for("admin.themes_page")), 303
    page = render_template(
        "admin/themes.html", themes=themes.available().values(), active=themes.active()
    )
    return page, status


@bp.route("/audit")
@staff_required
def audit_page():
    page = max(request.args.get("page", 1, type=int), 1)
    rows = AuditLog.select().order_by(AuditLog.id.desc()).paginate(page, PAGE_SIZE)
    return render_template("admin/audit.html", rows=rows, page=page, page_size=PAGE_SIZE)


# the other areas' pages on this blueprint; imported last because they import `bp` from here
from shop.admin import catalog_views, order_views  # noqa: E402, F401
from shop.levels import admin_views as levels_views  # noqa: E402, F401
from shop.points import admin_views as points_views  # noqa: E402, F401
