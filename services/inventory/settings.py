from services.common.web.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "inventory"
    default_port = 8003
    seed_stock: int = 1_000_000
