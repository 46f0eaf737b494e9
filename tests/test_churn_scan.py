"""The churn scan on a real database: scores and segments per day, alerts once, outcomes,
win-back coupons, reports; and the expiry warning."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import func, select

from loyalty_plugin import Loyalty, demo, ledger
from loyalty_plugin.errors import ConfigError
from loyalty_plugin.job_runs import run_job
from loyalty_plugin.models import (
    ChurnAlert,
    Coupon,
    Member,
    MemberScore,
    MemberSegment,
    ModelReport,
    PointLot,
)
from loyalty_plugin.retention import _alert_candidates, member_attributes, raise_alerts, settle_alerts

from .conftest import make_app

SCAN = datetime(2026, 11, 1, 3, 0)
WINBACK = {"name": "Come back: 5 off", "kind": "fixed_amount", "cost_points": 500, "amount": "5.00"}


def seed(app, customers: int = 400) -> None:
    state = app.extensions["loyalty"]
    with app.app_context():
        demo.seed_demo(
            state.store,
            state.settings,
            seed=11,
            customers=customers,
            days=365,
            now=SCAN - timedelta(hours=3),
            create_users=None,
            progress=None,
        )


def count(app, model, *where) -> int:
    with app.app_context():
        return app.extensions["loyalty"].store.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def shop(database_url, tmp_path, clock):
    """A demo shop with a year of orders, and a win-back reward the alerts hand out."""
    app = make_app(database_url, str(tmp_path / "instance"), LOYALTY_WINBACK_REWARD=1)
    clock.now = SCAN
    app.extensions["loyalty"].clock = clock
    with app.app_context():
        Loyalty().create_reward(**WINBACK)
    seed(app)
    yield app
    app.extensions["loyalty"].close()


def test_a_scan_scores_segments_and_alerts_each_member_once(shop, signal_log):
    state = shop.extensions["loyalty"]
    with shop.app_context():
        first = run_job(state, "churn")
        again = run_job(state, "churn", now=SCAN + timedelta(hours=2))
    members_with_orders = count(shop, MemberScore)
    assert first.counts["scored"] == members_with_orders > 200
    assert first.counts["segmented"] == 2 * members_with_orders
    assert again.counts == {key: 0 for key in first.counts}, "a second run the same day wrote something again"

    with shop.app_context():
        session = state.store.session
        scores = session.scalars(select(MemberScore)).all()
        alerts = session.scalars(select(ChurnAlert).order_by(ChurnAlert.priority.desc())).all()
        report = session.scalar(select(ModelReport).where(ModelReport.model == "churn"))
        coupons = {c.id: c for c in session.scalars(select(Coupon))}
        assert ledger.verify(session) == []
    # The held-out period decides: the classifier unless days since the last order ranked it better.
    details = report.details
    chosen = "classifier" if details["auc"] >= details["baselines"]["recency"] else "recency"
    assert {s.risk_source for s in scores} == {chosen} == {details["risk_source"]}
    assert details["auc"] > 0.7 and set(details["baselines"]) >= {"recency", "bgnbd_p_alive"}
    assert 0 < first.counts["alerts"] == len(alerts) < len(scores) / 2
    by_member = {s.member_id: s for s in scores}
    for alert in alerts:
        score = by_member[alert.member_id]
        assert alert.risk == score.churn_risk >= state.settings.churn_threshold
        assert score.recency_days < state.settings.churn_horizon_days
        coupon = coupons[alert.coupon_id]
        assert (coupon.member_id, coupon.points_spent, coupon.status) == (alert.member_id, 0, "active")
    assert [a.priority for a in alerts] == sorted((a.priority for a in alerts), reverse=True)
    sent = signal_log.of("churn_alert")
    assert len(sent) == len(alerts)
    assert {s["coupon_code"] for s in sent} == {coupons[a.coupon_id].code for a in alerts}


def test_reports_show_the_latest_scan_and_what_moved(shop, tmp_path, clock):
    runner = shop.test_cli_runner()
    assert "No churn scan has run yet" in runner.invoke(args=["loyalty", "report", "churn"]).output
    with shop.app_context():
        run_job(shop.extensions["loyalty"], "churn")
        clock.advance(days=30)
        run_job(shop.extensions["loyalty"], "churn")
    path = tmp_path / "churn.csv"
    churn = runner.invoke(args=["loyalty", "report", "churn", "--csv", str(path)])
    assert churn.exit_code == 0, churn.output
    assert "Churn model (logistic): AUC" in churn.output and "Scores of 2026-12-01" in churn.output
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == count(shop, MemberScore, MemberScore.scored_on == clock.now.date())
    open_alerts = [r for r in rows if r["alert_priority"]]
    assert open_alerts == rows[: len(open_alerts)], "members with an open alert come first"

    segments = runner.invoke(args=["loyalty", "report", "segments", "--csv", str(tmp_path / "s.csv")])
    assert "compared with 2026-11-01" in segments.output and "member(s) moved" in segments.output
    with open(tmp_path / "s.csv", newline="") as f:
        moved = [r for r in csv.DictReader(f) if r["previous_rfm_segment"] not in ("", r["rfm_segment"])]
    assert moved, "a month later some members are in another RFM segment"

    tiers = runner.invoke(args=["loyalty", "report", "tiers", "--csv", str(tmp_path / "t.csv")])
    assert tiers.exit_code == 0 and "members: Bronze" in tiers.output
    with open(tmp_path / "t.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == count(shop, Member, Member.erased_at.is_(None))


def members(loyalty: Loyalty, *ids: str) -> dict[str, int]:
    for user_id in ids:
        loyalty.enroll(user_id)
        loyalty.record_order(f"first-{user_id}", user_id, "80.00")
    return {m.user_id: m.id for m in (loyalty.get_member(u) for u in ids)}


def test_the_valuable_lapsing_member_comes_first_and_the_long_gone_get_no_alert(app):
    state = app.extensions["loyalty"]
    scores = pd.DataFrame(
        {
            "churn_risk": [0.9, 0.9, 0.95, 0.5, float("nan")],
            "recency_days": [40, 40, 200, 10, 10],
            "clv": [900.0, 20.0, 500.0, 300.0, 300.0],
            "monetary": [1000.0, 30.0, 600.0, 300.0, 300.0],
        },
        index=["gold", "once", "gone", "safe", "unknown"],
    )
    with app.app_context():
        ids = members(Loyalty(), *scores.index)
        candidates = _alert_candidates(state.store.session, scores, ids, now=SCAN, settings=state.settings)
    assert [c["user_id"] for c in candidates] == ["gold", "once"]


def test_alert_outcomes_are_tracked_and_one_alert_stays_open_per_member(app, clock):
    state = app.extensions["loyalty"]
    window = state.settings.alert_outcome_days
    with app.app_context():
        loyalty = Loyalty()
        ids = members(loyalty, "back", "gone", "erased")
        candidates = [{"member_id": ids[u], "user_id": u, "risk": 0.8, "value": 100.0} for u in ids]
        assert raise_alerts(state.store, candidates, now=clock.now, settings=state.settings) == 3
        assert raise_alerts(state.store, candidates, now=clock.now, settings=state.settings) == 0
        clock.advance(days=window - 1)
        loyalty.record_order("came-back", "back", "25.00")
        loyalty.erase_member("erased")
        with state.store.work() as session:
            early = settle_alerts(session, now=clock.now, settings=state.settings)
        clock.advance(days=2)
        with state.store.work() as session:
            late = settle_alerts(session, now=clock.now, settings=state.settings)
        outcomes = dict(state.store.session.execute(select(ChurnAlert.member_id, ChurnAlert.outcome)).all())
    assert early == {"returned": 1, "lapsed": 0, "left": 1}
    assert late == {"returned": 0, "lapsed": 1, "left": 0}
    assert outcomes == {ids["back"]: "returned", ids["gone"]: "lapsed", ids["erased"]: "left"}


def test_too_little_history_gives_no_classifier_and_no_alert_and_says_why(app, clock):
    with app.app_context():
        loyalty = Loyalty()
        members(loyalty, "a", "b", "c")
        clock.advance(days=200)
        run = run_job(app.extensions["loyalty"], "churn")
        session = app.extensions["loyalty"].store.session
        report = session.scalar(select(ModelReport).where(ModelReport.model == "churn"))
        sources = set(session.scalars(select(MemberScore.risk_source)))
    assert run.status == "succeeded" and run.counts["alerts"] == 0 and run.counts["scored"] == 3
    assert "classifier" not in sources
    assert any("labelled" in note or "few" in note for note in report.details["notes"])


def test_a_scan_on_an_empty_shop_records_why_it_did_nothing(app):
    with app.app_context():
        run = run_job(app.extensions["loyalty"], "churn")
        report = app.extensions["loyalty"].store.session.scalar(select(ModelReport))
    assert run.counts["scored"] == 0 and report.details["notes"] == ["no orders yet: nothing to learn from"]


def test_members_are_warned_once_before_their_points_expire(app, clock, signal_log):
    state = app.extensions["loyalty"]
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll("soon")
        clock.advance(days=200)
        loyalty.enroll("later")
        clock.advance(days=150)  # the sign-up lots expire after 365 days: "soon" in 15, "later" in 215
        first = run_job(state, "expire")
        second = run_job(state, "expire", now=clock.advance(days=1))
        warned = state.store.session.scalars(select(PointLot.warned_at).join(Member).where(Member.user_id == "soon"))
        assert list(warned) == [clock.now - timedelta(days=1)]
    assert first.counts == {"expired": 0, "warned": 1} and second.counts == {"expired": 0, "warned": 0}
    (warning,) = signal_log.of("points_expiring")
    assert warning["user_id"] == "soon" and warning["points"] == state.settings.signup_points


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("LOYALTY_RFM_SEGMENTS", [{"name": "Everyone", "r": [1, 5], "f": [1, 4]}], "no segment covers R1 F5"),
        ("LOYALTY_RFM_SEGMENTS", [{"name": "x", "r": [0, 5], "f": [1, 5]}], "'r' must be [low, high]"),
        ("LOYALTY_CHURN_THRESHOLD", "1.5", "is a probability"),
        ("LOYALTY_WINBACK_REWARD", "five", "must be a whole number"),
        ("LOYALTY_SCHEDULER", "yes", "must be True or False"),
    ],
)
def test_bad_analytics_settings_fail_at_start_up_naming_the_key(tmp_path, key, value, message):
    with pytest.raises(ConfigError) as error:
        make_app(f"sqlite:///{tmp_path}/x.sqlite", str(tmp_path), **{key: value})
    assert str(error.value).startswith(key) and message in str(error.value)


def test_a_custom_segment_map_names_the_segments(configured, clock):
    grid = [{"name": "Recent", "r": [3, 5], "f": [1, 5]}, {"name": "Quiet", "r": [1, 2], "f": [1, 5]}]
    with configured(LOYALTY_RFM_SEGMENTS=grid) as loyalty:
        members(loyalty, "a", "b")
        run_job(loyalty.state(), "churn")
        names = set(
            loyalty.state().store.session.scalars(select(MemberSegment.segment).where(MemberSegment.kind == "rfm"))
        )
    assert names <= {"Recent", "Quiet"} and names


def test_member_attributes_are_read_as_they_were_at_the_cutoff(app, clock):
    state = app.extensions["loyalty"]
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll("big")
        loyalty.enroll("small")
        loyalty.record_order("o1", "big", "1500.00")
        before_upgrade = clock.now
        clock.advance(days=20)
        run_job(state, "release")
        run_job(state, "tiers")
        attributes = member_attributes(state.store, state.settings)
        then = attributes(pd.Timestamp(before_upgrade))
        now = attributes(pd.Timestamp(clock.now))
    assert then.loc["big", "tier_rank"] == 0 and now.loc["big", "tier_rank"] == 1
    assert then.loc["big", "points_earned"] == state.settings.signup_points
    assert now.loc["big", "points_earned"] == state.settings.signup_points + 1500
    assert now.loc["small", "points_earned"] == state.settings.signup_points
    assert (now["points_spent"] == 0).all()
