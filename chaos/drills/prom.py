"""The little of Prometheus' HTTP API the drills and the stack's tools need: queries,
ranges, alerts, targets and reloads."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class PrometheusUnavailable(RuntimeError):
    pass


class Prometheus:
    def __init__(self, url: str, timeout_s: float = 3.0) -> None:
        self.url, self.timeout_s = url.rstrip("/"), timeout_s

    def _get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=self.timeout_s) as resp:
                body = json.load(resp)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise PrometheusUnavailable(f"Prometheus at {self.url} does not answer: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusUnavailable(f"Prometheus refused the query: {body.get('error')}")
        return body["data"]

    def up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=self.timeout_s) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def reload(self) -> bool:
        """Have it read its configuration file again; False when it does not answer, or
        refuses the file."""
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                return resp.status < 300
        except (urllib.error.URLError, OSError):
            return False

    def scraped(self, job: str) -> set[str]:
        """The instances of `job` it scrapes now (its active targets)."""
        targets = self._get("/api/v1/targets", state="active")["activeTargets"]
        return {t["labels"]["instance"] for t in targets if t["labels"].get("job") == job}

    def value(self, expr: str, at: float | None = None) -> float | None:
        """The first sample of an instant query (now, or at Unix time `at`), or None when
        it has no result."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        result = self._get("/api/v1/query", **params)["result"]
        return float(result[0]["value"][1]) if result else None

    def firing(self) -> set[str]:
        """Names of the alerts firing now (pending ones are not yet detections)."""
        alerts = self._get("/api/v1/alerts")["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}

    def series(self, expr: str, start: float, end: float, step_s: float = 1.0) -> list[tuple[float, float]]:
        """One series over time (the first, or the sum when the query gives several)."""
        result = self._get(
            "/api/v1/query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step_s:g}"
        )["result"]
        points: dict[float, float] = {}
        for series in result:
            for t, v in series["values"]:
                value = float(v)
                if value == value:  # drop NaN
                    points[float(t)] = points.get(float(t), 0.0) + value
        return sorted(points.items())
