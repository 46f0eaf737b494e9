"""Order lines in: grouped into orders and checked, each order whole or rejected line by line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from ..orders import fingerprint
from .cells import _amount, _Bad, _text
from .reports import OrderImportReport

PRICE_CACHE = 100_000
MAX_QTY = 1_000_000


@dataclass(slots=True)
class _Line:
    line: int
    sku: str
    qty: int
    unit_price: Decimal
    cents: int
    category: str | None
    name: str | None
    user_id: str | None
    placed_at: datetime
    #: total, shipping and tax where this line gives them (files that have those columns)
    figures: dict[str, Decimal] | None


@dataclass(slots=True)
class _Order:
    order_id: str
    user_id: str | None
    placed_at: datetime
    total: Decimal
    shipping: Decimal
    tax: Decimal
    lines: list[_Line]
    fingerprint: str


def _split_orders(records: Iterator[tuple[int, list[str]]], at: int) -> dict[str, list[int]]:
    """Order ids whose lines are not all together, with the line each stretch starts on.

    Found in a first pass so such an order is rejected whole, before any of it is written.
    """
    first: dict[str, int] = {}
    split: dict[str, list[int]] = {}
    current = None
    for line, row in records:
        oid = row[at].strip() if at < len(row) else ""
        if not oid or oid == current:
            continue
        current = oid
        if oid in first:
            split.setdefault(oid, [first[oid]]).append(line)
        else:
            first[oid] = line
    return split


def _groups(records: Iterator[tuple[int, list[str]]], at: int) -> Iterator[tuple[str, list[tuple[int, list[str]]]]]:
    """Consecutive lines of one order; a line without an order id stands alone."""
    current, group = "", []
    for line, row in records:
        oid = row[at].strip() if at < len(row) else ""
        if not oid:
            yield "", [(line, row)]
            continue
        if oid != current and group:
            yield current, group
            group = []
        current = oid
        group.append((line, row))
    if group:
        yield current, group


def _whole(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _integer_id(value: str) -> str:
    """Spreadsheets and pandas turn integer ids into floats ("17850.0"): give them back."""
    whole, _, fraction = value.partition(".")
    if whole.isascii() and whole.isdigit() and fraction and fraction.strip("0") == "":
        return whole
    return value


class _OrderParser:
    """Turns the lines of one order into an ``_Order``, or into rejections for all of them."""

    def __init__(
        self, columns: dict[str, int], split: dict[str, list[int]], now: datetime, report: OrderImportReport
    ) -> None:
        self.qty_at, self.sku_at = columns["qty"], columns["sku"]
        self.price_at, self.placed_at = columns["unit_price"], columns["placed_at"]
        self.user_at, self.category_at, self.name_at = (columns.get(c) for c in ("user_id", "category", "name"))
        self.figures = [(c, columns[c]) for c in ("total", "shipping", "tax") if c in columns]
        self.width = max(columns.values()) + 1
        self.split = split
        self.now = now
        self.report = report
        self._prices: dict[str, tuple[Decimal, int]] = {}
        self._date_text: str | None = None
        self._date: datetime | _Bad = datetime.min

    def parse(self, order_id: str, group: list[tuple[int, list[str]]]) -> _Order | None:
        if not order_id:
            return self._reject_all(group, "", "missing", "order_id is empty; every line needs its order's id.")
        if order_id in self.split:
            starts = ", ".join(str(n) for n in self.split[order_id])
            message = (
                f"the lines of order {order_id} are not together (they start on lines {starts}); "
                "put all lines of one order one after another."
            )
            return self._reject_all(group, order_id, "split_order", message)
        if len(order_id) > 255:
            return self._reject_all(group, order_id, "too_long", "order_id is longer than 255 characters.")
        lines: list[_Line] = []
        bad: list[tuple[int, _Bad]] = []
        for line, raw in group:
            try:
                lines.append(self._line(order_id, line, raw))
            except _Bad as problem:
                bad.append((line, problem))
        if not bad:
            try:
                return self._order(order_id, lines)
            except _Bad as problem:
                at = problem.line or lines[0].line
                bad.append((at, problem))
                lines = [x for x in lines if x.line != at]
        self.report.orders_rejected += 1
        for line, problem in bad:
            self.report.reject(line, problem.field, problem.value, problem.reason, problem.message, order_id)
        first = min(line for line, _ in bad)
        for kept in lines:
            message = (
                f"not imported: order {order_id} is imported whole or not at all, and its line {first} was rejected."
            )
            self.report.reject(kept.line, "order_id", order_id, "with_rejected_line", message, order_id)
        return None

    def _reject_all(self, group: list[tuple[int, list[str]]], order_id: str, reason: str, message: str) -> None:
        self.report.orders_rejected += 1
        for line, _ in group:
            self.report.reject(line, "order_id", order_id, reason, message, order_id)

    def _line(self, order_id: str, line: int, raw: list[str]) -> _Line:
        if len(raw) < self.width:
            message = f"the line has {len(raw)} values but the columns used need {self.width}."
            raise _Bad("", ",".join(raw), "malformed", message)
        return _Line(
            line,
            _text(raw, self.sku_at, "sku", 100, required=True),  # type: ignore[arg-type]
            self._qty(order_id, raw[self.qty_at].strip()),
            *self._unit_price(raw[self.price_at].strip()),
            _text(raw, self.category_at, "category", 100),
            (raw[self.name_at].strip()[:300] or None) if self.name_at is not None else None,
            self._user(raw),
            self._placed(raw[self.placed_at].strip()),
            {c: _amount(raw[at].strip(), c, "bad_total") for c, at in self.figures if raw[at].strip()}
            if self.figures
            else None,
        )

    @staticmethod
    def _qty(order_id: str, text: str) -> int:
        qty = _whole(text)
        if qty is not None and qty < 0 and order_id.startswith("C"):
            message = f"{order_id} is a cancellation invoice (C...): refunds go through record_refund, not imports."
            raise _Bad("order_id", order_id, "cancellation", message)
        if qty is not None and qty < 0:
            message = f"qty {qty} is negative (a return or stock correction): returns are recorded with record_refund."
            raise _Bad("qty", text, "return", message)
        if qty is None or qty == 0 or qty > MAX_QTY:
            raise _Bad("qty", text, "bad_qty", f"qty must be a whole number >= 1, not {text!r}.")
        return qty

    def _unit_price(self, text: str) -> tuple[Decimal, int]:
        """The price and its cents; a shop has few distinct prices, so each text is parsed once."""
        known = self._prices.get(text)
        if known is not None:
            return known
        price = _amount(text, "unit_price", "bad_price")
        if price == 0:
            message = "unit_price is 0: free lines (samples, gifts, corrections) are not imported as sales."
            raise _Bad("unit_price", text, "zero_price", message)
        if len(self._prices) >= PRICE_CACHE:
            self._prices.clear()
        self._prices[text] = (price, int(price.scaleb(2)))
        return self._prices[text]

    def _placed(self, text: str) -> datetime:
        """Lines of one order share their date: parse each text once."""
        if text != self._date_text:
            self._date_text = text
            self._date = self._moment(text)
        if isinstance(self._date, _Bad):
            raise self._date
        return self._date

    def _moment(self, text: str) -> datetime | _Bad:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            message = f"placed_at must be a date-time like 2011-12-09 12:50:00, not {text!r}."
            return _Bad("placed_at", text, "bad_date", message)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        if moment > self.now:
            return _Bad("placed_at", text, "future_date", f"placed_at {text} is in the future.")
        return moment

    def _user(self, raw: list[str]) -> str | None:
        user = raw[self.user_at].strip() if self.user_at is not None else ""
        if "." in user:
            user = _integer_id(user)
        if len(user) > 255:
            raise _Bad("user_id", user, "too_long", "user_id is longer than 255 characters.")
        return user or None

    def _order(self, order_id: str, lines: list[_Line]) -> _Order:
        """The order-level checks: one customer, one total, shipping and tax within it."""
        head = lines[0]
        for x in lines:
            if x.user_id != head.user_id:
                message = (
                    f"order {order_id} names two customers: {head.user_id or '(guest)'} on line {head.line} "
                    f"and {x.user_id or '(guest)'} on line {x.line}."
                )
                raise _Bad("user_id", x.user_id or "", "inconsistent", message, x.line)
        given = self._agreed(order_id, lines) if self.figures else {}
        total = given["total"] if "total" in given else sum((x.unit_price * x.qty for x in lines), Decimal(0))
        shipping = given.get("shipping", Decimal("0.00"))
        tax = given.get("tax", Decimal("0.00"))
        if shipping + tax > total:
            message = f"shipping and tax ({shipping + tax}) are more than order {order_id}'s total ({total})."
            raise _Bad("total", str(total), "bad_total", message)
        content = [{"sku": x.sku, "qty": x.qty, "unit_price": str(x.unit_price), "category": x.category} for x in lines]
        digest = fingerprint(head.user_id, str(total), str(shipping), str(tax), content)
        placed_at = min(x.placed_at for x in lines)
        return _Order(order_id, head.user_id, placed_at, total, shipping, tax, lines, digest)

    @staticmethod
    def _agreed(order_id: str, lines: list[_Line]) -> dict[str, Decimal]:
        """Order figures may be given on every line or on one: where given, they must agree."""
        agreed: dict[str, tuple[Decimal, int]] = {}
        for x in lines:
            for name, value in (x.figures or {}).items():
                seen, where = agreed.setdefault(name, (value, x.line))
                if value != seen:
                    message = f"order {order_id} has {name} {seen} on line {where} and {value} on line {x.line}."
                    raise _Bad(name, str(value), "inconsistent", message, x.line)
        return {name: value for name, (value, _) in agreed.items()}
