"""Storefront forms. They check shape only (lengths); what a quantity, contact or amount
means is decided by the services, which give the message the buyer sees. Each form carries
the CSRF token."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField
from wtforms.validators import DataRequired, Length


class BuyForm(FlaskForm):
    """The product page's order form. There is deliberately no price field: the server
    prices every order. Answers to the product's own fields are read by name beside it."""

    quantity = StringField(_l("Quantity"), validators=[Length(max=20)])
    contact = StringField(
        _l("Email or phone"),
        validators=[Length(max=254)],
        description=_l("Where the shop can reach you about this order."),
    )
    query_password = PasswordField(
        _l("Order query password"),
        validators=[Length(max=128)],
        description=_l(
            "Choose any password of at least 4 characters. With the order number and your "
            "email or phone it opens this order again, from any device, to see your keys."
        ),
    )
    gateway = StringField(validators=[Length(max=32)])
    points = StringField(_l("Points to use"), validators=[Length(max=20)])


class TopUpForm(FlaskForm):
    amount = StringField(
        _l("Amount"), validators=[DataRequired(), Length(max=20)], description=_l("e.g. 50.00")
    )
    gateway = RadioField(_l("Pay with"), validators=[DataRequired()], choices=[])
