"""Our column names, the exports we know, ``--mapping``, and where each column is in a file."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from ..errors import BadInput

ORDER_REQUIRED = ("order_id", "placed_at", "sku", "qty", "unit_price")
#: ``user_id`` empty = a guest; ``total`` defaults to the sum of the lines; ``name`` feeds the catalog
ORDER_OPTIONAL = ("user_id", "category", "total", "shipping", "tax", "name")
ORDER_COLUMNS = ORDER_REQUIRED + ORDER_OPTIONAL
ITEM_COLUMNS = ("sku", "name", "category", "price", "url", "image_url", "in_stock", "consumable")
ITEM_REQUIRED = ("sku", "name")

#: Exports whose headers we know: ``--mapping online-retail``.
KNOWN_EXPORTS: dict[str, dict[str, str]] = {
    "online-retail": {
        "order_id": "InvoiceNo",
        "user_id": "CustomerID",
        "placed_at": "InvoiceDate",
        "sku": "StockCode",
        "qty": "Quantity",
        "unit_price": "UnitPrice",
        "name": "Description",
    },
}


def resolve_mapping(value: str | None) -> dict[str, str] | None:
    """``--mapping``: nothing (the file uses our column names), a known export, or JSON.

    JSON is an object ``{our_column: their_header}``; columns it leaves out are looked for
    under our own name.
    """
    if value is None or not value.strip():
        return None
    if value.strip() in KNOWN_EXPORTS:
        return dict(KNOWN_EXPORTS[value.strip()])
    known = ", ".join(KNOWN_EXPORTS)
    try:
        mapping = json.loads(value)
    except json.JSONDecodeError:
        raise click.BadParameter(
            f'give a known export ({known}) or a JSON object like \'{{"order_id": "Invoice", "sku": "Item code"}}\'.',
            param_hint="--mapping",
        ) from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) and v.strip() for v in mapping.values()):
        raise click.BadParameter(
            "the JSON must be an object of our column -> your header (text).", param_hint="--mapping"
        )
    unknown = sorted(set(mapping) - set(ORDER_COLUMNS))
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)} is not one of our columns: {', '.join(ORDER_COLUMNS)}.", param_hint="--mapping"
        )
    return {ours: theirs.strip() for ours, theirs in mapping.items()}


def _columns(
    header: list[str], mapping: dict[str, str] | None, ours: Sequence[str], required: Sequence[str], name: str
) -> dict[str, int]:
    """Where each of our columns is in the file; refuses a file without a required one."""
    wanted = {col: (mapping or {}).get(col, col) for col in ours}
    found = {col: header.index(h) for col, h in wanted.items() if h in header}
    missing = [col if wanted[col] == col else f"{col} (header {wanted[col]!r})" for col in required if col not in found]
    if missing:
        raise BadInput(
            f"{name} has no column for {', '.join(missing)}. Its header is: {', '.join(header)}. "
            f"Rename the columns{' or give --mapping' if ours == ORDER_COLUMNS else ''}.",
            field="header",
        )
    return found
