"""Writing: the plan played through the domain functions, a transaction per simulated week
with the program's jobs run between weeks; ``seed_demo`` and the ``SeedReport`` it returns."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import jobs, orders, rewards, tiers
from ..config import Settings
from ..database import Store
from ..errors import BadInput
from ..models import Coupon, Item, Member, Order, OrderLine, ProcessedEvent, Reward
from .catalog import ITEM_URL, REWARDS, CatalogItem, demo_catalog
from .customers import DEMO_PASSWORD
from .planner import Planned, Planner
from .shop import Shop

Progress = Callable[[int], None]
UserFactory = Callable[[list[dict[str, str]]], Any]

LAPSED_AFTER = timedelta(days=90)
MARKER_SCOPE = "seed_demo"


@dataclass(frozen=True)
class SeedReport:
    """What a run did; ``skipped`` says why a run did nothing."""

    seed: int
    skipped: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        if self.skipped:
            return f"Nothing done: {self.skipped}"
        c = self.counts
        tier_text = ", ".join(f"{name} {n:,}" for name, n in self.tiers.items())
        return "\n".join(
            (
                f"Demo shop seeded from seed {self.seed} in {self.seconds:.1f} s:",
                f"  {c['customers']:,} customers, {c['members']:,} of them members ({tier_text})",
                f"  {c['items']:,} items, {c['rewards']:,} rewards",
                f"  {c['orders']:,} orders with {c['lines']:,} lines, {c['refunds']:,} refunds",
                f"  {c['coupons']:,} coupons redeemed, {c['coupons_used']:,} used at checkout",
                f"  {c['lapsed']:,} members lapsed (no order for {LAPSED_AFTER.days} days)",
            )
        )


def _skip_reason(store: Store) -> str | None:
    with store.work(write=False) as session:
        marker = session.scalars(select(ProcessedEvent).where(ProcessedEvent.scope == MARKER_SCOPE)).first()
        if marker is not None:
            return f"the demo data is already in (written {marker.created_at:%Y-%m-%d %H:%M} UTC, {marker.key})."
        n_members = session.scalar(select(func.count()).select_from(Member))
        n_orders = session.scalar(select(func.count()).select_from(Order))
    if n_members or n_orders:
        return (
            f"the program already has {n_members:,} member(s) and {n_orders:,} order(s); "
            "seed-demo only fills an empty program."
        )
    return None


def _write_catalog(session: Session, catalog: list[CatalogItem], settings: Settings, at: datetime) -> None:
    for item in catalog:
        session.merge(
            Item(
                sku=item.sku,
                name=item.name,
                category=item.category,
                price=item.price,
                url=ITEM_URL.format(sku=item.sku),
                image_url=None,
                in_stock=True,
                consumable=item.consumable,
                updated_at=at,
            )
        )
    for definition in REWARDS:
        rewards.create_reward(session, dict(definition), actor="seed-demo", now=at, settings=settings)


def _weeks(events: list[Planned], start: datetime, end: datetime) -> Iterator[tuple[datetime, list[Planned]]]:
    """The plan cut into weeks: (end of the week, what happens in it)."""
    i = 0
    boundary = start
    while boundary < end:
        boundary = min(boundary + timedelta(days=7), end)
        week = []
        while i < len(events) and events[i].at < boundary:
            week.append(events[i])
            i += 1
        yield boundary, week


def _run_jobs(store: Store, settings: Settings, moment: datetime) -> None:
    """What the scheduler's jobs would have done by ``moment``: points released, expired, tiers."""
    jobs.release_pending(store, now=moment)
    jobs.expire_points(store, now=moment)
    with store.work() as session:
        tiers.evaluate_tiers(session, now=moment, settings=settings)
    store.commit()


