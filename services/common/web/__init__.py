"""The frame every service is built on: the FastAPI app and its wiring, settings read
from the environment, the request middleware, typed errors mapped to HTTP in one place,
the one HTTP client between services, structured logs and Prometheus metrics."""
