"""The dashboard served from the page cache is still each member's own and up to date: its key is
read from the database on every request, whoever wrote the change and however the connection
it is read on fares."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from loyalty_plugin import Loyalty
from loyalty_plugin.database import make_engine
from loyalty_plugin.models import Member

from .conftest import login, make_app

ROOT = Path(__file__).resolve().parent.parent
EN = {"Accept-Language": "en-US"}

#: Another process: its own app and engine on the same database, awarding points.
AWARD_ELSEWHERE = """
import sys
from flask import Flask
from loyalty_plugin import Loyalty

app = Flask("elsewhere")
app.config["LOYALTY_DATABASE_URI"] = sys.argv[1]
Loyalty(app)
with app.app_context():
    Loyalty().award(sys.argv[2], int(sys.argv[3]), "review", key="elsewhere")
"""


def available(client) -> int:
    html = client.get("/loyalty/", headers=EN).get_data(as_text=True)
    return int(re.search(r'data-testid="points-available">([\d,]+)<', html).group(1).replace(",", ""))


def test_a_change_written_by_another_process_shows_on_the_next_request(app, client, database_url):
    with app.app_context():
        Loyalty().enroll("u1")
    login(client, "u1")
    assert available(client) == 100  # now cached
    subprocess.run([sys.executable, "-c", AWARD_ELSEWHERE, database_url, "u1", "40"], cwd=ROOT, check=True, timeout=120)
    assert available(client) == 140


def test_members_whose_pages_differ_only_by_who_they_are_never_share_one(app):
    with app.app_context():  # closed before the requests, which must each have their own
        loyalty = Loyalty()
        for user, points in (("u1", 5), ("u2", 7)):
            loyalty.enroll(user)
            loyalty.award(user, points, "review", key=f"k-{user}")
        session = app.extensions["loyalty"].store.session
        stamps = session.execute(select(Member.version, Member.tier_code, Member.tier_reached_at)).all()
    assert len(set(stamps)) == 1  # same version, tier and day: only the member tells them apart
    clients = {user: app.test_client() for user in ("u1", "u2")}
    for user, client in clients.items():
        login(client, user)
    for _ in range(2):  # rendered, then from the cache
        assert available(clients["u1"]) == 105
        assert available(clients["u2"]) == 107


def terminate_other_connections(url: str, application: str | None = None) -> int:
    """What a server restart or a proxy dropping connections does to the pooled ones (or to
    those of one ``application_name``)."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND (CAST(:application AS text) IS NULL OR application_name = :application)"
            ),
            {"application": application},
        ).scalar_one()
    engine.dispose()
    return ended


@contextmanager
def member_app(url: str, tmp_path: Path, **config: Any) -> Iterator[tuple[Flask, Any]]:
    """An app with a member ``u1`` of 100 points, logged in, the dashboard shown once."""
    app = make_app(url, str(tmp_path / "instance"), **config)
    try:
        with app.app_context():
            Loyalty().enroll("u1")
        client = app.test_client()
        login(client, "u1")
        assert available(client) == 100
        yield app, client
    finally:
        app.extensions["loyalty"].close()


def test_a_cached_dashboard_is_served_through_a_lost_connection(postgres_url, tmp_path):
    with member_app(postgres_url, tmp_path) as (_, client):
        assert terminate_other_connections(postgres_url) >= 1
        assert available(client) == 100  # the key read again on a new connection


def test_a_connection_lost_while_idle_is_replaced_before_use(postgres_url):
    engine = make_engine(postgres_url, idle_ping_seconds=0)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        terminate_other_connections(postgres_url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_connection_in_steady_use_is_not_pinged_and_a_loss_fails_one_statement(postgres_url):
    engine = make_engine(postgres_url, idle_ping_seconds=3600)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        terminate_other_connections(postgres_url)
        with pytest.raises(DBAPIError) as lost, engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert lost.value.connection_invalidated
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
