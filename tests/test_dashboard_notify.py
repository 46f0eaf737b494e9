"""``LOYALTY_PAGE_CACHE_NOTIFY``: on PostgreSQL a worker keeps what a dashboard is keyed by and
forgets a member's key when the database notifies a change, instead of reading it per request.
A change from any process still shows once notified, the member's own flashed action shows at
once, and while the listening connection is away nothing kept is trusted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from loyalty_plugin import Loyalty
from loyalty_plugin.errors import ConfigError

from .conftest import User, login, make_app
from .test_dashboard_freshness import AWARD_ELSEWHERE
from .test_host_mode import make_host

ROOT = Path(__file__).resolve().parent.parent
EN = {"Accept-Language": "en-US"}
WAIT = 30.0  # seconds a notification may take to arrive on a loaded CI machine


def available(client) -> int:
    html = client.get("/loyalty/", headers=EN).get_data(as_text=True)
    return int(re.search(r'data-testid="points-available">([\d,]+)<', html).group(1).replace(",", ""))


@pytest.fixture
def notified(postgres_url, tmp_path):
    """An app that listens, a member ``u1`` with 100 points, logged in, page and key kept."""
    app = make_app(postgres_url, str(tmp_path / "instance"), LOYALTY_PAGE_CACHE_NOTIFY=True)
    stamps = app.extensions["loyalty"].stamps
    try:
        with app.app_context():
            Loyalty().enroll("u1")
        client = app.test_client()
        login(client, "u1")
        assert available(client) == 100  # starts the listener; read, not yet kept
        assert wait_listening(stamps)
        assert available(client) == 100  # read and kept
        yield app, client, stamps
    finally:
        app.extensions["loyalty"].close()


def wait_listening(stamps) -> bool:
    while not stamps.listening:
        if not stamps.wait_heard(stamps.heard, WAIT):
            return False
    return True


def change_unannounced(url: str, balance: int) -> None:
    """A member change PostgreSQL sends no notification for: triggers are off in a session
    with ``session_replication_role = replica``, as in a logical replica or a restore."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(
            text("UPDATE loyalty_members SET version = version + 1, points_balance = :b WHERE user_id = 'u1'"),
            {"b": balance},
        )
    engine.dispose()


@pytest.mark.parametrize("notify", [False, True])
def test_a_listening_worker_does_not_read_the_key_again(postgres_url, tmp_path, notify):
    app = make_app(postgres_url, str(tmp_path / "instance"), LOYALTY_PAGE_CACHE_NOTIFY=notify)
    stamps = app.extensions["loyalty"].stamps
    try:
        with app.app_context():
            Loyalty().enroll("u1")
        client = app.test_client()
        login(client, "u1")
        assert available(client) == 100
        if notify:
            assert wait_listening(stamps)
            assert available(client) == 100
        change_unannounced(postgres_url, 999)
        # Read per request, the new version is seen; kept, the page stays as it was.
        assert available(client) == (100 if notify else 999)
    finally:
        app.extensions["loyalty"].close()


def test_a_change_from_another_process_shows_once_notified(notified, postgres_url):
    _, client, stamps = notified
    heard = stamps.heard
    subprocess.run([sys.executable, "-c", AWARD_ELSEWHERE, postgres_url, "u1", "40"], cwd=ROOT, check=True, timeout=120)
    assert stamps.wait_heard(heard, WAIT)
    assert available(client) == 140


def test_a_change_made_in_this_process_shows_once_notified(notified):
    app, client, stamps = notified
    heard = stamps.heard
    with app.app_context():
        Loyalty().adjust("u1", -30, reason="typo", actor="admin")
    assert stamps.wait_heard(heard, WAIT)
    assert available(client) == 70


def test_a_page_with_a_flashed_message_reads_its_key_afresh(notified, postgres_url):
    _, client, _ = notified
    change_unannounced(postgres_url, 555)
    assert available(client) == 100  # kept
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "Your coupon is ready.")]
    html = client.get("/loyalty/", headers=EN).get_data(as_text=True)
    assert "Your coupon is ready." in html
    assert 'data-testid="points-available">555<' in html


def test_nothing_kept_is_trusted_after_the_listening_connection_is_lost(notified, postgres_url):
    app, client, stamps = notified
    heard = stamps.heard
    engine = create_engine(postgres_url, poolclass=NullPool)
    with engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query = 'LISTEN loyalty_members'"
            )
        ).scalar_one()
    engine.dispose()
    assert ended == 1
    assert stamps.wait_heard(heard, WAIT)  # the loss noticed: what was kept is forgotten
    change_unannounced(postgres_url, 321)  # unannounced, and nobody listening anyway
    assert available(client) == 321
    assert wait_listening(stamps)  # back, with nothing kept from before
    change_unannounced(postgres_url, 322)
    assert available(client) == 322  # read (not kept yet), then kept
    heard = stamps.heard
    with app.app_context():
        Loyalty().award("u1", 8, "review", key="after-reconnect")
    assert stamps.wait_heard(heard, WAIT)
    assert available(client) == 330


def test_a_host_sharing_its_engine_listens_through_it(postgres_url, tmp_path):
    app, db, _ = make_host(postgres_url, tmp_path, LOYALTY_PAGE_CACHE_NOTIFY=True)
    app.login_manager.user_loader(User)
    stamps = app.extensions["loyalty"].stamps
    try:
        with app.app_context():
            Loyalty().enroll("u1")
            db.session.commit()
        client = app.test_client()
        login(client, "u1")
        assert available(client) == 100
        assert wait_listening(stamps)
        assert available(client) == 100
        heard = stamps.heard
        with app.app_context():
            Loyalty().award("u1", 25, "review", key="host")
            db.session.commit()
        assert stamps.wait_heard(heard, WAIT)
        assert available(client) == 125
    finally:
        app.extensions["loyalty"].close()
        with app.app_context():
            db.engine.dispose()


def test_the_setting_needs_postgresql(tmp_path):
    with pytest.raises(ConfigError, match="LOYALTY_PAGE_CACHE_NOTIFY needs PostgreSQL"):
        make_app(f"sqlite:///{tmp_path}/loyalty.sqlite", str(tmp_path / "instance"), LOYALTY_PAGE_CACHE_NOTIFY=True)
