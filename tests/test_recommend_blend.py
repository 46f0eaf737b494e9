"""The blended recommender on generated purchases: it recovers planted co-purchase groups,
gives each pick the right reason, respects ``exclude`` and ``new_only``, and survives a round
trip through bytes unchanged."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from loyalty_plugin.recommend.blend import Pick, Recommender

NOW = pd.Timestamp("2026-06-01")
GROUPS, PER_GROUP = 5, 8


def item(group: int, n: int) -> str:
    return f"g{group}-{n}"


def planted(users: int = 400, seed: int = 4) -> pd.DataFrame:
    """Each user shops in one group of items: 3-5 of its items over the last 200 days, and now
    and then one item of any group."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        group = user % GROUPS
        picked = [item(group, n) for n in rng.choice(PER_GROUP, size=rng.integers(3, 6), replace=False)]
        if rng.random() < 0.15:
            picked.append(item(rng.integers(GROUPS), rng.integers(PER_GROUP)))
        for name in picked:
            rows.append((f"u{user}", name, NOW - pd.Timedelta(days=int(rng.integers(1, 200)))))
    return pd.DataFrame(rows, columns=["user", "item", "at"])


def with_rows(data: pd.DataFrame, rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    """``rows``: (user, item, days before NOW)."""
    extra = pd.DataFrame([(u, i, NOW - pd.Timedelta(days=d)) for u, i, d in rows], columns=["user", "item", "at"])
    return pd.concat([data, extra], ignore_index=True)


def test_items_new_to_a_member_come_from_the_group_they_shop_in():
    model = Recommender(k=10, similar_weight=1.0, popular_weight=0.05).fit(planted(), now=NOW)
    for user in ("u0", "u1", "u2", "u3", "u4", "u7"):
        group = int(user[1:]) % GROUPS
        mine = set(model.history(user))
        picks = model.recommend(user, 3, now=NOW, new_only=True)
        assert len(picks) == 3
        for pick in picks:
            assert pick.item.startswith(f"g{group}-") and pick.item not in mine, (user, pick)
            assert pick.reason == "similar" and pick.because in mine


def test_because_names_the_purchase_that_supports_the_pick():
    data = with_rows(planted(), [("mixed", item(1, 0), 10), ("mixed", item(3, 0), 12)])
    model = Recommender(k=10, similar_weight=1.0, popular_weight=0.05).fit(data, now=NOW)
    picks = model.recommend("mixed", 6, now=NOW, new_only=True)
    assert {p.reason for p in picks} == {"similar"}
    for pick in picks:
        group = pick.item.split("-")[0]
        assert pick.because == {"g1": item(1, 0), "g3": item(3, 0)}[group], pick


def test_a_cyclic_re_buyer_is_offered_the_item_that_is_due_first():
    weekly = [("regular", "coffee", d) for d in (43, 36, 29, 22, 15, 8)]  # every 7 days, last 8 days ago
    often = [("regular", "tea", d) for d in (40, 38, 35, 33, 30)]  # more often, but stopped a month ago
    model = Recommender(half_life_days=None, due_weight=1.0).fit(with_rows(planted(), weekly + often), now=NOW)
    first = model.recommend("regular", 4, now=NOW)[0]
    assert first == Pick("coffee", pytest.approx(first.score), "buy_again", cycle_days=7.0)
    assert first.score > 1.0  # raised for being due, above the member's best without it


def test_a_member_with_little_history_is_topped_up_with_popular_items():
    data = with_rows(planted(), [("newcomer", "rare", 3)])
    model = Recommender().fit(data, now=NOW)
    picks = model.recommend("newcomer", 8, now=NOW)
    assert picks[0] == Pick("rare", pytest.approx(picks[0].score), "buy_again", cycle_days=None)
    assert len(picks) == 8 and {p.reason for p in picks[1:]} == {"popular"}
    assert len({p.item for p in picks}) == 8


def test_an_unknown_member_gets_the_most_popular_items():
    data = with_rows(planted(), [(f"fan{n}", "hit", 2) for n in range(30)])
    model = Recommender().fit(data, now=NOW)
    picks = model.recommend("stranger", 5, now=NOW)
    assert not model.known("stranger") and model.history("stranger") == []
    assert picks[0].item == "hit" and {p.reason for p in picks} == {"popular"}
    assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)


def test_excluded_items_are_never_recommended():
    model = Recommender(k=10).fit(planted(), now=NOW)
    for user in ("u0", "u6", "stranger"):
        everything = [p.item for p in model.recommend(user, 40, now=NOW)]
        banned = set(everything[::2]) | {"not-an-item"}
        picks = model.recommend(user, 40, now=NOW, exclude=banned)
        assert picks and not banned & {p.item for p in picks}


def test_new_only_never_offers_what_the_member_bought():
    model = Recommender(k=10).fit(planted(), now=NOW)
    mine = set(model.history("u5"))
    assert {p.reason for p in model.recommend("u5", 20, now=NOW)} >= {"buy_again"}
    picks = model.recommend("u5", 20, now=NOW, new_only=True)
    assert len(picks) == 20 and not mine & {p.item for p in picks}
    assert "buy_again" not in {p.reason for p in picks}


def test_the_round_trip_through_bytes_gives_the_same_recommendations():
    model = Recommender(k=7, weighting="tfidf", half_life_days=60.0).fit(planted(), now=NOW)
    data = model.to_bytes()
    loaded = Recommender.from_bytes(data)
    assert loaded.get_params() == model.get_params()
    assert list(loaded.items_) == list(model.items_)
    later = NOW + pd.Timedelta(days=9)
    for user in ("u0", "u1", "u9", "stranger"):
        for new_only in (False, True):
            args = {"now": later, "new_only": new_only, "exclude": {item(0, 1)}}
            assert loaded.recommend(user, 10, **args) == model.recommend(user, 10, **args)
    # Plain arrays only: the stored file loads without pickle.
    with np.load(io.BytesIO(data), allow_pickle=False) as stored:
        assert all(stored[name].dtype != object for name in stored.files)


def test_bytes_of_another_format_are_refused():
    buffer = io.BytesIO()
    np.savez_compressed(buffer, meta=np.array('{"format": 99}'))
    with pytest.raises(ValueError, match="format 99"):
        Recommender.from_bytes(buffer.getvalue())


def test_missing_columns_are_reported_by_name():
    data = planted().rename(columns={"item": "sku"})
    with pytest.raises(ValueError, match=r"lacks column.*item.*expected user, item, at"):
        Recommender().fit(data, now=NOW)


def test_unknown_sources_are_refused():
    with pytest.raises(ValueError, match="sources"):
        Recommender(sources=("magic",)).fit(planted(), now=NOW)  # type: ignore[arg-type]


def test_a_shop_without_purchases_recommends_nothing():
    empty = pd.DataFrame({"user": [], "item": [], "at": pd.to_datetime([])})
    model = Recommender().fit(empty, now=NOW)
    assert model.recommend("anyone", 5, now=NOW) == []
    assert Recommender.from_bytes(model.to_bytes()).recommend("anyone", 5, now=NOW) == []
