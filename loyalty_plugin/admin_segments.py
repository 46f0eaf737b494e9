"""What the admin reads about segments and churn, as of the last churn scan: the RFM grid
with counts and value, the K-means value segments' profiles, the churn alerts and the churn
model's own report (AUC, calibration).

All of it comes from what the churn-scan job stored (``loyalty_member_segments``,
``loyalty_member_scores``, ``loyalty_churn_alerts``, ``loyalty_model_reports``); nothing is
refitted here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Select, func, select, type_coerce
from sqlalchemy.orm import Session

from .models import ChurnAlert, Member, MemberScore, MemberSegment, ModelReport, Order
from .money import from_cents

ALERT_STATUSES = ("open", "closed")


@dataclass(frozen=True)
class Cell:
    """One cell of the recency x frequency grid."""

    r: int
    f: int
    segment: str
    members: int
    spend: Decimal
    clv: Decimal


@dataclass(frozen=True)
class SegmentTotal:
    segment: str
    members: int
    spend: Decimal
    clv: Decimal


@dataclass
class RfmGrid:
    day: date | None
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)
    totals: list[SegmentTotal] = field(default_factory=list)

    @property
    def members(self) -> int:
        return sum(t.members for t in self.totals)


def _latest(session: Session, column: Any, *where: Any) -> date | None:
    return session.scalar(select(func.max(column)).where(*where))


def rfm_grid(session: Session) -> RfmGrid:
    """Members per (R, F) cell of the last scan, with the spend and lifetime value they hold
    (from the same scan's scores)."""
    day = _latest(session, MemberSegment.computed_on, MemberSegment.kind == "rfm")
    grid = RfmGrid(day)
    if day is None:
        return grid
    r = func.substr(MemberSegment.scores, 2, 1)
    f = func.substr(MemberSegment.scores, 5, 1)
    rows = session.execute(
        select(
            r,
            f,
            MemberSegment.segment,
            func.count(),
            func.coalesce(func.sum(type_coerce(MemberScore.spend, BigInteger)), 0),
            func.coalesce(func.sum(type_coerce(MemberScore.clv, BigInteger)), 0),
        )
        .join(Member, Member.id == MemberSegment.member_id)
        .outerjoin(MemberScore, (MemberScore.member_id == MemberSegment.member_id) & (MemberScore.scored_on == day))
        .where(MemberSegment.kind == "rfm", MemberSegment.computed_on == day, Member.erased_at.is_(None))
        .group_by(r, f, MemberSegment.segment)
    ).all()
    totals: dict[str, list[Any]] = {}
    for r_score, f_score, segment, members, spend, clv in rows:
        cell = Cell(int(r_score), int(f_score), segment, int(members), from_cents(spend), from_cents(clv))
        grid.cells[cell.r, cell.f] = cell
        total = totals.setdefault(segment, [0, Decimal(0), Decimal(0)])
        total[0] += cell.members
        total[1] += cell.spend
        total[2] += cell.clv
    grid.totals = sorted(
        (SegmentTotal(name, *values) for name, values in totals.items()), key=lambda t: (-t.members, t.segment)
    )
    return grid


@dataclass(frozen=True)
class ValueSegments:
    """The K-means fit of the last scan: its k, silhouettes, profiles, and members per segment now."""

    day: date | None
    k: int | None
    silhouette: dict[str, float]
    reason: str | None
    profiles: list[dict[str, Any]]
    members: dict[str, int]


def value_segments(session: Session) -> ValueSegments:
    report = session.scalar(
        select(ModelReport).where(ModelReport.model == "value_segments").order_by(ModelReport.fitted_on.desc()).limit(1)
    )
    day = _latest(session, MemberSegment.computed_on, MemberSegment.kind == "value")
    counts = Counter(
        dict(
            session.execute(
                select(MemberSegment.segment, func.count())
                .join(Member, Member.id == MemberSegment.member_id)
                .where(MemberSegment.kind == "value", MemberSegment.computed_on == day, Member.erased_at.is_(None))
                .group_by(MemberSegment.segment)
            ).all()
        )
    )
    if report is None:
        return ValueSegments(day, None, {}, None, [], dict(counts))
    details = report.details
    profiles = [{**row, "segment": row.get("index", row.get("segment"))} for row in details.get("centers") or []]
    return ValueSegments(
        report.fitted_on,
        details.get("k"),
        {str(k): float(v) for k, v in (details.get("silhouette") or {}).items() if v is not None},
        details.get("reason"),
        profiles,
        dict(counts),
    )


def alerts(status: str | None) -> Select[Any]:
    """Churn alerts, the most urgent (risk x value) first, with the member's tier, last order
    and latest RFM segment."""
    last_order = select(func.max(Order.placed_at)).where(Order.member_id == ChurnAlert.member_id).scalar_subquery()
    segment = (
        select(MemberSegment.segment)
        .where(MemberSegment.member_id == ChurnAlert.member_id, MemberSegment.kind == "rfm")
        .order_by(MemberSegment.computed_on.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            Member.id.label("member_id"),
            Member.user_id.label("user_id"),
            Member.tier_code.label("tier"),
            ChurnAlert.risk.label("risk"),
            ChurnAlert.value.label("value"),
            ChurnAlert.priority.label("priority"),
            ChurnAlert.raised_at.label("raised_at"),
            last_order.label("last_order"),
            segment.label("segment"),
            ChurnAlert.status.label("status"),
            ChurnAlert.outcome.label("outcome"),
            ChurnAlert.closed_at.label("closed_at"),
        )
        .join(Member, Member.id == ChurnAlert.member_id)
        .order_by(ChurnAlert.status.desc(), ChurnAlert.priority.desc(), ChurnAlert.id)
    )
    return stmt.where(ChurnAlert.status == status) if status in ALERT_STATUSES else stmt


@dataclass(frozen=True)
class Outcomes:
    open: int
    returned: int
    lapsed: int
    left: int

    @property
    def return_rate(self) -> float | None:
        settled = self.returned + self.lapsed
        return self.returned / settled if settled else None


def outcomes(session: Session) -> Outcomes:
    counts = Counter(
        {
            (status, outcome): n
            for status, outcome, n in session.execute(
                select(ChurnAlert.status, ChurnAlert.outcome, func.count()).group_by(
                    ChurnAlert.status, ChurnAlert.outcome
                )
            )
        }
    )
    return Outcomes(
        sum(n for (status, _), n in counts.items() if status == "open"),
        counts["closed", "returned"],
        counts["closed", "lapsed"],
        counts["closed", "left"],
    )


def churn_reports(session: Session) -> list[ModelReport]:
    """Every churn model report, newest first: the latest is the scan's, the rest its history."""
    return list(
        session.scalars(select(ModelReport).where(ModelReport.model == "churn").order_by(ModelReport.fitted_on.desc()))
    )
