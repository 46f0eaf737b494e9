"""``import-items``: catalog items added or updated by sku."""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from ..database import Store
from ..models import Item
from .cells import _amount, _Bad, _text
from .columns import ITEM_COLUMNS, ITEM_REQUIRED, _columns
from .files import PathLike, _table
from .reports import ItemImportReport
from .sql import _chunks

#: A batch is one transaction, and on SQLite it holds the write lock while it runs: this bounds
#: how long a live shop's own writes may wait behind an import.
BATCH_ITEMS = 2000
TRUE_WORDS = {"1", "true", "yes", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "n", "f"}


def _flag(text: str, field_name: str) -> bool:
    word = text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _Bad(field_name, text, "bad_flag", f"{field_name} must be yes or no (true/false, 1/0), not {text!r}.")


def _item(raw: list[str], at: dict[str, int]) -> dict[str, Any]:
    """The values a line gives; a blank optional cell leaves the catalog's value as it is."""
    width = max(at.values()) + 1
    if len(raw) < width:
        raise _Bad("", ",".join(raw), "malformed", f"the line has {len(raw)} values but the columns need {width}.")
    limits = {"sku": 100, "name": 300, "category": 100, "url": 500, "image_url": 500}
    values: dict[str, Any] = {}
    for col, limit in limits.items():
        value = _text(raw, at.get(col), col, limit, required=col in ITEM_REQUIRED)
        if value is not None:
            values[col] = value
    if "price" in at and raw[at["price"]].strip():
        values["price"] = _amount(raw[at["price"]].strip(), "price", "bad_price_item")
    for col in ("in_stock", "consumable"):
        if col in at and raw[at[col]].strip():
            values[col] = _flag(raw[at[col]].strip(), col)
    return values


def import_items(store: Store, path: PathLike, *, now: datetime) -> ItemImportReport:
    """Add or update catalog items by sku; items the file leaves out are not touched."""
    started = time.perf_counter()
    report = ItemImportReport(path=os.fspath(path))
    seen: dict[str, int] = {}
    with _table(path) as table:
        at = _columns(table.header, None, ITEM_COLUMNS, ITEM_REQUIRED, os.path.basename(report.path))
        batch: list[dict[str, Any]] = []
        for line, raw in table.records():
            report.lines_read += 1
            try:
                values = _item(raw, at)
            except _Bad as problem:
                sku = raw[at["sku"]].strip() if at["sku"] < len(raw) else ""
                report.reject(line, problem.field, problem.value, problem.reason, problem.message, sku)
                continue
            sku = values["sku"]
            if sku in seen:
                report.reject(
                    line,
                    "sku",
                    sku,
                    "duplicate",
                    f"sku {sku} is already on line {seen[sku]}; list each item once.",
                    sku,
                )
                continue
            seen[sku] = line
            batch.append(values)
            if len(batch) >= BATCH_ITEMS:
                _write_items(store, batch, now, report)
                batch = []
        if batch:
            _write_items(store, batch, now, report)
    report.seconds = time.perf_counter() - started
    return report


def _write_items(store: Store, batch: list[dict[str, Any]], now: datetime, report: ItemImportReport) -> None:
    with store.work() as session:
        stored = {}
        for chunk in _chunks([values["sku"] for values in batch]):
            stored.update({item.sku: item for item in session.scalars(select(Item).where(Item.sku.in_(chunk)))})
        added, changed = [], []
        for values in batch:
            item = stored.get(values["sku"])
            if item is None:
                added.append(
                    {
                        "category": None,
                        "price": None,
                        "url": None,
                        "image_url": None,
                        "in_stock": True,
                        "consumable": True,
                        **values,
                        "updated_at": now,
                    }
                )
            elif any(getattr(item, col) != value for col, value in values.items()):
                changed.append({**values, "updated_at": now})
            else:
                report.items_unchanged += 1
        if added:
            session.execute(insert(Item.__table__), added)
        for values in changed:
            session.execute(update(Item).where(Item.sku == values["sku"]).values(**values))
        report.items_added += len(added)
        report.items_updated += len(changed)
    store.commit()
