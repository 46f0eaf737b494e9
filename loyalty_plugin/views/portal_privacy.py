"""Member pages about the member themselves: their referral link, the download of everything
kept about them, and leaving the program (personal data erased, ledger kept anonymised)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, flash, redirect, render_template, url_for
from flask_login import current_user

from .. import account, members
from ..errors import LoyaltyError
from ..forms import LeaveForm
from ..i18n import gettext
from .portal import current_member, portal, refuse, state


@portal.get("/referral")
def referral() -> Any:
    s = state()
    with s.store.work(write=False) as session:
        member = current_member(session)
        link = url_for("loyalty.join", ref=member.referral_code, _external=True)
        friends = account.referrals(session, member)
        return render_template(
            "loyalty/referral.html",
            member=member,
            link=link,
            friends=friends,
            rewarded=sum(1 for f in friends if f.rewarded),
            referral_points=s.settings.referral_points,
        )


@portal.get("/privacy")
def privacy() -> Any:
    s = state()
    with s.store.work(write=False) as session:
        member = current_member(session)
        return render_template("loyalty/privacy.html", member=member, form=LeaveForm())


@portal.get("/privacy/export.json")
def export() -> Response:
    s = state()
    with s.store.work(write=False) as session:
        member = current_member(session)
        data = account.export(session, member)
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="loyalty-data.json"'},
    )


@portal.post("/privacy/leave")
def leave() -> Any:
    s = state()
    form = LeaveForm()
    if not form.validate_on_submit():
        with s.store.work(write=False) as session:
            member = current_member(session)
            return render_template("loyalty/privacy.html", member=member, form=form), 400
    try:
        with s.store.work() as session:
            members.erase(session, current_user.get_id(), actor="member", now=s.clock())
        s.store.commit()
    except LoyaltyError as exc:
        refuse(exc)
        return redirect(url_for("loyalty.privacy"))
    flash(gettext("You have left the loyalty program. Your personal data has been erased."), "success")
    return redirect(url_for("loyalty.join"))
