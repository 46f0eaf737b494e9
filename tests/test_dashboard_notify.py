"""``LOYALTY_PAGE_CACHE_NOTIFY``: on PostgreSQL a worker keeps what a dashboard is keyed by and
forgets a member's key when the database notifies a change, instead of reading it per request.
A change from any process still shows once notified, the member's own flashed action shows at
once, and while the listening connection is away nothing kept is trusted."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from loyalty_plugin import Loyalty
from loyalty_plugin import stamps as stamps_module
from loyalty_plugin.errors import ConfigError

from .conftest import User, login, make_app
from .test_dashboard_freshness import AWARD_ELSEWHERE, available, member_app, terminate_other_connections
from .test_host_mode import make_host

ROOT = Path(__file__).resolve().parent.parent
EN = {"Accept-Language": "en-US"}
WAIT = 30.0  # seconds a notification may take to arrive on a loaded CI machine


@pytest.fixture
def notified(postgres_url, tmp_path):
    """A listening app, its member ``u1`` logged in, page and key kept."""
    with member_app(postgres_url, tmp_path, LOYALTY_PAGE_CACHE_NOTIFY=True) as (app, client):
        stamps = app.extensions["loyalty"].stamps
        assert wait_listening(stamps)
        assert available(client) == 100  # read and kept
        yield app, client, stamps


def wait_listening(stamps) -> bool:
    """Until the listener is trusted: listening, and a notification (its probe) came through."""
    return stamps.wait(stamps.trusted, WAIT)


def wait_heard(stamps, past: int) -> bool:
    return stamps.wait(lambda: stamps.heard > past, WAIT)


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
    with member_app(postgres_url, tmp_path, LOYALTY_PAGE_CACHE_NOTIFY=notify) as (app, client):
        if notify:
            assert wait_listening(app.extensions["loyalty"].stamps)
            assert available(client) == 100
        change_unannounced(postgres_url, 999)
        # Read per request, the new version is seen; kept, the page stays as it was.
        assert available(client) == (100 if notify else 999)


def test_a_change_from_another_process_shows_once_notified(notified, postgres_url):
    _, client, stamps = notified
    heard = stamps.heard
    subprocess.run([sys.executable, "-c", AWARD_ELSEWHERE, postgres_url, "u1", "40"], cwd=ROOT, check=True, timeout=120)
    assert wait_heard(stamps, heard)
    assert available(client) == 140


def test_a_change_made_in_this_process_shows_once_notified(notified):
    app, client, stamps = notified
    heard = stamps.heard
    with app.app_context():
        Loyalty().adjust("u1", -30, reason="typo", actor="admin")
    assert wait_heard(stamps, heard)
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


def end_listener(url: str) -> None:
    """What a server restart or a dropped connection does to the worker's listening connection."""
    assert terminate_other_connections(url, application=stamps_module.LISTENER_NAME) == 1


def test_nothing_kept_is_used_while_the_listening_connection_is_down(notified, postgres_url, monkeypatch):
    _, client, stamps = notified
    monkeypatch.setattr(stamps_module, "RECONNECT_SECONDS", 3600.0)  # stays down for the test
    heard = stamps.heard
    end_listener(postgres_url)
    assert stamps.wait(lambda: stamps.heard > heard and not stamps.listening, WAIT)
    change_unannounced(postgres_url, 321)
    assert available(client) == 321  # read, nobody listening
    change_unannounced(postgres_url, 322)
    assert available(client) == 322  # read again: nothing is kept while down


def test_a_listener_that_lost_its_connection_comes_back_with_nothing_kept(notified, postgres_url):
    app, client, stamps = notified
    heard = stamps.heard
    end_listener(postgres_url)
    assert stamps.wait(lambda: stamps.heard > heard + 1 and stamps.trusted(), WAIT)  # lost, then back
    change_unannounced(postgres_url, 400)
    assert available(client) == 400  # read: what was kept before the loss is gone
    heard = stamps.heard
    with app.app_context():
        Loyalty().award("u1", 8, "review", key="after-reconnect")
    assert wait_heard(stamps, heard)
    assert available(client) == 408


