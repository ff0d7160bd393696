from services.common.web.settings import ServiceSettings


class Settings(ServiceSettings):
    """The gateway's `max_inflight` and bulkhead come from the profile table
    (`gateway.*` in services/common/web/settings.py)."""

    service = "gateway"
    default_port = 8000
    orders_url: str = "http://127.0.0.1:8001"
    # Requests per second per client (from the profile; 0: no limit).
    rate_limit_rps: float
