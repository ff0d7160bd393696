"""Idempotency keys: the same key with the same body is the same request, answered once.

A key that comes back with a different body is a client bug, refused with 409
`idempotency_key_reused` and counted in `idempotency_conflicts_total`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from services.common.data.contracts import IDEMPOTENCY_KEY_PATTERN
from services.common.web.errors import BadInput

_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def require_key(value: str | None) -> str:
    if not value:
        raise BadInput(
            "the Idempotency-Key header is required: send a unique key per order "
            "(a UUID) and the same key when you retry",
            code="idempotency_key_missing",
        )
    if not _KEY.match(value):
        raise BadInput("Idempotency-Key must be 1 to 128 visible ASCII characters", code="idempotency_key_invalid")
    return value


def fingerprint(body: Any) -> str:
    """A stable hash of a request body: same content, same hash, whatever the key order."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
