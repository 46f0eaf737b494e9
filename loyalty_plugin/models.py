"""The plugin's tables, all prefixed ``loyalty_``, on a metadata of their own.

The metadata is separate from the host's ``db.Model`` so the host's ``create_all`` and
autogenerate never touch these tables: they belong to the plugin's own Alembic environment.
User ids are strings with no foreign key into the host's schema.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Scaled(TypeDecorator[Decimal]):
    """A Decimal stored as an exact integer of ``10**-places`` units.

    SQLite has no exact decimal type (SQLAlchemy would round-trip through float), so money
    is kept in integer minor units on every database and handed back as Decimal.
    """

    impl = BigInteger
    cache_ok = True

    def __init__(self, places: int = 2) -> None:
        super().__init__()
        self.places = places
        self.quantum = Decimal(1).scaleb(-places)

    def process_bind_param(self, value: Any, dialect: Any) -> int | None:
        if value is None:
            return None
        return int((Decimal(value) * (10**self.places)).to_integral_value())

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        return (Decimal(int(value)).scaleb(-self.places)).quantize(self.quantum)


Money = Scaled(2)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Member(Base):
    __tablename__ = "loyalty_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    birthday: Mapped[date | None] = mapped_column(Date)
    marketing_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    referral_code: Mapped[str] = mapped_column(String(32), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_members.id"))
    tier_code: Mapped[str] = mapped_column(String(40))
    tier_reached_at: Mapped[datetime] = mapped_column(DateTime)
    #: Cached sums of the ledger, kept in step under the member's row lock; ``verify`` rebuilds them.
    points_balance: Mapped[int] = mapped_column(BigInteger, default=0)
    points_pending: Mapped[int] = mapped_column(BigInteger, default=0)
    enrolled_at: Mapped[datetime] = mapped_column(DateTime)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: Bumped by every change the member's pages show (points, coupons, orders), so a page
    #: rendered for one version can be reused until the next (``pagecache``).
    version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class LedgerEntry(Base):
    """One change of points, never updated or deleted.

    ``points`` moves the available balance, ``pending`` the pending one; ``cause`` is unique,
    so the same order, refund, award key or coupon can never be counted twice.
    """

    __tablename__ = "loyalty_ledger_entries"
    __table_args__ = (Index("ix_loyalty_ledger_entries_member_created", "member_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"))
    kind: Mapped[str] = mapped_column(String(20))
    points: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    cause: Mapped[str] = mapped_column(String(300), unique=True)
    order_id: Mapped[str | None] = mapped_column(String(255))
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_coupons.id"))
    lot_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime)


@event.listens_for(LedgerEntry, "before_update")
@event.listens_for(LedgerEntry, "before_delete")
def _ledger_is_append_only(mapper: Any, connection: Any, target: LedgerEntry) -> None:
    raise RuntimeError("Ledger entries are append-only; post a correcting entry instead.")


class PointLot(Base):
    """Points earned together, tracked for the return window and first-in-first-out expiry."""

    __tablename__ = "loyalty_point_lots"
    __table_args__ = (
        Index("ix_loyalty_point_lots_member_status", "member_id", "status", "expires_at"),
        Index("ix_loyalty_point_lots_status_due", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"))
    order_id: Mapped[str | None] = mapped_column(String(255), index=True)
    points: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    #: pending -> available -> (spent | expired); pending -> cancelled on a full refund.
    status: Mapped[str] = mapped_column(String(12))
    available_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    #: When the member was told this lot is about to expire; once per lot.
    warned_at: Mapped[datetime | None] = mapped_column(DateTime)


class Tier(Base):
    """The configured tiers, written from ``LOYALTY_TIERS`` so reports can join on them."""

    __tablename__ = "loyalty_tiers"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    rank: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[Decimal] = mapped_column(Money)
    multiplier: Mapped[Decimal] = mapped_column(Scaled(4))
    discount_percent: Mapped[Decimal] = mapped_column(Scaled(2))


class TierChange(Base):
    __tablename__ = "loyalty_tier_history"
    __table_args__ = (
        Index("ix_loyalty_tier_history_member", "member_id", "changed_at"),
        Index("ix_loyalty_tier_history_changed", "changed_at", "reason", "member_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"))
    from_tier: Mapped[str | None] = mapped_column(String(40))
    to_tier: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(20))
    qualifying_spend: Mapped[Decimal] = mapped_column(Money)
    changed_at: Mapped[datetime] = mapped_column(DateTime)


class Order(Base):
    """An order as the shop reported it; kept for non-members too (analytics, recommendations)."""

    __tablename__ = "loyalty_orders"
    __table_args__ = (
        Index("ix_loyalty_orders_user_placed", "user_id", "placed_at"),
        Index("ix_loyalty_orders_placed", "placed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(255), unique=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_members.id"), index=True)
    placed_at: Mapped[datetime] = mapped_column(DateTime)
    total: Mapped[Decimal] = mapped_column(Money)
    shipping: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    tax: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    refunded_total: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_clawed_back: Mapped[int] = mapped_column(BigInteger, default=0)
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class OrderLine(Base):
    __tablename__ = "loyalty_order_lines"
    __table_args__ = (UniqueConstraint("order_pk", "line_no"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_pk: Mapped[int] = mapped_column(ForeignKey("loyalty_orders.id"))
    line_no: Mapped[int] = mapped_column(Integer)
    sku: Mapped[str] = mapped_column(String(100), index=True)
    qty: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Money)
    category: Mapped[str | None] = mapped_column(String(100))


class Item(Base):
    """The shop's catalog as the plugin knows it: names for reports, stock for recommendations."""

    __tablename__ = "loyalty_items"

    sku: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    category: Mapped[str | None] = mapped_column(String(100))
    price: Mapped[Decimal | None] = mapped_column(Money)
    url: Mapped[str | None] = mapped_column(String(500))
    image_url: Mapped[str | None] = mapped_column(String(500))
    in_stock: Mapped[bool] = mapped_column(Boolean, default=True)
    consumable: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Reward(Base):
    __tablename__ = "loyalty_rewards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: fixed_amount | percent | free_shipping | free_item
    kind: Mapped[str] = mapped_column(String(20))
    cost_points: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    percent: Mapped[Decimal | None] = mapped_column(Scaled(2))
    max_discount: Mapped[Decimal | None] = mapped_column(Money)
    sku: Mapped[str | None] = mapped_column(String(100))
    min_order_total: Mapped[Decimal | None] = mapped_column(Money)
    min_tier: Mapped[str | None] = mapped_column(String(40))
    stock: Mapped[int | None] = mapped_column(Integer)
    per_member_limit: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime)


