"""Parsing and arithmetic for money and points: Decimal in, integers of points out."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from .errors import BadInput

CENT = Decimal("0.01")
MAX_MONEY = Decimal("10000000000")


def to_money(value: Any, field: str, *, allow_zero: bool = True) -> Decimal:
    """A non-negative amount with at most two decimals; floats are refused, not rounded."""
    if value is None or value == "":
        raise BadInput(f"{field} is required.", field=field)
    if isinstance(value, bool | float):
        raise BadInput(f"{field} must be given as a decimal string or number, not {type(value).__name__}.", field=field)
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise BadInput(f"{field} is not an amount of money: {str(value)[:40]!r}.", field=field) from None
    if not amount.is_finite():
        raise BadInput(f"{field} is not an amount of money.", field=field)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise BadInput(f"{field} must be {'zero or more' if allow_zero else 'more than zero'}.", field=field)
    if amount >= MAX_MONEY:  # before quantize: beyond 28 digits it raises instead of answering
        raise BadInput(f"{field} is too large.", field=field)
    if amount != amount.quantize(CENT):
        raise BadInput(f"{field} has more than two decimals: {amount}.", field=field)
    return amount.quantize(CENT)


#: The largest id the plugin's integer primary keys hold on every database (PostgreSQL INTEGER).
MAX_ID = 2**31 - 1


def to_quantity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadInput(f"{field} must be a whole number.", field=field)
    try:
        qty = int(value)
    except ValueError:
        raise BadInput(f"{field} must be a whole number, not {str(value)[:20]!r}.", field=field) from None
    if qty <= 0 or qty > 1_000_000:
        raise BadInput(f"{field} must be between 1 and 1,000,000.", field=field)
    return qty


def to_points(value: Any, field: str = "points") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{field} must be a whole number of points.", field=field)
    if abs(value) > 100_000_000:
        raise BadInput(f"{field} is too large.", field=field)
    return value


def from_cents(cents: Any) -> Decimal:
    """Money from a sum of cents (SQL sums of money in cents; None for an empty sum)."""
    return Decimal(int(cents or 0)).scaleb(-2)


def floor_points(amount: Decimal) -> int:
    """Points are whole: a fraction earned is dropped, never rounded up."""
    return int(amount.to_integral_value(rounding=ROUND_DOWN))


def to_text(value: Any, field: str, *, max_length: int = 255, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadInput(f"{field} is required.", field=field)
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise BadInput(f"{field} must be text.", field=field)
    text = str(value).strip()
    if len(text) > max_length:
        raise BadInput(f"{field} is longer than {max_length} characters.", field=field)
    return text


def to_required_text(value: Any, field: str, *, max_length: int = 255) -> str:
    text = to_text(value, field, max_length=max_length)
    if text is None:  # to_text refuses a missing required value; this tells the type checker
        raise BadInput(f"{field} is required.", field=field)
    return text


def to_moment(value: Any, field: str) -> datetime:
    """A point in time as naive UTC, the form every timestamp column holds."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise BadInput(f"{field} is not an ISO date-time: {value[:40]!r}.", field=field) from None
    else:
        raise BadInput(f"{field} must be a date-time.", field=field)
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # 0001-01-01 with a positive offset, 9999-12-31 with a negative one
            raise BadInput(f"{field} is out of range.", field=field) from None
    return moment


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
