"""The flat purchase histories the recommender serves from: the vectorised per-(user, item)
counts, last days, median gaps and decayed weights agree with a plain pandas computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loyalty_plugin.recommend.history import purchase_history

NOW = pd.Timestamp("2026-05-01")


def random_purchases(seed: int = 2, lines: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user": rng.choice([f"m{n}" for n in range(60)], lines),
            "item": rng.choice([f"sku{n}" for n in range(25)], lines),
            "at": NOW - pd.to_timedelta(rng.integers(0, 400 * 24, lines), unit="h"),
        }
    )


def test_arrays_match_a_pandas_groupby():
    data = random_purchases()
    history = purchase_history(data, now=NOW, half_life_days=30.0)
    days = data.assign(day=data["at"].dt.normalize()).drop_duplicates(["user", "item", "day"])
    days = days.sort_values(["user", "item", "day"])
    days["gap"] = days.groupby(["user", "item"])["day"].diff().dt.days
    days["decay"] = 0.5 ** ((NOW - days["day"]).dt.total_seconds() / 86400 / 30.0)
    expected = days.groupby(["user", "item"]).agg(
        purchases=("day", "size"), last=("day", "max"), cycle=("gap", "median"), weight=("decay", "sum")
    )
    users = np.repeat(history.users, np.diff(history.indptr))
    got = pd.DataFrame(
        {
            "purchases": history.purchases,
            "last": pd.to_datetime(history.last_day.astype("int64"), unit="D"),
            "cycle": history.cycle_days,
            "weight": history.weight,
        },
        index=pd.MultiIndex.from_arrays([users, history.items[history.indices]], names=["user", "item"]),
    )
    assert list(got.index) == list(expected.index)
    assert (got["purchases"] == expected["purchases"]).all()
    assert (got["last"] == expected["last"]).all()
    assert np.allclose(got["cycle"], expected["cycle"], equal_nan=True)
    assert np.allclose(got["weight"], expected["weight"], rtol=1e-5)


def test_users_and_items_are_found_by_name():
    history = purchase_history(random_purchases(), now=NOW, half_life_days=None)
    assert history.row("m7") == list(history.users).index("m7")
    assert history.row("nobody") == -1 and history.row("zz") == -1
    assert list(history.items[history.item_rows(["sku3", "unknown", "sku10"])]) == ["sku3", "sku10"]


def test_empty_values_are_refused():
    data = random_purchases()
    data.loc[5, "user"] = None
    with pytest.raises(ValueError, match="empty user"):
        purchase_history(data, now=NOW, half_life_days=None)
