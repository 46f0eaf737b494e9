"""``Loyalty``: the Flask extension a shop mounts, and the calls its code makes."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app

from . import ledger, members, orders, rewards, tiers
from .config import DEFAULTS, Settings, load_settings
from .database import Store
from .errors import NotEnrolled
from .models import Coupon, Member, Reward
from .money import utcnow
from .pagecache import FragmentCache, KeptPage
from .popularity import PopularCache, Suggestion
from .recommendations import Shown, recommend
from .recommender_store import ModelHolder
from .stamps import NotifiedStamps, Stamps
from .tracking import ImpressionLog

Hook = Callable[..., Any]


def _default_is_admin(user: Any) -> bool:
    return bool(getattr(user, "is_admin", False))


def _default_user_email(user: Any) -> str | None:
    return getattr(user, "email", None)


@dataclass
class LoyaltyState:
    """Everything the plugin keeps per app, in ``app.extensions["loyalty"]``."""

    settings: Settings
    store: Store
    is_admin: Hook = _default_is_admin
    user_email: Hook = _default_user_email
    item_info: Hook | None = None
    seed_users: Hook | None = None
    clock: Callable[[], datetime] = field(default=utcnow)
    #: The in-process scheduler, when ``LOYALTY_SCHEDULER`` starts one.
    scheduler: Any = None
    #: The plugin's Flask-Limiter (coupon checks, redemptions).
    limiter: Any = None
    #: Popular items, shared by this worker's requests.
    popular: PopularCache = field(default_factory=PopularCache)
    #: Rendered dashboards of this worker, keyed by member version.
    pages: FragmentCache[KeptPage[Shown]] = field(default_factory=lambda: FragmentCache(0, timedelta(0)))
    #: What those are keyed by: read per request, or kept until PostgreSQL notifies a change.
    stamps: Stamps = field(init=False)
    #: This worker's copy of the newest fitted recommender.
    models: ModelHolder = field(default_factory=lambda: ModelHolder(timedelta(minutes=1)))
    #: Widget impressions counted by this worker, written in batches.
    impressions: ImpressionLog | None = None
    #: Job runs started from the admin's "run now", each on a thread of its own.
    jobs_started: weakref.WeakSet[threading.Thread] = field(default_factory=weakref.WeakSet)

    def __post_init__(self) -> None:
        self.stamps = Stamps(self.store)

    def recommend(self, session: Any, user_id: str, *, limit: int) -> Shown:
        """What the "recommended for you" slot shows this user now, without counting a view."""
        return recommend(
            session,
            user_id,
            limit=limit,
            now=self.clock(),
            settings=self.settings,
            item_info=self.item_info,
            popular=self.popular,
            models=self.models,
        )

    def count_view(self, user_id: str, shown: Shown) -> None:
        """Count one showing of the widget (for the holdout: one that was left out)."""
        if self.impressions is not None:
            self.impressions.record(
                user_id=user_id,
                experiment=self.settings.ab_experiment,
                variant=shown.variant,
                items=len(shown.items),
                now=self.clock(),
            )

    def wait_for_jobs(self) -> None:
        """Wait until the job runs started with "run now" have ended."""
        for thread in list(self.jobs_started):
            thread.join()

    def close(self) -> None:
        """Stop what the plugin runs beside the app: the scheduler, the job runs started from
        the admin (waited for), the impression writer (its last counts written), the listener
        of member changes and the pooled connections. For shutdown and test teardown."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.wait_for_jobs()
        if self.impressions is not None:
            self.impressions.close()
        self.stamps.close()
        self.store.dispose()

    def suggestions(self, session: Any, user_id: str, *, limit: int) -> list[Suggestion]:
        """The widget's items for this user (widget, dashboard, API), the view counted."""
        shown = self.recommend(session, user_id, limit=limit)
        self.count_view(user_id, shown)
        return shown.items


