"""PostgreSQL: one asyncpg pool and one schema per service with its migrations (`db.py`),
the transactional outbox and its relay (`outbox.py`), idempotency keys and the request
shapes that cross service boundaries (`contracts.py`)."""
