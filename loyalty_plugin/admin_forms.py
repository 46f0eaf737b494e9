"""Flask-WTF forms of the admin pages; CSRF comes with every one of them.

The forms check shape (a number, a reason given, lengths); the rules of the program (a
percentage at most 100, a tier that exists, enough points to take) stay in the domain
modules, which refuse with a message the page shows beside the field.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DecimalField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from .i18n import domain
from .rewards import KINDS

_l = domain.lazy_gettext

try:  # WTForms 3.3 deprecates (value, label) tuples for SelectChoice; older releases lack it.
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - WTForms < 3.3
    SelectChoice = None


def choice(value: str, label: Any) -> Any:
    """One option of a select field, in the form the installed WTForms prefers."""
    return SelectChoice(value, label) if SelectChoice is not None else (value, label)


#: Largest points change one adjustment may make: a typo of a few zeros is refused.
MAX_ADJUSTMENT = 1_000_000


def _not_zero(_form: FlaskForm, field: Any) -> None:
    if field.data == 0:
        raise ValidationError(_l("An adjustment must add or take away at least one point."))


class AdjustForm(FlaskForm):
    points = IntegerField(
        _l("Points (negative to take away)"),
        validators=[
            InputRequired(_l("Please enter a whole number of points.")),
            NumberRange(
                min=-MAX_ADJUSTMENT,
                max=MAX_ADJUSTMENT,
                message=_l("Please enter at most 1,000,000 points either way."),
            ),
            _not_zero,
        ],
        render_kw={"inputmode": "numeric"},
    )
    reason = TextAreaField(
        _l("Reason (shown in the member's history)"),
        validators=[DataRequired(_l("Please give the reason for the adjustment.")), Length(max=500)],
    )


KIND_LABELS = {
    "fixed_amount": _l("Amount off"),
    "percent": _l("Percent off"),
    "free_shipping": _l("Free shipping"),
    "free_item": _l("Free item"),
}


class RewardForm(FlaskForm):
    """Every field a reward has; which ones apply depends on the kind (the domain checks it)."""

    name = StringField(_l("Name"), validators=[DataRequired(_l("Please give the reward a name.")), Length(max=200)])
    kind = SelectField(_l("Kind"), choices=[choice(kind, KIND_LABELS[kind]) for kind in KINDS])
    cost_points = IntegerField(
        _l("Cost in points"),
        validators=[
            InputRequired(_l("Please enter the cost in points.")),
            NumberRange(min=1, max=10**9, message=_l("The cost must be at least 1 point.")),
        ],
    )
    amount = DecimalField(_l("Amount off (for an amount-off reward)"), places=2, validators=[Optional()])
    percent = DecimalField(_l("Percent off (for a percent-off reward)"), places=2, validators=[Optional()])
    max_discount = DecimalField(_l("Largest discount (optional, percent off)"), places=2, validators=[Optional()])
    sku = StringField(_l("Item SKU (for a free item)"), validators=[Optional(), Length(max=100)])
    min_order_total = DecimalField(_l("Minimum order (optional)"), places=2, validators=[Optional()])
    min_tier = SelectField(_l("Only for this tier and above"), choices=[], default="")
    stock = IntegerField(_l("Stock (optional; empty: unlimited)"), validators=[Optional(), NumberRange(min=0)])
    per_member_limit = IntegerField(
        _l("Times one member may redeem it (optional)"), validators=[Optional(), NumberRange(min=1)]
    )

    def definition(self) -> dict[str, Any]:
        """What :func:`loyalty_plugin.rewards.create_reward` takes, empty fields as None."""
        return {
            name: (None if field.data in ("", None) else field.data)
            for name, field in self._fields.items()
            if name != "csrf_token"
        }
