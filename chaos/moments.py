"""A moment the operator names: an ISO 8601 time or a span back from now, as `chaoslab db
restore --to` and `chaoslab replay --since` take it."""

from __future__ import annotations

import datetime as dt


def parse_moment(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """An ISO 8601 time (`2026-12-02T21:30:00Z`; no zone means UTC) or a moment back from
    now (`90s ago`, `5m ago`, `1h ago`); never in the future."""
    now = now or dt.datetime.now(dt.UTC)
    words = text.strip().split()
    if len(words) == 2 and words[1] == "ago" and words[0][:-1].replace(".", "", 1).isdigit():
        unit = {"s": 1, "m": 60, "h": 3600}.get(words[0][-1])
        if unit is None:
            raise ValueError(f"{text!r}: use s, m or h, as in '90s ago' or '5m ago'")
        return now - dt.timedelta(seconds=float(words[0][:-1]) * unit)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a time: use ISO 8601 (2026-12-02T21:30:00Z) or '5m ago'") from exc
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    if moment > now:
        raise ValueError(f"{text!r} is in the future")
    return moment
