"""OpenAPI declarations shared by every route: the error body every service answers (docs/contracts.md)."""

from __future__ import annotations

from typing import Any

ERROR_SCHEMA = {
    "description": "An error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        "required": ["code", "message"],
                    }
                },
                "required": ["error"],
            }
        }
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the error statuses a route can answer."""
    return {status: ERROR_SCHEMA for status in statuses}