class Coupon(Base):
    """A redeemed reward: its terms are copied, so editing the reward later changes no coupon."""

    __tablename__ = "loyalty_coupons"
    __table_args__ = (Index("ix_loyalty_coupons_member_status", "member_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"))
    reward_id: Mapped[int] = mapped_column(ForeignKey("loyalty_rewards.id"))
    kind: Mapped[str] = mapped_column(String(20))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    percent: Mapped[Decimal | None] = mapped_column(Scaled(2))
    max_discount: Mapped[Decimal | None] = mapped_column(Money)
    sku: Mapped[str | None] = mapped_column(String(100))
    min_order_total: Mapped[Decimal | None] = mapped_column(Money)
    points_spent: Mapped[int] = mapped_column(Integer)
    #: active -> used (-> active again when the order it paid is fully refunded)
    status: Mapped[str] = mapped_column(String(10))
    issued_at: Mapped[datetime] = mapped_column(DateTime)
    valid_until: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    order_id: Mapped[str | None] = mapped_column(String(255), index=True)


class ProcessedEvent(Base):
    """Idempotency record: an event's key, a fingerprint of its content and what it produced."""

    __tablename__ = "loyalty_processed_events"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class AuditLog(Base):
    """Who did what to the program by hand: adjustments, reward edits, erasures, imports."""

    __tablename__ = "loyalty_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class JobRun(Base):
    """One trigger of one job. The unique (job, scheduled_for) is the claim: of several
    schedulers that wake for the same trigger, only the one whose insert lands runs it."""

    __tablename__ = "loyalty_job_runs"
    __table_args__ = (
        UniqueConstraint("job", "scheduled_for"),
        Index("ix_loyalty_job_runs_job_status", "job", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    scheduled_for: Mapped[datetime] = mapped_column(DateTime)
    #: schedule | manual
    trigger: Mapped[str] = mapped_column(String(10))
    #: running -> succeeded | failed | skipped | interrupted
    status: Mapped[str] = mapped_column(String(12))
    worker: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class JobLock(Base):
    """A lease per job, the lock on SQLite (PostgreSQL uses an advisory lock instead)."""

    __tablename__ = "loyalty_job_locks"

    job: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(255))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class MemberScore(Base):
    """A member's churn risk and value as the churn scan saw them on one day; kept per day so
    that movement shows."""

    __tablename__ = "loyalty_member_scores"
    __table_args__ = (UniqueConstraint("member_id", "scored_on"), Index("ix_loyalty_member_scores_day", "scored_on"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"))
    scored_on: Mapped[date] = mapped_column(Date)
    #: None when no model could be trusted; ``risk_source`` then says why.
    churn_risk: Mapped[float | None] = mapped_column(Float)
    risk_source: Mapped[str] = mapped_column(String(200))
    p_alive: Mapped[float | None] = mapped_column(Float)
    expected_orders: Mapped[float | None] = mapped_column(Float)
    expected_spend: Mapped[Decimal | None] = mapped_column(Money)
    clv: Mapped[Decimal | None] = mapped_column(Money)
    recency_days: Mapped[int] = mapped_column(Integer)
    orders: Mapped[int] = mapped_column(Integer)
    spend: Mapped[Decimal] = mapped_column(Money)


class MemberSegment(Base):
    """A member's RFM or value segment on one day."""

    __tablename__ = "loyalty_member_segments"
    __table_args__ = (
        UniqueConstraint("member_id", "kind", "computed_on"),
        Index("ix_loyalty_member_segments_day", "kind", "computed_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"))
    #: rfm | value
    kind: Mapped[str] = mapped_column(String(10))
    computed_on: Mapped[date] = mapped_column(Date)
    segment: Mapped[str] = mapped_column(String(100))
    #: "R5 F4 M3" for RFM segments
    scores: Mapped[str | None] = mapped_column(String(20))


class ModelReport(Base):
    """What a fitted model said about itself on one day: parameters, hold-out AUC and
    calibration, or why it was not trusted. Reports show it beside the scores."""

    __tablename__ = "loyalty_model_reports"
    __table_args__ = (UniqueConstraint("model", "fitted_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(40))
    fitted_on: Mapped[date] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ChurnAlert(Base):
    """A member at risk of leaving; at most one open alert per member (a partial unique index)."""

    __tablename__ = "loyalty_churn_alerts"
    __table_args__ = (
        Index(
            "uq_loyalty_churn_alerts_open_member",
            "member_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_loyalty_churn_alerts_status_priority", "status", "priority"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("loyalty_members.id"))
    raised_at: Mapped[datetime] = mapped_column(DateTime)
    risk: Mapped[float] = mapped_column(Float)
    value: Mapped[Decimal] = mapped_column(Money)
    #: risk x value: the order in which an admin should act
    priority: Mapped[float] = mapped_column(Float)
    #: open -> closed
    status: Mapped[str] = mapped_column(String(10))
    #: returned (ordered again within the window) | lapsed | left (erased)
    outcome: Mapped[str | None] = mapped_column(String(10))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    coupon_id: Mapped[int | None] = mapped_column(ForeignKey("loyalty_coupons.id"))


class RecommenderVersion(Base):
    """A fitted recommender, stored whole: every worker process and host loads the newest one
    from here, so they all serve the same version and pick up a new one without a restart."""

    __tablename__ = "loyalty_recommender_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fitted_at: Mapped[datetime] = mapped_column(DateTime)
    #: Orders up to this moment were its training data.
    trained_until: Mapped[datetime] = mapped_column(DateTime)
    fit_seconds: Mapped[float] = mapped_column(Float)
    users: Mapped[int] = mapped_column(Integer)
    items: Mapped[int] = mapped_column(Integer)
    interactions: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Offline evaluation on the shop's own orders (``evaluate-recommender``), when there were enough.
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    artifact: Mapped[bytes] = mapped_column(LargeBinary)


class RecommendationImpressions(Base):
    """How often the widget showed a member items, per day and A/B variant: counts, not rows,
    so a busy page costs one upsert per flush, not one insert per view."""

    __tablename__ = "loyalty_recommendation_impressions"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    experiment: Mapped[str] = mapped_column(String(100), primary_key=True)
    variant: Mapped[str] = mapped_column(String(30), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: Items shown (a widget of four is four).
    items_shown: Mapped[int] = mapped_column(Integer)
    #: Times the widget was shown.
    views: Mapped[int] = mapped_column(Integer)


class RecommendationClick(Base):
    """A click on a recommended item, through the tracking redirect. Purchases of the item by
    the same user within ``LOYALTY_ATTRIBUTION_DAYS`` are attributed to it."""

    __tablename__ = "loyalty_recommendation_clicks"
    __table_args__ = (
        Index("ix_loyalty_recommendation_clicks_user_sku", "user_id", "sku", "clicked_at"),
        Index("ix_loyalty_recommendation_clicks_experiment", "experiment", "clicked_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(255))
    experiment: Mapped[str] = mapped_column(String(100))
    variant: Mapped[str] = mapped_column(String(30))
    sku: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    #: buy_again | similar | popular
    reason: Mapped[str] = mapped_column(String(20))
    #: None for popular items (no model behind them).
    model_version: Mapped[int | None] = mapped_column(Integer)
    clicked_at: Mapped[datetime] = mapped_column(DateTime)


class AdminState(Base):
    """The admin's kept aggregates (one row): the settings they were computed for, how far the
    ledger is folded into the monthly totals, and the lock their refresh takes."""

    __tablename__ = "loyalty_admin_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: A digest of the settings the member figures depend on; another digest rebuilds them.
    settings: Mapped[str] = mapped_column(String(64))
    ledger_folded_to: Mapped[int] = mapped_column(BigInteger)
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime)


class AdminChange(Base):
    """A member whose admin figures may have changed: written by database triggers on
    ``loyalty_members`` and ``loyalty_orders`` (``ADMIN_TRIGGERS``), so every writer is seen
    (the domain, the bulk importer, a host's own SQL); the admin's refresh consumes the rows."""

    __tablename__ = "loyalty_admin_changes"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    member_id: Mapped[int] = mapped_column(Integer)


class AdminMemberFigures(Base):
    """One live member's contribution to the admin figures, as of ``valid_from``; unchanged
    until ``valid_until`` (an order leaving a window, tier protection ending) or a change."""

    __tablename__ = "loyalty_admin_member_figures"
    __table_args__ = (
        Index("ix_loyalty_admin_member_figures_valid_until", "valid_until"),
        Index("ix_loyalty_admin_member_figures_valid_from", "valid_from"),
    )

    member_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrolled_month: Mapped[str] = mapped_column(String(7))
    tier_code: Mapped[str] = mapped_column(String(40))
    qualified: Mapped[int] = mapped_column(Integer)
    protected: Mapped[bool] = mapped_column(Boolean)
    reach: Mapped[bool] = mapped_column(Boolean)
    available: Mapped[int] = mapped_column(BigInteger)
    pending: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(Integer)
    paid: Mapped[int] = mapped_column(BigInteger)
    kept: Mapped[int] = mapped_column(BigInteger)
    cents: Mapped[int] = mapped_column(BigInteger)
    recent: Mapped[int] = mapped_column(Integer)
    period_orders: Mapped[int] = mapped_column(Integer)
    period_paid: Mapped[int] = mapped_column(BigInteger)
    period_kept: Mapped[int] = mapped_column(BigInteger)
    valid_from: Mapped[datetime] = mapped_column(DateTime)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime)


class AdminFigureTotals(Base):
    """The member figures summed per group the admin pages show: a few dozen rows read instead
    of every member and order on each request."""

    __tablename__ = "loyalty_admin_figure_totals"

    enrolled_month: Mapped[str] = mapped_column(String(7), primary_key=True)
    tier_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    qualified: Mapped[int] = mapped_column(Integer, primary_key=True)
    protected: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    reach: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    members: Mapped[int] = mapped_column(BigInteger)
    available: Mapped[int] = mapped_column(BigInteger)
    pending: Mapped[int] = mapped_column(BigInteger)
    buyers: Mapped[int] = mapped_column(BigInteger)
    orders: Mapped[int] = mapped_column(BigInteger)
    paid: Mapped[int] = mapped_column(BigInteger)
    kept: Mapped[int] = mapped_column(BigInteger)
    repeaters: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[int] = mapped_column(BigInteger)
    period_buyers: Mapped[int] = mapped_column(BigInteger)
    period_orders: Mapped[int] = mapped_column(BigInteger)
    period_paid: Mapped[int] = mapped_column(BigInteger)
    period_kept: Mapped[int] = mapped_column(BigInteger)


class AdminLedgerMonth(Base):
    """Points moved per month and ledger kind, for the settled part of the append-only ledger."""

    __tablename__ = "loyalty_admin_ledger_months"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    added: Mapped[int] = mapped_column(BigInteger)
    taken: Mapped[int] = mapped_column(BigInteger)


#: The triggers that fill ``loyalty_admin_changes``, per dialect (migration 0006 holds a copy).
ADMIN_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER loyalty_admin_members_insert AFTER INSERT ON loyalty_members "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.id); END",
        "CREATE TRIGGER loyalty_admin_members_update AFTER UPDATE OF tier_code, tier_reached_at, points_balance, "
        "points_pending, enrolled_at, erased_at ON loyalty_members "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.id); END",
        "CREATE TRIGGER loyalty_admin_members_delete AFTER DELETE ON loyalty_members "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.id); END",
        "CREATE TRIGGER loyalty_admin_orders_insert AFTER INSERT ON loyalty_orders WHEN NEW.member_id IS NOT NULL "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.member_id); END",
        "CREATE TRIGGER loyalty_admin_orders_update AFTER UPDATE OF member_id, placed_at, total, shipping, tax, "
        "refunded_total ON loyalty_orders "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) SELECT NEW.member_id WHERE NEW.member_id IS NOT NULL "
        "UNION SELECT OLD.member_id WHERE OLD.member_id IS NOT NULL; END",
        "CREATE TRIGGER loyalty_admin_orders_delete AFTER DELETE ON loyalty_orders WHEN OLD.member_id IS NOT NULL "
        "BEGIN INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.member_id); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION loyalty_admin_member_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'DELETE' THEN INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.id); "
        "ELSE INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.id); END IF; RETURN NULL; END $$",
        "CREATE OR REPLACE FUNCTION loyalty_admin_order_changed() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP <> 'DELETE' THEN IF NEW.member_id IS NOT NULL THEN "
        "INSERT INTO loyalty_admin_changes (member_id) VALUES (NEW.member_id); END IF; END IF; "
        "IF TG_OP = 'DELETE' THEN IF OLD.member_id IS NOT NULL THEN "
        "INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.member_id); END IF; "
        "ELSIF TG_OP = 'UPDATE' THEN IF OLD.member_id IS DISTINCT FROM NEW.member_id AND OLD.member_id IS NOT NULL "
        "THEN INSERT INTO loyalty_admin_changes (member_id) VALUES (OLD.member_id); END IF; END IF; "
        "RETURN NULL; END $$",
        "CREATE TRIGGER loyalty_admin_members AFTER INSERT OR DELETE OR UPDATE OF tier_code, tier_reached_at, "
        "points_balance, points_pending, enrolled_at, erased_at "
        "ON loyalty_members FOR EACH ROW EXECUTE PROCEDURE loyalty_admin_member_changed()",
        "CREATE TRIGGER loyalty_admin_orders AFTER INSERT OR DELETE OR UPDATE OF member_id, placed_at, total, "
        "shipping, tax, refunded_total "
        "ON loyalty_orders FOR EACH ROW EXECUTE PROCEDURE loyalty_admin_order_changed()",
    ],
}
#: What removes them again (PostgreSQL drops a table's triggers with it, not the functions).
ADMIN_TRIGGERS_DROP = {
    "sqlite": [
        f"DROP TRIGGER IF EXISTS loyalty_admin_{name}"
        for name in (
            "members_insert",
            "members_update",
            "members_delete",
            "orders_insert",
            "orders_update",
            "orders_delete",
        )
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS loyalty_admin_members ON loyalty_members",
        "DROP TRIGGER IF EXISTS loyalty_admin_orders ON loyalty_orders",
        "DROP FUNCTION IF EXISTS loyalty_admin_member_changed()",
        "DROP FUNCTION IF EXISTS loyalty_admin_order_changed()",
    ],
}
_TRIGGERED = {"loyalty_members", "loyalty_orders", "loyalty_admin_changes"}

#: Where PostgreSQL tells the workers' listeners (``stamps``) that a member's pages changed;
#: the payload is the member's user id (before and after, when an erasure replaces it).
MEMBER_CHANNEL = "loyalty_members"
#: The trigger that tells them (migration 0007 holds a copy). Sent at commit, once per member.
MEMBER_NOTIFY = [
    "CREATE OR REPLACE FUNCTION loyalty_member_notify() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN PERFORM pg_notify('{MEMBER_CHANNEL}', OLD.user_id); "
    "IF TG_OP = 'UPDATE' AND NEW.user_id IS DISTINCT FROM OLD.user_id THEN "
    f"PERFORM pg_notify('{MEMBER_CHANNEL}', NEW.user_id); END IF; RETURN NULL; END $$",
    "CREATE TRIGGER loyalty_member_notify AFTER DELETE OR UPDATE OF version, tier_code, tier_reached_at, "
    "erased_at, user_id ON loyalty_members FOR EACH ROW EXECUTE PROCEDURE loyalty_member_notify()",
]
MEMBER_NOTIFY_DROP = [
    "DROP TRIGGER IF EXISTS loyalty_member_notify ON loyalty_members",
    "DROP FUNCTION IF EXISTS loyalty_member_notify()",
]


@event.listens_for(Base.metadata, "after_create")
def _create_triggers(metadata: MetaData, connection: Any, **_: Any) -> None:
    """``create_all`` makes the same triggers as the migrations, once their tables exist."""
    statements = ADMIN_TRIGGERS.get(connection.dialect.name, [])
    if statements and set(inspect(connection).get_table_names()) >= _TRIGGERED:
        for statement in ADMIN_TRIGGERS_DROP[connection.dialect.name]:
            connection.exec_driver_sql(statement)
        for statement in statements:
            connection.exec_driver_sql(statement)
    if connection.dialect.name == "postgresql" and "loyalty_members" in inspect(connection).get_table_names():
        for statement in [*MEMBER_NOTIFY_DROP, *MEMBER_NOTIFY]:
            connection.exec_driver_sql(statement)


@event.listens_for(Base.metadata, "after_drop")
def _drop_trigger_functions(metadata: MetaData, connection: Any, **_: Any) -> None:
    if connection.dialect.name == "postgresql":
        for statement in [*ADMIN_TRIGGERS_DROP["postgresql"][2:], *MEMBER_NOTIFY_DROP[1:]]:
            connection.exec_driver_sql(statement)
