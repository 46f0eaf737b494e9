"""The churn scan: refit the member models on the shop's own orders, store each member's
scores and segments for the day, settle old churn alerts and raise new ones.

Crash-safe by construction: the models are refitted from the same data to the same numbers,
each day's scores and segments are keyed by (member, day) and written with "insert unless
there", an alert's insert is guarded by the one-open-alert-per-member index and carries its
win-back coupon in the same transaction, and alert outcomes are settled in one transaction.
A run killed anywhere is finished by the next without writing anything twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, func, literal_column, select, text, type_coerce, update
from sqlalchemy.orm import Session

from . import rewards, signals
from .analytics.churn import ChurnReport, score_members
from .analytics.segments import ValueSegments, name_segments, rfm_scores
from .config import Settings
from .database import Store, upsert_insert
from .models import ChurnAlert, LedgerEntry, Member, MemberScore, MemberSegment, ModelReport, Order, TierChange

Progress = Callable[[int], None]
OPEN = text("status = 'open'")
#: Ledger kinds that are points a member earned (orders once released, and activity).
EARNED = ("release", "award", "birthday", "referral", "signup")


def load_transactions(session: Session, *, until: datetime) -> pd.DataFrame:
    """Every kept purchase of a known customer up to ``until``: (customer, at, amount). Guests
    have no id to follow; orders refunded in full were not purchases."""
    paid = type_coerce(Order.total - Order.refunded_total, BigInteger)
    # Core rows, not ORM ones: a third faster over a million orders.
    rows = (
        session.connection()
        .execute(
            select(Order.user_id, Order.placed_at, paid).where(
                Order.user_id.is_not(None), Order.placed_at <= until, paid > 0
            )
        )
        .all()
    )
    frame = pd.DataFrame(rows, columns=["customer", "at", "amount"])
    frame["at"] = pd.to_datetime(frame["at"])
    frame["amount"] = frame["amount"].astype(float) / 100
    return frame


def member_attributes(store: Store, settings: Settings) -> Callable[[pd.Timestamp], pd.DataFrame | None]:
    """Tier and points activity of each member as of a cutoff, read from the history tables so
    that training features taken at an earlier cutoff see the member as they were then."""
    ranks = {tier.code: tier.rank for tier in settings.tiers}

    def at(cutoff: pd.Timestamp) -> pd.DataFrame | None:
        moment = cutoff.to_pydatetime()
        since = moment - timedelta(days=settings.rfm_window_days)
        session = store.session
        latest = (
            select(TierChange.member_id, func.max(TierChange.id).label("last"))
            .where(TierChange.changed_at <= moment)
            .group_by(TierChange.member_id)
            .subquery()
        )
        tiers = session.execute(
            select(Member.user_id, TierChange.to_tier)
            .join(latest, latest.c.member_id == Member.id)
            .join(TierChange, TierChange.id == latest.c.last)
        ).all()
        window = (LedgerEntry.created_at > since) & (LedgerEntry.created_at <= moment)
        # Summed per member id before the join; "+ 0" keeps SQLite from walking the ledger in
        # member-index order (a random read per entry), three times slower than a plain scan.
        member = LedgerEntry.member_id + literal_column("0")
        activity = (
            select(
                member.label("member_id"),
                func.sum(LedgerEntry.points).filter(LedgerEntry.kind.in_(EARNED)).label("earned"),
                (-func.sum(LedgerEntry.points).filter(LedgerEntry.kind == "redeem")).label("spent"),
            )
            .where(window)
            .group_by(member)
            .subquery()
        )
        points = session.execute(
            select(Member.user_id, activity.c.earned, activity.c.spent).join(
                activity, activity.c.member_id == Member.id
            )
        ).all()
        users = session.scalars(select(Member.user_id).where(Member.enrolled_at <= moment)).all()
        frame = pd.DataFrame(index=pd.Index(users, name="customer"))
        tier_of = {user_id: ranks.get(code, 0) for user_id, code in tiers}
        frame["tier_rank"] = [tier_of.get(user_id, 0) for user_id in frame.index]
        activity = pd.DataFrame(points, columns=["customer", "points_earned", "points_spent"]).set_index("customer")
        frame = frame.join(activity).fillna({"points_earned": 0, "points_spent": 0})
        return frame if len(frame) else None

    return at


def _money(value: Any) -> Decimal | None:
    return None if value is None or not math.isfinite(value) else Decimal(str(round(float(value), 2)))


def _number(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def _json(value: Any) -> Any:
    """Model reports as JSON: NaN becomes null, numpy and pandas values plain Python."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return _json(value.reset_index().to_dict(orient="records"))
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _number(value)
    return value


