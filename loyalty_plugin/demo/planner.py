"""Planning: who buys what and when. Pure, no database.

The simulated year (joins, orders, refunds and the daily birthday run) drawn from one seeded
Generator, always in the same order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from .catalog import CATEGORIES, CatalogItem
from .customers import FIRST_NAMES, LAST_NAMES, SAVING_TARGETS, Customer

#: When in the day orders are placed (0-23 h): quiet nights, a lunch bump, busy evenings.
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 8, 9, 8, 7, 7, 7, 8, 10, 12, 12, 10, 6, 3], dtype=float)


def _cdf(weights: Any) -> np.ndarray:
    cumulative = np.cumsum(np.asarray(weights, dtype=float))
    return cumulative / cumulative[-1]


@dataclass(frozen=True)
class Planned:
    """One thing that happens in the shop, in time order."""

    at: datetime
    kind: str  # join | order | refund | birthdays
    user_id: str = ""
    lines: tuple[tuple[str, int], ...] = ()
    order_id: str = ""
    refund_id: str = ""
    full_refund: bool = True


class Planner:
    """Draws customers and their orders from one seeded Generator, always in the same order."""

    def __init__(self, rng: np.random.Generator, catalog: list[CatalogItem], start: datetime, end: datetime) -> None:
        self.rng = rng
        self.start, self.end = start, end
        shares = np.array([share for _c, _n, share, _v, _p in CATEGORIES])
        self.category_alpha = 3.0 * shares / shares.sum()
        self.by_category = [[i for i in catalog if i.sku.startswith(code)] for code, *_ in CATEGORIES]
        self.item_cdf = [_cdf([i.popularity for i in group]) for group in self.by_category]
        self.hour_cdf = _cdf(HOUR_WEIGHTS)

    def draw(self, cdf: np.ndarray) -> int:
        """An index drawn with the weights ``cdf`` was built from (what ``Generator.choice``
        does with ``p=``, without checking the weights again on every draw)."""
        return int(np.searchsorted(cdf, self.rng.random(), side="right"))

    def moment(self, day: float) -> datetime:
        """A time on the given (fractional) day, at an hour people shop."""
        hour = self.draw(self.hour_cdf)
        midnight = self.start + timedelta(days=int(day))
        return midnight + timedelta(hours=int(hour), minutes=int(self.rng.integers(60)))

    def customers(self, count: int) -> list[Customer]:
        rng = self.rng
        span = max((self.end - self.start).days - 3, 1)
        launch = rng.random(count) < 0.35
        days = np.where(launch, rng.uniform(0, min(10, span), count), rng.uniform(0, span, count))
        joined = sorted(self.moment(d) for d in days)
        people = []
        for i, at in enumerate(joined):
            first, last = FIRST_NAMES[rng.integers(len(FIRST_NAMES))], LAST_NAMES[rng.integers(len(LAST_NAMES))]
            born = None
            if rng.random() < 0.65:
                born = date(int(rng.integers(1950, 2006)), 1, 1) + timedelta(days=int(rng.integers(365)))
            people.append(
                Customer(
                    user_id=f"c{i + 1:05d}",
                    email=f"{first}.{last}.{i + 1}@example.com".lower(),
                    name=f"{first} {last}",
                    member=bool(rng.random() < 0.75),
                    joined_at=at,
                    birthday=born,
                    marketing_opt_in=bool(rng.random() < 0.4),
                    saving_for=int(rng.choice(SAVING_TARGETS)),
                    redeem_chance=float(rng.beta(2, 3)),
                )
            )
        self._refer(people)
        return people

    def _refer(self, people: list[Customer]) -> None:
        """One in ten members who join after the launch month came through a friend's code."""
        members_so_far: list[Customer] = []
        for person in people:
            if not person.member:
                continue
            late = person.joined_at - self.start > timedelta(days=30)
            if late and members_so_far and self.rng.random() < 0.1:
                person.referrer = members_so_far[self.rng.integers(len(members_so_far))].user_id
            members_so_far.append(person)

    def orders_of(self, person: Customer) -> list[tuple[datetime, dict[str, int]]]:
        """Regular orders at the customer's own rate until they drop out, plus consumables
        re-bought on their cycle while they are still around."""
        rng = self.rng
        if rng.random() < 0.08:
            return []
        business = rng.random() < 0.08
        rate = rng.gamma(0.9, (1 / 90) / 0.9) * (2.0 if business else 1.0)
        dropout = rng.beta(1.5, 9)
        taste = _cdf(rng.dirichlet(self.category_alpha))
        bulk = int(rng.integers(3, 13)) if business else 1
        t = (person.joined_at - self.start).total_seconds() / 86400 + rng.exponential(2)
        horizon = (self.end - self.start).total_seconds() / 86400
        regular: list[float] = []
        while t < horizon:
            regular.append(t)
            if rng.random() < dropout:
                break
            t += rng.exponential(1 / rate)
        if not regular:
            return []
        until = regular[-1] if t < horizon else horizon
        baskets = {day: self.basket(person, taste, bulk) for day in regular}
        self._add_consumables(taste, bulk, regular[0], until, baskets)
        placed = [(max(self.moment(day), person.joined_at), lines) for day, lines in sorted(baskets.items())]
        return sorted(placed, key=lambda order: order[0])

    def _add_consumables(
        self,
        taste: np.ndarray,
        bulk: int,
        first: float,
        until: float,
        baskets: dict[float, dict[str, int]],
    ) -> None:
        """The habit starts with the first order and repeats every cycle, give or take, until
        the customer leaves or tires of it (one chance in ten at each re-buy); a re-buy
        within five days of another order joins that order's basket."""
        rng = self.rng
        for _ in range(rng.choice(3, p=[0.65, 0.28, 0.07])):
            item = self.pick(taste, consumable_only=True)
            if item is None or item.cycle_days is None:
                continue
            baskets[first][item.sku] = baskets[first].get(item.sku, 0) + bulk
            day = first + item.cycle_days * rng.lognormal(0, 0.12)
            while day < until and rng.random() > 1 / 10:
                near = min(baskets, key=lambda d: abs(d - day))
                target = baskets[near] if abs(near - day) <= 5 else baskets.setdefault(day, {})
                target[item.sku] = target.get(item.sku, 0) + bulk
                day += item.cycle_days * rng.lognormal(0, 0.12)

    def pick(self, taste: np.ndarray, *, consumable_only: bool = False) -> CatalogItem | None:
        category = self.draw(taste)
        item = self.by_category[category][self.draw(self.item_cdf[category])]
        if consumable_only and not item.consumable:
            return None
        return item

    def basket(self, person: Customer, taste: np.ndarray, bulk: int) -> dict[str, int]:
        rng = self.rng
        lines: dict[str, int] = {}
        for _ in range(1 + rng.poisson(1.0)):
            item = self.pick(taste)
            if item is None or (not item.consumable and item.sku in person.bought):
                continue
            person.bought.add(item.sku)
            qty = (1 + rng.poisson(0.6) if item.consumable else 1) * bulk
            lines[item.sku] = lines.get(item.sku, 0) + qty
            if item.goes_with and rng.random() < 0.45:
                lines[item.goes_with] = lines.get(item.goes_with, 0) + bulk
        if not lines:
            item = self.by_category[0][0]
            lines[item.sku] = bulk
        return lines

    def timeline(self, people: list[Customer]) -> list[Planned]:
        """Joins, orders (numbered in time order), refunds and the daily birthday run, sorted."""
        events = [Planned(p.joined_at, "join", p.user_id) for p in people]
        placed = [(at, p.user_id, lines) for p in people for at, lines in self.orders_of(p)]
        placed.sort(key=lambda o: (o[0], o[1]))
        for n, (at, user_id, lines) in enumerate(placed, start=1):
            order_id = f"seed-{n:06d}"
            events.append(Planned(at, "order", user_id, tuple(sorted(lines.items())), order_id=order_id))
            if self.rng.random() < 0.035:
                when = at + timedelta(days=float(self.rng.uniform(1, 45)))
                if when < self.end:
                    events.append(
                        Planned(
                            when,
                            "refund",
                            user_id,
                            order_id=order_id,
                            refund_id=f"seed-r{n:06d}",
                            full_refund=bool(self.rng.random() < 0.55),
                        )
                    )
        day = self.start + timedelta(hours=9)
        while day <= self.end:
            events.append(Planned(day, "birthdays"))
            day += timedelta(days=1)
        rank = {"birthdays": 0, "join": 1, "order": 2, "refund": 3}
        return sorted(events, key=lambda e: (e.at, rank[e.kind], e.user_id, e.order_id))
