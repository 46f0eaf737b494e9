"""JSON API v1: the member's own data and the signed order/refund webhooks.

Every error has one shape, ``{"error": {"code", "message"}}``, with a 4xx status.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException

from .. import account, ledger, members, orders, rewards
from ..errors import BadInput, CsrfFailed, LoginRequired, LoyaltyError, NotEnrolled
from ..i18n import error_message, gettext
from ..models import Coupon, Member
from ..openapi import document
from ..rewards import display_code, member_coupons
from ..security import add_headers, csrf_ok
from ..webhooks import HEADER, BadSignature, verify
from .tracking import loyalty_click_url
from .widgets import recommendation_reason

api = Blueprint("loyalty_api", __name__)

ORDER_FIELDS = {"order_id", "user_id", "total", "lines", "placed_at", "shipping", "tax"}
REFUND_FIELDS = {"refund_id", "order_id", "amount"}
COUPON_STATES = ("active", "used", "expired", "void")


def _state():
    return current_app.extensions["loyalty"]


def error(code: str, message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


#: Needing no CSRF token: the webhooks are signed by the shop's server, not sent by a browser
#: with cookies, and the catch-all only answers 404/405.
NO_CSRF = frozenset({"loyalty_api.order_webhook", "loyalty_api.refund_webhook", "loyalty_api.no_such_endpoint"})


@api.before_request
def _require_csrf() -> None:
    """Cookie-authenticated writes need the CSRF token (``X-CSRFToken``), as the forms do;
    visitors who are not logged in get their 401 from the endpoint instead."""
    if request.endpoint not in NO_CSRF and current_user.is_authenticated and not csrf_ok():
        raise CsrfFailed()


@api.after_request
def _headers(response: Response) -> Response:
    return add_headers(response, _state().settings)


@api.errorhandler(LoyaltyError)
def _loyalty_error(exc: LoyaltyError) -> tuple[Response, int]:
    _state().store.session.rollback()
    return error(exc.code, error_message(exc), exc.http_status)


@api.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int]:
    response, status = error(exc.name.lower().replace(" ", "_"), exc.description or exc.name, exc.code or 500)
    if exc.code == 429 and exc.response is not None:
        response.headers.update(
            {k: v for k, v in exc.response.headers.items() if k.lower().startswith(("retry", "x-ratelimit"))}
        )
    return response, status


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _member(session: Any) -> Member:
    """The logged-in user's membership; 401 for visitors, 404 for users who have not joined."""
    if not current_user.is_authenticated:
        raise LoginRequired()
    member = members.get_member(session, current_user.get_id())
    if member is None:
        raise NotEnrolled()
    return member


def _json_body(fields: set[str]) -> dict[str, Any]:
    return _json_object(request.get_data(cache=True) or b"{}", fields)


