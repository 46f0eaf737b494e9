"""What an admin reads about the program: churn, segments and tiers, one row per member with
a summary on top. ``flask loyalty report`` writes them as CSV; the admin pages show the same.

Each report reads the latest stored scan (scores and segments are kept per day), so a report
is as of the last churn-scan run and says so.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, func, select, type_coerce
from sqlalchemy.orm import Session, aliased

from .config import Settings
from .models import ChurnAlert, Member, MemberScore, MemberSegment, ModelReport, TierChange
from .money import from_cents
from .tiers import spend_by_member


@dataclass
class Report:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def write_csv(self, path: str) -> None:
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(self.columns)
            writer.writerows([["" if v is None else v for v in row] for row in self.rows])


def _latest(session: Session, column: Any, *where: Any) -> date | None:
    return session.scalar(select(func.max(column)).where(*where))


def _rate(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"


def churn_report(session: Session) -> Report:
    report = Report(
        "churn",
        [
            "user_id",
            "tier",
            "churn_risk",
            "risk_source",
            "p_alive",
            "expected_orders",
            "expected_spend",
            "clv",
            "recency_days",
            "orders",
            "spend",
            "alert_priority",
            "alert_raised_at",
        ],
    )
    day = _latest(session, MemberScore.scored_on)
    if day is None:
        report.summary.append("No churn scan has run yet: run `flask loyalty run-job churn`.")
        return report
    model = session.scalar(select(ModelReport).where(ModelReport.model == "churn", ModelReport.fitted_on == day))
    report.summary.append(f"Scores of {day.isoformat()}.")
    if model is not None:
        details = model.details
        if details.get("auc") is not None:
            baselines = ", ".join(f"{k} {v:.3f}" for k, v in (details.get("baselines") or {}).items() if v is not None)
            report.summary.append(
                f"Churn model ({details.get('estimator')}): AUC {details['auc']:.3f} on the held-out "
                f"{details.get('horizon_days'):g} days after {str(details.get('cutoff'))[:10]} "
                f"({details.get('n_test')} customers); baselines: {baselines}."
            )
        report.summary += [f"Note: {note}" for note in details.get("notes", [])]
    outcomes = Counter(
        dict(session.execute(select(ChurnAlert.outcome, func.count()).group_by(ChurnAlert.outcome)).all())
    )
    settled = outcomes["returned"] + outcomes["lapsed"]
    report.summary.append(
        f"Alerts: {outcomes[None]} open; of {settled} settled, {outcomes['returned']} came back "
        f"({_rate(outcomes['returned'], settled)}), {outcomes['lapsed']} did not."
    )
    alert = aliased(ChurnAlert)
    rows = session.execute(
        select(
            Member.user_id,
            Member.tier_code,
            MemberScore.churn_risk,
            MemberScore.risk_source,
            MemberScore.p_alive,
            MemberScore.expected_orders,
            MemberScore.expected_spend,
            MemberScore.clv,
            MemberScore.recency_days,
            MemberScore.orders,
            MemberScore.spend,
            alert.priority,
            alert.raised_at,
        )
        .join(Member, Member.id == MemberScore.member_id)
        .outerjoin(alert, (alert.member_id == Member.id) & (alert.status == "open"))
        .where(MemberScore.scored_on == day, Member.erased_at.is_(None))
        .order_by(alert.priority.desc().nulls_last(), MemberScore.churn_risk.desc().nulls_last(), Member.user_id)
    ).all()
    report.rows = [[_cell(v) for v in row] for row in rows]
    return report


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def segments_report(session: Session) -> Report:
    report = Report(
        "segments",
        ["user_id", "rfm_segment", "rfm_scores", "previous_rfm_segment", "value_segment", "previous_value_segment"],
    )
    day = _latest(session, MemberSegment.computed_on)
    if day is None:
        report.summary.append("No segments yet: run `flask loyalty run-job churn`.")
        return report
    before = _latest(session, MemberSegment.computed_on, MemberSegment.computed_on < day)
    segments: dict[str, dict[str, Any]] = {}
    for user_id, kind, on, name, scores in session.execute(
        select(
            Member.user_id, MemberSegment.kind, MemberSegment.computed_on, MemberSegment.segment, MemberSegment.scores
        )
        .join(Member, Member.id == MemberSegment.member_id)
        .where(MemberSegment.computed_on.in_([d for d in (day, before) if d]), Member.erased_at.is_(None))
    ):
        entry = segments.setdefault(user_id, {})
        key = kind if on == day else f"previous_{kind}"
        entry[key] = name
        if on == day and scores:
            entry["scores"] = scores
    current = {user: e for user, e in segments.items() if "rfm" in e or "value" in e}
    report.rows = [
        [user, e.get("rfm"), e.get("scores"), e.get("previous_rfm"), e.get("value"), e.get("previous_value")]
        for user, e in sorted(current.items())
    ]
    report.summary.append(
        f"Segments of {day.isoformat()}" + (f", compared with {before.isoformat()}." if before else ".")
    )
    for kind in ("rfm", "value"):
        now_counts = Counter(e.get(kind) for e in current.values() if e.get(kind))
        then_counts = Counter(e.get(f"previous_{kind}") for e in segments.values() if e.get(f"previous_{kind}"))
        moved = sum(1 for e in current.values() if e.get(f"previous_{kind}") not in (None, e.get(kind)))
        label = "RFM" if kind == "rfm" else "Value"
        parts = [
            f"{name} {count}" + (f" ({count - then_counts[name]:+d})" if before else "")
            for name, count in now_counts.most_common()
        ]
        report.summary.append(f"{label}: " + ", ".join(parts) + (f"; {moved} member(s) moved." if before else ""))
    return report


def tiers_report(session: Session, *, now: datetime, settings: Settings) -> Report:
    report = Report(
        "tiers",
        ["user_id", "tier", "tier_reached_at", "qualifying_spend", "points_available", "points_pending", "enrolled_at"],
    )
    spend = spend_by_member(settings, now=now)
    rows = session.execute(
        select(
            Member.user_id,
            Member.tier_code,
            Member.tier_reached_at,
            type_coerce(func.coalesce(spend.c.cents, 0), BigInteger),
            Member.points_balance,
            Member.points_pending,
            Member.enrolled_at,
        )
        .outerjoin(spend, spend.c.member_id == Member.id)
        .where(Member.erased_at.is_(None))
        .order_by(Member.user_id)
    ).all()
    names = {tier.code: tier.name for tier in settings.tiers}
    report.rows = [
        [user, names.get(code, code), _cell(reached), from_cents(cents), available, pending, _cell(joined)]
        for user, code, reached, cents, available, pending, joined in rows
    ]
    counts = Counter(row[1] for row in report.rows)
    month = now - timedelta(days=30)
    moves = dict(
        session.execute(
            select(TierChange.reason, func.count()).where(TierChange.changed_at > month).group_by(TierChange.reason)
        ).all()
    )
    report.summary.append(
        f"{len(report.rows)} members: " + ", ".join(f"{tier.name} {counts[tier.name]}" for tier in settings.tiers) + "."
    )
    report.summary.append(
        f"Last 30 days: {moves.get('upgrade', 0)} upgrade(s), {moves.get('downgrade', 0)} downgrade(s)."
    )
    return report
