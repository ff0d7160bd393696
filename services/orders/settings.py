from services.common.web.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "orders"
    default_port = 8001
    inventory_url: str = "http://127.0.0.1:8003"
    payments_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8004"
    # From the profile (PROFILE_DEFAULTS in services/common/web/settings.py).
    sweeper_interval_s: float
    order_lease_s: float
    relay_interval_s: float
    outbox_retention_s: float
    outbox_max_attempts: int