def _counts(session: Session, now: datetime, customers: int) -> tuple[dict[str, int], dict[str, int]]:
    def count(model: Any, *where: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)))

    last = (
        select(Order.member_id, func.count().label("n"), func.max(Order.placed_at).label("last"))
        .where(Order.member_id.is_not(None))
        .group_by(Order.member_id)
        .subquery()
    )
    lapsed = session.scalar(
        select(func.count()).select_from(last).where(last.c.n >= 2, last.c.last < now - LAPSED_AFTER)
    )
    by_tier = dict(session.execute(select(Member.tier_code, func.count()).group_by(Member.tier_code)).all())
    counts = {
        "customers": customers,
        "members": count(Member),
        "items": count(Item),
        "rewards": count(Reward),
        "orders": count(Order),
        "lines": count(OrderLine),
        "refunds": count(ProcessedEvent, ProcessedEvent.scope == "refund"),
        "coupons": count(Coupon),
        "coupons_used": count(Coupon, Coupon.status == "used"),
        "lapsed": int(lapsed or 0),
    }
    return counts, by_tier


def _play(
    store: Store,
    settings: Settings,
    shop: Shop,
    events: list[Planned],
    span: tuple[datetime, datetime],
    customers: int,
    progress: Progress | None,
) -> None:
    """A transaction per simulated week, then the jobs as of the week's end (the last one: ``now``)."""
    done = reported = 0
    for boundary, week in _weeks(events, *span):
        with store.work() as session:
            shop.begin_week(session)
            for event in week:
                shop.play(event)
        store.commit()
        _run_jobs(store, settings, boundary)
        done += len(week)
        share = customers * done // len(events)
        if progress is not None and share > reported:
            progress(share - reported)
            reported = share


def _finish(store: Store, settings: Settings, *, seed: int, customers: int, days: int, now: datetime) -> SeedReport:
    """Count what is there and leave the marker that makes the next run a no-op."""
    with store.work() as session:
        counts, by_tier = _counts(session, now, customers)
        session.add(
            ProcessedEvent(
                scope=MARKER_SCOPE,
                key=f"seed {seed}, {customers} customers, {days} days",
                fingerprint=orders.fingerprint(seed, customers, days),
                created_at=now,
                result=json.dumps(counts),
            )
        )
    store.commit()
    ranked = sorted(by_tier.items(), key=lambda kv: settings.tier(kv[0]).rank)
    return SeedReport(seed, counts=counts, tiers={settings.tier(code).name: n for code, n in ranked})


def seed_demo(
    store: Store,
    settings: Settings,
    *,
    seed: int,
    customers: int,
    days: int,
    now: datetime,
    create_users: UserFactory | None,
    progress: Progress | None,
) -> SeedReport:
    """Fill an empty program with ``customers`` customers and ``days`` of history up to ``now``.

    ``create_users`` (the host's ``seed_users`` hook) receives, before anything is written,
    one dict per customer — ``user_id``, ``email``, ``name``, ``password`` — so the shop can
    open their accounts; it commits its own rows. A second run, or a run on a program that
    already has members or orders, changes nothing and says why. ``progress`` is told how
    many customers' worth of work each step did; the steps add up to ``customers``. A run
    that is interrupted leaves a partly filled program, which the next run refuses to touch.
    """
    if customers < 1 or days < 1:
        raise BadInput("seed-demo needs at least one customer and one day of history.")
    began = time.perf_counter()
    skipped = _skip_reason(store)
    if skipped:
        return SeedReport(seed, skipped=skipped)
    start = datetime.combine((now - timedelta(days=days)).date(), datetime.min.time())
    rng = np.random.default_rng(seed)
    catalog = demo_catalog()
    planner = Planner(rng, catalog, start, now)
    people = planner.customers(customers)
    events = planner.timeline(people)
    if create_users is not None:
        create_users(
            [{"user_id": p.user_id, "email": p.email, "name": p.name, "password": DEMO_PASSWORD} for p in people]
        )
    with store.work() as session:
        _write_catalog(session, catalog, settings, start)
    store.commit()
    shop = Shop(settings, rng, {i.sku: i for i in catalog}, {p.user_id: p for p in people})
    _play(store, settings, shop, events, (start, now), customers, progress)
    report = _finish(store, settings, seed=seed, customers=customers, days=days, now=now)
    return replace(report, seconds=time.perf_counter() - began)
