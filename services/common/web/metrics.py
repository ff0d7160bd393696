"""Prometheus metrics shared by every service (names fixed by the contracts in docs/contracts.md).

Patterns that own a metric (breaker, bulkhead, retry, backpressure) define it in their
own module; this one holds what the request path and the order flow emit.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

# 1 ms to 10 s, dense where the SLOs sit (50-500 ms).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

http_requests_total = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["service", "route", "method", "status"],
)
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["service", "route", "method"],
    buckets=LATENCY_BUCKETS,
)
orders_total = Counter("orders_total", "Orders that reached a final status.", ["status"])
idempotency_conflicts_total = Counter(
    "idempotency_conflicts_total",
    "Requests that met an idempotency key already in use (replayed, waited or refused).",
    ["kind"],
)
outbox_pending = Gauge("outbox_pending", "Outbox events not yet delivered.", ["destination"])
outbox_oldest_age_seconds = Gauge(
    "outbox_oldest_age_seconds", "Age of the oldest undelivered outbox event.", ["destination"]
)
outbox_delivered_total = Counter(
    "outbox_delivered_total", "Outbox events acknowledged by their destination.", ["destination"]
)
outbox_failed_total = Counter(
    "outbox_delivery_failures_total", "Outbox delivery attempts that failed.", ["destination"]
)
outbox_dead_letters = Gauge(
    "outbox_dead_letters", "Outbox events moved to the dead letters: their destination refused them.", ["destination"]
)
outbox_dead_lettered_total = Counter(
    "outbox_dead_lettered_total", "Outbox events moved to the dead letters by this process.", ["destination"]
)
events_sent_directly_total = Counter(
    "events_sent_directly_total",
    "Events sent once without the outbox (the outbox pattern off), by outcome: delivered or lost.",
    ["destination", "outcome"],
)
orders_resumed_total = Counter("orders_resumed_total", "Pending orders picked up again by the sweeper or a retry.")
# Labelled by schema so that a service without a database (the gateway) exports none:
# an unlabelled gauge would read 0, "database down", for ever.
db_up = Gauge("db_up", "1 when the service's database answers, else 0.", ["schema"])
db_pool_size = Gauge("db_pool_size", "Connections open in the service's database pool.", ["schema"])
db_pool_in_use = Gauge("db_pool_in_use", "Pool connections in use.", ["schema"])
db_pool_waiting = Gauge("db_pool_waiting", "Requests waiting for a pool connection.", ["schema"])
db_pool_timeouts_total = Counter(
    "db_pool_timeouts_total", "Requests refused because no pool connection freed up in time.", ["schema"]
)
rate_limited_total = Counter(
    "rate_limited_total", "Requests refused by the gateway's per-client rate limit.", ["client"]
)


def render() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
