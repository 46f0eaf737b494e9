"""``import-items``: the catalog from CSV, added or updated by sku, bad lines reported by line."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from loyalty_plugin import BadInput, importer
from loyalty_plugin.models import Item

HEADER = ["sku", "name", "category", "price", "url", "image_url", "in_stock", "consumable"]
CATALOG = [
    ["MUG", "Blue mug", "kitchen", "8.50", "/p/mug", "", "yes", "no"],
    ["TEA", "Green tea", "food", "4.00", "", "", "", ""],
]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(loyalty, path: Path) -> importer.ItemImportReport:
    state = loyalty.state()
    return importer.import_items(state.store, path, now=state.clock())


def items(loyalty) -> dict[str, Item]:
    with loyalty.state().store.work(write=False) as session:
        return {item.sku: item for item in session.scalars(select(Item))}


def test_items_are_added_with_defaults_for_what_the_file_leaves_blank(loyalty, tmp_path):
    report = run(loyalty, write_csv(tmp_path / "items.csv", CATALOG))
    assert (report.lines_read, report.items_added) == (2, 2)
    mug, tea = items(loyalty)["MUG"], items(loyalty)["TEA"]
    assert (mug.name, mug.category, mug.price, mug.url) == ("Blue mug", "kitchen", Decimal("8.50"), "/p/mug")
    assert (mug.in_stock, mug.consumable) == (True, False)
    assert (tea.in_stock, tea.consumable, tea.image_url) == (True, True, None)


def test_a_second_run_changes_nothing(loyalty, tmp_path):
    path = write_csv(tmp_path / "items.csv", CATALOG)
    run(loyalty, path)
    before = items(loyalty)["MUG"].updated_at
    again = run(loyalty, path)
    assert (again.items_added, again.items_updated, again.items_unchanged) == (0, 0, 2)
    assert items(loyalty)["MUG"].updated_at == before


def test_an_update_changes_only_the_columns_the_file_gives(loyalty, tmp_path, clock):
    run(loyalty, write_csv(tmp_path / "items.csv", CATALOG))
    clock.advance(days=1)
    report = run(loyalty, write_csv(tmp_path / "stock.csv", [["MUG", "Blue mug", "no"]], ["sku", "name", "in_stock"]))
    assert report.items_updated == 1
    mug = items(loyalty)["MUG"]
    assert (mug.in_stock, mug.price, mug.category, mug.updated_at) == (False, Decimal("8.50"), "kitchen", clock())
    assert items(loyalty)["TEA"].in_stock


def test_bad_lines_are_reported_by_line_and_field_and_the_rest_imported(loyalty, tmp_path):
    rows = [
        ["A", "Apple", "", "cheap", "", "", "", ""],
        ["B", "", "", "1.00", "", "", "", ""],
        ["C", "Cherry", "", "1.00", "", "", "maybe", ""],
        ["D", "Date", "", "1.005", "", "", "", ""],
        ["E", "Elder", "", "2.00", "", "", "", ""],
        ["E", "Elder again", "", "2.00", "", "", "", ""],
        ["F" * 101, "Fig", "", "", "", "", "", ""],
        ["G"],
    ]
    report = run(loyalty, write_csv(tmp_path / "items.csv", rows))
    assert {r.line: (r.field, r.reason) for r in report.rejections} == {
        2: ("price", "bad_price_item"),
        3: ("name", "missing"),
        4: ("in_stock", "bad_flag"),
        5: ("price", "bad_price_item"),
        7: ("sku", "duplicate"),
        8: ("sku", "too_long"),
        9: ("", "malformed"),
    }
    assert set(items(loyalty)) == {"E"}
    assert "already on line 6" in report.rejections[4].message
    assert "lines rejected" in report.summary()


def test_a_file_without_names_is_refused(loyalty, tmp_path):
    with pytest.raises(BadInput, match="no column for name"):
        run(loyalty, write_csv(tmp_path / "items.csv", [["A"]], ["sku"]))


def test_cli_imports_items_and_prints_the_summary(app, tmp_path):
    path = write_csv(tmp_path / "items.csv", CATALOG)
    result = app.test_cli_runner().invoke(args=["loyalty", "import-items", str(path)])
    assert result.exit_code == 0, result.output
    assert "items added" in result.output and "2" in result.output
