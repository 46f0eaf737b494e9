"""Admin pages about members' behaviour, as of the last churn scan: RFM and value segments,
churn alerts with their outcomes, and the churn model's quality (AUC, calibration); and what
the recommendations do: the A/B test per variant, the fitted versions and their offline scores."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from .. import admin_recommendations, admin_segments, admin_tables, experiments
from .admin import admin, csv_response, period, state, table_csv, table_page, wants_csv


@admin.get("/segments")
def segments() -> Any:
    s = state()
    with s.store.work(write=False) as session:
        grid = admin_segments.rfm_grid(session)
        value = admin_segments.value_segments(session)
    if wants_csv():
        if request.args.get("table") == "value":
            columns = ("segment", "members_now", "members_at_fit", "recency_days", "frequency", "monetary", "clv")
            rows = [
                (
                    p["segment"],
                    value.members.get(p["segment"], 0),
                    p.get("members"),
                    p.get("recency_days"),
                    p.get("frequency"),
                    p.get("monetary"),
                    p.get("clv"),
                )
                for p in value.profiles
            ]
            return csv_response("value-segments", admin_tables.csv_text(columns, rows))
        columns = ("r", "f", "segment", "members", "spend", "lifetime_value")
        rows = [
            (c.r, c.f, c.segment, c.members, c.spend, c.clv)
            for c in sorted(grid.cells.values(), key=lambda c: (-c.r, c.f))
        ]
        return csv_response("rfm-grid", admin_tables.csv_text(columns, rows))
    return render_template("loyalty/admin/segments.html", grid=grid, value=value)


@admin.get("/churn")
def churn() -> Any:
    s = state()
    status = request.args.get("status", "open")
    status = status if status in (*admin_segments.ALERT_STATUSES, "all") else "open"
    stmt = admin_segments.alerts(status)
    with s.store.work(write=False) as session:
        if wants_csv():
            return table_csv(session, f"churn-alerts-{status}", stmt)
        page = table_page(session, stmt)
        outcomes = admin_segments.outcomes(session)
        return render_template("loyalty/admin/churn.html", alerts=page, status=status, outcomes=outcomes)


@admin.get("/models")
def models() -> Any:
    s = state()
    with s.store.work(write=False) as session:
        reports = admin_segments.churn_reports(session)
    latest = reports[0] if reports else None
    calibration = (latest.details.get("calibration") or []) if latest else []
    if wants_csv():
        if request.args.get("table") == "history":
            columns = ("fitted_on", "auc", "brier", "estimator", "n_train", "n_test", "risk_source")
            rows = [(r.fitted_on, *(r.details.get(c) for c in columns[1:])) for r in reports]
            return csv_response("churn-model-history", admin_tables.csv_text(columns, rows))
        columns = ("decile", "n", "predicted", "observed")
        rows = [tuple(row.get(c) for c in columns) for row in calibration]
        return csv_response("churn-calibration", admin_tables.csv_text(columns, rows))
    return render_template("loyalty/admin/models.html", latest=latest, reports=reports, calibration=calibration)


@admin.get("/recommendations")
def recommendations() -> Any:
    """The A/B test over a period (default the last 30 days), the fitted versions, and the
    newest version's offline scores; each table also as CSV (``table=versions|scores``)."""
    s = state()
    start, end, _, _ = period(*admin_recommendations.default_period(s.clock().date()))
    table = request.args.get("table")
    with s.store.work(write=False) as session:
        if wants_csv() and table == "versions":
            return table_csv(session, "recommender-versions", admin_recommendations.versions())
        scores = admin_recommendations.newest_scores(session)
        if wants_csv() and table == "scores":
            columns, rows = admin_recommendations.score_table(scores)
            return csv_response("recommender-scores", admin_tables.csv_text(columns, rows))
        if wants_csv():
            report = experiments.ab_report(session, s.settings, since=start, until=end)
            return csv_response(f"ab-test-{start}-{end}", admin_tables.csv_text(report.columns, report.rows))
        variants = experiments.ab_figures(session, s.settings, since=start, until=end)
        versions = table_page(session, admin_recommendations.versions())
    ctr = admin_recommendations.chart_series([v.click_through for v in variants], scale=100)
    per_member = admin_recommendations.chart_series([v.revenue_per_member for v in variants])
    return render_template(
        "loyalty/admin/recommendations.html",
        variants=variants,
        versions=versions,
        scores=scores,
        start=start,
        end=end,
        experiment=s.settings.ab_experiment,
        attribution_days=s.settings.attribution_days,
        metrics=admin_recommendations.METRICS,
        ctr=ctr,
        per_member=per_member,
    )
