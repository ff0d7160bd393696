from services.common.web.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "notifications"
    default_port = 8004
