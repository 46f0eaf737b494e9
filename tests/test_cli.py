"""``flask loyalty`` commands: verify and run-job."""

from __future__ import annotations

from sqlalchemy import update

from loyalty_plugin import Loyalty
from loyalty_plugin.models import Member


def run(app, *args):
    return app.test_cli_runner().invoke(args=["loyalty", *args])


def test_verify_passes_on_a_consistent_ledger_and_names_each_difference(app):
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll("u1")
        loyalty.enroll("u2")
    ok = run(app, "verify")
    assert ok.exit_code == 0 and "Every balance matches" in ok.output
    with app.app_context():
        session = app.extensions["loyalty"].store.session
        session.execute(update(Member).where(Member.user_id == "u2").values(points_balance=150))
        session.commit()
    bad = run(app, "verify")
    assert bad.exit_code == 1
    assert "u2: balance recorded 150, ledger says 100" in bad.output
    assert "u1:" not in bad.output


def test_run_job_release_and_tiers_with_a_given_time(app):
    with app.app_context():
        loyalty = Loyalty()
        loyalty.enroll("u1")
        loyalty.record_order("o1", "u1", "1500.00")
    early = run(app, "run-job", "release", "--now", "2026-01-10T00:00:00")
    assert early.exit_code == 0 and "release: 0 released" in early.output
    late = run(app, "run-job", "release", "--now", "2026-01-20T00:00:00")
    assert "release: 1 released" in late.output
    tiers = run(app, "run-job", "tiers", "--now", "2026-01-20T00:00:00")
    assert "1 upgraded" in tiers.output
    with app.app_context():
        member = Loyalty().get_member("u1")
        assert (member.tier_code, member.points_balance) == ("silver", 1600)


def test_run_job_refuses_an_unknown_job(app):
    result = run(app, "run-job", "teleport")
    assert result.exit_code == 2 and "Invalid value" in result.output
