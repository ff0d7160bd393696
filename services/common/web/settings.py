"""Configuration: one settings object per service, read from the environment.

`CHAOSLAB_PROFILE` picks the time scales (DESIGN §5): `training` keeps realistic
intervals (breaker open for 30 s, sweeper every 30 s), `ci` shrinks them so the drill
suite runs in minutes. A value set in the environment always wins over the profile.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.resilience.policy import ResilienceSettings

Profile = Literal["training", "ci"]

# Time scales and limits that change with the profile; field name -> value.
PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {
    "training": {
        "request_timeout_s": 10.0,
        "downstream_timeout_s": 3.0,
        "sweeper_interval_s": 30.0,
        "order_lease_s": 15.0,
        "relay_interval_s": 0.5,
        "outbox_retention_s": 3600.0,
        "chaos_refresh_s": 1.0,
        "crashloop_after_s": 20.0,
        # payments' card processor: 320 charges/s per replica, never the limit on 2 cores.
        "processor_connections": 16,
        "processor_service_s": 0.05,
    },
    "ci": {
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
    },
}


class ServiceSettings(BaseSettings, ResilienceSettings):
    """What every service reads (the resilience thresholds included). Subclasses add
    their own fields and set `service`."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)
    service: ClassVar[str] = ""
    default_port: ClassVar[int] = 0

    chaoslab_profile: Profile = "training"
    host: str = "127.0.0.1"
    port: int = 0
    replica: int = 0
    database_url: str = "postgresql://chaoslab@127.0.0.1:5432/chaoslab"
    db_pool_min: int = 2
    db_pool_max: int = 10
    redis_url: str = "redis://127.0.0.1:6379/0"
    chaos_token: str = ""
    log_level: str = "info"
    log_json: bool = True
    http_client: Literal["aiohttp", "httpx"] = "aiohttp"
    max_body_bytes: int = 65536
    # Requests in flight past this are shed with 429 + Retry-After (0: no limit).
    max_inflight: int = 0
    db_acquire_timeout_s: float = 2.0
    chaos_refresh_s: float = 0.0
    # Under the crashloop fault a process lives this long: past supervision's start
    # check, and long enough for a scrape to see each life.
    crashloop_after_s: float = 0.0
    # Replicas of this service open their breakers together (services/common/resilience/breaker_sync.py).
    breaker_shared: bool = False
    # Native stacks: a directory with one file per downstream listing its replicas' URLs.
    replicas_dir: str = ""
    request_timeout_s: float = 0.0
    downstream_timeout_s: float = 0.0

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        profile = data.get("chaoslab_profile") or "training"
        defaults = PROFILE_DEFAULTS.get(profile, {})
        for name, value in defaults.items():
            if name in cls.model_fields and data.get(name) in (None, ""):
                data[name] = value
        if not data.get("port"):
            data["port"] = cls.default_port
        return data

    @property
    def profile(self) -> Profile:
        return self.chaoslab_profile
