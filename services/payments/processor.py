"""The card processor: every new charge is authorised over one of this replica's few
connections to the acquirer, each busy for a fixed service time. A replica's capacity is
connections / service time; past it charges queue for a connection (all of them busy,
latency climbing), and only more replicas, each with its own connections, add capacity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import Gauge, Histogram

from services.common.web.errors import DeadlineExceeded

CONNECTIONS = Gauge("payments_processor_connections", "Connections to the card processor (this replica's capacity).")
IN_USE = Gauge("payments_processor_connections_in_use", "Connections busy authorising a charge.")
WAITING = Gauge("payments_processor_waiting", "Charges queued for a free processor connection (saturation).")
WAIT = Histogram(
    "payments_processor_wait_seconds",
    "Time a charge waited for a free processor connection.",
    buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class Processor:
    def __init__(self, connections: int, service_time_s: float) -> None:
        self.service_time_s = service_time_s
        self._connections = asyncio.Semaphore(connections)
        CONNECTIONS.set(connections)

    async def authorise(self, still_wanted: Callable[[], bool]) -> None:
        """Hold a connection for the service time. A caller that gave up while queueing
        gets its connection back at once: no capacity is spent on an answer nobody reads."""
        with WAIT.time(), WAITING.track_inprogress():
            await self._connections.acquire()
        try:
            if not still_wanted():
                raise DeadlineExceeded("the caller's deadline passed while the charge queued for the processor")
            IN_USE.inc()
            try:
                await asyncio.sleep(self.service_time_s)
            finally:
                IN_USE.dec()
        finally:
            self._connections.release()
