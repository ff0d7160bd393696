"""What the five chaoslab services share, in four groups:

- `resilience/`: the patterns around a call to another service (breaker, retry with a
  budget, bulkhead, replica ejection) and around a service's own door (load shedding),
  stacked in one fixed order by `resilience/policy.py`;
- `faults/`: fault injection: the catalogue of faults, where they live (Redis), how a
  service reads them and applies them to its requests, and the `/chaos/config` routes;
- `web/`: the frame of a service: the FastAPI app, settings, middleware, typed errors
  and their HTTP mapping, the inter-service HTTP client, logging and metrics;
- `data/`: PostgreSQL: the pool and migrations, the transactional outbox, idempotency
  keys and the shapes that cross service boundaries.

A service imports from here and never from another service: services talk over HTTP.
"""
