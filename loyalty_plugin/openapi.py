"""The OpenAPI 3.1 description of the JSON API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any

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
            }
        },
        "paths": {
            "/me": {
                "get": {
                    "summary": "The logged-in member: tier, points, active coupons.",
                    "responses": {"200": {"description": "The member"}, **_errors(401, 404)},
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
