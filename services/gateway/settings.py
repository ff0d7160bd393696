from services.common.web.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "gateway"
    default_port = 8000
    orders_url: str = "http://127.0.0.1:8001"
    max_inflight: int = 128
    # Requests per second per client (X-Client-ID, else the address); 0: no limit.
    rate_limit_rps: float = 0.0
    # Every admitted request calls orders: the bulkhead must not shed before the gate does.
    bulkhead_max_concurrent: int | None = 128