class Loyalty:
    """Mount with ``Loyalty(app, db=db)`` or, in an app factory, ``loyalty.init_app(app, db=db)``.

    The instance holds no app: one ``Loyalty`` serves several apps in one process, each with
    its own settings and database, found through ``current_app``.
    """

    def __init__(self, app: Flask | None = None, db: Any = None, **hooks: Hook) -> None:
        if app is not None:
            self.init_app(app, db, **hooks)

    def init_app(
        self,
        app: Flask,
        db: Any = None,
        *,
        is_admin: Hook | None = None,
        user_email: Hook = _default_user_email,
        item_info: Hook | None = None,
        seed_users: Hook | None = None,
    ) -> None:
        """Validate ``LOYALTY_*`` settings, connect the database, register pages, API and CLI.

        ``db`` is the host's Flask-SQLAlchemy object: given, the plugin shares its engine and
        session and never commits on the host's behalf.
        """
        if "loyalty" in app.extensions:
            raise RuntimeError("Loyalty is already registered on this app.")
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        settings = load_settings(app.config)
        state = LoyaltyState(
            settings=settings,
            store=Store(app, db, settings.database_uri),
            is_admin=is_admin or _default_is_admin,
            user_email=user_email or _default_user_email,
            item_info=item_info,
            seed_users=seed_users,
        )
        state.pages = FragmentCache(settings.page_cache_size, timedelta(seconds=settings.page_cache_seconds))
        if settings.page_cache_notify and settings.page_cache_size:
            state.stamps = NotifiedStamps(state.store, settings.page_cache_size)
        state.models = ModelHolder(timedelta(seconds=settings.recommender_refresh_seconds))
        state.impressions = ImpressionLog(state.store, settings.impression_flush_seconds)
        app.extensions["loyalty"] = state

        from .cli import loyalty_cli
        from .views import register_views

        register_views(app, settings)
        app.cli.add_command(loyalty_cli)
        if settings.scheduler:
            from .scheduler import start_in_app

            state.scheduler = start_in_app(app)

    @staticmethod
    def state() -> LoyaltyState:
        return current_app.extensions["loyalty"]

    def now(self) -> datetime:
        return self.state().clock()

    # Members -----------------------------------------------------------------------------

    def enroll(
        self,
        user_id: Any,
        email: str | None = None,
        name: str | None = None,
        birthday: Any = None,
        marketing_opt_in: bool = False,
        referral_code: str | None = None,
    ) -> Member:
        state = self.state()
        with state.store.work() as session:
            return members.enroll(
                session,
                user_id,
                now=state.clock(),
                settings=state.settings,
                email=email,
                name=name,
                birthday=birthday,
                marketing_opt_in=marketing_opt_in,
                referral_code=referral_code,
            )

    def get_member(self, user_id: Any) -> Member | None:
        with self.state().store.work(write=False) as session:
            return members.get_member(session, str(user_id))

    def balance(self, user_id: Any) -> ledger.Balance:
        state = self.state()
        with state.store.work(write=False) as session:
            member = members.get_member(session, str(user_id))
            if member is None:
                raise NotEnrolled()
            return ledger.balance_of(session, member, now=state.clock(), settings=state.settings)

    def award(self, user_id: Any, points: int | None, reason: str, *, key: str) -> members.AwardReceipt:
        """Activity points (a review, a survey…), counted once per ``key``."""
        state = self.state()
        with state.store.work() as session:
            return members.award(session, user_id, points, reason, key=key, now=state.clock(), settings=state.settings)

    def adjust(self, user_id: Any, points: int, *, reason: str, actor: str) -> members.AwardReceipt:
        state = self.state()
        with state.store.work() as session:
            return members.adjust(
                session, user_id, points, reason=reason, actor=actor, now=state.clock(), settings=state.settings
            )

    def erase_member(self, user_id: Any, *, actor: str = "member") -> None:
        state = self.state()
        with state.store.work() as session:
            members.erase(session, user_id, actor=actor, now=state.clock())

    # Orders ------------------------------------------------------------------------------

    def record_order(
        self,
        order_id: Any,
        user_id: Any,
        total: Any,
        lines: Iterable[dict[str, Any]] | None = None,
        placed_at: Any = None,
        *,
        shipping: Any = 0,
        tax: Any = 0,
    ) -> orders.OrderReceipt:
        """Record a paid order; points once per ``order_id`` however often it is delivered.

        ``total`` is what the customer paid in money, after every discount (loyalty coupons
        included); ``shipping`` and ``tax`` are the parts of it that earn nothing by default.
        """
        state = self.state()
        with state.store.work() as session:
            return orders.record_order(
                session,
                order_id,
                user_id,
                total,
                lines=lines,
                placed_at=placed_at,
                shipping=shipping,
                tax=tax,
                source="api",
                now=state.clock(),
                settings=state.settings,
            )

    def record_refund(self, refund_id: Any, order_id: Any, amount: Any) -> orders.RefundReceipt:
        state = self.state()
        with state.store.work() as session:
            return orders.record_refund(
                session, refund_id, order_id, amount, now=state.clock(), settings=state.settings
            )

    # Rewards and coupons -----------------------------------------------------------------

    def create_reward(self, actor: str = "admin", **definition: Any) -> Reward:
        state = self.state()
        with state.store.work() as session:
            return rewards.create_reward(session, definition, actor=actor, now=state.clock(), settings=state.settings)

    def update_reward(self, reward_id: int, actor: str = "admin", **definition: Any) -> Reward:
        state = self.state()
        with state.store.work() as session:
            return rewards.update_reward(
                session, reward_id, definition, actor=actor, now=state.clock(), settings=state.settings
            )

    def retire_reward(self, reward_id: int, actor: str = "admin") -> Reward:
        state = self.state()
        with state.store.work() as session:
            return rewards.retire_reward(session, reward_id, actor=actor, now=state.clock())

    def redeem(self, user_id: Any, reward_id: Any) -> Coupon:
        state = self.state()
        with state.store.work() as session:
            return rewards.redeem(session, user_id, reward_id, now=state.clock(), settings=state.settings)

    def check_coupon(self, code: Any, user_id: Any, order_total: Any) -> rewards.Discount:
        state = self.state()
        with state.store.work(write=False) as session:
            return rewards.check_coupon(session, code, user_id, order_total, now=state.clock())

    def coupons(self, user_id: Any) -> list[Coupon]:
        """The member's coupons a checkout can apply now, newest first (none for a non-member)."""
        state = self.state()
        with state.store.work(write=False) as session:
            member = members.get_member(session, str(user_id))
            if member is None:
                return []
            now = state.clock()
            return [c for c in rewards.member_coupons(session, member) if c.status == "active" and c.valid_until > now]

    def use_coupon(self, code: Any, user_id: Any, order_id: Any) -> Coupon:
        state = self.state()
        with state.store.work() as session:
            return rewards.use_coupon(session, code, user_id, order_id, now=state.clock())

    # Tiers and checks --------------------------------------------------------------------

    def evaluate_tiers(self) -> tiers.TierRun:
        state = self.state()
        with state.store.work() as session:
            return tiers.evaluate_tiers(session, now=state.clock(), settings=state.settings)

    # Recommendations ---------------------------------------------------------------------

    def recommend(self, user_id: Any, k: int = 8) -> list[Suggestion]:
        """The items the widget would show this user, each with its reason; no view is counted."""
        state = self.state()
        with state.store.work(write=False) as session:
            return state.recommend(session, str(user_id), limit=k).items

    def verify(self) -> list[ledger.Discrepancy]:
        with self.state().store.work(write=False) as session:
            return ledger.verify(session)
