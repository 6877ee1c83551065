"""The guest's order look-up form: shape only, the service decides whether the answers fit."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LookupForm(FlaskForm):
    order_no = StringField(_l("Order number"), validators=[DataRequired(), Length(max=40)])
    contact = StringField(
        _l("Email or phone given at checkout"), validators=[DataRequired(), Length(max=254)]
    )
    query_password = PasswordField(
        _l("Order query password"), validators=[DataRequired(), Length(max=128)]
    )
