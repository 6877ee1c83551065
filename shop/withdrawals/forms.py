"""The withdrawal form and the names of payout methods. The form checks shape only; what an
amount or account may be is the service's decision, with the message the user sees."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from shop.withdrawals.service import MAX_ACCOUNT, MAX_NAME

# one per `models.METHODS`
METHOD_LABELS = {
    "alipay": _l("Alipay"),
    "wechat": _l("WeChat Pay"),
    "bank": _l("Bank transfer"),
}


class WithdrawForm(FlaskForm):
    amount = StringField(
        _l("Amount"), validators=[DataRequired(), Length(max=20)], description=_l("e.g. 10.00")
    )
    method = SelectField(
        _l("Pay me by"),
        validators=[DataRequired()],
        choices=[SelectChoice(value, label) for value, label in METHOD_LABELS.items()],
    )
    payee_name = StringField(
        _l("Payee name"),
        validators=[DataRequired(), Length(max=MAX_NAME)],
        description=_l("The real name on the account, as the bank or wallet shows it."),
    )
    payee_account = StringField(
        _l("Account"),
        validators=[DataRequired(), Length(max=MAX_ACCOUNT)],
        description=_l("Alipay account, WeChat ID or bank card number."),
    )
