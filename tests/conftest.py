"""Shared fixtures. Every test that takes ``app`` runs on SQLite and on PostgreSQL.

PostgreSQL runs when ``LOYALTY_TEST_DATABASE_URL`` points at one (CI sets it); otherwise those
runs skip and say how to enable them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask_login import LoginManager, UserMixin
from sqlalchemy import create_engine, text

from loyalty_plugin import Loyalty, signals
from loyalty_plugin.models import Base

PG_URL = os.environ.get("LOYALTY_TEST_DATABASE_URL")
PG_HINT = (
    "PostgreSQL run skipped: start PostgreSQL and set "
    "LOYALTY_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test to enable it"
)
START = datetime(2026, 1, 5, 12, 0, 0)


def skip_without_postgres() -> None:
    """CI sets LOYALTY_REQUIRE_POSTGRES: there a missing PostgreSQL fails instead of skipping."""
    if os.environ.get("LOYALTY_REQUIRE_POSTGRES"):
        pytest.fail("LOYALTY_REQUIRE_POSTGRES is set but LOYALTY_TEST_DATABASE_URL is not")
    pytest.skip(PG_HINT)


def empty_postgres(url: str) -> str:
    """Drop whatever the last test left: an empty ``public`` schema."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def reset_postgres(url: str) -> None:
    """An empty schema with the plugin's tables."""
    engine = create_engine(empty_postgres(url))
    Base.metadata.create_all(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/loyalty.sqlite"
    if not PG_URL:
        skip_without_postgres()
    reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def postgres_url() -> str:
    """For tests that only make sense on PostgreSQL (real row locks across connections)."""
    if not PG_URL:
        skip_without_postgres()
    reset_postgres(PG_URL)
    return PG_URL


@dataclass
class Clock:
    """The plugin's idea of now; tests move it instead of sleeping."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class User(UserMixin):
    def __init__(self, user_id: str, is_admin: bool = False) -> None:
        self.id = user_id
        self.is_admin = is_admin


def make_app(database_url: str, instance_path: str, **config: Any) -> Flask:
    app = Flask("loyalty_test", instance_path=instance_path)
    app.config.update(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "LOYALTY_DATABASE_URI": database_url,
            "LOYALTY_WEBHOOK_SECRET": ["whsec-test-0123456789abcdef"],
            **config,
        }
    )
    login = LoginManager(app)
    login.login_view = "login"
    login.user_loader(lambda uid: User(uid, is_admin=uid.startswith("admin")))

    @app.get("/login")
    def login() -> str:
        return "log in here"

    Loyalty(app)
    engine = app.extensions["loyalty"].store.engine
    Base.metadata.create_all(engine)
    return app


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(database_url: str, tmp_path: Any, clock: Clock) -> Iterator[Flask]:
    app = make_app(database_url, str(tmp_path / "instance"))
    app.extensions["loyalty"].clock = clock
    yield app
    app.extensions["loyalty"].close()


@pytest.fixture
def loyalty(app: Flask) -> Iterator[Loyalty]:
    """The public API, inside an app context."""
    with app.app_context():
        yield Loyalty()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@dataclass
class SignalLog:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [payload for event, payload in self.events if event == name]


def signals_names() -> tuple[str, ...]:
    return (
        "member_enrolled",
        "points_changed",
        "tier_changed",
        "coupon_issued",
        "coupon_used",
        "points_expiring",
        "churn_alert",
    )


@pytest.fixture
def signal_log() -> Iterator[SignalLog]:
    log = SignalLog()
    receivers = []
    for name in signals_names():
        signal = getattr(signals, name)

        def receiver(sender: Any, _name: str = name, **payload: Any) -> None:
            log.events.append((_name, payload))

        signal.connect(receiver)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def login(client: Any, user_id: str) -> None:
    """Log a user in through Flask-Login's session cookie, as the host's login view would."""
    with client.session_transaction() as sess:
        sess["_user_id"] = user_id
        sess["_fresh"] = True


@pytest.fixture
def configured(database_url: str, tmp_path: Any, clock: Clock) -> Iterator[Any]:
    """Build an app with extra ``LOYALTY_*`` settings: ``with configured(KEY=value) as loyalty``."""
    apps: list[Flask] = []

    def build(**config: Any) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def context() -> Iterator[Loyalty]:
            app = make_app(database_url, str(tmp_path / f"instance{len(apps)}"), **config)
            app.extensions["loyalty"].clock = clock
            apps.append(app)
            with app.app_context():
                yield Loyalty()

        return context()

    yield build
    for app in apps:
        app.extensions["loyalty"].close()


def line(sku: str = "SKU-1", qty: int = 1, unit_price: str = "10.00", category: str | None = "misc") -> dict:
    return {"sku": sku, "qty": qty, "unit_price": unit_price, "category": category}
