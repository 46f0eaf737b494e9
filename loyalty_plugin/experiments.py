"""The A/B test of the "recommended for you" widget: which variant a member sees, and how each
variant did.

A member's variant is a hash of the experiment's name and their user id: stable across
processes, hosts and restarts without storing anything, and reshuffled by renaming the
experiment. Holdout members see no widget; their views are still counted (with no items) so
that what the widget adds to purchases can be measured against them.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from scipy import stats
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from .config import Settings
from .models import Order, OrderLine, RecommendationClick, RecommendationImpressions
from .reports import Report

HOLDOUT = "holdout"
_SCALE = float(2**64)


def variant_of(user_id: str, settings: Settings) -> str:
    """``holdout``, ``model`` or ``popular`` for this user, by the configured shares."""
    digest = hashlib.sha256(f"{settings.ab_experiment}\x00{user_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / _SCALE
    if position < settings.ab_holdout:
        return HOLDOUT
    position = (position - settings.ab_holdout) / (1.0 - settings.ab_holdout)
    total = sum(settings.ab_variants.values())
    running = 0
    chosen = ""
    for name, weight in settings.ab_variants.items():
        if weight == 0:
            continue
        running += weight
        chosen = name
        if position < running / total:
            break
    return chosen


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float


@dataclass(frozen=True)
class VariantFigures:
    variant: str
    #: Members the widget was shown to (or, in the holdout, would have been).
    members: int
    views: int
    items_shown: int
    clicks: int
    #: Clicks per item shown, with a 95 % Wilson interval.
    click_through: Interval | None
    #: Order lines of clicked items bought within the attribution window of the click.
    attributed_purchases: int
    attributed_revenue: Decimal
    #: All purchases of the exposed members in the period, per member (95 % t interval): the
    #: figure that compares with the holdout.
    revenue_per_member: Interval | None


def _wilson(successes: int, trials: int) -> Interval | None:
    if trials == 0:
        return None
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return Interval(successes / trials, float(ci.low), float(ci.high))


def _mean_interval(values: np.ndarray) -> Interval | None:
    if values.size == 0:
        return None
    mean = float(values.mean())
    if values.size < 2:
        return Interval(mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    return Interval(mean, mean - half, mean + half)


def ab_figures(session: Session, settings: Settings, *, since: date, until: date) -> list[VariantFigures]:
    """Per variant of the current experiment, over the days ``since`` to ``until`` inclusive."""
    experiment = settings.ab_experiment
    start = datetime(since.year, since.month, since.day)
    end = datetime(until.year, until.month, until.day) + timedelta(days=1)
    shown = (
        select(
            RecommendationImpressions.variant,
            RecommendationImpressions.user_id,
            func.sum(RecommendationImpressions.views).label("views"),
            func.sum(RecommendationImpressions.items_shown).label("items_shown"),
        )
        .where(
            RecommendationImpressions.experiment == experiment,
            RecommendationImpressions.day >= since,
            RecommendationImpressions.day <= until,
        )
        .group_by(RecommendationImpressions.variant, RecommendationImpressions.user_id)
        .subquery()
    )
    exposure = {
        row.variant: row
        for row in session.execute(
            select(
                shown.c.variant,
                func.count().label("members"),
                func.sum(shown.c.views).label("views"),
                func.sum(shown.c.items_shown).label("items_shown"),
            ).group_by(shown.c.variant)
        )
    }
    in_period = and_(
        RecommendationClick.experiment == experiment,
        RecommendationClick.clicked_at >= start,
        RecommendationClick.clicked_at < end,
    )
    clicks = dict(
        session.execute(
            select(RecommendationClick.variant, func.count()).where(in_period).group_by(RecommendationClick.variant)
        ).all()
    )
    attributed = _attributed(session, settings, in_period)
    spend = _spend_per_member(session, shown, start, end)
    figures = []
    for variant in sorted(set(exposure) | set(clicks)):
        row = exposure.get(variant)
        items = int(row.items_shown) if row else 0
        n_clicks = int(clicks.get(variant, 0))
        purchases, revenue = attributed.get(variant, (0, Decimal(0)))
        figures.append(
            VariantFigures(
                variant=variant,
                members=int(row.members) if row else 0,
                views=int(row.views) if row else 0,
                items_shown=items,
                clicks=n_clicks,
                click_through=_wilson(min(n_clicks, items), items),
                attributed_purchases=purchases,
                attributed_revenue=revenue,
                revenue_per_member=_mean_interval(spend.get(variant, np.zeros(0))),
            )
        )
    return figures


def _attributed(session: Session, settings: Settings, in_period) -> dict[str, tuple[int, Decimal]]:
    """Order lines of a clicked item, bought by the clicker within the window after a click;
    a line after several clicks counts once, for the variant of its latest click."""
    window = timedelta(days=settings.attribution_days)
    rows = session.execute(
        select(
            OrderLine.id,
            OrderLine.qty,
            OrderLine.unit_price,
            Order.placed_at,
            RecommendationClick.variant,
            RecommendationClick.clicked_at,
        )
        .join(Order, Order.id == OrderLine.order_pk)
        .join(
            RecommendationClick,
            and_(
                RecommendationClick.user_id == Order.user_id,
                RecommendationClick.sku == OrderLine.sku,
                RecommendationClick.clicked_at <= Order.placed_at,
            ),
        )
        .where(in_period)
    ).all()
    latest: dict[int, tuple[datetime, str, Decimal]] = {}
    for line_id, qty, price, placed_at, variant, clicked_at in rows:
        if placed_at - clicked_at > window:
            continue
        if line_id not in latest or clicked_at > latest[line_id][0]:
            latest[line_id] = (clicked_at, variant, price * qty)
    out: dict[str, tuple[int, Decimal]] = {}
    for _, variant, value in latest.values():
        count, revenue = out.get(variant, (0, Decimal(0)))
        out[variant] = (count + 1, revenue + value)
    return out


def _spend_per_member(session: Session, shown, start: datetime, end: datetime) -> dict[str, np.ndarray]:
    """Every exposed member's order total in the period (zero for those who bought nothing)."""
    spent = (
        select(Order.user_id, func.sum(Order.total).label("total"))
        .where(Order.placed_at >= start, Order.placed_at < end, Order.user_id.is_not(None))
        .group_by(Order.user_id)
        .subquery()
    )
    rows = session.execute(
        select(shown.c.variant, spent.c.total).outerjoin(spent, spent.c.user_id == shown.c.user_id)
    ).all()
    per_variant: dict[str, list[float]] = {}
    for variant, total in rows:
        per_variant.setdefault(variant, []).append(float(total or 0))
    return {variant: np.asarray(values) for variant, values in per_variant.items()}