def _json_object(body: bytes, fields: set[str]) -> dict[str, Any]:
    """The body as a JSON object of known fields; numbers read exactly, as decimals."""
    try:
        payload = json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise BadInput("The body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise BadInput("The body must be a JSON object.")
    unknown = sorted(set(payload) - fields)
    if unknown:
        raise BadInput(f"Unknown field {unknown[0]!r}.", field=unknown[0])
    return payload


def _int_arg(name: str, default: int, *, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadInput(f"{name} must be a whole number.", field=name) from None
    if not lo <= value <= hi:
        raise BadInput(f"{name} must be between {lo} and {hi}.", field=name)
    return value


def coupon_json(coupon: Coupon, now: datetime) -> dict[str, Any]:
    return {
        "id": coupon.id,
        "code": display_code(coupon.code),
        "kind": coupon.kind,
        "amount": _money(coupon.amount),
        "percent": _money(coupon.percent),
        "max_discount": _money(coupon.max_discount),
        "min_order_total": _money(coupon.min_order_total),
        "sku": coupon.sku,
        "status": account.coupon_state(coupon, now),
        "issued_at": coupon.issued_at.isoformat(),
        "valid_until": coupon.valid_until.isoformat(),
        "used_at": coupon.used_at.isoformat() if coupon.used_at else None,
    }


@api.get("/me")
def me() -> Any:
    state = _state()
    now = state.clock()
    with state.store.work(write=False) as session:
        member = _member(session)
        balance = ledger.balance_of(session, member, now=now, settings=state.settings)
        progress = account.tier_progress(session, member, now=now, settings=state.settings)
        upcoming = None
        if progress.next_tier:
            upcoming = {
                "code": progress.next_tier.code,
                "name": progress.next_tier.name,
                "spend_to_go": _money(progress.to_go),
                "by": progress.deadline.isoformat() if progress.deadline else None,
            }
        return jsonify(
            {
                "member": {
                    "referral_code": member.referral_code,
                    "enrolled_at": member.enrolled_at.isoformat(),
                    "tier": {
                        "code": progress.tier.code,
                        "name": progress.tier.name,
                        "since": member.tier_reached_at.isoformat(),
                        "qualifying_spend": _money(progress.spend),
                        "kept_until": progress.keep_until.isoformat() if progress.keep_until else None,
                        "spend_to_keep": _money(progress.keep_to_go),
                        "next": upcoming,
                    },
                },
                "points": {
                    "available": balance.available,
                    "pending": balance.pending,
                    "owed": balance.owed,
                    "expiring_soon": balance.expiring_soon,
                    "next_expiry": balance.next_expiry.isoformat() if balance.next_expiry else None,
                },
                "coupons": [
                    coupon_json(c, now)
                    for c in member_coupons(session, member)
                    if account.coupon_state(c, now) == "active"
                ],
                "csrf_token": generate_csrf(),
            }
        )


@api.get("/points")
def points() -> Any:
    state = _state()
    page = _int_arg("page", 1, lo=1, hi=10**6)
    per_page = _int_arg("per_page", state.settings.page_size, lo=1, hi=100)
    kind = request.args.get("kind")
    if kind is not None and kind not in account.LEDGER_KINDS:
        raise BadInput(f"kind must be one of {', '.join(account.LEDGER_KINDS)}.", field="kind")
    with state.store.work(write=False) as session:
        entries = account.history(session, _member(session), kind=kind, page=page, per_page=per_page)
        return jsonify(
            {
                "items": [
                    {
                        "id": e.id,
                        "kind": e.kind,
                        "points": e.points,
                        "pending": e.pending,
                        "balance_after": e.balance_after,
                        "reason": e.reason,
                        "order_id": e.order_id,
                        "created_at": e.created_at.isoformat(),
                    }
                    for e in entries.items
                ],
                "page": entries.page,
                "per_page": entries.per_page,
                "pages": entries.pages,
                "total": entries.total,
            }
        )


@api.get("/rewards")
def rewards_list() -> Any:
    state = _state()
    with state.store.work(write=False) as session:
        offers = account.catalog(session, _member(session), settings=state.settings)
        return jsonify(
            {
                "rewards": [
                    {
                        "id": o.reward.id,
                        "name": o.reward.name,
                        "kind": o.reward.kind,
                        "cost_points": o.reward.cost_points,
                        "amount": _money(o.reward.amount),
                        "percent": _money(o.reward.percent),
                        "max_discount": _money(o.reward.max_discount),
                        "min_order_total": _money(o.reward.min_order_total),
                        "min_tier": o.reward.min_tier,
                        "stock": o.reward.stock,
                        "points_short": o.points_short,
                        "available": o.blocked is None and o.points_short == 0,
                        "blocked": o.blocked,
                    }
                    for o in offers
                ]
            }
        )


@api.post("/rewards/<int:reward_id>/redeem")
def redeem(reward_id: int) -> Any:
    state = _state()
    now = state.clock()
    with state.store.work() as session:
        _member(session)
        coupon = rewards.redeem(session, current_user.get_id(), reward_id, now=now, settings=state.settings)
        body = coupon_json(coupon, now)
    state.store.commit()
    return jsonify({"coupon": body}), 201


@api.get("/coupons")
def coupons() -> Any:
    state = _state()
    now = state.clock()
    status = request.args.get("status")
    if status is not None and status not in COUPON_STATES:
        raise BadInput(f"status must be one of {', '.join(COUPON_STATES)}.", field="status")
    with state.store.work(write=False) as session:
        mine = member_coupons(session, _member(session))
        listed = [coupon_json(c, now) for c in mine]
        return jsonify({"coupons": [c for c in listed if status is None or c["status"] == status]})


@api.get("/coupons/<int:coupon_id>")
def coupon(coupon_id: int) -> Any:
    """By id, not by code: a code in a URL would end up in access logs."""
    state = _state()
    with state.store.work(write=False) as session:
        member = _member(session)
        found = account.own_coupon(session, member, coupon_id)
        if found is None:
            return error("not_found", gettext("You have no such coupon."), 404)
        return jsonify({"coupon": coupon_json(found, state.clock())})


@api.post("/coupons/check")
def check_coupon() -> Any:
    state = _state()
    payload = _json_body({"code", "order_total"})
    with state.store.work(write=False) as session:
        _member(session)
        discount = rewards.check_coupon(
            session, payload.get("code"), current_user.get_id(), payload.get("order_total"), now=state.clock()
        )
    return jsonify(
        {
            "discount": {
                "code": display_code(discount.code),
                "kind": discount.kind,
                "amount": _money(discount.amount),
                "free_shipping": discount.free_shipping,
                "free_item_sku": discount.free_item_sku,
            }
        }
    )


@api.get("/recommendations")
def recommendations() -> Any:
    """The widget's items for apps that draw it themselves: each links through the click
    tracker (``click_url``) and says why it is shown; the call counts as one view."""
    state = _state()
    limit = _int_arg("limit", 8, lo=1, hi=50)
    user_id = current_user.get_id()
    with state.store.work(write=False) as session:
        _member(session)
        shown = state.recommend(session, user_id, limit=limit)
        state.count_view(user_id, shown)
        return jsonify(
            {
                "variant": shown.variant,
                "model_version": shown.model_version,
                "items": [
                    {
                        "sku": i.sku,
                        "name": i.name,
                        "url": i.url,
                        "click_url": loyalty_click_url(i, position) if i.url else None,
                        "image_url": i.image_url,
                        "price": _money(i.price),
                        "reason": i.reason,
                        "reason_text": recommendation_reason(i),
                    }
                    for position, i in enumerate(shown.items, start=1)
                ],
            }
        )


def _signed_body(fields: set[str]) -> dict[str, Any]:
    state = _state()
    if not state.settings.webhook_secrets:
        raise BadSignature("Webhooks are turned off: the shop has not set LOYALTY_WEBHOOK_SECRET.")
    body = request.get_data(cache=True)
    verify(
        request.headers.get(HEADER),
        body,
        state.settings.webhook_secrets,
        tolerance=state.settings.webhook_tolerance,
        now=time.time(),
    )
    return _json_object(body, fields)


@api.post("/orders")
def order_webhook() -> Any:
    payload = _signed_body(ORDER_FIELDS)
    state = _state()
    with state.store.work() as session:
        receipt = orders.record_order(
            session,
            payload.get("order_id"),
            payload.get("user_id"),
            payload.get("total"),
            lines=payload.get("lines"),
            placed_at=payload.get("placed_at"),
            shipping=payload.get("shipping", 0),
            tax=payload.get("tax", 0),
            source="webhook",
            now=state.clock(),
            settings=state.settings,
        )
    state.store.commit()
    return jsonify(receipt.to_dict()), 200 if receipt.repeat else 201


@api.post("/refunds")
def refund_webhook() -> Any:
    payload = _signed_body(REFUND_FIELDS)
    state = _state()
    with state.store.work() as session:
        receipt = orders.record_refund(
            session,
            payload.get("refund_id"),
            payload.get("order_id"),
            payload.get("amount"),
            now=state.clock(),
            settings=state.settings,
        )
    state.store.commit()
    return jsonify(receipt.to_dict()), 200 if receipt.repeat else 201


@api.route("/<path:unknown>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_endpoint(unknown: str) -> tuple[Response, int]:
    """JSON, not the host's HTML page, for a wrong path or method under the API."""
    adapter = current_app.url_map.bind("localhost")
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != "loyalty_api.no_such_endpoint":
            allowed.append(method)
    if allowed:
        response, status = error("method_not_allowed", f"Use {' or '.join(allowed)} here.", 405)
        response.headers["Allow"] = ", ".join(allowed)
        return response, status
    return error("not_found", "There is no such API endpoint.", 404)


@api.get("/openapi.json")
def openapi() -> Any:
    return jsonify(document(_state().settings.url_prefix + "/api/v1"))
