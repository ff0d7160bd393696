"""Configuration: one settings object per service, read from the environment.

`CHAOSLAB_PROFILE` picks a column of PROFILE_DEFAULTS, the one place where the time
scales and the resilience thresholds get their default values: `training` keeps
realistic intervals (breaker open for 30 s, sweeper every 30 s), `ci` shrinks them so
the drill suite runs in minutes. A value set in the environment always wins over the
profile. docs/architecture.md describes the profiles and what each pattern does.

The rule for a default: a time scale or a resilience knob (breaker, retry, bulkhead,
replica ejection, load shedding, rate limit) has its default in PROFILE_DEFAULTS, and
the settings field that holds it has none; when one service needs a value of its own,
the table says so under `<service>.<field>` (the gateway's larger bulkhead). Any other
field (addresses, pool sizes, business limits) has its default where it is declared.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.resilience.policy import ResilienceSettings

Profile = Literal["training", "ci"]
DEFAULT_PROFILE: Profile = "training"

_TRAINING: dict[str, Any] = {
    # Time scales.
    "request_timeout_s": 10.0,
    "downstream_timeout_s": 3.0,  # one call to another service (the policy's timeout)
    "db_acquire_timeout_s": 2.0,
    "sweeper_interval_s": 30.0,
    "order_lease_s": 15.0,
    "relay_interval_s": 0.5,
    "outbox_retention_s": 3600.0,
    # Refusals of one outbox event (5xx, 408/409/429 answers to it alone) before it goes to
    # the dead letters; a permanent 4xx sends it there at once, an outage never counts.
    # Refused events back off up to 20 relay intervals: 50 is minutes of refusals.
    "outbox_max_attempts": 50,
    "chaos_refresh_s": 1.0,
    # Under the crashloop fault a process lives this long: past supervision's start
    # check, and long enough for a scrape to see each life.
    "crashloop_after_s": 20.0,
    # payments' card processor: 1280 charges/s per replica, never the limit on 2 cores.
    # (16 connections, 320 charges/s, were: at 32 clients the stack answers 300 orders/s,
    # and charges queued for a connection, 14 ms on average.)
    "processor_connections": 64,
    "processor_service_s": 0.05,
    # The resilience patterns that run (services/common/resilience/patterns.py): all of
    # them. `chaoslab compare` runs stacks with fewer, to show what each one buys.
    "patterns": "all",
    # Circuit breaker (services/common/resilience/breaker.py). A window of 100 calls
    # (resilience4j's default) judges 20 % errors by their mean, not by a run of bad luck:
    # over 20 calls, 10 failures at p=0.2 come once every few minutes of load; over 100,
    # 50 never do. At 90 % errors the 50 minimum calls still come within a second of load.
    # Ten half-open trials: three re-open a breaker on 20 % errors about one time in ten.
    "breaker_window_type": "count",
    "breaker_window_size": 100,
    "breaker_minimum_calls": 50,
    "breaker_failure_rate": 50.0,
    "breaker_slow_call_s": 2.0,
    "breaker_slow_rate": 80.0,
    # The gateway's one breaker guards every route of orders. It judges orders on orders'
    # own time (what orders waited on inventory and payments taken off: resilience/
    # waited.py), so a leaf that saturates (cannot-scale) trips the breaker next to it.
    # Its threshold stays long: on a saturated machine orders' own time is its turn on
    # the CPU, and a breaker opened by overload alone refuses reads with 503 naming
    # orders, which is up.
    "gateway.breaker_slow_call_s": 6.0,
    "breaker_wait_open_s": 30.0,
    "breaker_half_open_calls": 10,
    # Retries and their budget (services/common/resilience/retry.py).
    "retry_max_attempts": 3,
    "retry_backoff_base_s": 0.1,
    "retry_backoff_max_s": 2.0,
    "retry_budget_ratio": 0.25,
    "retry_budget_window_s": 10.0,
    "retry_min_per_s": 1.0,
    # Bulkhead per downstream: below the gateway's door (88; ci 128), so a downstream that
    # holds every call it gets (inventory-lock) cannot take all of orders' capacity,
    # while ordinary peaks pass.
    "bulkhead_max_concurrent": 64,
    "bulkhead_max_wait_s": 0.1,
    # Every request the gateway admits calls orders: its bulkhead must not shed before
    # its own door does.
    "gateway.bulkhead_max_concurrent": 128,
    # Replica ejection (services/common/resilience/replicas.py).
    "ejection_consecutive_failures": 5,
    "ejection_base_s": 10.0,
    "ejection_max_s": 120.0,
    # Load shedding: requests in flight past this get 429 + Retry-After (0: the service has
    # no door, static or adaptive). The gateway's door: under the spike (500 users,
    # bench/overload.py, 2 cores) every door from 80 to 128 took the same 259-266 orders/s,
    # and the admitted p99 followed the door: 445 ms at 80, 463 at 88, 513 at 96, 734-818
    # at 128; at 64 the processor's wait left the CPU idle (245 orders/s).
    "max_inflight": 0,
    "gateway.max_inflight": 88,
    # Admission at a service's door (services/common/resilience/backpressure.py):
    # `static` sheds past max_inflight; `adaptive` learns the limit from the latency of the
    # requests it admits (services/common/resilience/adaptive.py), max_inflight staying its
    # ceiling. Adaptive stays opt-in: it sheds the step load of cannot-scale before payments
    # saturates, so that incident's alert never fires.
    # `admission_deadline_aware`: refuse at once (504) a request whose deadline leaves less
    # than the usual latency.
    "admission": "static",
    # `latency` keeps the admitted requests' 90th percentile within a target
    # (services/common/resilience/latency_target.py), max_inflight its ceiling. The
    # gateway's door: under the spike (bench/overload.py, training) the static door of 88
    # let the admitted p99 reach 514-561 ms on a busy day, where this kept 438 ms for the
    # same goodput; the training drills of a surge, a step load past payments, a slow
    # payments and lock contention pass through it.
    "gateway.admission": "latency",
    "admission_latency_target_s": 0.35,
    "admission_deadline_aware": False,
    # How long a request past the adaptive limit may wait for a slot before its 429 (0: it
    # is refused at once). Off: under the spike a 25 ms wait made the gateway's 429 p99
    # 208 ms (its timer fires as late as a saturated event loop runs it) against 6 ms
    # refused at once, for the same goodput; a steady load never queued (probes run only
    # when the door is busy).
    "admission_queue_wait_s": 0.0,
    # The Retry-After of a shed request: how long a client waits before coming back;
    # with the jitter, every other one says a second more (shed clients come back spread).
    # It grows while the door sheds more than a quarter of what it admits, up to the maximum
    # (services/common/resilience/shed_pacing.py): under the spike, 1 s sent two shed
    # clients back for every order taken. Idle connections stay open 5 s past the maximum
    # (services/__main__.py), so a client that waits as told finds its connection.
    "admission_retry_after_s": 1.0,
    "admission_retry_after_max_s": 10.0,
    "admission_retry_after_jitter": False,
    # The adaptive limit: starts at `initial` (until the first probe under load it acts as
    # a static limit), stays within min-max; a window whose mean latency passes
    # min_rtt x tolerance shrinks it. Its maximum is orders' bulkhead (64): every request
    # the gateway admits makes one call at a time to inventory or payments, so the door
    # keeps orders below its bulkheads. The minimum is Envoy's (3): a handful of clients
    # is never cut below.
    "adaptive_initial": 64,
    "adaptive_min_limit": 3,
    "adaptive_max_limit": 64,
    "adaptive_tolerance": 2.5,
    "adaptive_probe_interval_s": 30.0,
    "adaptive_probe_samples": 10,
    # Growth per window without queueing: half of sqrt(limit), so that after a surge the
    # limit is back where the remaining clients need it within seconds.
    "adaptive_smoothing": 0.5,
    # How long the previous service credential is still accepted after a rotation
    # (services/common/web/credentials.py): longer than any caller takes to reload it.
    "service_token_grace_s": 30.0,
    # The gateway's requests per second per client (X-Client-ID, else the address); 0: no limit.
    "rate_limit_rps": 0.0,
}

# Field name (or `<service>.<field>`) -> default value, per CHAOSLAB_PROFILE.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "training": _TRAINING,
    # Training with the time scales 5-10x smaller, so the drill suite runs in CI in minutes.
    "ci": {
        **_TRAINING,
        "request_timeout_s": 5.0,
        "downstream_timeout_s": 1.5,
        "sweeper_interval_s": 2.0,
        "order_lease_s": 6.0,
        "relay_interval_s": 0.1,
        "outbox_retention_s": 120.0,
        "chaos_refresh_s": 0.5,
        "crashloop_after_s": 2.0,
        # 30 charges/s per replica: steady drill load uses a third; a step load passes it.
        "processor_connections": 3,
        "processor_service_s": 0.1,
        # The ci drills' load is a few orders/s: a smaller window still judges within seconds.
        "breaker_window_size": 50,
        "breaker_minimum_calls": 20,
        "breaker_slow_call_s": 1.0,
        "gateway.breaker_slow_call_s": 3.0,
        "breaker_wait_open_s": 3.0,
        "retry_backoff_base_s": 0.02,
        "retry_backoff_max_s": 0.5,
        "retry_budget_window_s": 2.0,
        "bulkhead_max_wait_s": 0.02,
        # The ci drills' surge and their capacity alerts were measured against this door,
        # a static one.
        "gateway.max_inflight": 128,
        "gateway.admission": "static",
        "ejection_base_s": 1.0,
        "ejection_max_s": 10.0,
        "adaptive_probe_interval_s": 10.0,
        "service_token_grace_s": 10.0,
    },
}


def profile_defaults(profile: str, service: str = "") -> dict[str, Any]:
    """The defaults of `profile` as field name -> value, with `service`'s own values
    applied; raises ValueError naming the known profiles when `profile` is not one."""
    try:
        table = PROFILE_DEFAULTS[profile]
    except KeyError:
        known = ", ".join(PROFILE_DEFAULTS)
        raise ValueError(f"CHAOSLAB_PROFILE={profile!r} is not a profile; use one of: {known}") from None
    values = {name: value for name, value in table.items() if "." not in name}
    prefix = f"{service}."
    values.update({name.removeprefix(prefix): v for name, v in table.items() if service and name.startswith(prefix)})
    return values


class ServiceSettings(BaseSettings, ResilienceSettings):
    """What every service reads (the resilience thresholds included). Subclasses add
    their own fields and set `service`."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)
    service: ClassVar[str] = ""
    default_port: ClassVar[int] = 0

    chaoslab_profile: Profile = DEFAULT_PROFILE
    host: str = "127.0.0.1"
    port: int = 0
    replica: int = 0
    database_url: str = "postgresql://chaoslab@127.0.0.1:5432/chaoslab"
    db_pool_min: int = 2
    db_pool_max: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    chaos_token: str = ""
    # The service credential (docs/security.md): SERVICE_TOKEN_FILE, which a native stack's
    # `chaoslab secret rotate` rewrites, else SERVICE_TOKEN (and SERVICE_TOKEN_PREVIOUS
    # during a rolling restart). Secret: never in a repr, a log line or an error body.
    service_token: SecretStr = SecretStr("")
    service_token_previous: SecretStr = SecretStr("")
    service_token_file: str = ""
    log_level: str = "info"
    log_json: bool = True
    http_client: Literal["aiohttp", "httpx"] = "aiohttp"
    max_body_bytes: int = 65536
    # Replicas of this service open their breakers together (services/common/resilience/breaker_sync.py).
    breaker_shared: bool = False
    # Native stacks: a directory with one file per downstream listing its replicas' URLs.
    replicas_dir: str = ""
    # From the profile (PROFILE_DEFAULTS), unless the environment sets them.
    max_inflight: int
    admission: Literal["static", "adaptive", "latency"]
    admission_latency_target_s: float
    admission_deadline_aware: bool
    admission_queue_wait_s: float
    admission_retry_after_s: float
    admission_retry_after_jitter: bool
    admission_retry_after_max_s: float
    adaptive_initial: int
    adaptive_min_limit: int
    adaptive_max_limit: int
    adaptive_tolerance: float
    adaptive_probe_interval_s: float
    adaptive_probe_samples: int
    adaptive_smoothing: float
    db_acquire_timeout_s: float
    chaos_refresh_s: float
    crashloop_after_s: float
    request_timeout_s: float
    downstream_timeout_s: float
    service_token_grace_s: float

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        defaults = profile_defaults(data.get("chaoslab_profile") or DEFAULT_PROFILE, cls.service)
        for name, value in defaults.items():
            if name in cls.model_fields and data.get(name) in (None, ""):
                data[name] = value
        if not data.get("port"):
            data["port"] = cls.default_port
        return data

    @property
    def profile(self) -> Profile:
        return self.chaoslab_profile
