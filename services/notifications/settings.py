from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "notifications"
    default_port = 8004
