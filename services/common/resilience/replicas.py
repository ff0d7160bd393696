"""Replica pool: round robin over a downstream's base URLs, with outlier ejection (Envoy-like).

A replica trips after `consecutive_failures` failures in a row (5xx, timeout, connection
error) and is ejected for base_ejection_s × 2^(ejections so far), capped at max_ejection_s;
then it gets traffic again as a probe. The last healthy replica is never ejected.
Watch `replica_ejections_total{downstream,replica}`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from prometheus_client import Counter

REPLICA_EJECTIONS = Counter(
    "replica_ejections_total", "Replicas ejected from a pool after consecutive failures.", ["downstream", "replica"]
)


def replica_label(url: str) -> str:
    """`host:port` of a base URL: what metrics and breaker names call a replica."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class _Replica:
    url: str
    failures: int = 0  # consecutive
    successes: int = 0  # consecutive, to decay `ejections`
    ejections: int = 0  # how much the next ejection grows
    ejected_until: float = 0.0
    probing: bool = False  # back from an ejection, not yet proven healthy


class ReplicaPool:
    """The base URLs of one downstream; `pick()` before a call, `record()` after it."""

    def __init__(
        self,
        name: str,
        urls: list[str],
        consecutive_failures: int,
        base_ejection_s: float,
        max_ejection_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError(f"replica pool {name} needs at least one URL")
        self.name = name
        self.consecutive_failures = max(1, consecutive_failures)
        self.base_ejection_s = base_ejection_s
        self.max_ejection_s = max_ejection_s
        self._clock = clock
        self._replicas = [_Replica(u.rstrip("/")) for u in urls]
        self._by_url = {r.url: r for r in self._replicas}
        self._next = 0
        # Only a pool given one name (compose: `http://payments:8002`) follows DNS.
        self._dns_url = urls[0].rstrip("/") if len(urls) == 1 and _is_hostname(urls[0]) else None

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self._replicas]

    def pick(self) -> str:
        """The next replica not ejected, round robin."""
        now = self._clock()
        n = len(self._replicas)
        for _ in range(n):
            replica = self._replicas[self._next % n]
            self._next = (self._next + 1) % n
            if replica.ejected_until <= now:
                return replica.url
        # Only reachable after a DNS refresh dropped the healthy ones: use the soonest back.
        return min(self._replicas, key=lambda r: r.ejected_until).url

    def record(self, url: str, ok: bool) -> None:
        replica = self._by_url.get(url)
        if replica is None:
            return  # dropped by a DNS refresh while the call was in flight
        if ok:
            replica.failures = 0
            replica.probing = False
            replica.successes += 1
            # A streak as long as the trip threshold earns one step of growth back.
            if replica.successes >= self.consecutive_failures and replica.ejections > 0:
                replica.ejections -= 1
                replica.successes = 0
            return
        replica.successes = 0
        replica.failures += 1
        now = self._clock()
        if replica.ejected_until > now:
            return  # a late answer from before the ejection
        if replica.probing or replica.failures >= self.consecutive_failures:
            self._eject(replica, now)

    def _eject(self, replica: _Replica, now: float) -> None:
        healthy = sum(1 for r in self._replicas if r.ejected_until <= now)
        if healthy <= 1:
            return  # Envoy's max ejection percent, at its strictest: keep one serving
        interval = min(self.max_ejection_s, self.base_ejection_s * 2 ** min(replica.ejections, 30))
        replica.ejected_until = now + interval
        replica.ejections += 1
        replica.failures = 0
        replica.probing = True  # when it returns, one failure sends it back out
        REPLICA_EJECTIONS.labels(self.name, replica_label(replica.url)).inc()

    def snapshot(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [
            {
                "replica": r.url,
                "ejected": r.ejected_until > now,
                "seconds_until_return": round(max(0.0, r.ejected_until - now), 3),
                "consecutive_failures": r.failures,
                "ejections": r.ejections,
            }
            for r in self._replicas
        ]

    async def refresh_dns(self) -> None:
        """Re-resolve a one-name pool to every address of the name (compose `--scale`).

        Replicas that stay keep their state; on a resolver error the list is kept, since
        a stale list serves better than none.
        """
        if self._dns_url is None:
            return
        parts = urlsplit(self._dns_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        except OSError:
            return
        urls: list[str] = []
        for *_, sockaddr in infos:
            address = str(sockaddr[0])
            host = f"[{address}]" if ":" in address else address
            url = f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"
            if url not in urls:
                urls.append(url)
        if urls:
            self.replace(urls)

    def replace(self, urls: list[str]) -> None:
        self._replicas = [self._by_url.get(u) or _Replica(u) for u in urls]
        self._by_url = {r.url: r for r in self._replicas}
        self._next %= len(self._replicas)


def _is_hostname(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host != ""
    return False
