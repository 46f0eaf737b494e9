"""Member pages for spending points: the reward catalog, redemption with a confirmation step,
the member's coupons and a coupon checker."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import account, rewards
from ..database import find
from ..errors import LoyaltyError
from ..forms import ConfirmForm, CouponCheckForm
from ..i18n import gettext
from ..models import Reward
from .portal import current_member, portal, refuse, state

COUPON_TABS = ("active", "used", "expired")


@portal.get("/rewards")
def rewards_page() -> Any:
    s = state()
    with s.store.work(write=False) as session:
        member = current_member(session)
        offers = account.catalog(session, member, settings=s.settings)
        return render_template("loyalty/rewards.html", member=member, offers=offers)


@portal.route("/rewards/<int:reward_id>/redeem", methods=["GET", "POST"])
def redeem(reward_id: int) -> Any:
    s = state()
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            with s.store.work() as session:
                coupon = rewards.redeem(session, current_user.get_id(), reward_id, now=s.clock(), settings=s.settings)
                code = coupon.code
            s.store.commit()
        except LoyaltyError as exc:
            refuse(exc)
            return redirect(url_for("loyalty.rewards_page"))
        flash(gettext("Your coupon %(code)s is ready.", code=rewards.display_code(code)), "success")
        return redirect(url_for("loyalty.coupons"))
    with s.store.work(write=False) as session:
        member = current_member(session)
        reward = find(session, Reward, reward_id)
        if reward is None or not reward.active:
            abort(404)
        offer = next(o for o in account.catalog(session, member, settings=s.settings) if o.reward.id == reward_id)
        return render_template("loyalty/redeem.html", member=member, offer=offer, form=form)


@portal.get("/coupons")
def coupons() -> Any:
    s = state()
    now = s.clock()
    tab = request.args.get("status", "active")
    if tab not in COUPON_TABS:
        tab = "active"
    with s.store.work(write=False) as session:
        member = current_member(session)
        mine = rewards.member_coupons(session, member)
        counts = {t: 0 for t in COUPON_TABS}
        shown = []
        for coupon in mine:
            status = account.coupon_state(coupon, now)
            if status in counts:
                counts[status] += 1
            if status == tab or (tab == "expired" and status == "void"):
                shown.append(coupon)
        return render_template("loyalty/coupons.html", member=member, coupons=shown, tab=tab, counts=counts, now=now)


@portal.get("/coupons/<int:coupon_id>")
def coupon(coupon_id: int) -> Any:
    s = state()
    with s.store.work(write=False) as session:
        member = current_member(session)
        found = account.own_coupon(session, member, coupon_id)
        if found is None:
            abort(404)
        status = account.coupon_state(found, s.clock())
        return render_template("loyalty/coupon.html", member=member, coupon=found, status=status)


@portal.route("/coupons/check", methods=["GET", "POST"])
def coupon_check() -> Any:
    s = state()
    form = CouponCheckForm()
    discount = None
    if form.validate_on_submit():
        try:
            with s.store.work(write=False) as session:
                discount = rewards.check_coupon(
                    session, form.code.data, current_user.get_id(), form.order_total.data, now=s.clock()
                )
        except LoyaltyError as exc:
            refuse(exc)
    with s.store.work(write=False) as session:
        member = current_member(session)
        return render_template("loyalty/coupon_check.html", member=member, form=form, discount=discount)
