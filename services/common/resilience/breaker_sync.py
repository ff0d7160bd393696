"""Shared breaker state: replicas of one caller open a breaker together.

Off by default (`BREAKER_SHARED=true` turns it on). A replica whose breaker trips on
its own evidence writes `breaker:<caller>:<breaker>` to Redis with the wait in open as
TTL; every replica reads those keys each refresh and opens its own breaker for the
time left, so the other replicas stop calling a failing downstream without first
paying for their own window of failures. Without Redis each breaker stands alone.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from services.common.resilience.breaker import CircuitBreaker
from services.common.web import logging as log

_logger = log.get_logger("breaker_sync")


class SharedBreakers:
    def __init__(self, redis, caller: str, refresh_s: float) -> None:
        self.redis, self.caller, self.refresh_s = redis, caller, refresh_s
        self._breakers: dict[str, CircuitBreaker] = {}
        self._pending: set[asyncio.Task] = set()

    def key(self, breaker: CircuitBreaker) -> str:
        return f"breaker:{self.caller}:{breaker.name}"

    def watch(self, breaker: CircuitBreaker) -> None:
        self._breakers[breaker.name] = breaker
        breaker.on_trip = self._publish

    def _publish(self, breaker: CircuitBreaker) -> None:
        task = asyncio.get_running_loop().create_task(self._write(breaker))
        self._pending.add(task)  # keep a reference until it is done
        task.add_done_callback(self._pending.discard)

    async def _write(self, breaker: CircuitBreaker) -> None:
        ttl_ms = max(1, int(breaker.config.wait_in_open_s * 1000))
        try:
            await self.redis.set(self.key(breaker), "open", px=ttl_ms, nx=True)
            _logger.info("breaker.shared_open", downstream=breaker.name, ttl_ms=ttl_ms)
        except (RedisError, OSError) as exc:
            _logger.warning("breaker.share_failed", downstream=breaker.name, error=str(exc))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            breakers = list(self._breakers.values())
            if not breakers:
                continue
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for breaker in breakers:
                        pipe.pttl(self.key(breaker))
                    left = await pipe.execute()
            except (RedisError, OSError):
                continue  # no shared state: each breaker decides alone
            for breaker, ms in zip(breakers, left, strict=True):
                if ms and ms > 0:
                    breaker.force_open(ms / 1000)