def ab_report(session: Session, settings: Settings, *, since: date, until: date) -> Report:
    """The figures as a report: ``flask loyalty report ab`` and the admin's CSV."""
    report = Report(
        "ab",
        [
            "variant",
            "members",
            "views",
            "items_shown",
            "clicks",
            "ctr",
            "ctr_low",
            "ctr_high",
            "attributed_purchases",
            "attributed_revenue",
            "revenue_per_member",
            "revenue_per_member_low",
            "revenue_per_member_high",
        ],
    )
    report.summary.append(f"experiment {settings.ab_experiment}, {since} to {until}")
    for f in ab_figures(session, settings, since=since, until=until):
        ctr, rpm = f.click_through, f.revenue_per_member
        report.rows.append(
            [
                f.variant,
                f.members,
                f.views,
                f.items_shown,
                f.clicks,
                *(_round(x, 4) for x in _parts(ctr)),
                f.attributed_purchases,
                f.attributed_revenue,
                *(_round(x, 2) for x in _parts(rpm)),
            ]
        )
        ctr_text = f"{ctr.value:.2%} [{ctr.low:.2%}, {ctr.high:.2%}]" if ctr else "n/a"
        rpm_text = f"{rpm.value:.2f} [{rpm.low:.2f}, {rpm.high:.2f}]" if rpm else "n/a"
        report.summary.append(
            f"{f.variant}: {f.members} members, {f.items_shown} items shown, {f.clicks} clicks, CTR {ctr_text}, "
            f"{f.attributed_purchases} attributed purchases ({f.attributed_revenue} {settings.currency}), "
            f"revenue per member {rpm_text}"
        )
    return report


def _parts(interval: Interval | None) -> tuple[float | None, float | None, float | None]:
    return (interval.value, interval.low, interval.high) if interval else (None, None, None)


def _round(value: float | None, places: int) -> float | None:
    return None if value is None or math.isnan(value) else round(value, places)
