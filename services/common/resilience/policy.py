"""Policy: every resilience pattern around one downstream's calls, in one fixed order.

    retry (outermost: budget, backoff or Retry-After, deadline)
      -> per attempt: pick replica -> breaker (per replica) -> bulkhead (per downstream)
         -> timeout = min(timeout_s, time left to the deadline) -> send

Each pattern can be switched off (`PATTERNS`, services/common/resilience/patterns.py):
a pattern that is off is not built, so its step is skipped and it emits nothing. With
`timeouts` off an attempt has no timeout at all and the deadline is ignored.

Each attempt shows in `downstream_requests_total{to_service,outcome}`,
`downstream_errors_total{to_service}` and `downstream_request_duration_seconds{to_service}`;
the patterns emit their own metrics (breaker_*, retry_*, bulkhead_*, replica_ejections_total).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from prometheus_client import Counter, Histogram
from pydantic import BaseModel, field_validator

from services.common.resilience import waited
from services.common.resilience.breaker import BREAKER_STATE, BreakerConfig, CircuitBreaker
from services.common.resilience.bulkhead import Bulkhead
from services.common.resilience.patterns import CALL_PATTERNS, PATTERNS, describe_patterns, parse_patterns
from services.common.resilience.replicas import ReplicaPool, replica_label
from services.common.resilience.retry import RetryBudget, backoff_s
from services.common.web import errors

DOWNSTREAM_REQUESTS = Counter(
    "downstream_requests_total",
    "Attempts at calling another service, by outcome "
    "(success, error, timeout, unreachable, breaker_open, bulkhead_full).",
    ["to_service", "outcome"],
)
DOWNSTREAM_ERRORS = Counter(
    "downstream_errors_total", "Attempts at calling another service that did not succeed.", ["to_service"]
)
DOWNSTREAM_DURATION = Histogram(
    "downstream_request_duration_seconds",
    "Duration of attempts sent to another service.",
    ["to_service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class Reply(Protocol):
    """What `send` returns: any HTTP answer, whatever its status."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


R = TypeVar("R", bound=Reply)


@dataclass(frozen=True, kw_only=True)
class PolicyConfig:
    """One downstream's resilience settings. `retries`, `timeouts`, `breakers` and
    `bulkheads` say which patterns run (a breaker's replica ejection goes with it).

    No field has a default: a service builds this from its settings (`policy_config`),
    whose defaults are the profile table of services/common/web/settings.py.
    """

    retries: bool
    timeouts: bool
    breakers: bool
    bulkheads: bool
    timeout_s: float
    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float
    retry_budget_ratio: float
    retry_budget_window_s: float
    retry_min_per_s: float
    bulkhead_max_concurrent: int
    bulkhead_max_wait_s: float
    breaker: BreakerConfig
    ejection_consecutive_failures: int
    ejection_base_s: float
    ejection_max_s: float

    @property
    def patterns_on(self) -> list[str]:
        """The patterns on around this downstream, in PATTERNS' order."""
        flags = {"retries": self.retries, "timeouts": self.timeouts, "breakers": self.breakers}
        flags["bulkheads"] = self.bulkheads
        return [name for name in PATTERNS if flags.get(name)]


