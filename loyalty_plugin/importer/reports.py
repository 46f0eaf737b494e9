"""What an import did: the counts, and every rejected line with its reason, for the CLI and the shop."""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

from .files import PathLike

#: Why lines were rejected, as the summary lists them.
REASONS = {
    "cancellation": "cancellation invoices (order id C...): refunds go through record_refund",
    "return": "negative quantity (returns, stock corrections)",
    "zero_price": "unit price 0 (free lines, samples, corrections)",
    "bad_price": "unit price not a positive amount with at most two decimals",
    "bad_qty": "quantity not a whole number of 1 or more",
    "bad_date": "placed_at not a date-time",
    "future_date": "placed_at in the future",
    "missing": "a required value is empty",
    "too_long": "a value is too long",
    "malformed": "fewer values than the header has columns",
    "inconsistent": "lines of one order disagree (customer, total, shipping or tax)",
    "bad_total": "total, shipping or tax not valid",
    "split_order": "lines of one order not together",
    "conflict": "order already recorded with different content",
    "with_rejected_line": "other lines of an order that had a rejected line",
    "duplicate": "the same sku twice in the file",
    "bad_price_item": "price not an amount of zero or more with at most two decimals",
    "bad_flag": "in_stock or consumable not yes/no",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """One line not imported: where it is, which field, and why in words a shop owner reads."""

    line: int
    field: str
    value: str
    reason: str
    message: str
    #: the order id (orders) or the sku (items) the line belongs to
    key: str = ""


@dataclass
class ImportReport:
    """What a run did; ``summary()`` is what the CLI prints."""

    path: str
    lines_read: int = 0
    seconds: float = 0.0
    rejections: list[Rejection] = field(default_factory=list)
    key_name: ClassVar[str] = "key"

    @property
    def lines_rejected(self) -> int:
        return len(self.rejections)

    def rejected_by_reason(self) -> dict[str, int]:
        return dict(Counter(r.reason for r in self.rejections).most_common())

    def reject(self, line: int, field_name: str, value: str, reason: str, message: str, key: str = "") -> None:
        self.rejections.append(Rejection(line, field_name, value[:200], reason, message, key))

    def write_rejections(self, path: PathLike) -> None:
        """Every rejected line as CSV, in file order, for the shop to correct and import again."""
        with open(path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["line", self.key_name, "field", "value", "reason", "message"])
            for r in sorted(self.rejections, key=lambda r: r.line):
                writer.writerow([r.line, r.key, r.field, r.value, r.reason, r.message])

    def counts(self) -> list[tuple[str, int]]:
        """The figures ``summary()`` lists, in its order."""
        return [("lines read", self.lines_read)]

    def summary(self) -> str:
        rows = [f"{label:<24}{value:>12,}" for label, value in self.counts()]
        rows.append(f"{'lines rejected':<24}{self.lines_rejected:>12,}")
        for reason, count in self.rejected_by_reason().items():
            rows.append(f"  {reason:<22}{count:>12,}  {REASONS[reason]}")
        rows.append(f"{'time':<24}{self.seconds:>10.1f} s")
        return "\n".join([os.path.basename(self.path), *rows])


@dataclass
class OrderImportReport(ImportReport):
    key_name: ClassVar[str] = "order_id"
    lines_imported: int = 0
    lines_already_present: int = 0
    orders_imported: int = 0
    orders_of_members: int = 0
    orders_already_present: int = 0
    orders_conflicting: int = 0
    orders_rejected: int = 0
    orders_linked: int = 0
    members_enrolled: int = 0
    points_awarded: int = 0
    items_added: int = 0

    def counts(self) -> list[tuple[str, int]]:
        return [
            ("lines read", self.lines_read),
            ("lines imported", self.lines_imported),
            ("orders imported", self.orders_imported),
            ("  of members", self.orders_of_members),
            ("orders already present", self.orders_already_present),
            ("  their lines", self.lines_already_present),
            ("orders in conflict", self.orders_conflicting),
            ("orders rejected", self.orders_rejected),
            ("orders linked to members", self.orders_linked),
            ("members enrolled", self.members_enrolled),
            ("points awarded", self.points_awarded),
            ("items added to catalog", self.items_added),
        ]


@dataclass
class ItemImportReport(ImportReport):
    key_name: ClassVar[str] = "sku"
    items_added: int = 0
    items_updated: int = 0
    items_unchanged: int = 0

    def counts(self) -> list[tuple[str, int]]:
        return [
            ("lines read", self.lines_read),
            ("items added", self.items_added),
            ("items updated", self.items_updated),
            ("items unchanged", self.items_unchanged),
        ]