def _batches(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_missing(store: Store, table: Any, keys: list[str], rows: list[dict[str, Any]], size: int) -> int:
    """Insert the rows not there yet, in committed batches; returns how many were new.

    All rows are of one day, the last key: that day's keys are read once and only the missing
    rows are sent, because an INSERT … RETURNING per row costs PostgreSQL four times as much."""
    if not rows:
        return 0
    columns = [table.c[key] for key in keys]
    with store.work(write=False) as session:
        there = set(map(tuple, session.execute(select(*columns).where(columns[-1] == rows[0][keys[-1]]))))
    store.commit()
    missing = [row for row in rows if tuple(row[key] for key in keys) not in there]
    for batch in _batches(missing, size):
        with store.work() as session:
            session.execute(upsert_insert(session)(table).on_conflict_do_nothing(index_elements=keys), batch)
        store.commit()
    return len(missing)


def _report(store: Store, model: str, day: date, details: dict[str, Any], now: datetime) -> None:
    _insert_missing(
        store,
        ModelReport.__table__,
        ["model", "fitted_on"],
        [{"model": model, "fitted_on": day, "details": _json(details), "created_at": now}],
        1,
    )


def churn_report_details(report: ChurnReport) -> dict[str, Any]:
    return {
        "auc": report.auc,
        "brier": report.brier,
        "baselines": report.baselines,
        "estimator": report.estimator,
        "n_train": report.n_train,
        "n_test": report.n_test,
        "churn_rate_test": report.churn_rate_test,
        "cutoff": report.cutoff,
        "horizon_days": report.horizon_days,
        "risk_source": report.risk_source,
        "notes": [note for note in (report.note, report.bgnbd_note, report.risk_note) if note],
        "calibration": report.calibration,
    }


def settle_alerts(session: Session, *, now: datetime, settings: Settings) -> dict[str, int]:
    """Close open alerts whose outcome is known: the member ordered again within the window
    (returned), the window passed without an order (lapsed), or the member left (erased)."""
    window = timedelta(days=settings.alert_outcome_days)
    first_order = (
        select(func.min(Order.placed_at))
        .where(Order.member_id == ChurnAlert.member_id, Order.placed_at > ChurnAlert.raised_at)
        .where(Order.placed_at <= now)
        .scalar_subquery()
    )
    rows = session.execute(
        select(ChurnAlert.id, ChurnAlert.raised_at, first_order, Member.erased_at)
        .join(Member, Member.id == ChurnAlert.member_id)
        .where(ChurnAlert.status == "open")
    ).all()
    outcomes: dict[str, list[int]] = {"returned": [], "lapsed": [], "left": []}
    for alert_id, raised_at, ordered_at, erased_at in rows:
        ends = raised_at + window
        if ordered_at is not None and ordered_at < ends:
            outcomes["returned"].append(alert_id)
        elif erased_at is not None:
            outcomes["left"].append(alert_id)
        elif now >= ends:
            outcomes["lapsed"].append(alert_id)
    for outcome, ids in outcomes.items():
        if ids:
            session.execute(
                update(ChurnAlert)
                .where(ChurnAlert.id.in_(ids), ChurnAlert.status == "open")
                .values(status="closed", outcome=outcome, closed_at=now)
            )
    return {outcome: len(ids) for outcome, ids in outcomes.items()}


def _alert_candidates(
    session: Session, scores: pd.DataFrame, members: dict[str, int], *, now: datetime, settings: Settings
) -> list[dict[str, Any]]:
    """Members over the threshold who are still active, most valuable first, without an alert
    in the outcome window (open, or closed so recently that a new one would nag).

    "Still active" means an order within the churn horizon: a member silent for longer has
    already churned by the models' own definition, and is in the segments and the report as
    such; an alert is for the one who can still be kept."""
    at_risk = scores[
        (scores["churn_risk"] >= settings.churn_threshold)
        & (scores["recency_days"] < settings.churn_horizon_days)
        & scores.index.isin(list(members))
    ]
    if at_risk.empty:
        return []
    recent = set(
        session.scalars(
            select(ChurnAlert.member_id).where(
                (ChurnAlert.status == "open")
                | (ChurnAlert.raised_at > now - timedelta(days=settings.alert_outcome_days))
            )
        )
    )
    value = at_risk["clv"].where(at_risk["clv"].notna(), at_risk["monetary"]).fillna(0).clip(lower=0)
    candidates = [
        {"member_id": members[user_id], "user_id": user_id, "risk": float(risk), "value": float(v)}
        for user_id, risk, v in zip(at_risk.index, at_risk["churn_risk"], value, strict=True)
        if members[user_id] not in recent
    ]
    return sorted(candidates, key=lambda c: c["risk"] * c["value"], reverse=True)


def raise_alerts(store: Store, candidates: Iterable[dict[str, Any]], *, now: datetime, settings: Settings) -> int:
    raised = 0
    for batch in _batches(list(candidates), settings.job_batch_size):
        with store.work() as session:
            for c in batch:
                alert_id = session.scalar(
                    upsert_insert(session)(ChurnAlert)
                    .values(
                        member_id=c["member_id"],
                        raised_at=now,
                        risk=c["risk"],
                        value=_money(c["value"]),
                        priority=c["risk"] * c["value"],
                        status="open",
                    )
                    .on_conflict_do_nothing(index_elements=["member_id"], index_where=OPEN)
                    .returning(ChurnAlert.id)
                )
                if alert_id is None:
                    continue
                raised += 1
                coupon = None
                if settings.winback_reward is not None:
                    member = session.get(Member, c["member_id"])
                    coupon = rewards.gift(session, member, settings.winback_reward, now=now, settings=settings)
                    if coupon is not None:
                        session.execute(update(ChurnAlert).where(ChurnAlert.id == alert_id).values(coupon_id=coupon.id))
                signals.defer(
                    session,
                    signals.churn_alert,
                    user_id=c["user_id"],
                    alert_id=alert_id,
                    risk=c["risk"],
                    value=_money(c["value"]),
                    coupon_code=coupon.code if coupon else None,
                )
        store.commit()
    return raised


def churn_scan(store: Store, *, now: datetime, settings: Settings, progress: Progress | None = None) -> dict[str, int]:
    today = now.date()
    with store.work() as session:
        settled = settle_alerts(session, now=now, settings=settings)
    store.commit()
    with store.work(write=False) as session:
        transactions = load_transactions(session, until=now)
        members = dict(session.execute(select(Member.user_id, Member.id).where(Member.erased_at.is_(None))).all())
    counts = {"scored": 0, "segmented": 0, "alerts": 0, **{f"alerts_{k}": v for k, v in settled.items()}}
    if transactions.empty:
        _report(store, "churn", today, {"notes": ["no orders yet: nothing to learn from"]}, now)
        return counts

    scores, report = score_members(
        transactions,
        now=now,
        horizon_days=settings.churn_horizon_days,
        attributes=member_attributes(store, settings),
        clv_months=settings.clv_months,
    )
    store.commit()
    _report(store, "churn", today, churn_report_details(report), now)
    mine = scores[scores.index.isin(list(members))]
    score_rows = [
        {
            "member_id": members[user_id],
            "scored_on": today,
            "churn_risk": _number(row.churn_risk),
            "risk_source": row.risk_source,
            "p_alive": _number(row.p_alive),
            "expected_orders": _number(row.expected_purchases),
            "expected_spend": _money(row.expected_spend),
            "clv": _money(row.clv),
            "recency_days": int(row.recency_days),
            "orders": int(row.frequency),
            "spend": _money(row.monetary) or Decimal(0),
        }
        for user_id, row in zip(mine.index, mine.itertuples(), strict=True)
    ]
    counts["scored"] = _insert_missing(
        store, MemberScore.__table__, ["member_id", "scored_on"], score_rows, settings.job_batch_size
    )
    if progress:
        progress(len(score_rows))

    counts["segmented"] = _segment(store, transactions, mine, members, now=now, settings=settings)
    with store.work(write=False) as session:
        candidates = _alert_candidates(session, scores, members, now=now, settings=settings)
    store.commit()
    counts["alerts"] = raise_alerts(store, candidates, now=now, settings=settings)
    return counts


def _segment(
    store: Store,
    transactions: pd.DataFrame,
    scores: pd.DataFrame,
    members: dict[str, int],
    *,
    now: datetime,
    settings: Settings,
) -> int:
    today = now.date()
    rfm = rfm_scores(transactions, now=now, window_days=settings.rfm_window_days)
    rfm = rfm[rfm.index.isin(list(members))]
    names = name_segments(rfm, settings.rfm_grid) if len(rfm) else pd.Series(dtype=object)
    rows = [
        {
            "member_id": members[user_id],
            "kind": "rfm",
            "computed_on": today,
            "segment": names[user_id],
            "scores": f"R{r} F{f} M{m}",
        }
        for user_id, r, f, m in zip(rfm.index, rfm["r"], rfm["f"], rfm["m"], strict=True)
    ]
    if len(scores):
        features = scores[["recency_days", "frequency", "monetary", "clv"]]
        value = ValueSegments().fit(features)
        _report(
            store,
            "value_segments",
            today,
            {"k": value.k_, "silhouette": value.silhouette_, "reason": value.reason_, "centers": value.centers_},
            now,
        )
        rows += [
            {"member_id": members[user_id], "kind": "value", "computed_on": today, "segment": name, "scores": None}
            for user_id, name in value.predict(features).items()
        ]
    keys = ["member_id", "kind", "computed_on"]
    return _insert_missing(store, MemberSegment.__table__, keys, rows, settings.job_batch_size)
