from services.common.web.settings import ServiceSettings


class Settings(ServiceSettings):
    service = "payments"
    default_port = 8002
    # Charges above this are declined: the way to see a real payment failure.
    charge_limit_cents: int = 500_000
    # One replica's card processor (services/payments/processor.py): its capacity is
    # connections / service time charges a second (from the profile).
    processor_connections: int
    processor_service_s: float
