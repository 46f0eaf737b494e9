"""JSON API v1: the member's own data and the signed order/refund webhooks.

Every error has one shape, ``{"error": {"code", "message"}}``, with a 4xx status.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from .. import ledger, members, orders, tiers
from ..errors import BadInput, LoyaltyError, NotEnrolled
from ..openapi import document
from ..rewards import display_code, member_coupons
from ..webhooks import HEADER, BadSignature, verify

api = Blueprint("loyalty_api", __name__)

ORDER_FIELDS = {"order_id", "user_id", "total", "lines", "placed_at", "shipping", "tax"}
REFUND_FIELDS = {"refund_id", "order_id", "amount"}


def _state():
    return current_app.extensions["loyalty"]


def error(code: str, message: str, status: int) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message}}), status


@api.errorhandler(LoyaltyError)
def _loyalty_error(exc: LoyaltyError) -> tuple[Response, int]:
    _state().store.session.rollback()
    return error(exc.code, exc.message, exc.http_status)


@api.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[Response, int]:
    return error(exc.name.lower().replace(" ", "_"), exc.description or exc.name, exc.code or 500)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@api.get("/me")
def me() -> Any:
    if not current_user.is_authenticated:
        return error("login_required", "Please log in first.", 401)
    state = _state()
    with state.store.work(write=False) as session:
        member = members.get_member(session, current_user.get_id())
        if member is None:
            raise NotEnrolled()
        balance = ledger.balance_of(session, member, now=state.clock(), settings=state.settings)
        tier = state.settings.tier(member.tier_code)
        spend = tiers.qualifying_spend(session, member, now=state.clock(), settings=state.settings)
        above = [t for t in state.settings.tiers if t.rank > tier.rank]
        upcoming = None
        if above:
            upcoming = {
                "code": above[0].code,
                "name": above[0].name,
                "spend_to_go": _money(max(above[0].threshold - spend, Decimal(0))),
            }
        coupons = member_coupons(session, member)
        return jsonify(
            {
                "member": {
                    "referral_code": member.referral_code,
                    "enrolled_at": member.enrolled_at.isoformat(),
                    "tier": {
                        "code": tier.code,
                        "name": tier.name,
                        "since": member.tier_reached_at.isoformat(),
                        "qualifying_spend": _money(spend),
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
                    {
                        "code": display_code(c.code),
                        "kind": c.kind,
                        "amount": _money(c.amount),
                        "status": c.status,
                        "valid_until": c.valid_until.isoformat(),
                    }
                    for c in coupons
                    if c.status == "active"
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
    try:
        payload = json.loads(body, parse_float=Decimal)
    except ValueError:
        raise BadInput("The body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise BadInput("The body must be a JSON object.")
    unknown = sorted(set(payload) - fields)
    if unknown:
        raise BadInput(f"Unknown field {unknown[0]!r}.", field=unknown[0])
    return payload


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
