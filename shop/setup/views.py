from flask import Blueprint, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from shop import themes
from shop.accounts.service import AccountError, owner_exists
from shop.i18n import LANGUAGES
from shop.settings import SettingError
from shop.setup.service import initialize

bp = Blueprint("setup", __name__)


class SetupForm(FlaskForm):
    shop_name = StringField(_l("Shop name"), validators=[DataRequired(), Length(max=80)])
    email = EmailField(_l("Owner email"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Owner password"), validators=[DataRequired(), Length(max=256)])
    language = SelectField(
        _l("Language"), choices=[SelectChoice(code, name) for code, name in LANGUAGES.items()]
    )
    demo = BooleanField(_l("Load the demo catalog"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if owner_exists():
        return redirect(url_for("storefront.home"))
    form = SetupForm()
    status = 200
    if form.validate_on_submit():
        try:
            owner, _created = initialize(
                form.shop_name.data,
                form.email.data,
                form.password.data,
                form.language.data,
                form.demo.data,
            )
        except (AccountError, SettingError) as exc:
            form.email.errors = [exc.translated()]
            status = 400
        else:
            login_user(owner)
            return redirect(url_for("admin.dashboard"))
    elif request.method == "POST":
        status = 400
    return themes.render("setup.html", form=form), status
