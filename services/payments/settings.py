from services.common.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "payments"
    default_port = 8002
    # Charges above this are declined: the way to see a real payment failure.
    charge_limit_cents: int = 500_000
