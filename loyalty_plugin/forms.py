"""Flask-WTF forms of the member pages; CSRF comes with every one of them."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, StringField
from wtforms.validators import DataRequired, Length, Optional


class JoinForm(FlaskForm):
    accept_terms = BooleanField(
        "I accept the program terms", validators=[DataRequired("Please accept the program terms.")]
    )
    birthday = DateField("Birthday (optional, for birthday points)", validators=[Optional()])
    marketing_opt_in = BooleanField("Send me offers by email")
    referral_code = StringField("Referral code (optional)", validators=[Optional(), Length(max=32)])
