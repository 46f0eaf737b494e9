"""The OpenAPI 3.1 description of the JSON API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

from .account import LEDGER_KINDS

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
MONEY = {"type": ["string", "number"], "description": "Decimal amount, at most two decimals."}
SIGNATURE = {
    "name": "X-Loyalty-Signature",
    "in": "header",
    "required": True,
    "description": "t=<unix>,v1=<hex HMAC-SHA256 of '{t}.{body}' under LOYALTY_WEBHOOK_SECRET>",
    "schema": {"type": "string"},
}


CSRF = {
    "name": "X-CSRFToken",
    "in": "header",
    "required": False,
    "description": "The CSRF token (GET /me gives it); required unless the shop turned CSRF off.",
    "schema": {"type": "string"},
}
MEMBER: dict[str, Any] = {"security": [{"session": []}]}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": "Refused",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def document(base: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "loyalty_plugin API", "version": "1"},
        "servers": [{"url": base}],
        "components": {
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "session",
                    "description": "The shop's Flask-Login session: the member is the logged-in user.",
                }
            },
            "schemas": {
                "Error": ERROR,
                "Order": {
                    "type": "object",
                    "required": ["order_id", "total"],
                    "additionalProperties": False,
                    "properties": {
                        "order_id": {"type": "string", "maxLength": 255},
                        "user_id": {"type": ["string", "null"], "maxLength": 255},
                        "total": MONEY,
                        "shipping": MONEY,
                        "tax": MONEY,
                        "placed_at": {"type": "string", "format": "date-time"},
                        "lines": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["sku", "unit_price"],
                                "properties": {
                                    "sku": {"type": "string"},
                                    "qty": {"type": "integer", "minimum": 1},
                                    "unit_price": MONEY,
                                    "category": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "CouponCheck": {
                    "type": "object",
                    "required": ["code", "order_total"],
                    "additionalProperties": False,
                    "properties": {"code": {"type": "string"}, "order_total": MONEY},
                },
                "Refund": {
                    "type": "object",
                    "required": ["refund_id", "order_id", "amount"],
                    "additionalProperties": False,
                    "properties": {
                        "refund_id": {"type": "string"},
                        "order_id": {"type": "string"},
                        "amount": MONEY,
                    },
                },
            },
        },
        "paths": {
            "/me": {
                "get": {
                    "summary": "The logged-in member: tier and its progress, points, active coupons, CSRF token.",
                    **MEMBER,
                    "responses": {"200": {"description": "The member"}, **_errors(401, 404)},
                }
            },
            "/points": {
                "get": {
                    "summary": "The member's points history, newest first.",
                    **MEMBER,
                    "parameters": [
                        _query("page", {"type": "integer", "minimum": 1}),
                        _query("per_page", {"type": "integer", "minimum": 1, "maximum": 100}),
                        _query("kind", {"type": "string", "enum": list(LEDGER_KINDS)}),
                    ],
                    "responses": {"200": {"description": "One page of ledger entries"}, **_errors(401, 404, 422)},
                }
            },
            "/rewards": {
                "get": {
                    "summary": "The reward catalog as this member sees it: what they can afford and why not.",
                    **MEMBER,
                    "responses": {"200": {"description": "Rewards"}, **_errors(401, 404)},
                }
            },
            "/rewards/{reward_id}/redeem": {
                "post": {
                    "summary": "Spend points on a reward; returns the coupon.",
                    **MEMBER,
                    "parameters": [
                        _path("reward_id"),
                        CSRF,
                    ],
                    "responses": {"201": {"description": "The coupon"}, **_errors(400, 401, 404, 409, 422, 429)},
                }
            },
            "/coupons": {
                "get": {
                    "summary": "The member's coupons.",
                    **MEMBER,
                    "parameters": [_query("status", {"type": "string", "enum": ["active", "used", "expired", "void"]})],
                    "responses": {"200": {"description": "Coupons"}, **_errors(401, 404, 422)},
                }
            },
            "/coupons/{coupon_id}": {
                "get": {
                    "summary": "One of the member's coupons; someone else's is not found.",
                    **MEMBER,
                    "parameters": [
                        {"name": "coupon_id", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {"200": {"description": "The coupon"}, **_errors(401, 404)},
                }
            },
            "/coupons/check": {
                "post": {
                    "summary": "What a coupon would take off an order of this total; changes nothing.",
                    **MEMBER,
                    "parameters": [CSRF],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CouponCheck"}}},
                    },
                    "responses": {"200": {"description": "The discount"}, **_errors(400, 401, 404, 409, 422, 429)},
                }
            },
            "/recommendations": {
                "get": {
                    "summary": "Items recommended for the member, each with its reason.",
                    **MEMBER,
                    "parameters": [_query("limit", {"type": "integer", "minimum": 1, "maximum": 50})],
                    "responses": {"200": {"description": "Items"}, **_errors(401, 404, 422)},
                }
            },
            "/orders": {
                "post": {
                    "summary": "Record a paid order (idempotent on order_id).",
                    "parameters": [SIGNATURE],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}},
                    },
                    "responses": {
                        "201": {"description": "Recorded"},
                        "200": {"description": "Repeat delivery"},
                        **_errors(401, 409, 422),
                    },
                }
            },
            "/refunds": {
                "post": {
                    "summary": "Record a refund (idempotent on refund_id).",
                    "parameters": [SIGNATURE],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refund"}}},
                    },
                    "responses": {
                        "201": {"description": "Recorded"},
                        "200": {"description": "Repeat delivery"},
                        **_errors(401, 409, 422),
                    },
                }
            },
            "/openapi.json": {
                "get": {"summary": "This document.", "responses": {"200": {"description": "OpenAPI 3.1"}}}
            },
        },
    }
