"""Buy it again on generated histories: frequent items first, and an item bought on a cycle
rises when its next purchase is due."""

from __future__ import annotations

import pandas as pd

from loyalty_plugin.recommend.buy_again import BuyAgain

START = pd.Timestamp("2026-01-01")


def history(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"user": u, "item": i, "at": START + pd.Timedelta(days=d)} for u, i, d in rows])


def test_items_bought_more_often_come_first():
    data = history([("u", "tea", d) for d in (0, 3, 9, 20)] + [("u", "mug", 5), ("u", "jam", 1), ("u", "jam", 30)])
    ranked = BuyAgain(due_weight=0).fit(data).recommend("u", now=START + pd.Timedelta(days=31))
    assert [d.item for d in ranked] == ["tea", "jam", "mug"]
    assert ranked[0].purchases == 4 and ranked[2].cycle_days is None


def test_an_item_on_a_cycle_rises_when_it_is_due():
    weekly = [("u", "milk", d) for d in range(0, 29, 7)]  # 5 purchases, every 7 days, last on day 28
    monthly = [("u", "filter", d) for d in (0, 30, 60)]  # 3 purchases, every 30 days, last on day 60
    model = BuyAgain().fit(history(weekly + monthly))
    # Day 75: neither is due; the more frequent one leads.
    assert model.recommend("u", now=START + pd.Timedelta(days=75))[0].item == "milk"
    # Day 89: milk is long overdue (a lapsed habit), the filter is due: it ranks first despite fewer purchases.
    filter_due = model.recommend("u", now=START + pd.Timedelta(days=89))
    assert filter_due[0].item == "filter" and round(filter_due[0].cycle_days) == 30
    assert filter_due[1].item == "milk" and round(filter_due[1].cycle_days) == 7


def test_several_purchases_on_one_day_count_once_and_unknown_users_get_nothing():
    data = history([("u", "tea", 0), ("u", "tea", 0), ("u", "tea", 10)])
    model = BuyAgain().fit(data)
    [tea] = model.recommend("u", now=START + pd.Timedelta(days=12))
    assert tea.purchases == 2 and tea.cycle_days == 10
    assert model.recommend("nobody", now=START) == []