class Policy:
    """Calls one downstream (one or several replicas) through the patterns above.

    Breakers: one named `downstream` when the pool has one replica, else one per replica
    named `downstream@host:port` (so one bad replica does not cut off the others).
    """

    def __init__(
        self,
        downstream: str,
        urls: list[str],
        config: PolicyConfig,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.downstream = downstream
        self.config = config
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self.replicas = ReplicaPool(
            downstream,
            urls,
            config.ejection_consecutive_failures,
            config.ejection_base_s,
            config.ejection_max_s,
            clock,
        )
        self._breakers: dict[str, CircuitBreaker] = {}
        self.on_new_breaker: Callable[[CircuitBreaker], None] | None = None
        self._sync_breakers()
        self.bulkhead = (
            Bulkhead(downstream, config.bulkhead_max_concurrent, config.bulkhead_max_wait_s)
            if config.bulkheads
            else None
        )
        self.budget = (
            RetryBudget(
                config.retry_budget_ratio,
                config.retry_budget_window_s,
                config.retry_min_per_s,
                clock,
                name=downstream,
            )
            if config.retries
            else None
        )
        self._outcomes = {
            o: DOWNSTREAM_REQUESTS.labels(downstream, o)
            for o in ("success", "error", "timeout", "unreachable", "breaker_open", "bulkhead_full")
        }
        self._errors = DOWNSTREAM_ERRORS.labels(downstream)
        self._duration = DOWNSTREAM_DURATION.labels(downstream)

    def _breaker_name(self, url: str) -> str:
        if len(self.replicas.urls) == 1:
            return self.downstream
        return f"{self.downstream}@{replica_label(url)}"

    def _sync_breakers(self) -> None:
        if not self.config.breakers:
            return
        old = self._breakers
        self._breakers = {}
        for url in self.replicas.urls:
            name = self._breaker_name(url)
            kept = old.get(url)
            if kept and kept.name == name:
                self._breakers[url] = kept
                continue
            self._breakers[url] = CircuitBreaker(name, self.config.breaker, self._clock)
            if self.on_new_breaker:
                self.on_new_breaker(self._breakers[url])
        live = {b.name for b in self._breakers.values()}
        for gone in {b.name for b in old.values()} - live:
            BREAKER_STATE.remove(gone)  # a replica that left must not keep an "open" gauge

    def watch_breakers(self, hook: Callable[[CircuitBreaker], None]) -> None:
        """Call `hook` on every breaker of this policy, now and as replicas come."""
        self.on_new_breaker = hook
        for breaker in self._breakers.values():
            hook(breaker)

    def set_replicas(self, urls: list[str]) -> None:
        """Take a new replica list (native `chaoslab scale`), keeping known replicas' state."""
        if set(urls) != set(self.replicas.urls):
            self.replicas.replace(urls)
            self._sync_breakers()

    async def refresh_replicas(self) -> None:
        """Re-resolve a one-hostname pool (compose) and give new replicas their breakers."""
        await self.replicas.refresh_dns()
        if self.config.breakers and set(self.replicas.urls) != set(self._breakers):
            self._sync_breakers()

    async def call(
        self,
        send: Callable[[str, float | None], Awaitable[R]],
        *,
        retryable: bool,
        deadline: float | None = None,
    ) -> R:
        """Call the downstream; `send(base_url, timeout_s)` makes one attempt (`timeout_s`
        None: no timeout, `timeouts` is off).

        Returns the last reply (any status: the caller decides what a 503 means), or
        raises the last typed error when no attempt got a reply. `retryable` is for
        idempotent calls or calls carrying an idempotency key; `deadline` is on this
        policy's clock, and ignored when `timeouts` is off.

        The whole call, retries and backoff included, counts as time the current
        request waited on others (`waited`, reported to its caller as Server-Timing).
        """
        started = self._clock()
        try:
            return await self._call(send, retryable, deadline)
        finally:
            waited.add(self._clock() - started)

    async def _call(
        self, send: Callable[[str, float | None], Awaitable[R]], retryable: bool, deadline: float | None
    ) -> R:
        if not self.config.timeouts:
            deadline = None
        budget = self.budget
        if budget is None:  # retries off: one attempt, whatever it gets
            return await self._attempt(send, deadline)
        budget.record_request()
        last_reply: R | None = None
        last_error: errors.DownstreamError | None = None
        attempt = 0
        while True:
            attempt += 1
            reply: R | None = None
            try:
                reply = await self._attempt(send, deadline)
            except (errors.BreakerOpen, errors.BulkheadFull) as exc:
                last_error = exc
                break  # every replica refused: retrying now would refuse again
            except (errors.DownstreamTimeout, errors.DownstreamUnreachable) as exc:
                last_error = exc
            else:
                last_reply = reply
                if reply.status != 429 and reply.status < 500:
                    return reply
            if not retryable or attempt >= self.config.max_attempts:
                break
            wait = backoff_s(attempt, self.config.backoff_base_s, self.config.backoff_max_s, self._rng)
            if reply is not None:
                wait = max(wait, _retry_after_s(reply.headers))
            if deadline is not None and self._clock() + wait >= deadline:
                break  # a retry that cannot finish in time only adds load
            if not budget.try_spend_retry():
                break
            await self._sleep(wait)
        if last_reply is not None:
            return last_reply
        assert last_error is not None
        raise last_error

    async def _attempt(self, send: Callable[[str, float | None], Awaitable[R]], deadline: float | None) -> R:
        self._time_left(deadline)  # out of time is the caller's problem, not a breaker failure
        url, breaker, permit = self._admit()
        if self.bulkhead is not None:
            try:
                await self.bulkhead.acquire()
            except errors.BulkheadFull:
                _release(breaker, permit)
                self._count("bulkhead_full")
                raise
        try:
            timeout_s = self._time_left(deadline)  # the bulkhead wait may have used it up
        except errors.DownstreamTimeout:
            _release(breaker, permit)
            self._release_bulkhead()
            raise
        started = self._clock()
        try:
            reply = await self._send(send, url, timeout_s)
        except errors.DownstreamTimeout:
            if timeout_s is not None and timeout_s < self.config.timeout_s:
                # Cut short by the caller's own deadline: the callee was not given its
                # time, so its breaker and its replica record learn nothing from it.
                _release(breaker, permit)
            else:
                self._learn(url, breaker, permit, self._clock() - started, failed=True)
            raise
        except errors.DownstreamUnreachable:
            self._learn(url, breaker, permit, self._clock() - started, failed=True)
            raise
        except BaseException:
            _release(breaker, permit)  # our bug or a cancellation: not the downstream's health
            raise
        finally:
            self._release_bulkhead()
        if reply.status == 429 or _answers_for_another(reply, self.downstream):
            # Overloaded is neither healthy nor broken; a 5xx that names another service
            # is that service's failure, judged by the breaker next to it.
            _release(breaker, permit)
        else:
            # Slow or not on the callee's own time: what it waited on others is judged
            # by its own breakers (waited.py).
            own_s = max(0.0, self._clock() - started - waited.reported_s(reply.headers))
            self._learn(url, breaker, permit, own_s, failed=reply.status >= 500)
        return reply

    def _learn(self, url: str, breaker: CircuitBreaker | None, permit: int, elapsed_s: float, *, failed: bool) -> None:
        """An attempt's outcome, for the replica's breaker and its ejection record."""
        if breaker is None:
            return  # breakers off: no breaker, no ejection
        breaker.record(elapsed_s, failed, permit)
        self.replicas.record(url, not failed)

    def _release_bulkhead(self) -> None:
        if self.bulkhead is not None:
            self.bulkhead.release()

    def _admit(self) -> tuple[str, CircuitBreaker | None, int]:
        """A replica whose breaker admits the call; open breakers are skipped, not retried.
        With breakers off, the next replica and no breaker."""
        if not self.config.breakers:
            return self.replicas.pick(), None, 0
        refusals: list[errors.BreakerOpen] = []
        for _ in range(len(self._breakers)):
            url = self.replicas.pick()
            breaker = self._breakers.get(url)
            if breaker is None:  # the pool was refreshed behind our back
                self._sync_breakers()
                breaker = self._breakers[url]
            try:
                return url, breaker, breaker.acquire()
            except errors.BreakerOpen as exc:
                refusals.append(exc)
        self._count("breaker_open")
        if len(refusals) == 1:
            raise refusals[0]
        soonest = min(r.retry_after_s or 0.0 for r in refusals)
        raise errors.BreakerOpen(
            self.downstream,
            f"the circuit breakers of all {len(refusals)} {self.downstream} replicas are open",
            retry_after_s=soonest,
        )

    def _time_left(self, deadline: float | None) -> float | None:
        """This attempt's timeout: the configured one, cut to what is left of the
        deadline; None (no timeout) when `timeouts` is off."""
        if not self.config.timeouts:
            return None
        if deadline is None:
            return self.config.timeout_s
        left = deadline - self._clock()
        if left <= 0:
            self._count("timeout")
            raise errors.DownstreamTimeout(
                self.downstream, f"the deadline passed before {self.downstream} could be called"
            )
        return min(self.config.timeout_s, left)

    async def _send(self, send: Callable[[str, float | None], Awaitable[R]], url: str, timeout_s: float | None) -> R:
        """One attempt under its timeout, with the downstream_* metrics; typed errors only."""
        started = self._clock()
        outcome: str | None = None  # stays None for our own bugs and cancellations
        try:
            async with asyncio.timeout(timeout_s):
                reply = await send(url, timeout_s)
            outcome = "error" if reply.status >= 500 or reply.status == 429 else "success"
            return reply
        except (TimeoutError, errors.DownstreamTimeout) as exc:
            outcome = "timeout"
            if isinstance(exc, errors.DownstreamTimeout):
                raise
            raise errors.DownstreamTimeout(
                self.downstream, f"{self.downstream} did not answer within {timeout_s or 0:.3f} s"
            ) from exc
        except (OSError, errors.DownstreamUnreachable) as exc:
            outcome = "unreachable"
            if isinstance(exc, errors.DownstreamUnreachable):
                raise
            raise errors.DownstreamUnreachable(self.downstream, f"{self.downstream}: {exc}") from exc
        finally:
            if outcome is not None:
                self._duration.observe(self._clock() - started)
                self._count(outcome)

    def _count(self, outcome: str) -> None:
        self._outcomes[outcome].inc()
        if outcome != "success":
            self._errors.inc()

    def snapshot(self) -> list[dict[str, Any]]:
        """One entry per replica: its breaker (state `off` when breakers are off) and its
        ejection state, and the patterns on, for `/status/breakers`."""
        ejection = {r["replica"]: r for r in self.replicas.snapshot()}
        urls = list(self._breakers) if self.config.breakers else self.replicas.urls
        return [
            {
                **(
                    self._breakers[url].snapshot()
                    if url in self._breakers
                    else {"name": self._breaker_name(url), **_NO_BREAKER}
                ),
                "downstream": self.downstream,
                "patterns": self.config.patterns_on,
                **ejection[url],
            }
            for url in urls
        ]


# What /status/breakers shows for a replica when breakers are off.
_NO_BREAKER: dict[str, Any] = {
    "state": "off",
    "failure_rate": 0.0,
    "slow_rate": 0.0,
    "calls": 0,
    "minimum_calls": 0,
    "seconds_until_half_open": 0.0,
}


def _release(breaker: CircuitBreaker | None, permit: int) -> None:
    """Give a breaker its permit back, learning nothing (no breaker: nothing to give back)."""
    if breaker is not None:
        breaker.release(permit)


def _answers_for_another(reply: Reply, callee: str) -> bool:
    """A 5xx whose `X-Failed-Dependency` names a service other than the callee: the
    callee is answering, for a failure further down. Its own database and the chaos
    store are part of it, and a 5xx naming nothing or them is the callee's own."""
    if reply.status < 500:
        return False
    named = reply.headers.get(errors.FAILED_DEPENDENCY)
    return named is not None and named not in (callee, errors.DATABASE, errors.CHAOS_STORE)


def _retry_after_s(headers: Mapping[str, str]) -> float:
    """Seconds asked for by a `Retry-After` header (delta-seconds or HTTP-date), else 0."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())  # an HTTP-date is wall-clock time


class ResilienceSettings(BaseModel):
    """The resilience fields of a service's settings (environment: `PATTERNS=retries,timeouts`,
    `RESILIENCE=off`, `RESILIENCE_OFF_FOR=payments,inventory`, `BREAKER_WAIT_OPEN_S=5`, ...).

    `patterns` says which patterns run (services/common/resilience/patterns.py);
    `RESILIENCE=off` switches off the patterns around calls (retries, breakers,
    bulkheads) for every downstream, `RESILIENCE_OFF_FOR` for the named ones.
    The thresholds have no default here: a service's settings fill them from the
    profile table (PROFILE_DEFAULTS in services/common/web/settings.py).
    """

    patterns: str
    resilience: Literal["on", "off"] = "on"
    resilience_off_for: str = ""
    breaker_window_type: Literal["count", "time"]
    breaker_window_size: int
    breaker_minimum_calls: int
    breaker_failure_rate: float
    breaker_slow_call_s: float
    breaker_slow_rate: float
    breaker_wait_open_s: float
    breaker_half_open_calls: int
    retry_max_attempts: int
    retry_backoff_base_s: float
    retry_backoff_max_s: float
    retry_budget_ratio: float
    retry_budget_window_s: float
    retry_min_per_s: float
    bulkhead_max_concurrent: int
    bulkhead_max_wait_s: float
    ejection_consecutive_failures: int
    ejection_base_s: float
    ejection_max_s: float

    @field_validator("patterns")
    @classmethod
    def _known_patterns(cls, value: str) -> str:
        return describe_patterns(parse_patterns(value))  # raises, naming the patterns, when one is unknown

    @property
    def patterns_on(self) -> frozenset[str]:
        """The patterns this service runs (before RESILIENCE=off and RESILIENCE_OFF_FOR)."""
        return parse_patterns(self.patterns)

    def pattern_on(self, name: str) -> bool:
        """Whether pattern `name` (one of PATTERNS) runs in this service."""
        assert name in PATTERNS, name
        return name in self.patterns_on


def policy_config(settings: ResilienceSettings, downstream: str, timeout_s: float) -> PolicyConfig:
    """The PolicyConfig for `downstream`: the settings' fields, one for one; the call
    patterns off when RESILIENCE=off or RESILIENCE_OFF_FOR names `downstream`."""
    off_for = {d.strip() for d in settings.resilience_off_for.split(",")}
    on = settings.patterns_on
    if settings.resilience == "off" or downstream in off_for:
        on = on - CALL_PATTERNS
    return PolicyConfig(
        retries="retries" in on,
        timeouts="timeouts" in on,
        breakers="breakers" in on,
        bulkheads="bulkheads" in on,
        timeout_s=timeout_s,
        max_attempts=settings.retry_max_attempts,
        backoff_base_s=settings.retry_backoff_base_s,
        backoff_max_s=settings.retry_backoff_max_s,
        retry_budget_ratio=settings.retry_budget_ratio,
        retry_budget_window_s=settings.retry_budget_window_s,
        retry_min_per_s=settings.retry_min_per_s,
        bulkhead_max_concurrent=settings.bulkhead_max_concurrent,
        bulkhead_max_wait_s=settings.bulkhead_max_wait_s,
        breaker=BreakerConfig(
            window_type=settings.breaker_window_type,
            window_size=settings.breaker_window_size,
            minimum_calls=settings.breaker_minimum_calls,
            failure_rate_threshold=settings.breaker_failure_rate,
            slow_call_duration_s=settings.breaker_slow_call_s,
            slow_call_rate_threshold=settings.breaker_slow_rate,
            wait_in_open_s=settings.breaker_wait_open_s,
            permitted_calls_in_half_open=settings.breaker_half_open_calls,
        ),
        ejection_consecutive_failures=settings.ejection_consecutive_failures,
        ejection_base_s=settings.ejection_base_s,
        ejection_max_s=settings.ejection_max_s,
    )