def test_a_connection_silent_too_long_is_not_trusted(notified, postgres_url, monkeypatch):
    _, client, _ = notified
    monkeypatch.setattr(stamps_module, "TRUST_SECONDS", 0.0)  # as if the last proof of life were long ago
    change_unannounced(postgres_url, 250)
    assert available(client) == 250


def test_a_quiet_listener_proves_its_connection_alive_and_stays_trusted(notified, postgres_url, monkeypatch):
    _, client, stamps = notified
    monkeypatch.setattr(stamps_module, "PING_SECONDS", 0.0)
    monkeypatch.setattr(stamps_module, "TRUST_SECONDS", 5.0)
    since = time.monotonic()
    assert stamps.wait(lambda: stamps.alive_at > since, WAIT)  # its probe came back
    change_unannounced(postgres_url, 260)
    assert available(client) == 100  # still kept


def test_a_listener_whose_notifications_never_arrive_keeps_nothing(postgres_url, tmp_path, monkeypatch):
    """As behind a pooler that takes the LISTEN and delivers nothing: here the probe is not sent."""
    monkeypatch.setattr(stamps_module.NotifiedStamps, "_probe", lambda self, listener: None)
    with member_app(postgres_url, tmp_path, LOYALTY_PAGE_CACHE_NOTIFY=True) as (app, client):
        stamps = app.extensions["loyalty"].stamps
        assert stamps.wait(lambda: stamps.listening, WAIT)
        assert available(client) == 100
        change_unannounced(postgres_url, 777)
        assert not stamps.trusted()
        assert available(client) == 777  # read: nothing came through, so nothing was kept


@pytest.mark.parametrize(("about", "kept"), [("u1", False), ("somebody-else", True)])
def test_a_stamp_read_while_a_notification_lands_is_kept_unless_it_concerns_its_member(
    notified, postgres_url, monkeypatch, about, kept
):
    _, client, stamps = notified
    real = stamps_module.STAMP

    class NotifiedDuringTheRead:
        def first(self, engine, params):
            row = real.first(engine, params)
            stamps._hear(forget=about)  # the notification lands while the row travels
            return row

    change_unannounced(postgres_url, 600)
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "Done.")]
    monkeypatch.setattr(stamps_module, "STAMP", NotifiedDuringTheRead())
    assert 'data-testid="points-available">600<' in client.get("/loyalty/", headers=EN).get_data(as_text=True)
    monkeypatch.setattr(stamps_module, "STAMP", real)
    change_unannounced(postgres_url, 601)
    assert available(client) == (600 if kept else 601)


def test_a_member_who_leaves_is_sent_to_join_once_notified(notified):
    app, client, stamps = notified
    heard = stamps.heard
    with app.app_context():
        Loyalty().erase_member("u1")
    assert wait_heard(stamps, heard)
    response = client.get("/loyalty/", headers=EN)
    assert response.status_code == 302 and response.headers["Location"].endswith("/loyalty/join")


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
        assert wait_heard(stamps, heard)
        assert available(client) == 125
    finally:
        app.extensions["loyalty"].close()
        with app.app_context():
            db.engine.dispose()


def test_the_setting_needs_postgresql(tmp_path):
    with pytest.raises(ConfigError, match="LOYALTY_PAGE_CACHE_NOTIFY needs PostgreSQL"):
        make_app(f"sqlite:///{tmp_path}/loyalty.sqlite", str(tmp_path / "instance"), LOYALTY_PAGE_CACHE_NOTIFY=True)


def test_a_host_on_another_database_hears_so_when_it_mounts_the_plugin(tmp_path):
    with pytest.raises(ConfigError, match="this database is sqlite"):
        make_host(f"sqlite:///{tmp_path}/shop.sqlite", tmp_path, LOYALTY_PAGE_CACHE_NOTIFY=True)
