"""Checks of one value of a line, shared by the order and item importers."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ..money import CENT, MAX_MONEY


class _Bad(Exception):
    """A line's problem, inside the parser only: callers see ``Rejection``s."""

    def __init__(self, field_name: str, value: str, reason: str, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.field = field_name
        self.value = value
        self.reason = reason
        self.message = message
        #: set by checks across the lines of an order, to blame the line that disagrees
        self.line = line


def _amount(text: str, field_name: str, reason: str) -> Decimal:
    """Zero or more with at most two decimals, as ``to_money`` accepts: nothing is rounded."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _Bad(field_name, text, reason, f"{field_name} must be an amount like 2.55, not {text!r}.") from None
    if not value.is_finite() or value < 0 or value >= MAX_MONEY:
        raise _Bad(field_name, text, reason, f"{field_name} must be an amount of 0 or more, not {text!r}.")
    cents = value.quantize(CENT)
    if cents != value:
        raise _Bad(field_name, text, reason, f"{field_name} has more than two decimals: {text}.")
    return cents


def _text(raw: list[str], at: int | None, field_name: str, limit: int, *, required: bool = False) -> str | None:
    value = raw[at].strip() if at is not None else ""
    if not value:
        if required:
            raise _Bad(field_name, "", "missing", f"{field_name} is empty; every line needs one.")
        return None
    if len(value) > limit:
        raise _Bad(field_name, value, "too_long", f"{field_name} is longer than {limit} characters.")
    return value
