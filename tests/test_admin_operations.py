"""Operating the program from the admin pages, through real HTTP (Flask test client) on SQLite
and PostgreSQL: member lookup and detail, manual adjustments, the reward catalog, settings,
jobs, the audit log, pagination and CSV. Every refusal says why and writes nothing.

Data is set up in an app context of its own, apart from the requests: a request inside the
test's context would share its ``g``, where Flask-Login keeps the user it loaded first.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from flask import Flask, current_app
from sqlalchemy import func, select

from loyalty_plugin import Loyalty
from loyalty_plugin.jobs import JOBS
from loyalty_plugin.models import AuditLog, JobRun, LedgerEntry, Member, Reward
from loyalty_plugin.views import admin_ops

from .conftest import login
from .test_csrf_walk import snapshot


@pytest.fixture
def admin(app: Flask) -> Iterator[Any]:
    app.config["WTF_CSRF_ENABLED"] = True
    client = app.test_client()
    login(client, "admin-1")
    yield client


def setup(app: Flask, work: Any) -> Any:
    with app.app_context():
        return work(Loyalty())


def member_id(app: Flask, user_id: str) -> int:
    with app.app_context():
        return Loyalty().get_member(user_id).id


def rows(app: Flask, stmt: Any) -> list[Any]:
    with app.extensions["loyalty"].store.engine.connect() as connection:
        return list(connection.execute(stmt))


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)


def post_form(client: Any, page_url: str, action: str, data: dict[str, Any]) -> Any:
    """Post ``data`` with the CSRF token of the page the form is on, as a browser would."""
    token = csrf_token(client.get(page_url).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **data})


def csv_of(response: Any) -> pd.DataFrame:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return pd.read_csv(io.StringIO(response.get_data(as_text=True)), dtype=str, keep_default_na=False)


# Members ------------------------------------------------------------------------------------


def test_lookup_finds_members_by_id_email_and_name(app, admin):
    setup(app, lambda lo: [lo.enroll("ann-1", email="ann@example.com", name="Ann Lee"), lo.enroll("bob-2")])

    by_email = admin.get("/loyalty/admin/members?q=ANN@").get_data(as_text=True)
    by_name = admin.get("/loyalty/admin/members?q=lee").get_data(as_text=True)
    by_id = admin.get("/loyalty/admin/members?q=bob-2").get_data(as_text=True)
    wildcard = admin.get("/loyalty/admin/members?q=%25").get_data(as_text=True)

    assert "ann-1" in by_email and "bob-2" not in by_email
    assert "ann-1" in by_name and "bob-2" not in by_name
    assert "bob-2" in by_id and "ann-1" not in by_id
    assert "ann-1" not in wildcard and "bob-2" not in wildcard


def test_member_detail_shows_ledger_coupons_and_tier_history(app, admin, clock):
    def work(lo: Loyalty) -> None:
        lo.enroll("u1")
        lo.record_order("o1", "u1", "1200.00")
        lo.evaluate_tiers()

    setup(app, work)
    html = admin.get(f"/loyalty/admin/members/{member_id(app, 'u1')}").get_data(as_text=True)

    assert 'data-testid="member-tier">Silver<' in html
    assert 'data-kind="signup"' in html and 'data-kind="earn"' in html and "(o1)" in html
    assert 'data-reason="upgrade"' in html


def test_adjustment_with_a_reason_is_audited_and_shown_to_the_member(app, admin):
    setup(app, lambda lo: lo.enroll("u1"))
    mid = member_id(app, "u1")
    page = f"/loyalty/admin/members/{mid}"

    response = post_form(admin, page, f"{page}/adjust", {"points": "250", "reason": "Parcel arrived late"})

    assert response.status_code == 302
    with app.app_context():
        assert Loyalty().balance("u1").available == 350
    entry = rows(app, select(LedgerEntry.kind, LedgerEntry.points, LedgerEntry.reason, LedgerEntry.actor))[-1]
    assert tuple(entry) == ("adjust", 250, "Parcel arrived late", "admin:admin-1")
    audit = rows(app, select(AuditLog.actor, AuditLog.action, AuditLog.target, AuditLog.details))
    assert [(a, b, c) for a, b, c, _ in audit][-1] == ("admin:admin-1", "adjust_points", "u1")
    assert json.loads(audit[-1].details) == {"points": 250, "reason": "Parcel arrived late"}
    member = app.test_client()
    login(member, "u1")
    history = member.get("/loyalty/points").get_data(as_text=True)
    assert "Parcel arrived late" in history


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"points": "100", "reason": "   "}, 400, "Please give the reason for the adjustment."),
        ({"points": "0", "reason": "typo"}, 400, "An adjustment must add or take away at least one point."),
        ({"points": "ten", "reason": "typo"}, 400, "Not a valid integer value."),
        ({"points": "5000000", "reason": "typo"}, 400, "Please enter at most 1,000,000 points either way."),
        ({"points": "-101", "reason": "fraud"}, 409, "The member has 100 points available"),
    ],
)
def test_a_bad_adjustment_is_refused_with_the_reason_and_writes_nothing(app, admin, data, status, message):
    setup(app, lambda lo: lo.enroll("u1"))
    page = f"/loyalty/admin/members/{member_id(app, 'u1')}"
    before = snapshot(app)

    response = post_form(admin, page, f"{page}/adjust", data)

    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_an_erased_member_cannot_be_adjusted(app, admin):
    setup(app, lambda lo: [lo.enroll("u1"), lo.erase_member("u1")])
    page = f"/loyalty/admin/members/{member_id_any(app)}"
    before = snapshot(app)

    response = post_form(admin, page, f"{page}/adjust", {"points": "10", "reason": "sorry"})

    assert response.status_code == 409
    assert "This member left the program" in response.get_data(as_text=True)
    assert snapshot(app) == before


def member_id_any(app: Flask) -> int:
    return rows(app, select(Member.id))[0][0]


# Rewards ------------------------------------------------------------------------------------


def test_reward_is_created_edited_and_retired_through_the_forms(app, admin):
    created = post_form(
        admin,
        "/loyalty/admin/rewards/new",
        "/loyalty/admin/rewards/new",
        {"name": "10 % off", "kind": "percent", "cost_points": "1500", "percent": "10", "max_discount": "20.00"},
    )
    assert created.status_code == 302
    (reward,) = rows(app, select(Reward.id, Reward.name, Reward.percent, Reward.max_discount, Reward.active))
    assert (reward.name, str(reward.percent), str(reward.max_discount), reward.active) == (
        "10 % off",
        "10.00",
        "20.00",
        True,
    )

    edit = f"/loyalty/admin/rewards/{reward.id}"
    edited = post_form(
        admin,
        edit,
        edit,
        {"name": "12 % off", "kind": "percent", "cost_points": "1500", "percent": "12", "min_tier": "silver"},
    )
    assert edited.status_code == 302
    retired = post_form(admin, "/loyalty/admin/rewards", f"{edit}/retire", {})
    assert retired.status_code == 302

    (after,) = rows(app, select(Reward.name, Reward.percent, Reward.min_tier, Reward.active))
    assert (after.name, str(after.percent), after.min_tier, after.active) == ("12 % off", "12.00", "silver", False)
    actions = [a for (a,) in rows(app, select(AuditLog.action).order_by(AuditLog.id))]
    assert actions == ["create_reward", "update_reward", "retire_reward"]
    setup(app, lambda lo: lo.enroll("u1"))
    member = app.test_client()
    login(member, "u1")
    assert "12 % off" not in member.get("/loyalty/rewards").get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Too much", "kind": "percent", "cost_points": "10", "percent": "150"}, "percent must be more than 0"),
        ({"name": "No amount", "kind": "fixed_amount", "cost_points": "10"}, "amount is required."),
        ({"name": "", "kind": "free_shipping", "cost_points": "10"}, "Please give the reward a name."),
        ({"name": "Free", "kind": "free_shipping", "cost_points": "0"}, "The cost must be at least 1 point."),
        ({"name": "Odd", "kind": "teleport", "cost_points": "10"}, "Not a valid choice"),
    ],
)
def test_a_bad_reward_is_refused_beside_its_field_and_nothing_is_written(app, admin, data, message):
    before = snapshot(app)

    response = post_form(admin, "/loyalty/admin/rewards/new", "/loyalty/admin/rewards/new", data)

    assert response.status_code in (400, 422)
    assert message in response.get_data(as_text=True)
    assert snapshot(app) == before


# Settings, jobs, audit ------------------------------------------------------------------------


def test_settings_page_shows_the_rules_and_hides_secrets(app, admin):
    html = admin.get("/loyalty/admin/settings").get_data(as_text=True)

    assert 'data-key="LOYALTY_PENDING_DAYS"' in html and "Return window" in html
    assert "whsec-test" not in html
    assert "1 secret(s) set" in html


def test_run_now_runs_the_job_records_it_and_audits_it(app, admin, clock):
    def work(lo: Loyalty) -> None:
        lo.enroll("u1")
        lo.record_order("o1", "u1", "40.00")

    setup(app, work)
    clock.advance(days=15)

    response = post_form(admin, "/loyalty/admin/jobs", "/loyalty/admin/jobs/release/run", {})
    app.extensions["loyalty"].wait_for_jobs()

    assert response.status_code == 302
    (run,) = rows(app, select(JobRun.job, JobRun.trigger, JobRun.status, JobRun.counts))
    assert (run.job, run.trigger, run.status, run.counts) == ("release", "manual", "succeeded", {"released": 1})
    with app.app_context():
        assert Loyalty().balance("u1").available == 140
    (audit,) = rows(app, select(AuditLog.actor, AuditLog.action, AuditLog.target))
    assert tuple(audit) == ("admin:admin-1", "run_job", "job:release")
    html = admin.get("/loyalty/admin/jobs").get_data(as_text=True)
    assert 'data-job="release"' in html and 'data-status="succeeded"' in html


def test_a_long_run_goes_on_after_the_page_answers_and_the_page_follows_it(app, admin, monkeypatch):
    """The job's work is a stand-in that ends when the test says so; claim, lock and record are
    the real ones."""
    go_on = threading.Event()

    def long_work(context: Any) -> dict[str, int]:
        assert go_on.wait(60), "the test never let the job finish"
        return {"done": 1}

    monkeypatch.setitem(JOBS, "release", long_work)
    monkeypatch.setattr(admin_ops, "RUN_NOW_WAIT_SECONDS", 0.01)
    response = post_form(admin, "/loyalty/admin/jobs", "/loyalty/admin/jobs/release/run", {})
    following = response.headers["Location"]
    assert response.status_code == 302 and "following=" in following

    while_running = admin.get(following)
    html = while_running.get_data(as_text=True)
    assert while_running.headers["Refresh"] == str(admin_ops.FOLLOW_SECONDS)
    assert "goes on in the background" in html and 'data-status="running"' in html

    go_on.set()
    app.extensions["loyalty"].wait_for_jobs()
    after = admin.get(following)
    assert "Refresh" not in after.headers
    assert 'data-status="succeeded"' in after.get_data(as_text=True)
    (run,) = rows(app, select(JobRun.status, JobRun.counts))
    assert (run.status, run.counts) == ("succeeded", {"done": 1})


def test_a_run_that_fails_says_so_and_keeps_its_error(app, admin, monkeypatch):
    def failing_work(context: Any) -> dict[str, int]:
        raise RuntimeError("the mail server refused")

    monkeypatch.setitem(JOBS, "release", failing_work)
    monkeypatch.setattr(admin_ops, "RUN_NOW_WAIT_SECONDS", 60)  # the page waits the run out
    response = post_form(admin, "/loyalty/admin/jobs", "/loyalty/admin/jobs/release/run", {})

    (run,) = rows(app, select(JobRun.status, JobRun.error))
    assert (run.status, run.error) == ("failed", "RuntimeError: the mail server refused")
    assert "following=" not in response.headers["Location"]
    assert "did not finish" in admin.get(response.headers["Location"]).get_data(as_text=True)


def test_unknown_job_is_not_found_and_nothing_runs(app, admin):
    response = post_form(admin, "/loyalty/admin/jobs", "/loyalty/admin/jobs/nonsense/run", {})

    assert response.status_code == 404
    assert rows(app, select(func.count()).select_from(JobRun))[0][0] == 0


def test_audit_log_lists_and_filters_what_admins_did(app, admin):
    def work(lo: Loyalty) -> None:
        lo.enroll("u1")
        lo.adjust("u1", 5, reason="first", actor="admin:a")
        lo.create_reward(name="Gift", kind="free_shipping", cost_points=10, actor="admin:b")

    setup(app, work)

    everything = admin.get("/loyalty/admin/audit").get_data(as_text=True)
    adjustments = admin.get("/loyalty/admin/audit?action=adjust_points").get_data(as_text=True)

    assert 'data-action="adjust_points"' in everything and 'data-action="create_reward"' in everything
    assert 'data-action="adjust_points"' in adjustments and 'data-action="create_reward"' not in adjustments


# Pagination and CSV ---------------------------------------------------------------------------


def test_tables_are_paginated_and_the_csv_has_every_row(app, admin):
    setup(app, lambda lo: [lo.enroll(f"user-{i:03d}") for i in range(60)])

    first = admin.get("/loyalty/admin/members").get_data(as_text=True)
    second = admin.get("/loyalty/admin/members?page=2").get_data(as_text=True)
    export = csv_of(admin.get("/loyalty/admin/members?format=csv"))

    shown = re.findall(r"data-member-id=\"(\d+)\"", first) + re.findall(r"data-member-id=\"(\d+)\"", second)
    assert len(re.findall(r"data-member-id=", first)) == 50 and "Page 1 of 2" in first
    assert sorted(shown, key=int) == sorted(export["id"].tolist(), key=int)
    assert len(export) == 60 and set(export["user_id"]) == {f"user-{i:03d}" for i in range(60)}
    assert list(export.columns) == [
        "id",
        "user_id",
        "email",
        "name",
        "tier",
        "points",
        "pending",
        "enrolled_at",
        "erased_at",
    ]


def test_csv_keeps_typed_text_from_becoming_a_formula(app, admin):
    setup(app, lambda lo: [lo.enroll("u1"), lo.adjust("u1", 5, reason='=HYPERLINK("http://x")', actor="admin:a")])

    ledger = csv_of(admin.get(f"/loyalty/admin/members/{member_id(app, 'u1')}?format=csv&table=ledger"))

    assert ledger.loc[ledger["kind"] == "adjust", "reason"].tolist() == ['\'=HYPERLINK("http://x")']


def test_every_admin_table_exports_csv(app, admin, clock):
    def work(lo: Loyalty) -> None:
        lo.enroll("u1")
        lo.record_order("o1", "u1", "30.00")

    setup(app, work)
    mid = member_id(app, "u1")
    for url in [
        "/loyalty/admin/?format=csv&table=tiers",
        "/loyalty/admin/?format=csv&table=months",
        "/loyalty/admin/tiers?format=csv&table=tiers",
        "/loyalty/admin/tiers?format=csv&table=movements",
        "/loyalty/admin/tiers/keep?format=csv",
        "/loyalty/admin/members?format=csv",
        *(f"/loyalty/admin/members/{mid}?format=csv&table={t}" for t in ("ledger", "coupons", "tiers", "scores")),
        "/loyalty/admin/rewards?format=csv",
        "/loyalty/admin/jobs?format=csv",
        "/loyalty/admin/audit?format=csv",
        "/loyalty/admin/segments?format=csv",
        "/loyalty/admin/segments?format=csv&table=value",
        "/loyalty/admin/churn?format=csv&status=all",
        "/loyalty/admin/models?format=csv",
    ]:
        assert len(csv_of(admin.get(url)).columns) >= 3, url


# Tier report ------------------------------------------------------------------------------------


def test_tier_report_lists_members_within_reach_of_keeping_their_tier(app, admin, clock):
    """Silver is reached on day 100 with 600 spent on day 0 and 400 on day 100. On day 440 the
    guaranteed year ends within 30 days and day 0 has left the window: "near", who spent 400
    more on day 400, has 800 of the 1,000 Silver needs (within reach, 200 to go); "far", with
    400, is not within reach. Both are still protected: nobody moves down yet."""

    def first(lo: Loyalty) -> None:
        for user in ("near", "far"):
            lo.enroll(user)
            lo.record_order(f"{user}-1", user, "600.00")

    setup(app, first)
    clock.advance(days=100)
    setup(app, lambda lo: [lo.record_order(f"{u}-2", u, "400.00") for u in ("near", "far")] + [lo.evaluate_tiers()])
    clock.advance(days=300)
    setup(app, lambda lo: lo.record_order("near-3", "near", "400.00"))
    clock.advance(days=40)

    html = admin.get("/loyalty/admin/tiers/keep").get_data(as_text=True)
    overview = admin.get("/loyalty/admin/").get_data(as_text=True)

    keep = html.split('data-testid="keep-tier"')[1].split("</table>")[0]
    assert "near" in keep and "far" not in keep and "$200.00" in keep
    assert 'data-testid="preview-reach" data-value="1"' in overview
    assert 'data-testid="preview-down" data-value="0"' in overview


def test_tier_report_refuses_a_bad_period_with_the_reason(app, admin):
    bad_date = admin.get("/loyalty/admin/tiers?start=2026-13-01")
    backwards = admin.get("/loyalty/admin/tiers?start=2026-05-01&end=2026-04-01")

    assert bad_date.status_code == 400 and "is not a date" in bad_date.get_data(as_text=True)
    assert backwards.status_code == 400 and "must end on or after" in backwards.get_data(as_text=True)


def test_tier_history_of_a_member_on_the_tier_report(app, admin, clock):
    setup(app, lambda lo: [lo.enroll("u1"), lo.record_order("o1", "u1", "6000.00"), lo.evaluate_tiers()])
    clock.advance(days=1)

    html = admin.get("/loyalty/admin/tiers?member=u1").get_data(as_text=True)
    missing = admin.get("/loyalty/admin/tiers?member=nobody").get_data(as_text=True)

    history = html.split('data-testid="tier-history"')[1]
    assert 'data-reason="upgrade"' in history and "Gold" in history
    assert "No member has the user id nobody." in missing


def test_overview_before_any_data_shows_dashes_not_errors(app, admin):
    html = admin.get("/loyalty/admin/").get_data(as_text=True)

    assert 'data-testid="members" data-value="0"' in html
    assert 'data-testid="liability" data-value=""' in html


@pytest.mark.parametrize(("setting", "per_point"), [(None, "0.05"), ("0.004", "0.004")])
def test_the_liability_is_valued_by_the_setting_when_given_else_by_the_best_reward(configured, setting, per_point):
    config = {} if setting is None else {"LOYALTY_POINT_VALUE": setting}
    with configured(**config) as loyalty:
        for user in ("u1", "u2", "u3"):
            loyalty.enroll(user)  # 100 welcome points each
        loyalty.create_reward(name="5 off", kind="fixed_amount", cost_points=100, amount="5.00")
        loyalty.create_reward(name="1 off", kind="fixed_amount", cost_points=100, amount="1.00")
        client = current_app.test_client()
    login(client, "admin-1")
    html = client.get("/loyalty/admin/", headers={"Accept-Language": "en"}).get_data(as_text=True)

    assert 'data-testid="outstanding" data-value="300"' in html
    assert f'data-testid="liability" data-value="{Decimal(300) * Decimal(per_point):.2f}"' in html
    assert ("LOYALTY_POINT_VALUE" in html) is (setting is not None)
    settings_page = client.get("/loyalty/admin/settings").get_data(as_text=True)
    row = re.search(r'<tr data-key="LOYALTY_POINT_VALUE">.*?</tr>', settings_page, re.S).group(0)
    assert ("changed from the default" in row) is (setting is not None) and (setting or "") in row


def test_a_tier_window_shorter_than_a_year_counts_only_its_own_orders(configured, clock):
    """The overview reads a year of orders; with a 180-day tier window the preview must see only
    the last 180 days' spend, as the evaluation does."""
    from flask import current_app

    from loyalty_plugin import admin_overview

    with configured(LOYALTY_TIER_WINDOW_DAYS=180) as loyalty:
        loyalty.enroll("u1")
        loyalty.record_order("o1", "u1", "1200.00")
        clock.advance(days=200)
        state = current_app.extensions["loyalty"]
        with state.store.work(write=False) as session:
            o = admin_overview.overview(session, now=clock.now, settings=state.settings)
        run = loyalty.evaluate_tiers()

    assert (o.preview.upgrades, run.upgraded) == (0, 0)
    assert [t.orders for t in o.tiers] == [1, 0, 0]
