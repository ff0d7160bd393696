"""Where faults live: Redis keys `chaos:<service>:<fault>` that expire on their own.

Every write goes through here (the services' HTTP API and the `chaoslab chaos` command
alike): the value is validated against the catalogue, set with a TTL, and recorded in
the `chaos:audit` stream (who, what, when, value). The runbook scripts write the same
keys with redis-cli and the same audit entries.
"""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from services.common.faults.catalogue import CATALOGUE, DEFAULT_TTL_S, MAX_TTL_S, lookup, parse_key, redis_key
from services.common.web.errors import CHAOS_STORE, BadInput, DependencyUnavailable

AUDIT_STREAM = "chaos:audit"
AUDIT_MAXLEN = 10_000


@dataclass(frozen=True)
class ActiveFault:
    service: str
    fault: str
    value: Any
    ttl_s: float | None  # None: set to persist (asked for explicitly)
    route: str | None
    replica: int | None
    key: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_who() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return "unknown"


def connect(url: str) -> aioredis.Redis:
    # A pooled connection that Redis or the network dropped fails on its next use: one
    # immediate retry on a fresh connection, so only a Redis that is really gone is an error.
    return aioredis.from_url(
        url,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        decode_responses=True,
        health_check_interval=0,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


class ChaosStore:
    """Set, list and clear faults in Redis; RedisError becomes a clear 503."""

    def __init__(self, redis: aioredis.Redis, profile: str = "training") -> None:
        self.redis = redis
        self.default_ttl_s = DEFAULT_TTL_S.get(profile, DEFAULT_TTL_S["training"])

    async def set(
        self,
        service: str,
        fault: str,
        raw_value: Any,
        *,
        ttl_s: float | None = None,
        persist: bool = False,
        route: str | None = None,
        replica: int | None = None,
        who: str | None = None,
    ) -> ActiveFault:
        definition = lookup(fault)
        value = definition.parse(raw_value, service)
        if route is not None and not route.startswith("/"):
            raise BadInput(f"route must be a path starting with '/', not {route!r}", code="fault_route_invalid")
        if replica is not None and not 0 <= replica <= 64:
            raise BadInput(f"replica must be between 0 and 64, not {replica}", code="fault_replica_invalid")
        if persist:
            ttl = None
        else:
            ttl = self.default_ttl_s if ttl_s is None else ttl_s
            if not 1 <= ttl <= MAX_TTL_S:
                raise BadInput(
                    f"ttl_s must be between 1 and {MAX_TTL_S} seconds; {ttl} is out of range "
                    "(set persist to keep a fault until it is cleared)",
                    code="fault_ttl_invalid",
                )
        key = redis_key(service, fault, route=route, replica=replica)
        encoded = definition.encode(value)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, encoded, px=None if ttl is None else int(ttl * 1000))
                pipe.xadd(
                    AUDIT_STREAM,
                    {
                        "action": "set",
                        "key": key,
                        "value": encoded,
                        "ttl_s": "persist" if ttl is None else str(ttl),
                        "who": who or default_who(),
                        "at": f"{time.time():.3f}",
                    },
                    maxlen=AUDIT_MAXLEN,
                    approximate=True,
                )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unreachable(exc, retry_after_s=1) from exc
        return ActiveFault(service, fault, value, ttl, route, replica, key)

    async def active(self, service: str | None = None) -> list[ActiveFault]:
        """Every fault set now (for one service, or all), with its remaining TTL."""
        try:
            found_keys = sorted([k async for k in self.redis.scan_iter(match=f"chaos:{service or '*'}:*", count=500)])
            parsed = {k: p for k in found_keys if (p := parse_key(k))}
            keys = list(parsed)
            if not keys:
                return []
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                    pipe.pttl(key)
                answers = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unreachable(exc, retry_after_s=1) from exc
        found = []
        for i, key in enumerate(keys):
            raw, pttl = answers[2 * i], answers[2 * i + 1]
            svc, fault, replica, route = parsed[key]
            if raw is None or fault not in CATALOGUE:
                continue
            try:
                value = lookup(fault).parse(raw, svc)
            except BadInput:
                continue  # a malformed value written by hand is ignored, not applied
            found.append(ActiveFault(svc, fault, value, None if pttl < 0 else pttl / 1000, route, replica, key))
        return found

    async def clear(self, service: str | None = None, fault: str | None = None, who: str | None = None) -> int:
        """Remove faults (all, one service's, or one fault of it); returns how many."""
        if fault is not None:
            lookup(fault)
        try:
            victims = [f.key for f in await self.active(service) if fault in (None, f.fault)]
            if not victims:
                return 0
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(*victims)
                for key in victims:
                    pipe.xadd(
                        AUDIT_STREAM,
                        {
                            "action": "clear",
                            "key": key,
                            "value": "",
                            "ttl_s": "",
                            "who": who or default_who(),
                            "at": f"{time.time():.3f}",
                        },
                        maxlen=AUDIT_MAXLEN,
                        approximate=True,
                    )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise _unreachable(exc, retry_after_s=1) from exc
        return len(victims)

    async def audit(self, limit: int = 50) -> list[dict[str, str]]:
        try:
            entries = await self.redis.xrevrange(AUDIT_STREAM, count=limit)
        except (RedisError, OSError) as exc:
            raise _unreachable(exc) from exc
        # No stream yet reads as no entries; with decode_responses every id and field is a str.
        return [
            {"id": _text(entry_id), **{_text(k): _text(v) for k, v in (fields or {}).items()}}
            for entry_id, fields in entries or []
        ]


def _unreachable(exc: Exception, retry_after_s: float | None = None) -> DependencyUnavailable:
    """The 503 for Redis failing under a chaos-store call: it names redis."""
    return DependencyUnavailable(
        f"the chaos store (Redis) is unreachable: {exc}", dependency=CHAOS_STORE, retry_after_s=retry_after_s
    )


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""
