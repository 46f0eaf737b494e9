"""Admin pages about members: lookup, a member's whole record, and manual points adjustments.

An adjustment goes through :func:`loyalty_plugin.members.adjust`, the one writer of manual
changes: it posts a ledger entry with the reason (the member sees it in their history) and an
audit-log record naming the admin, in one transaction.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from .. import admin_members, admin_tiers, ledger, members
from ..admin_forms import AdjustForm
from ..errors import InsufficientPoints, LoyaltyError
from ..i18n import error_message, gettext
from ..i18n import points as format_points
from .admin import actor, admin, find_member, state, table_csv, table_page, wants_csv

#: The member's tables, by the name their CSV link asks for.
MEMBER_TABLES = {
    "ledger": admin_members.ledger,
    "coupons": admin_members.coupons,
    "tiers": admin_tiers.tier_history,
    "scores": admin_members.scores,
    "segments": admin_members.segments,
    "alerts": admin_members.alerts,
}


@admin.get("/members", endpoint="members")
def members_page() -> Any:
    s = state()
    query = (request.args.get("q") or "").strip()[:320]
    stmt = admin_members.search(query)
    with s.store.work(write=False) as session:
        if wants_csv():
            return table_csv(session, "members", stmt)
        found = table_page(session, stmt)
        return render_template("loyalty/admin/members.html", found=found, query=query)


@admin.get("/members/<int:member_id>")
def member(member_id: int) -> Any:
    return _member_page(member_id, AdjustForm(), 200)


def _member_page(member_id: int, form: AdjustForm, status: int) -> Any:
    s = state()
    table = request.args.get("table", "ledger")
    with s.store.work(write=False) as session:
        found = find_member(session, member_id)
        if wants_csv() and table in MEMBER_TABLES:
            return table_csv(session, f"member-{found.id}-{table}", MEMBER_TABLES[table](found.id))
        page = table_page(session, admin_members.ledger(found.id))
        html = render_template(
            "loyalty/admin/member.html",
            member=found,
            balance=ledger.balance_of(session, found, now=s.clock(), settings=s.settings),
            entries=page,
            coupons=session.execute(admin_members.coupons(found.id)).all(),
            history=session.execute(admin_tiers.tier_history(found.id)).all(),
            scores=session.execute(admin_members.scores(found.id)).all(),
            segments=session.execute(admin_members.segments(found.id)).all(),
            alerts=session.execute(admin_members.alerts(found.id)).all(),
            form=form,
        )
    return html, status


@admin.post("/members/<int:member_id>/adjust")
def adjust(member_id: int) -> Any:
    s = state()
    form = AdjustForm()
    with s.store.work(write=False) as session:
        found = find_member(session, member_id)
        user_id, erased = found.user_id, found.erased_at is not None
    if erased:
        form.points.errors = [gettext("This member left the program: their points can no longer change.")]
        return _member_page(member_id, form, 409)
    if not form.validate_on_submit():
        return _member_page(member_id, form, 400)
    try:
        with s.store.work() as session:
            receipt = members.adjust(
                session,
                user_id,
                form.points.data,
                reason=form.reason.data.strip(),
                actor=actor(),
                now=s.clock(),
                settings=s.settings,
            )
        s.store.commit()
    except InsufficientPoints as exc:
        s.store.session.rollback()
        form.points.errors = [
            gettext(
                "The member has %(available)s points available: an adjustment cannot take away more.",
                available=format_points(exc.available),
            )
        ]
        return _member_page(member_id, form, 409)
    except LoyaltyError as exc:
        s.store.session.rollback()
        form.points.errors = [error_message(exc)]
        return _member_page(member_id, form, exc.http_status)
    flash(
        gettext(
            "Points adjusted by %(points)s; the balance is now %(balance)s.",
            points=format_points(receipt.points),
            balance=format_points(receipt.balance),
        ),
        "success",
    )
    return redirect(url_for("loyalty_admin.member", member_id=member_id))
