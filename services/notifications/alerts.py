"""Alerts received from Alertmanager's webhook, kept as they fire and resolve, with the
receiver Alertmanager routed them to (`page` or `ticket`, chaos/alertmanager_config.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.common.data.db import Connection
from services.common.web import logging as log

_logger = log.get_logger("alerts")


def _time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):  # Alertmanager's "not set"
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def record(conn: Connection, alerts: list[dict[str, Any]], *, receiver: str = "") -> int:
    await conn.executemany(
        """INSERT INTO alerts (fingerprint, status, alertname, labels, annotations, starts_at, ends_at, receiver)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (
                a.get("fingerprint", ""),
                a["status"],
                a["labels"].get("alertname", "unnamed"),
                a["labels"],
                a.get("annotations", {}),
                _time(a.get("startsAt")),
                _time(a.get("endsAt")),
                receiver,
            )
            for a in alerts
        ],
    )
    for a in alerts:
        _logger.info("alert.received", alertname=a["labels"].get("alertname"), status=a["status"], receiver=receiver)
    return len(alerts)


async def recent(conn: Connection, *, status: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT fingerprint, status, alertname, labels ->> 'severity' AS severity, receiver, labels, annotations,
                  starts_at, ends_at, received_at
           FROM alerts WHERE ($1::text IS NULL OR status = $1) ORDER BY received_at DESC LIMIT $2""",
        status,
        limit,
    )
    return [
        {**dict(r), **{k: r[k].isoformat() if r[k] else None for k in ("starts_at", "ends_at", "received_at")}}
        for r in rows
    ]
