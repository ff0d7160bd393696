from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "gateway"
    default_port = 8000
    orders_url: str = "http://127.0.0.1:8001"
    # Requests in flight past this are shed with 429 (0: no limit).
    max_inflight: int = 256
    # Every admitted request calls orders: the bulkhead must not shed before the gate does.
    bulkhead_max_concurrent: int | None = 256
