"""Admin pages: the blueprint, its guard, the helpers every admin page shares, and the
overview and tier report. Members are in ``admin_members``, rewards in ``admin_rewards``,
settings, jobs and the audit log in ``admin_ops``, segments and churn in ``admin_insights``.

Admins are the host's users for whom the ``is_admin`` hook says yes. Anonymous visitors are
sent to the host's login view and back; anyone else logged in gets a 403 page saying why.
Every state-changing request needs the session's CSRF token, checked for the whole blueprint
before any view runs, so a route added later is covered too.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, NoReturn

from babel.numbers import format_percent
from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import Select
from sqlalchemy.orm import Session

from .. import admin_figures, admin_overview, admin_tables, admin_tiers, members
from ..admin_forms import KIND_LABELS as REWARD_KINDS
from ..database import find
from ..errors import N_, ConfigError
from ..i18n import gettext, locale, template_helpers
from ..models import Member
from ..security import add_headers, csrf_ok
from .portal import KIND_LABELS

admin = Blueprint("loyalty_admin", __name__)

#: Rows per page of every admin table.
PAGE_SIZE = 50

#: Stored codes as the pages name them (translated where shown).
JOB_STATUSES = {
    "running": N_("running"),
    "succeeded": N_("succeeded"),
    "failed": N_("failed"),
    "skipped": N_("skipped"),
    "interrupted": N_("interrupted"),
}
COUPON_STATUSES = {"active": N_("Active"), "used": N_("Used"), "void": N_("Void")}
ALERT_OUTCOMES = {"returned": N_("Came back"), "lapsed": N_("Did not come back"), "left": N_("Left the program")}


def state() -> Any:
    return current_app.extensions["loyalty"]


@admin.before_request
def _require_admin() -> Any:
    if not hasattr(current_app, "login_manager"):
        raise ConfigError("The loyalty pages need Flask-Login: call LoginManager().init_app(app) in the shop.")
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not state().is_admin(current_user):
        message = gettext("These pages are for the loyalty program's administrators, and your account is not one.")
        return render_template("loyalty/admin/refused.html", message=message), 403
    if not csrf_ok():
        message = gettext("This form expired. Please go back, reload the page and try again.")
        return render_template("loyalty/admin/refused.html", message=message), 400
    return None


@admin.after_request
def _headers(response: Response) -> Response:
    return add_headers(response, state().settings)


@admin.context_processor
def _layout() -> dict[str, Any]:
    settings = state().settings
    return {
        "loyalty_base": settings.base_template,
        "currency": settings.currency,
        "kind_labels": KIND_LABELS,
        "tier_names": {t.code: t.name for t in settings.tiers},
        "fmt_rate": fmt_rate,
        "job_statuses": JOB_STATUSES,
        "alert_outcomes": ALERT_OUTCOMES,
        "coupon_statuses": COUPON_STATUSES,
        "reward_kinds": REWARD_KINDS,
        "csrf_value": generate_csrf,
        **template_helpers(settings.currency),
    }


def fmt_rate(value: float | None) -> str:
    """A share as a percentage for the page's locale; a dash when there is nothing to divide."""
    if value is None:
        return "\u2013"
    return format_percent(value, "#,##0.0%", locale=locale())


def actor() -> str:
    """Who the audit log and the ledger name for an admin's change: the host's user id."""
    return f"admin:{current_user.get_id()}"


def refuse(message: str, status: int = 400) -> NoReturn:
    """End the request with a page that says what was wrong; nothing was written."""
    abort(Response(render_template("loyalty/admin/refused.html", message=message), status))


def page_number() -> int:
    return max(1, request.args.get("page", default=1, type=int) or 1)


def table_page(session: Session, stmt: Select[Any]) -> admin_tables.Page:
    """The page of an admin table the request asks for (``?page=``)."""
    return admin_tables.paginate(session, stmt, page=page_number(), per_page=PAGE_SIZE)


def wants_csv() -> bool:
    return request.args.get("format") == "csv"


def csv_response(name: str, text: str) -> Response:
    filename = f"loyalty-{name}-{state().clock():%Y-%m-%d}.csv"
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def table_csv(session: Any, name: str, stmt: Any) -> Response:
    return csv_response(name, admin_tables.query_csv(session, stmt))


