from services.common.web.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "orders"
    default_port = 8001
    inventory_url: str = "http://127.0.0.1:8003"
    payments_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8004"
    # Profile-scaled (services/common/web/settings.py).
    sweeper_interval_s: float = 0.0
    order_lease_s: float = 0.0
    relay_interval_s: float = 0.0
    outbox_retention_s: float = 0.0
