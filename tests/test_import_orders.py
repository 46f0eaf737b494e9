"""``import-orders``: history from CSV, checked line by line, whole orders only, safe to run again."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import click
import pytest
from sqlalchemy import func, select

from loyalty_plugin import BadInput, ConflictingDuplicate, Loyalty, importer
from loyalty_plugin.jobs import expire_points, release_pending
from loyalty_plugin.models import Item, LedgerEntry, Member, Order, OrderLine

HEADER = ["order_id", "user_id", "placed_at", "sku", "qty", "unit_price", "category"]
ONLINE_RETAIL = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(loyalty, path: Path, **options) -> importer.OrderImportReport:
    state = loyalty.state()
    return importer.import_orders(state.store, path, settings=state.settings, now=state.clock(), **options)


def count(loyalty, model) -> int:
    with loyalty.state().store.work(write=False) as session:
        return session.scalar(select(func.count()).select_from(model))


def orders(loyalty) -> dict[str, Order]:
    with loyalty.state().store.work(write=False) as session:
        return {o.order_id: o for o in session.scalars(select(Order))}


def lines_of(loyalty, order_id: str) -> list[tuple[str, int, Decimal]]:
    with loyalty.state().store.work(write=False) as session:
        rows = session.execute(
            select(OrderLine.sku, OrderLine.qty, OrderLine.unit_price)
            .join(Order, Order.id == OrderLine.order_pk)
            .where(Order.order_id == order_id)
            .order_by(OrderLine.line_no)
        )
        return [tuple(row) for row in rows]


def rejected(report: importer.ImportReport) -> dict[int, tuple[str, str]]:
    """line -> (field, reason)"""
    return {r.line: (r.field, r.reason) for r in report.rejections}


TWO_ORDERS = [
    ["o1", "u1", "2025-06-01 10:00:00", "A", "2", "2.55", "mugs"],
    ["o1", "u1", "2025-06-01 10:00:00", "B", "1", "10.00", ""],
    ["o2", "", "2025-06-02 11:30:00", "A", "3", "2.55", "mugs"],
]


def test_lines_become_orders_with_the_total_of_their_lines(loyalty, tmp_path):
    report = run(loyalty, write_csv(tmp_path / "orders.csv", TWO_ORDERS))
    assert (report.lines_read, report.lines_imported, report.orders_imported) == (3, 3, 2)
    assert report.rejections == []
    stored = orders(loyalty)
    assert stored["o1"].total == Decimal("15.10")
    assert stored["o1"].placed_at == datetime(2025, 6, 1, 10, 0)
    assert stored["o1"].source == "import"
    assert lines_of(loyalty, "o1") == [("A", 2, Decimal("2.55")), ("B", 1, Decimal("10.00"))]


def test_guest_orders_are_kept_without_a_member(loyalty, tmp_path):
    run(loyalty, write_csv(tmp_path / "orders.csv", TWO_ORDERS))
    guest = orders(loyalty)["o2"]
    assert guest.user_id is None and guest.member_id is None
    assert count(loyalty, Member) == 0


def test_second_run_skips_every_order_and_changes_nothing(loyalty, tmp_path):
    path = write_csv(tmp_path / "orders.csv", TWO_ORDERS)
    run(loyalty, path)
    again = run(loyalty, path)
    assert (again.orders_imported, again.orders_already_present, again.lines_already_present) == (0, 2, 3)
    assert (count(loyalty, Order), count(loyalty, OrderLine)) == (2, 3)
    assert "orders already present" in again.summary()


def test_api_redelivery_of_an_imported_order_is_a_repeat(loyalty, tmp_path):
    run(loyalty, write_csv(tmp_path / "orders.csv", TWO_ORDERS))
    lines = [
        {"sku": "A", "qty": 2, "unit_price": "2.55", "category": "mugs"},
        {"sku": "B", "qty": 1, "unit_price": "10.00"},
    ]
    assert loyalty.record_order("o1", "u1", "15.10", lines=lines).repeat
    with pytest.raises(ConflictingDuplicate):
        loyalty.record_order("o1", "u1", "15.11", lines=lines)


def test_order_changed_in_the_file_is_a_conflict_and_left_as_it_was(loyalty, tmp_path):
    run(loyalty, write_csv(tmp_path / "orders.csv", TWO_ORDERS))
    changed = [TWO_ORDERS[0], [*TWO_ORDERS[1][:4], "5", *TWO_ORDERS[1][5:]], TWO_ORDERS[2]]
    report = run(loyalty, write_csv(tmp_path / "changed.csv", changed))
    assert report.orders_conflicting == 1 and report.orders_already_present == 1
    assert rejected(report) == {2: ("order_id", "conflict"), 3: ("order_id", "conflict")}
    assert lines_of(loyalty, "o1")[1] == ("B", 1, Decimal("10.00"))


def test_a_bad_line_rejects_its_whole_order(loyalty, tmp_path):
    rows = [
        ["o1", "u1", "2025-06-01", "A", "1", "1.00", ""],
        ["o1", "u1", "2025-06-01", "B", "lots", "1.00", ""],
        ["o1", "u1", "2025-06-01", "C", "1", "1.00", ""],
        ["o2", "u1", "2025-06-02", "A", "1", "1.00", ""],
    ]
    report = run(loyalty, write_csv(tmp_path / "orders.csv", rows))
    assert set(orders(loyalty)) == {"o2"}
    assert rejected(report) == {
        2: ("order_id", "with_rejected_line"),
        3: ("qty", "bad_qty"),
        4: ("order_id", "with_rejected_line"),
    }
    assert report.orders_rejected == 1
    assert "its line 3 was rejected" in report.rejections[-1].message


@pytest.mark.parametrize(
    ("column", "value", "reason", "words"),
    [
        ("qty", "abc", "bad_qty", "qty must be a whole number >= 1"),
        ("qty", "0", "bad_qty", "qty must be a whole number >= 1"),
        ("qty", "2.5", "bad_qty", "qty must be a whole number >= 1"),
        ("qty", "-2", "return", "negative"),
        ("unit_price", "0", "zero_price", "unit_price is 0"),
        ("unit_price", "-1.00", "bad_price", "0 or more"),
        ("unit_price", "cheap", "bad_price", "must be an amount"),
        ("unit_price", "0.001", "bad_price", "more than two decimals"),
        ("placed_at", "yesterday", "bad_date", "placed_at must be a date-time"),
        ("placed_at", "2030-01-01 00:00:00", "future_date", "in the future"),
        ("sku", "", "missing", "sku is empty"),
        ("sku", "S" * 101, "too_long", "longer than 100"),
    ],
)
def test_a_bad_value_is_reported_by_line_field_and_reason(loyalty, tmp_path, column, value, reason, words):
    good = ["o1", "u1", "2025-06-01 10:00:00", "A", "1", "1.00", ""]
    bad = list(good)
    bad[HEADER.index(column)] = value
    report = run(loyalty, write_csv(tmp_path / "orders.csv", [good, bad]))
    problem = next(r for r in report.rejections if r.line == 3)
    assert (problem.field, problem.reason, problem.value) == (column, reason, value)
    assert words in problem.message
    assert report.rejected_by_reason() == {reason: 1, "with_rejected_line": 1}
    assert count(loyalty, Order) == 0


def test_lines_without_an_order_id_are_rejected_on_their_own(loyalty, tmp_path):
    rows = [TWO_ORDERS[0], ["", "u1", "2025-06-01 10:00:00", "X", "1", "1.00", ""], TWO_ORDERS[1]]
    report = run(loyalty, write_csv(tmp_path / "orders.csv", rows))
    assert rejected(report) == {3: ("order_id", "missing")}
    assert report.orders_imported == 1 and len(lines_of(loyalty, "o1")) == 2


def test_an_order_naming_two_customers_or_a_short_line_is_rejected(loyalty, tmp_path):
    rows = [
        ["o1", "u1", "2025-06-01", "A", "1", "1.00", ""],
        ["o1", "u2", "2025-06-01", "B", "1", "1.00", ""],
        ["o2", "u1", "2025-06-01", "A", "1"],
    ]
    report = run(loyalty, write_csv(tmp_path / "orders.csv", rows))
    assert rejected(report) == {
        2: ("order_id", "with_rejected_line"),
        3: ("user_id", "inconsistent"),
        4: ("", "malformed"),
    }
    assert "names two customers: u1 on line 2 and u2 on line 3" in report.rejections[0].message
    assert count(loyalty, Order) == 0


def test_a_file_that_is_not_utf8_is_refused_before_anything_is_written(loyalty, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_bytes(",".join(HEADER).encode() + "\no1,u1,2025-06-01,CAF\u00c9,1,1.00,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(BadInput, match="not UTF-8"):
        run(loyalty, path)
    assert count(loyalty, Order) == 0


def test_lines_of_one_order_apart_reject_that_order_everywhere(loyalty, tmp_path):
    rows = [TWO_ORDERS[0], TWO_ORDERS[2], TWO_ORDERS[1]]
    report = run(loyalty, write_csv(tmp_path / "orders.csv", rows))
    assert set(orders(loyalty)) == {"o2"}
    assert rejected(report) == {2: ("order_id", "split_order"), 4: ("order_id", "split_order")}
    assert "start on lines 2, 4" in report.rejections[0].message


def test_online_retail_export(loyalty, tmp_path):
    rows = [
        ["536365", "85123A", "WHITE HANGING HEART", "6", "2010-12-01 08:26:00", "2.55", "17850.0", "United Kingdom"],
        ["536365", "71053", "WHITE METAL LANTERN", "6", "2010-12-01 08:26:00", "3.39", "17850.0", "United Kingdom"],
        ["536366", "22633", "HAND WARMER", "6", "2010-12-01 08:28:00", "1.85", "", "United Kingdom"],
        ["C536379", "D", "Discount", "-1", "2010-12-01 09:41:00", "27.50", "14527", "United Kingdom"],
        ["536380", "22139", "", "-56", "2010-12-01 11:52:00", "0.0", "", "United Kingdom"],
        ["536381", "22086", "PAPER CHAIN KIT", "2", "2010-12-01 12:00:00", "2.95", "15311", "United Kingdom"],
        ["536381", "21786", "POLKADOT RAIN HAT", "1", "2010-12-01 12:00:00", "0.0", "15311", "United Kingdom"],
        ["536382", "10002", "INFLATABLE GLOBE", "x", "2010-12-01 12:10:00", "0.85", "12583", "France"],
        ["536383", "84406B", "CUPID COAT HANGER", "8", "01/12/2010 12:20", "2.75", "12583", "France"],
        ["536384", "22086", "PAPER CHAIN KIT", "1", "2010-12-02 09:00:00", "2.95", "15311.0", "United Kingdom"],
    ]
    path = write_csv(tmp_path / "online_retail.csv.gz", rows, ONLINE_RETAIL)
    report = run(loyalty, path, mapping=importer.resolve_mapping("online-retail"))
    assert set(orders(loyalty)) == {"536365", "536366", "536384"}
    assert orders(loyalty)["536365"].user_id == "17850"
    assert orders(loyalty)["536384"].user_id == "15311"
    assert orders(loyalty)["536366"].user_id is None
    assert report.rejected_by_reason() == {
        "cancellation": 1,
        "return": 1,
        "zero_price": 1,
        "with_rejected_line": 1,
        "bad_qty": 1,
        "bad_date": 1,
    }
    assert rejected(report)[5] == ("order_id", "cancellation")
    assert "record_refund" in report.rejections[0].message
    assert (report.lines_read, report.lines_imported, report.lines_rejected) == (10, 4, 6)
    assert report.items_added == 4
    with loyalty.state().store.work(write=False) as session:
        assert session.get(Item, "85123A").name == "WHITE HANGING HEART"


def test_json_mapping_reads_a_shop_export_with_other_headers(loyalty, tmp_path):
    header = ["Order", "Customer", "Date", "Item", "Count", "Price"]
    rows = [["A-1", "c9", "2025-03-04T10:00:00+01:00", "SKU", "2", "4.00"]]
    mapping = importer.resolve_mapping(
        json.dumps(
            {
                "order_id": "Order",
                "user_id": "Customer",
                "placed_at": "Date",
                "sku": "Item",
                "qty": "Count",
                "unit_price": "Price",
            }
        )
    )
    run(loyalty, write_csv(tmp_path / "export.csv", rows, header), mapping=mapping)
    order = orders(loyalty)["A-1"]
    assert (order.user_id, order.total, order.placed_at) == ("c9", Decimal("8.00"), datetime(2025, 3, 4, 9, 0))


def test_given_totals_shipping_and_tax_are_kept_and_must_agree(loyalty, tmp_path):
    header = [*HEADER, "total", "shipping", "tax"]
    rows = [
        ["o1", "u1", "2025-06-01", "A", "1", "10.00", "", "14.00", "4.00", ""],
        ["o1", "u1", "2025-06-01", "B", "1", "2.00", "", "", "", ""],
        ["o2", "u1", "2025-06-01", "A", "1", "10.00", "", "10.00", "", ""],
        ["o2", "u1", "2025-06-01", "A", "1", "10.00", "", "11.00", "", ""],
        ["o3", "u1", "2025-06-01", "A", "1", "10.00", "", "5.00", "3.00", "3.00"],
    ]
    report = run(loyalty, write_csv(tmp_path / "orders.csv", rows, header))
    assert set(orders(loyalty)) == {"o1"}
    assert (orders(loyalty)["o1"].total, orders(loyalty)["o1"].shipping) == (Decimal("14.00"), Decimal("4.00"))
    assert rejected(report)[5] == ("total", "inconsistent")
    assert rejected(report)[6] == ("total", "bad_total")
    lines = [{"sku": "A", "qty": 1, "unit_price": "10.00"}, {"sku": "B", "qty": 1, "unit_price": "2.00"}]
    assert loyalty.record_order("o1", "u1", "14.00", lines=lines, shipping="4.00").repeat


def test_orders_of_members_are_linked_and_earn_nothing_by_default(loyalty, tmp_path):
    member = loyalty.enroll("u1")
    report = run(loyalty, write_csv(tmp_path / "orders.csv", TWO_ORDERS))
    assert orders(loyalty)["o1"].member_id == member.id
    assert report.orders_of_members == 1
    assert loyalty.balance("u1").pending == 0
    assert report.points_awarded == 0


def test_enroll_makes_customers_members_from_their_first_order_without_a_bonus(loyalty, tmp_path):
    rows = [
        ["o1", "u1", "2025-06-01 10:00:00", "A", "1", "1.00", ""],
        ["o2", "u2", "2025-06-02 10:00:00", "A", "1", "1.00", ""],
        ["o3", "u1", "2025-02-01 09:00:00", "A", "1", "1.00", ""],
        ["o4", "u3", "2025-06-03 10:00:00", "A", "0", "1.00", ""],
        ["o5", "", "2025-06-03 10:00:00", "A", "1", "1.00", ""],
    ]
    report = run(loyalty, write_csv(tmp_path / "orders.csv", rows), enroll=True, batch_orders=2)
    assert report.members_enrolled == 2
    with loyalty.state().store.work(write=False) as session:
        members = {m.user_id: m for m in session.scalars(select(Member))}
    assert set(members) == {"u1", "u2"}
    assert members["u1"].enrolled_at == datetime(2025, 2, 1, 9, 0)
    assert members["u1"].tier_code == "bronze"
    assert count(loyalty, LedgerEntry) == 0
    assert {o.order_id for o in orders(loyalty).values() if o.member_id == members["u1"].id} == {"o1", "o3"}


def test_enrolling_on_a_later_run_links_the_history_already_imported(loyalty, tmp_path):
    path = write_csv(tmp_path / "orders.csv", TWO_ORDERS)
    run(loyalty, path)
    report = run(loyalty, path, enroll=True)
    assert (report.members_enrolled, report.orders_linked, report.orders_imported) == (1, 1, 0)
    assert orders(loyalty)["o1"].member_id == loyalty.get_member("u1").id


def test_an_erased_member_is_not_enrolled_again_by_a_rerun(loyalty, tmp_path):
    path = write_csv(tmp_path / "orders.csv", TWO_ORDERS)
    run(loyalty, path, enroll=True)
    loyalty.erase_member("u1")
    report = run(loyalty, path, enroll=True)
    assert report.members_enrolled == 0
    assert loyalty.get_member("u1") is None


def test_award_points_earns_on_the_order_dates_and_the_jobs_settle_them(loyalty, tmp_path, clock, signal_log):
    rows = [
        ["old", "u1", "2024-06-01 10:00:00", "A", "1", "100.00", ""],
        ["mid", "u1", "2025-09-01 10:00:00", "A", "1", "30.00", ""],
        ["new", "u1", "2025-12-30 10:00:00", "A", "1", "50.99", ""],
    ]
    report = run(loyalty, write_csv(tmp_path / "orders.csv", rows), enroll=True, award_points=True)
    assert report.points_awarded == 180
    assert signal_log.of("points_changed") == []  # history tells no one about points from 2024
    assert orders(loyalty)["mid"].points_earned == 30
    release_pending(loyalty.state().store, now=clock())
    expire_points(loyalty.state().store, now=clock())
    balance = loyalty.balance("u1")
    assert (balance.available, balance.pending) == (30, 50)
    assert loyalty.verify() == []
    assert loyalty.record_refund("r1", "mid", "15.00").points_clawed_back == 15


def test_award_points_again_on_a_rerun_awards_nothing_more(loyalty, tmp_path):
    path = write_csv(tmp_path / "orders.csv", TWO_ORDERS)
    run(loyalty, path, enroll=True, award_points=True)
    entries = count(loyalty, LedgerEntry)
    again = run(loyalty, path, enroll=True, award_points=True)
    assert again.points_awarded == 0
    assert count(loyalty, LedgerEntry) == entries
    assert loyalty.balance("u1").pending == 15
    assert loyalty.verify() == []


class Interrupted(Exception):
    pass


def test_a_crash_between_batches_leaves_whole_orders_and_a_rerun_finishes(loyalty, tmp_path):
    rows = [[f"o{n}", "u1", "2025-06-01", sku, "1", "1.00", ""] for n in range(5) for sku in "ABC"]
    path = write_csv(tmp_path / "orders.csv", rows)

    def crash(_lines: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        run(loyalty, path, batch_orders=2, progress=crash)
    assert (count(loyalty, Order), count(loyalty, OrderLine)) == (2, 6)
    report = run(loyalty, path, batch_orders=2)
    assert (report.orders_already_present, report.orders_imported) == (2, 3)
    assert (count(loyalty, Order), count(loyalty, OrderLine)) == (5, 15)


def test_progress_is_reported_in_batches_and_adds_up_to_the_file(loyalty, tmp_path):
    rows = [[f"o{n}", "", "2025-06-01", "A", "1", "1.00", ""] for n in range(7)]
    path = write_csv(tmp_path / "orders.csv", rows)
    steps: list[int] = []
    run(loyalty, path, batch_orders=3, progress=steps.append)
    assert len(steps) >= 2
    assert sum(steps) == importer.count_lines(path) == 7


def test_a_file_without_a_required_column_is_refused_before_anything_is_written(loyalty, tmp_path):
    path = write_csv(
        tmp_path / "orders.csv", [["o1", "2025-06-01", "A", "1.00"]], ["order_id", "placed_at", "sku", "price"]
    )
    with pytest.raises(BadInput, match="no column for qty, unit_price"):
        run(loyalty, path)
    assert count(loyalty, Order) == 0


def test_a_mapping_header_missing_from_the_file_is_named(loyalty, tmp_path):
    path = write_csv(tmp_path / "orders.csv", TWO_ORDERS)
    with pytest.raises(BadInput, match="order_id \\(header 'InvoiceNo'\\)"):
        run(loyalty, path, mapping=importer.resolve_mapping("online-retail"))


def test_count_lines_counts_data_lines_of_csv_and_gzip(tmp_path):
    plain = write_csv(tmp_path / "a.csv", TWO_ORDERS)
    packed = write_csv(tmp_path / "a.csv.gz", TWO_ORDERS)
    assert importer.count_lines(plain) == importer.count_lines(packed) == 3
    no_final_newline = tmp_path / "b.csv"
    no_final_newline.write_text("order_id\no1\no2")
    assert importer.count_lines(no_final_newline) == 2


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("shopify", "known export"),
        ("{not json", "known export"),
        ('["order_id"]', "object"),
        ('{"order_number": "Invoice"}', "order_number is not one of our columns"),
        ('{"order_id": 5}', "object"),
    ],
)
def test_a_bad_mapping_is_refused_with_what_to_give(value, words):
    with pytest.raises(click.BadParameter, match=words):
        importer.resolve_mapping(value)


def test_no_mapping_means_our_own_column_names():
    assert importer.resolve_mapping(None) is None
    assert importer.resolve_mapping("online-retail")["order_id"] == "InvoiceNo"


def test_cli_prints_the_summary_and_writes_the_rejected_lines(app, tmp_path):
    rows = [*TWO_ORDERS, ["o3", "u2", "2025-06-03", "A", "-1", "2.55", ""]]
    path = write_csv(tmp_path / "orders.csv", rows)
    errors = tmp_path / "errors.csv"
    result = app.test_cli_runner().invoke(args=["loyalty", "import-orders", str(path), "--errors", str(errors)])
    assert result.exit_code == 0, result.output
    assert "orders imported" in result.output and "return" in result.output
    with open(errors, newline="") as f:
        written = list(csv.DictReader(f))
    assert [(r["line"], r["order_id"], r["field"], r["value"], r["reason"]) for r in written] == [
        ("5", "o3", "qty", "-1", "return")
    ]
    assert "negative" in written[0]["message"]


def test_cli_enroll_and_award_points_keep_every_balance_equal_to_the_ledger(app, tmp_path):
    path = write_csv(tmp_path / "orders.csv", TWO_ORDERS)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["loyalty", "import-orders", str(path), "--enroll", "--award-points"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["loyalty", "verify"]).exit_code == 0
    with app.app_context():
        assert Loyalty().balance("u1").pending == 15


def test_cli_refuses_an_unknown_mapping(app, tmp_path):
    path = write_csv(tmp_path / "orders.csv", TWO_ORDERS)
    result = app.test_cli_runner().invoke(args=["loyalty", "import-orders", str(path), "--mapping", "shopify"])
    assert result.exit_code == 2
    assert "--mapping" in result.output
