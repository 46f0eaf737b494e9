"""Flask-WTF forms of the member pages; CSRF comes with every one of them.

Labels and messages are lazy strings of the plugin's own domain, translated when rendered.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, DecimalField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from .i18n import domain

_l = domain.lazy_gettext


class JoinForm(FlaskForm):
    accept_terms = BooleanField(
        _l("I accept the program terms"), validators=[DataRequired(_l("Please accept the program terms."))]
    )
    birthday = DateField(
        _l("Birthday (optional, for birthday points)"),
        validators=[Optional()],
        render_kw={"autocomplete": "bday"},
    )
    marketing_opt_in = BooleanField(_l("Send me offers by email"))
    referral_code = StringField(_l("Referral code (optional)"), validators=[Optional(), Length(max=32)])


class ConfirmForm(FlaskForm):
    """A form with nothing to fill in: the button is the confirmation, the token the proof."""


class CouponCheckForm(FlaskForm):
    code = StringField(
        _l("Coupon code"),
        validators=[DataRequired(_l("Please enter a coupon code.")), Length(max=80)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    order_total = DecimalField(
        _l("Order total"),
        places=2,
        validators=[
            InputRequired(_l("Please enter the order total.")),
            NumberRange(min=0, max=10**9, message=_l("Please enter an amount of 0 or more.")),
        ],
        render_kw={"inputmode": "decimal"},
    )


class LeaveForm(FlaskForm):
    confirm = BooleanField(
        _l("I understand that my points, coupons and tier will be gone for good"),
        validators=[DataRequired(_l("Please tick the box to confirm."))],
    )