def parse_day(name: str, default: date) -> date:
    value = request.args.get(name)
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        refuse(gettext("%(value)s is not a date: please use the form YYYY-MM-DD.", value=value[:20]))


def period(first: date, last: date) -> tuple[date, date, datetime, datetime]:
    """The ``start`` and ``end`` days asked for (both included; by default ``first`` and
    ``last``), and the [start, end) moments they span."""
    start, end = parse_day("start", first), parse_day("end", last)
    if end < start:
        refuse(gettext("The period must end on or after the day it starts."))
    return start, end, datetime.combine(start, time()), datetime.combine(end + timedelta(days=1), time())


@admin.get("/")
def overview() -> Any:
    s = state()
    now = s.clock()
    with s.store.work(write=False) as session:
        figures = admin_overview.overview(session, now=now, settings=s.settings)
    if wants_csv():
        return _overview_csv(figures)
    return render_template("loyalty/admin/overview.html", o=figures, now=now, active_days=admin_overview.ACTIVE_DAYS)


def _overview_csv(figures: admin_overview.Overview) -> Response:
    if request.args.get("table") == "tiers":
        columns = ("tier", "members", "buyers", "orders", "order_value", "average_order_value")
        rows = [(t.code, t.members, t.buyers, t.orders, t.order_value, t.aov) for t in figures.tiers]
        return csv_response("order-value-by-tier", admin_tables.csv_text(columns, rows))
    columns = ("month", "issued", "redeemed", "expired")
    rows = [(m.month, m.issued, m.redeemed, m.expired) for m in figures.months]
    return csv_response("points-per-month", admin_tables.csv_text(columns, rows))


@admin.get("/tiers")
def tiers() -> Any:
    s = state()
    now = s.clock()
    start, end, since, until = period(*admin_tiers.default_period(now))
    user_id = (request.args.get("member") or "").strip()[:255]
    with s.store.work(write=False) as session:
        snapshot = admin_figures.current(session, now=now, settings=s.settings)
        if (start, end) == admin_tiers.default_period(now):
            rows = admin_tiers.default_tier_rows(snapshot, s.settings)
        else:
            rows = admin_tiers.tier_rows(session, start=since, end=until, settings=s.settings)
        moves = admin_tiers.movements(session, start=since, end=until, snapshot=snapshot)
        if wants_csv():
            return _tiers_csv(request.args.get("table"), rows, moves)
        member = members.get_member(session, user_id) if user_id else None
        history = session.execute(admin_tiers.tier_history(member.id)).all() if member else None
        return render_template(
            "loyalty/admin/tiers.html",
            rows=rows,
            moves=moves,
            start=start,
            end=end,
            member_query=user_id,
            member=member,
            history=history,
        )


@admin.get("/tiers/keep")
def keep() -> Any:
    """Members within reach of keeping their tier: the kept figures say who, usually few."""
    s = state()
    with s.store.work(write=False) as session:
        admin_figures.current(session, now=s.clock(), settings=s.settings)
        stmt = admin_tiers.keep_candidates(s.settings)
        if wants_csv():
            return table_csv(session, "keep-tier", stmt)
        result = session.execute(stmt)
        columns, rows = tuple(result.keys()), [tuple(row) for row in result]
    found = admin_tables.page_of(columns, rows, page=page_number(), per_page=PAGE_SIZE)
    return render_template("loyalty/admin/keep.html", keep=found)


def _tiers_csv(table: str | None, rows: list[admin_tiers.TierRow], moves: list[admin_tiers.MovementMonth]) -> Response:
    if table == "movements":
        columns = ("month", "upgrades", "downgrades", "kept")
        return csv_response(
            "tier-movements",
            admin_tables.csv_text(columns, [(m.month, m.upgrades, m.downgrades, m.kept) for m in moves]),
        )
    columns = ("tier", "members", "buyers", "orders", "revenue", "average_order_value")
    data = [(r.code, r.members, r.buyers, r.orders, r.revenue, r.aov) for r in rows]
    return csv_response("tiers", admin_tables.csv_text(columns, data))


def find_member(session: Any, member_id: int) -> Member:
    """The member with this id, or a 404 (erased members included: their history is kept)."""
    member = find(session, Member, member_id)
    if member is None:
        abort(404)
    return member
