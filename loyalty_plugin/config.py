"""``LOYALTY_*`` settings: one table of defaults and a strict parser.

Every key is read once, at ``init_app``, into a frozen :class:`Settings`; a misspelled key or a
bad value stops start-up with a message naming the key, instead of surfacing as a wrong
balance weeks later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from .analytics.rfm_grid import DEFAULT_RFM_GRID, validate_grid
from .errors import ConfigError
from .schedule import JOB_NAMES, Schedule, parse_schedule

DEFAULT_TIERS: list[dict[str, str]] = [
    {"code": "bronze", "name": "Bronze", "threshold": "0", "multiplier": "1", "discount_percent": "0"},
    {"code": "silver", "name": "Silver", "threshold": "1000", "multiplier": "1.25", "discount_percent": "3"},
    {"code": "gold", "name": "Gold", "threshold": "5000", "multiplier": "1.5", "discount_percent": "5"},
]

_SCHEDULE_HELP = (
    "When tiers are evaluated: a crontab line in UTC (`15 2 * * *`), `every N minutes` (or seconds, hours, days), "
    "or none to switch the job off."
)

_WEBHOOK_HELP = (
    "Secret (or list of secrets, for rotation, each at least 16 characters) signing order/refund webhooks; "
    "none: webhooks are off."
)

DEFAULT_CSP = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

#: Every setting the plugin reads, with its default. The README's table is generated from it.
DEFAULTS: dict[str, Any] = {
    "LOYALTY_DATABASE_URI": None,
    "LOYALTY_URL_PREFIX": "/loyalty",
    "LOYALTY_BASE_TEMPLATE": "loyalty/base.html",
    "LOYALTY_CURRENCY": "USD",
    "LOYALTY_POINTS_PER_UNIT": "1",
    "LOYALTY_POINT_VALUE": None,
    "LOYALTY_EARN_ON_SHIPPING": False,
    "LOYALTY_EARN_ON_TAX": False,
    "LOYALTY_PENDING_DAYS": 14,
    "LOYALTY_POINTS_EXPIRE_DAYS": 365,
    "LOYALTY_EXPIRY_WARNING_DAYS": 30,
    "LOYALTY_SIGNUP_POINTS": 100,
    "LOYALTY_BIRTHDAY_POINTS": 200,
    "LOYALTY_REVIEW_POINTS": 20,
    "LOYALTY_REFERRAL_POINTS": 300,
    "LOYALTY_TIERS": DEFAULT_TIERS,
    "LOYALTY_TIER_WINDOW_DAYS": 365,
    "LOYALTY_TIER_KEEP_DAYS": 365,
    "LOYALTY_CAMPAIGNS": [],
    "LOYALTY_COUPON_VALID_DAYS": 90,
    "LOYALTY_WEBHOOK_SECRET": [],
    "LOYALTY_WEBHOOK_TOLERANCE_SECONDS": 300,
    "LOYALTY_SCHEDULER": False,
    "LOYALTY_JOBS_TIERS": "15 2 * * *",
    "LOYALTY_JOBS_RELEASE": "every 1 hour",
    "LOYALTY_JOBS_EXPIRE": "30 2 * * *",
    "LOYALTY_JOBS_BIRTHDAYS": "0 8 * * *",
    "LOYALTY_JOBS_CHURN": "0 3 * * *",
    "LOYALTY_JOBS_RECOMMENDER": "0 4 * * *",
    "LOYALTY_JOBS_BATCH_SIZE": 500,
    "LOYALTY_RFM_WINDOW_DAYS": 365,
    "LOYALTY_RFM_SEGMENTS": None,
    "LOYALTY_CHURN_HORIZON_DAYS": 90,
    "LOYALTY_CHURN_THRESHOLD": "0.7",
    "LOYALTY_CLV_MONTHS": 12,
    "LOYALTY_WINBACK_REWARD": None,
    "LOYALTY_ALERT_OUTCOME_DAYS": 60,
    "LOYALTY_PAGE_SIZE": 20,
    "LOYALTY_PAGE_CACHE_SIZE": 5000,
    "LOYALTY_PAGE_CACHE_SECONDS": 300,
    "LOYALTY_PAGE_CACHE_NOTIFY": False,
    "LOYALTY_RATE_LIMIT_STORAGE_URI": "memory://",
    "LOYALTY_RATE_LIMIT_COUPONS": "10 per minute",
    "LOYALTY_RATE_LIMIT_REDEEM": "10 per minute",
    "LOYALTY_CONTENT_SECURITY_POLICY": DEFAULT_CSP,
    "LOYALTY_RECOMMENDER_REFRESH_SECONDS": 60,
    "LOYALTY_RECOMMENDER_KEEP_VERSIONS": 3,
    "LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS": 10,
    "LOYALTY_ATTRIBUTION_DAYS": 7,
    "LOYALTY_AB_EXPERIMENT": "recommendations",
    "LOYALTY_AB_VARIANTS": {"model": 80, "popular": 20},
    "LOYALTY_AB_HOLDOUT": "0",
}

DESCRIPTIONS: dict[str, str] = {
    "LOYALTY_DATABASE_URI": "Database of the plugin when `init_app` gets no `db`; default: `sqlite:///<instance>/loyalty.sqlite`.",
    "LOYALTY_URL_PREFIX": "Where the pages are mounted; the JSON API lives under `<prefix>/api/v1`.",
    "LOYALTY_BASE_TEMPLATE": "Layout the plugin's pages extend (it needs a `content` block); set it to the shop's own.",
    "LOYALTY_CURRENCY": "ISO 4217 code used when showing money.",
    "LOYALTY_POINTS_PER_UNIT": "Points per currency unit of the paid total (rounded down).",
    "LOYALTY_POINT_VALUE": (
        "Money one point is worth in the admin's liability figures, as a string ('0.01'); "
        "unset: what a point buys through the most generous active amount-off reward."
    ),
    "LOYALTY_EARN_ON_SHIPPING": "Whether shipping paid earns points.",
    "LOYALTY_EARN_ON_TAX": "Whether tax paid earns points.",
    "LOYALTY_PENDING_DAYS": "Return window: days before earned points become available.",
    "LOYALTY_POINTS_EXPIRE_DAYS": "Days after becoming available that a lot of points expires.",
    "LOYALTY_EXPIRY_WARNING_DAYS": "How far ahead points count as 'expiring soon', and members are warned (signal).",
    "LOYALTY_SIGNUP_POINTS": "Points for joining.",
    "LOYALTY_BIRTHDAY_POINTS": "Points once a year on the member's birthday.",
    "LOYALTY_REVIEW_POINTS": "Points for a product review (`award(..., reason='review')`).",
    "LOYALTY_REFERRAL_POINTS": "Points to referrer and referred after the referred member's first paid order.",
    "LOYALTY_TIERS": "Tiers, lowest first: code, name, threshold (qualifying spend), multiplier, discount_percent.",
    "LOYALTY_TIER_WINDOW_DAYS": "Rolling window of qualifying spend.",
    "LOYALTY_TIER_KEEP_DAYS": "A tier is kept at least this long after it was reached.",
    "LOYALTY_CAMPAIGNS": "Point campaigns: name, multiplier, starts, ends (ISO dates, `ends` exclusive).",
    "LOYALTY_COUPON_VALID_DAYS": "Days a redeemed coupon stays valid.",
    "LOYALTY_WEBHOOK_SECRET": _WEBHOOK_HELP,
    "LOYALTY_WEBHOOK_TOLERANCE_SECONDS": "How far a webhook's timestamp may be off, either way.",
    "LOYALTY_SCHEDULER": "Start the job scheduler inside the app (the recommended way: `flask loyalty scheduler`).",
    "LOYALTY_JOBS_TIERS": _SCHEDULE_HELP,
    "LOYALTY_JOBS_RELEASE": "When pending points become available (same forms).",
    "LOYALTY_JOBS_EXPIRE": "When due lots expire and members are warned of points about to expire (same forms).",
    "LOYALTY_JOBS_BIRTHDAYS": "When birthday points are given (same forms).",
    "LOYALTY_JOBS_CHURN": "When segments, churn and value models are refitted and alerts raised (same forms).",
    "LOYALTY_JOBS_RECOMMENDER": "When the recommender is retrained (same forms).",
    "LOYALTY_JOBS_BATCH_SIZE": "Rows a job changes per committed batch; a killed run loses at most one batch.",
    "LOYALTY_RFM_WINDOW_DAYS": "Order history the RFM scores look at.",
    "LOYALTY_RFM_SEGMENTS": "RFM segments: [{name, r: [lo, hi], f: [lo, hi]}, ...] covering the 5x5 grid.",
    "LOYALTY_CHURN_HORIZON_DAYS": "No order for this long counts as churned; the models predict this far ahead.",
    "LOYALTY_CHURN_THRESHOLD": "Churn risk (0-1) at which a member gets an alert.",
    "LOYALTY_CLV_MONTHS": "Months of customer lifetime value the value model predicts.",
    "LOYALTY_WINBACK_REWARD": "Reward id given free with each churn alert as a win-back coupon; none: no coupon.",
    "LOYALTY_ALERT_OUTCOME_DAYS": "Days after an alert in which an order counts as the member coming back.",
    "LOYALTY_PAGE_SIZE": "Rows per page of the points history (pages and API).",
    "LOYALTY_PAGE_CACHE_SIZE": "Dashboards kept rendered per worker, reused until the member's data changes; 0: none.",
    "LOYALTY_PAGE_CACHE_SECONDS": "Longest a rendered dashboard is reused, so that time passing (expiry) shows.",
    "LOYALTY_PAGE_CACHE_NOTIFY": "PostgreSQL only: workers keep what a dashboard is keyed by until PostgreSQL "
    "notifies a change, instead of reading it per request; a change then shows once notified, within "
    "milliseconds. Gains only on direct connections (PgBouncer's transaction pooling delivers no notifications).",
    "LOYALTY_RATE_LIMIT_STORAGE_URI": "Where rate-limit counts live: `memory://` (one process) or `redis://host:6379`.",
    "LOYALTY_RATE_LIMIT_COUPONS": "How often one member (or address) may check a coupon code.",
    "LOYALTY_RATE_LIMIT_REDEEM": "How often one member may redeem a reward.",
    "LOYALTY_CONTENT_SECURITY_POLICY": "Content-Security-Policy of the plugin's pages; none: the shop sets its own.",
    "LOYALTY_RECOMMENDER_REFRESH_SECONDS": "How often a worker looks for a newer fitted recommender in the database.",
    "LOYALTY_RECOMMENDER_KEEP_VERSIONS": "Fitted recommender versions kept in the database (older ones are deleted).",
    "LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS": (
        "Longest a worker keeps widget impression counts before writing them; 0: write on every view."
    ),
    "LOYALTY_ATTRIBUTION_DAYS": "Days after a click on a recommended item in which buying it counts for the click.",
    "LOYALTY_AB_EXPERIMENT": "Name of the recommendations A/B test; a new name reshuffles members into variants.",
    "LOYALTY_AB_VARIANTS": "Variants and their weights: `model` (the recommender) and/or `popular` (popular items).",
    "LOYALTY_AB_HOLDOUT": "Share of members (0-1) who see no recommendations, to measure what the widget adds.",
}


@dataclass(frozen=True)
class Tier:
    code: str
    name: str
    rank: int
    threshold: Decimal
    multiplier: Decimal
    discount_percent: Decimal


@dataclass(frozen=True)
class Campaign:
    name: str
    multiplier: Decimal
    starts: datetime
    ends: datetime


@dataclass(frozen=True)
class Settings:
    """The parsed settings of one app; domain code reads only this."""

    database_uri: str | None
    url_prefix: str
    base_template: str
    currency: str
    points_per_unit: Decimal
    #: Money per point for the liability figures; None: taken from the rewards.
    point_value: Decimal | None
    earn_on_shipping: bool
    earn_on_tax: bool
    pending_days: int
    expire_days: int
    expiry_warning_days: int
    signup_points: int
    birthday_points: int
    review_points: int
    referral_points: int
    tiers: tuple[Tier, ...]
    tier_window_days: int
    tier_keep_days: int
    campaigns: tuple[Campaign, ...]
    coupon_valid_days: int
    webhook_secrets: tuple[str, ...]
    webhook_tolerance: int
    scheduler: bool
    #: job name -> when it runs (None: switched off)
    job_schedules: Mapping[str, Schedule | None]
    job_batch_size: int
    rfm_window_days: int
    rfm_grid: tuple[Mapping[str, Any], ...]
    churn_horizon_days: int
    churn_threshold: float
    clv_months: int
    winback_reward: int | None
    alert_outcome_days: int
    page_size: int
    page_cache_size: int
    page_cache_seconds: int
    page_cache_notify: bool
    rate_limit_storage_uri: str
    rate_limit_coupons: str
    rate_limit_redeem: str
    content_security_policy: str | None
    recommender_refresh_seconds: int
    recommender_keep_versions: int
    impression_flush_seconds: int
    attribution_days: int
    ab_experiment: str
    #: variant -> weight
    ab_variants: Mapping[str, int]
    ab_holdout: float

    def tier(self, code: str) -> Tier:
        for tier in self.tiers:
            if tier.code == code:
                return tier
        return self.tiers[0]

    def campaign_multiplier(self, when: datetime) -> Decimal:
        """Campaigns that overlap multiply together."""
        result = Decimal(1)
        for campaign in self.campaigns:
            if campaign.starts <= when < campaign.ends:
                result *= campaign.multiplier
        return result


def _decimal(key: str, value: Any, *, minimum: Decimal | None = None) -> Decimal:
    if isinstance(value, float | bool):
        raise ConfigError(f"{key}: give {value!r} as a string or Decimal, not a float.")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{key}: {value!r} is not a number.") from None
    if not result.is_finite() or (minimum is not None and result < minimum):
        raise ConfigError(f"{key}: {value!r} must be a number >= {minimum}.")
    return result


def _int(key: str, value: Any, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}: {value!r} must be a whole number >= {minimum}.")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: {value!r} must be True or False.")
    return value


def _moment(key: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value)).replace(tzinfo=None)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not an ISO date or date-time.") from None


def _tiers(value: Any) -> tuple[Tier, ...]:
    key = "LOYALTY_TIERS"
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"{key}: give a non-empty list of tiers, lowest first.")
    tiers: list[Tier] = []
    for rank, raw in enumerate(value):
        if not isinstance(raw, Mapping) or not raw.get("code"):
            raise ConfigError(f"{key}[{rank}]: each tier needs at least a 'code'.")
        where = f"{key}[{rank}] ({raw['code']})"
        tiers.append(
            Tier(
                code=str(raw["code"]),
                name=str(raw.get("name", raw["code"])),
                rank=rank,
                threshold=_decimal(f"{where}.threshold", raw.get("threshold", "0"), minimum=Decimal(0)),
                multiplier=_decimal(f"{where}.multiplier", raw.get("multiplier", "1"), minimum=Decimal(0)),
                discount_percent=_decimal(
                    f"{where}.discount_percent", raw.get("discount_percent", "0"), minimum=Decimal(0)
                ),
            )
        )
    if tiers[0].threshold != 0:
        raise ConfigError(f"{key}: the lowest tier must have threshold 0, so every member has a tier.")
    for lower, higher in pairwise(tiers):
        if higher.threshold <= lower.threshold:
            raise ConfigError(f"{key}: thresholds must rise: {higher.code} is not above {lower.code}.")
    if len({t.code for t in tiers}) != len(tiers):
        raise ConfigError(f"{key}: tier codes must be unique.")
    return tuple(tiers)


def _campaigns(value: Any) -> tuple[Campaign, ...]:
    key = "LOYALTY_CAMPAIGNS"
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{key}: give a list of campaigns.")
    campaigns = []
    for i, raw in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(raw, Mapping) or "starts" not in raw or "ends" not in raw:
            raise ConfigError(f"{where}: each campaign needs 'starts' and 'ends'.")
        campaign = Campaign(
            name=str(raw.get("name", f"campaign {i + 1}")),
            multiplier=_decimal(f"{where}.multiplier", raw.get("multiplier", "1"), minimum=Decimal(0)),
            starts=_moment(f"{where}.starts", raw["starts"]),
            ends=_moment(f"{where}.ends", raw["ends"]),
        )
        if campaign.ends <= campaign.starts:
            raise ConfigError(f"{where}: 'ends' must be after 'starts'.")
        campaigns.append(campaign)
    return tuple(campaigns)


def _secrets(value: Any) -> tuple[str, ...]:
    key = "LOYALTY_WEBHOOK_SECRET"
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(f"{key}: give a secret string or a list of them.")
    if any(len(v) < 16 for v in values):
        raise ConfigError(f"{key}: each secret needs at least 16 characters.")
    return tuple(values)


def _schedules(c: Mapping[str, Any]) -> dict[str, Schedule | None]:
    return {job: parse_schedule(f"LOYALTY_JOBS_{job.upper()}", c[f"LOYALTY_JOBS_{job.upper()}"]) for job in JOB_NAMES}


def _rfm_grid(value: Any) -> tuple[Mapping[str, Any], ...]:
    try:
        return tuple(validate_grid(DEFAULT_RFM_GRID if value is None else value))
    except ValueError as exc:
        raise ConfigError(f"LOYALTY_RFM_SEGMENTS: {exc}") from None


def _threshold(value: Any) -> float:
    risk = _decimal("LOYALTY_CHURN_THRESHOLD", value, minimum=Decimal(0))
    if risk > 1:
        raise ConfigError(f"LOYALTY_CHURN_THRESHOLD: {value!r} is a probability: give a number from 0 to 1.")
    return float(risk)


def _optional_id(key: str, value: Any) -> int | None:
    return None if value is None else _int(key, value, minimum=1)


def _rate(key: str, value: Any) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: {value!r} is not a rate like '10 per minute'.") from None
    return value


def _storage_uri(value: Any) -> str:
    from limits.storage import storage_from_string

    try:
        storage_from_string(value)
    except Exception:
        raise ConfigError(
            f"LOYALTY_RATE_LIMIT_STORAGE_URI: {value!r} is not usable (memory:// or redis://host:6379)."
        ) from None
    return value


def _optional_text(key: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return value
    raise ConfigError(f"{key}: must be text or none.")


#: What the A/B variants can be: the fitted model, or popular items only.
VARIANTS = ("model", "popular")


def _variants(value: Any) -> dict[str, int]:
    key = "LOYALTY_AB_VARIANTS"
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{key}: give variants and weights, like {{'model': 80, 'popular': 20}}.")
    unknown = sorted(set(value) - set(VARIANTS))
    if unknown:
        raise ConfigError(f"{key}: unknown variant {unknown[0]!r}; the variants are 'model' and 'popular'.")
    weights = {name: _int(f"{key}[{name!r}]", weight) for name, weight in value.items()}
    if not any(weights.values()):
        raise ConfigError(f"{key}: at least one variant needs a weight above 0.")
    return weights


def _share(key: str, value: Any) -> float:
    share = _decimal(key, value, minimum=Decimal(0))
    if share >= 1:
        raise ConfigError(f"{key}: {value!r} is a share: give a number from 0 up to (not including) 1.")
    return float(share)


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise ConfigError(f"{key}: give a name of 1 to 100 characters.")
    return value


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Validate every ``LOYALTY_*`` key of ``config``, defaults filled in."""
    unknown = sorted(k for k in config if k.startswith("LOYALTY_") and k not in DEFAULTS)
    if unknown:
        raise ConfigError(f"Unknown setting {unknown[0]}: check its spelling against the README.")
    c = {key: config.get(key, default) for key, default in DEFAULTS.items()}
    prefix = c["LOYALTY_URL_PREFIX"]
    if not isinstance(prefix, str) or not prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigError("LOYALTY_URL_PREFIX: must start with '/' and not end with one, like '/loyalty'.")
    currency = c["LOYALTY_CURRENCY"]
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ConfigError(f"LOYALTY_CURRENCY: {currency!r} is not a 3-letter ISO 4217 code.")
    uri = c["LOYALTY_DATABASE_URI"]
    if uri is not None and not isinstance(uri, str):
        raise ConfigError("LOYALTY_DATABASE_URI: must be a database URL string.")
    base_template = c["LOYALTY_BASE_TEMPLATE"]
    if not isinstance(base_template, str) or not base_template:
        raise ConfigError("LOYALTY_BASE_TEMPLATE: must name a template.")
    return Settings(
        database_uri=uri,
        url_prefix=prefix,
        base_template=base_template,
        currency=currency.upper(),
        points_per_unit=_decimal("LOYALTY_POINTS_PER_UNIT", c["LOYALTY_POINTS_PER_UNIT"], minimum=Decimal(0)),
        point_value=None
        if c["LOYALTY_POINT_VALUE"] is None
        else _decimal("LOYALTY_POINT_VALUE", c["LOYALTY_POINT_VALUE"], minimum=Decimal(0)),
        earn_on_shipping=_bool("LOYALTY_EARN_ON_SHIPPING", c["LOYALTY_EARN_ON_SHIPPING"]),
        earn_on_tax=_bool("LOYALTY_EARN_ON_TAX", c["LOYALTY_EARN_ON_TAX"]),
        pending_days=_int("LOYALTY_PENDING_DAYS", c["LOYALTY_PENDING_DAYS"]),
        expire_days=_int("LOYALTY_POINTS_EXPIRE_DAYS", c["LOYALTY_POINTS_EXPIRE_DAYS"], minimum=1),
        expiry_warning_days=_int("LOYALTY_EXPIRY_WARNING_DAYS", c["LOYALTY_EXPIRY_WARNING_DAYS"]),
        signup_points=_int("LOYALTY_SIGNUP_POINTS", c["LOYALTY_SIGNUP_POINTS"]),
        birthday_points=_int("LOYALTY_BIRTHDAY_POINTS", c["LOYALTY_BIRTHDAY_POINTS"]),
        review_points=_int("LOYALTY_REVIEW_POINTS", c["LOYALTY_REVIEW_POINTS"]),
        referral_points=_int("LOYALTY_REFERRAL_POINTS", c["LOYALTY_REFERRAL_POINTS"]),
        tiers=_tiers(c["LOYALTY_TIERS"]),
        tier_window_days=_int("LOYALTY_TIER_WINDOW_DAYS", c["LOYALTY_TIER_WINDOW_DAYS"], minimum=1),
        tier_keep_days=_int("LOYALTY_TIER_KEEP_DAYS", c["LOYALTY_TIER_KEEP_DAYS"]),
        campaigns=_campaigns(c["LOYALTY_CAMPAIGNS"]),
        coupon_valid_days=_int("LOYALTY_COUPON_VALID_DAYS", c["LOYALTY_COUPON_VALID_DAYS"], minimum=1),
        webhook_secrets=_secrets(c["LOYALTY_WEBHOOK_SECRET"]),
        webhook_tolerance=_int("LOYALTY_WEBHOOK_TOLERANCE_SECONDS", c["LOYALTY_WEBHOOK_TOLERANCE_SECONDS"], minimum=1),
        scheduler=_bool("LOYALTY_SCHEDULER", c["LOYALTY_SCHEDULER"]),
        job_schedules=_schedules(c),
        job_batch_size=_int("LOYALTY_JOBS_BATCH_SIZE", c["LOYALTY_JOBS_BATCH_SIZE"], minimum=1),
        rfm_window_days=_int("LOYALTY_RFM_WINDOW_DAYS", c["LOYALTY_RFM_WINDOW_DAYS"], minimum=1),
        rfm_grid=_rfm_grid(c["LOYALTY_RFM_SEGMENTS"]),
        churn_horizon_days=_int("LOYALTY_CHURN_HORIZON_DAYS", c["LOYALTY_CHURN_HORIZON_DAYS"], minimum=1),
        churn_threshold=_threshold(c["LOYALTY_CHURN_THRESHOLD"]),
        clv_months=_int("LOYALTY_CLV_MONTHS", c["LOYALTY_CLV_MONTHS"], minimum=1),
        winback_reward=_optional_id("LOYALTY_WINBACK_REWARD", c["LOYALTY_WINBACK_REWARD"]),
        alert_outcome_days=_int("LOYALTY_ALERT_OUTCOME_DAYS", c["LOYALTY_ALERT_OUTCOME_DAYS"], minimum=1),
        page_size=_int("LOYALTY_PAGE_SIZE", c["LOYALTY_PAGE_SIZE"], minimum=1),
        page_cache_size=_int("LOYALTY_PAGE_CACHE_SIZE", c["LOYALTY_PAGE_CACHE_SIZE"]),
        page_cache_seconds=_int("LOYALTY_PAGE_CACHE_SECONDS", c["LOYALTY_PAGE_CACHE_SECONDS"]),
        page_cache_notify=_bool("LOYALTY_PAGE_CACHE_NOTIFY", c["LOYALTY_PAGE_CACHE_NOTIFY"]),
        rate_limit_storage_uri=_storage_uri(c["LOYALTY_RATE_LIMIT_STORAGE_URI"]),
        rate_limit_coupons=_rate("LOYALTY_RATE_LIMIT_COUPONS", c["LOYALTY_RATE_LIMIT_COUPONS"]),
        rate_limit_redeem=_rate("LOYALTY_RATE_LIMIT_REDEEM", c["LOYALTY_RATE_LIMIT_REDEEM"]),
        content_security_policy=_optional_text("LOYALTY_CONTENT_SECURITY_POLICY", c["LOYALTY_CONTENT_SECURITY_POLICY"]),
        recommender_refresh_seconds=_int(
            "LOYALTY_RECOMMENDER_REFRESH_SECONDS", c["LOYALTY_RECOMMENDER_REFRESH_SECONDS"], minimum=1
        ),
        recommender_keep_versions=_int(
            "LOYALTY_RECOMMENDER_KEEP_VERSIONS", c["LOYALTY_RECOMMENDER_KEEP_VERSIONS"], minimum=1
        ),
        impression_flush_seconds=_int(
            "LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS", c["LOYALTY_RECOMMENDER_IMPRESSION_FLUSH_SECONDS"]
        ),
        attribution_days=_int("LOYALTY_ATTRIBUTION_DAYS", c["LOYALTY_ATTRIBUTION_DAYS"], minimum=1),
        ab_experiment=_name("LOYALTY_AB_EXPERIMENT", c["LOYALTY_AB_EXPERIMENT"]),
        ab_variants=_variants(c["LOYALTY_AB_VARIANTS"]),
        ab_holdout=_share("LOYALTY_AB_HOLDOUT", c["LOYALTY_AB_HOLDOUT"]),
    )
