"""Demo data: a shop's catalog, its customers and a year of their orders, run through the
program's own rules.

The orders carry the patterns the program's analytics look for, so a demo shows them
working on something that behaves like a shop:

* purchase rates differ widely between customers (gamma-distributed): a few buy often, most
  rarely — what RFM segments and BG/NBD models expect; a few business customers buy in bulk,
  the spend that reaches the upper tiers;
* after every order a customer may drop out for good (a beta-distributed chance of their
  own), so members lapse and churn models have something to find;
* each customer prefers a few categories (Dirichlet), items have a complement that joins the
  basket ("bought together"), and consumables are re-bought on their own cycle ("buy it
  again" every few weeks).

Everything random comes from numpy's Generator seeded with ``seed`` — demo data, never
secrets — so the same ``seed`` and ``now`` give the same orders. Coupon and referral codes
still come from ``secrets``, as in production. Enrolments, orders, redemptions, coupon uses
and refunds go through the domain functions in one transaction per simulated week, and the
release, expiry, birthday and tier jobs run between weeks: balances, lots and tiers are what
the live program would hold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import jobs, members, orders, rewards, tiers
from .config import Settings
from .database import Store, lock_member
from .errors import BadInput, InvalidCoupon, LoyaltyError
from .models import Coupon, Item, Member, Order, OrderLine, ProcessedEvent, Reward
from .money import CENT

Progress = Callable[[int], None]
UserFactory = Callable[[list[dict[str, str]]], Any]

#: Every seeded customer logs in with this password: the accounts are public demo data.
DEMO_PASSWORD = "demo-customer"  # noqa: S105  # nosec B105
ITEM_URL = "/items/{sku}"
SHIPPING = Decimal("4.95")
FREE_SHIPPING_FROM = Decimal("50.00")
LAPSED_AFTER = timedelta(days=90)
MARKER_SCOPE = "seed_demo"

# code, category, share of orders, variants (label, price factor) most popular first,
# products (noun, base price, re-buy cycle in days or None for durables) most popular first.
Category = tuple[str, str, float, tuple[tuple[str, str], ...], tuple[tuple[str, str, int | None], ...]]
# fmt: off
CATEGORIES: tuple[Category, ...] = (
    ("COF", "Coffee & Tea", 0.16,
     (("Classic", "1"), ("Organic", "1.25"), ("Single-origin", "1.5"), ("Decaf", "1.05")),
     (("espresso beans 1 kg", "18.90", 28), ("coffee capsules, 30", "9.90", 14),
      ("ground filter coffee 500 g", "8.90", 21), ("green tea, 50 bags", "5.50", 35),
      ("chai spice blend", "7.20", 40))),
    ("PAN", "Pantry", 0.15,
     (("Everyday", "0.85"), ("Organic", "1.3"), ("Italian", "1.15"), ("Family-size", "1.8")),
     (("durum wheat pasta 1 kg", "3.20", 14), ("tomato pasta sauce", "3.90", 14), ("olive oil 1 l", "12.50", 30),
      ("basmati rice 2 kg", "6.80", 30), ("dark chocolate bar", "2.90", 10))),
    ("CAR", "Personal Care", 0.12,
     (("Fresh", "1"), ("Sensitive", "1.1"), ("Natural", "1.3"), ("Travel-size", "0.55")),
     (("shampoo 400 ml", "6.50", 35), ("toothpaste", "3.20", 30), ("conditioner 400 ml", "6.90", 40),
      ("razor blades, 8", "14.90", 45), ("safety razor", "29.00", None))),
    ("CLN", "Home Cleaning", 0.11,
     (("Original", "1"), ("Eco", "1.2"), ("Fresh-scent", "1.05"), ("Bulk", "1.9")),
     (("laundry detergent 2 l", "12.90", 40), ("dishwasher tabs, 60", "11.50", 35), ("sponges, 10", "3.50", 30),
      ("fabric softener", "5.90", 45), ("microfibre cloths", "8.90", None))),
    ("PET", "Pet Supplies", 0.09,
     (("Adult", "1"), ("Value", "0.8"), ("Senior", "1.1"), ("Grain-free", "1.4")),
     (("cat food, 24 cans", "21.90", 21), ("dry dog food 12 kg", "49.90", 30), ("cat litter 10 l", "11.90", 21),
      ("dog treats", "5.90", 14), ("dog leash", "17.90", None))),
    ("KIT", "Kitchen", 0.09,
     (("Classic", "1"), ("Essential", "0.8"), ("Compact", "0.9"), ("Pro", "1.45")),
     (("french press", "29.00", None), ("mug set", "24.00", None), ("burr grinder", "79.00", None),
      ("chef's knife", "59.00", None), ("espresso machine", "189.00", None))),
    ("ELE", "Electronics", 0.08,
     (("Standard", "1"), ("Value", "0.7"), ("Premium", "1.3"), ("Eco", "1.1")),
     (("AA batteries, 12", "9.90", 60), ("USB-C cable 2 m", "12.90", None), ("phone charger 30 W", "24.90", None),
      ("screen cleaner", "6.90", 90), ("wireless earbuds", "59.00", None))),
    ("STA", "Stationery", 0.07,
     (("Classic", "1"), ("Recycled", "1.15"), ("Value", "0.8"), ("Premium", "1.6")),
     (("gel pens, 10", "8.50", 90), ("A5 notebook", "6.90", None), ("sticky notes", "3.90", 60),
      ("ink cartridges, 6", "5.50", 45), ("fountain pen", "34.00", None))),
    ("GAR", "Garden", 0.07,
     (("Classic", "1"), ("Organic", "1.25"), ("Starter", "0.75"), ("Professional", "1.5")),
     (("potting soil 40 l", "9.90", 60), ("tomato seeds", "2.90", None), ("plant food 1 l", "7.90", 45),
      ("watering can", "19.90", None), ("pruning shears", "24.90", None))),
    ("BAB", "Baby", 0.06,
     (("Gentle", "1"), ("Value", "0.8"), ("Eco", "1.3"), ("Premium", "1.5")),
     (("diapers, 60", "24.90", 14), ("baby wipes, 3x64", "3.90", 14), ("baby lotion", "6.50", 45),
      ("baby bottle", "9.90", None), ("teething toy", "8.50", None))),
)
# fmt: on
PRODUCT_POPULARITY = (0.34, 0.24, 0.18, 0.14, 0.10)
VARIANT_POPULARITY = (0.45, 0.25, 0.18, 0.12)
#: What goes into the same basket; the complement has the same variant (organic pasta, organic sauce).
COMPLEMENTS = {
    "espresso machine": "espresso beans 1 kg",
    "burr grinder": "espresso beans 1 kg",
    "french press": "ground filter coffee 500 g",
    "durum wheat pasta 1 kg": "tomato pasta sauce",
    "tomato pasta sauce": "durum wheat pasta 1 kg",
    "shampoo 400 ml": "conditioner 400 ml",
    "safety razor": "razor blades, 8",
    "laundry detergent 2 l": "fabric softener",
    "dry dog food 12 kg": "dog treats",
    "cat food, 24 cans": "cat litter 10 l",
    "fountain pen": "ink cartridges, 6",
    "A5 notebook": "gel pens, 10",
    "tomato seeds": "potting soil 40 l",
    "phone charger 30 W": "USB-C cable 2 m",
    "diapers, 60": "baby wipes, 3x64",
}
# fmt: off
FIRST_NAMES = ("Ada", "Ben", "Chloe", "Daniel", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kira", "Liam",
               "Maya", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wen", "Zoe")
LAST_NAMES = ("Adams", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen",
              "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Novak")
# fmt: on
#: Most members save for the cheapest rewards; some hold out for the big ones.
SAVING_TARGETS = (300, 500, 500, 500, 1200, 1500)
#: When in the day orders are placed (0-23 h): quiet nights, a lunch bump, busy evenings.
HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 8, 9, 8, 7, 7, 7, 8, 10, 12, 12, 10, 6, 3], dtype=float)
REWARDS: tuple[dict[str, Any], ...] = (
    {"name": "5.00 off your order", "kind": "fixed_amount", "cost_points": 500, "amount": "5.00"},
    {
        "name": "10% off, up to 25.00",
        "kind": "percent",
        "cost_points": 1500,
        "percent": "10",
        "max_discount": "25.00",
        "min_order_total": "30.00",
    },
    {"name": "Free shipping", "kind": "free_shipping", "cost_points": 300},
    {
        "name": "Gold members: 20.00 off",
        "kind": "fixed_amount",
        "cost_points": 1500,
        "amount": "20.00",
        "min_tier": "gold",
        "min_order_total": "60.00",
    },
    {
        "name": "A free Classic french press, while stocks last",
        "kind": "free_item",
        "cost_points": 1200,
        "sku": "KIT-001",
        "stock": 25,
        "per_member_limit": 1,
    },
)


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    name: str
    category: str
    price: Decimal
    #: Days between re-buys for a consumable, None for a durable.
    cycle_days: int | None
    #: Share of its category's sales.
    popularity: float
    #: The item bought with this one ("espresso machine" -> "espresso beans"), if any.
    goes_with: str | None

    @property
    def consumable(self) -> bool:
        return self.cycle_days is not None


def _price(base: str, factor: str) -> Decimal:
    """Shop prices end in .99 (or are 0.99 at least)."""
    whole = (Decimal(base) * Decimal(factor)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return max(whole - CENT, Decimal("0.99"))


def demo_catalog() -> list[CatalogItem]:
    """The demo shop's 200 items; fixed, so the shop's products and ``loyalty_items`` agree."""
    items = []
    for code, category, _share, variants, products in CATEGORIES:
        nouns = [noun for noun, _base, _cycle in products]
        for p, (noun, base, cycle) in enumerate(products):
            for v, (label, factor) in enumerate(variants):
                partner = COMPLEMENTS.get(noun)
                goes_with = f"{code}-{nouns.index(partner) * 4 + v + 1:03d}" if partner in nouns else None
                items.append(
                    CatalogItem(
                        sku=f"{code}-{p * 4 + v + 1:03d}",
                        name=f"{label} {noun}",
                        category=category,
                        price=_price(base, factor),
                        cycle_days=cycle,
                        popularity=PRODUCT_POPULARITY[p] * VARIANT_POPULARITY[v],
                        goes_with=goes_with,
                    )
                )
    return items


# Planning: who buys what and when. Pure, no database. -------------------------------------


def _cdf(weights: Any) -> np.ndarray:
    cumulative = np.cumsum(np.asarray(weights, dtype=float))
    return cumulative / cumulative[-1]


@dataclass
class Customer:
    user_id: str
    email: str
    name: str
    member: bool
    joined_at: datetime
    birthday: date | None
    marketing_opt_in: bool
    #: Points they save up before spending them, and their chance of doing so at an order once there.
    saving_for: int
    redeem_chance: float
    referrer: str | None = None
    bought: set[str] = field(default_factory=set)


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


# Writing: the plan played through the domain functions. -----------------------------------


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


class Shop:
    """Plays the plan: prices baskets as the demo shop's checkout does, and decides, from the
    member's real balance, when to redeem points and use coupons."""

    def __init__(
        self,
        settings: Settings,
        rng: np.random.Generator,
        catalog: dict[str, CatalogItem],
        people: dict[str, Customer],
    ) -> None:
        self.settings, self.rng = settings, rng
        self.catalog, self.people = catalog, people
        self.session: Session
        self.rewards: list[Reward] = []
        self.cheapest = 0
        self.tier_of: dict[str, str] = {}
        self.points_of: dict[str, int] = {}
        self.coupons: dict[str, list[str]] = {}
        self.paid: dict[str, Decimal] = {}
        self.line_values: dict[str, list[Decimal]] = {}
        self.refunded: dict[str, Decimal] = {}

    def begin_week(self, session: Session) -> None:
        """Tiers only move in the nightly job, so one read a week prices every order; the
        balances read here, kept up from receipts, only say when a redemption is worth trying."""
        self.session = session
        self.rewards = list(session.scalars(select(Reward).where(Reward.active.is_(True)).order_by(Reward.id)))
        self.cheapest = min((r.cost_points for r in self.rewards), default=0)
        rows = session.execute(select(Member.user_id, Member.tier_code, Member.points_balance)).all()
        self.tier_of = {uid: tier for uid, tier, _points in rows}
        self.points_of = {uid: points for uid, _tier, points in rows}

    def play(self, event: Planned) -> None:
        s, settings, at = self.session, self.settings, event.at
        if event.kind == "birthdays":
            members.award_birthdays(s, today=at.date(), now=at, settings=settings)
        elif event.kind == "join":
            self.join(self.people[event.user_id], at)
        elif event.kind == "order":
            self.order(event)
        else:
            self.refund(event)

    def join(self, person: Customer, at: datetime) -> None:
        if not person.member:
            return
        referral = None
        if person.referrer:
            referral = members.get_member(self.session, person.referrer)
        member = members.enroll(
            self.session,
            person.user_id,
            now=at,
            settings=self.settings,
            email=person.email,
            name=person.name,
            birthday=person.birthday,
            marketing_opt_in=person.marketing_opt_in,
            referral_code=referral.referral_code if referral else None,
        )
        self.tier_of[person.user_id] = member.tier_code
        self.points_of[person.user_id] = member.points_balance

    def order(self, event: Planned) -> None:
        s, at, uid = self.session, event.at, event.user_id
        goods = sum((self.catalog[sku].price * qty for sku, qty in event.lines), Decimal(0))
        tier = self.tier_of.get(uid)
        percent = self.settings.tier(tier).discount_percent if tier else Decimal(0)
        after = goods - (goods * percent / 100).quantize(CENT, rounding=ROUND_DOWN)
        lines = [
            {"sku": sku, "qty": qty, "unit_price": self.catalog[sku].price, "category": self.catalog[sku].category}
            for sku, qty in event.lines
        ]
        code, discount = self.coupon(uid, after, at) if tier else (None, None)
        off = Decimal(0)
        if discount is not None:
            off = discount.amount
            if discount.free_item_sku in self.catalog:
                item = self.catalog[discount.free_item_sku]
                lines.append({"sku": item.sku, "qty": 1, "unit_price": Decimal(0), "category": item.category})
        free_shipping = after >= FREE_SHIPPING_FROM or (discount is not None and discount.free_shipping)
        shipping = Decimal(0) if free_shipping else SHIPPING
        paid = after - off + shipping
        receipt = orders.record_order(
            s,
            event.order_id,
            uid,
            paid,
            lines=lines,
            placed_at=at,
            shipping=shipping,
            tax=0,
            source="seed",
            now=at,
            settings=self.settings,
        )
        if receipt.balance is not None:
            self.points_of[uid] = receipt.balance
        if code is not None:
            rewards.use_coupon(s, code, uid, event.order_id, now=at)
        self.paid[event.order_id] = paid
        self.line_values[event.order_id] = [line["unit_price"] * line["qty"] for line in lines]

    def coupon(self, uid: str, total: Decimal, at: datetime) -> tuple[str | None, rewards.Discount | None]:
        """A coupon the member holds and can use on this order, redeeming one first when they
        are inclined to and can afford it; four in five new coupons are used at once."""
        held = self.coupons.setdefault(uid, [])
        person = self.people[uid]
        saved = self.points_of.get(uid, 0) >= max(person.saving_for, self.cheapest)
        if not held and saved and self.rng.random() < person.redeem_chance:
            code = self.redeem(uid, at)
            if code is not None:
                held.append(code)
                if self.rng.random() < 0.2:
                    return None, None
        for code in list(held):
            try:
                discount = rewards.check_coupon(self.session, code, uid, total, now=at)
            except InvalidCoupon as refused:
                if refused.reason != "min_order":
                    held.remove(code)
                continue
            held.remove(code)
            return code, discount
        return None, None

    def redeem(self, uid: str, at: datetime) -> str | None:
        """The most valuable reward the member can afford and may take; ``rewards.redeem``
        still checks every rule under the member's lock."""
        member = lock_member(self.session, uid)
        if member is None:
            return None
        rank = self.settings.tier(member.tier_code).rank
        offers = [
            r
            for r in self.rewards
            if r.cost_points <= member.points_balance
            and (r.stock is None or r.stock > 0)
            and (r.min_tier is None or self.settings.tier(r.min_tier).rank <= rank)
        ]
        if not offers:
            return None
        best = max(offers, key=lambda r: (r.cost_points, -r.id))
        try:
            coupon = rewards.redeem(self.session, uid, best.id, now=at, settings=self.settings)
        except LoyaltyError:
            return None
        self.points_of[uid] = member.points_balance
        return coupon.code

    def refund(self, event: Planned) -> None:
        oid = event.order_id
        left = self.paid[oid] - self.refunded.get(oid, Decimal(0))
        values = self.line_values[oid]
        amount = left if event.full_refund else min(values[self.rng.integers(len(values))], left)
        if amount <= 0:
            return
        receipt = orders.record_refund(self.session, event.refund_id, oid, amount, now=event.at, settings=self.settings)
        if receipt.balance is not None:
            self.points_of[event.user_id] = receipt.balance
        self.refunded[oid] = self.refunded.get(oid, Decimal(0)) + amount


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
