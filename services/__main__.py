"""Run one service: `python -m services <gateway|orders|payments|inventory|notifications>`.

Host, port and everything else come from the environment (each service's Settings);
`REPLICA=auto` (compose) takes the replica number from the container's name.
One image and one command for all five; the name picks which.
"""

from __future__ import annotations

import gc
import importlib
import math
import os
import sys

SERVICES = ("gateway", "orders", "payments", "inventory", "notifications")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import uvicorn

    if os.environ.get("REPLICA") == "auto":  # compose: every replica has the same environment
        from services.common.replica_number import resolve

        os.environ["REPLICA"] = str(resolve(argv[0]))
    module = importlib.import_module(f"services.{argv[0]}.app")
    app = module.build_app()
    settings = module.Settings()
    tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=keep_alive_s(settings.admission_retry_after_max_s),
    )
    return 0


def keep_alive_s(retry_after_max_s: float) -> int:
    """How long an idle connection stays open: past the longest Retry-After the service
    says, so that a client that waits as told comes back on the connection it has
    (uvicorn's 5 s closed it under a shopper told to wait 10 s, and locust reported the
    order it then sent as unanswered)."""
    return max(5, math.ceil(retry_after_max_s) + 5)


# Objects allocated between two collections of the youngest generation. Python's 700
# collects a request's objects while they are still alive: they are walked, promoted,
# walked again and end up in the old generation, whose full collections grow with it.
# 20 000 lets most of a request's objects die (by reference count) before a collection.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """Keep the garbage collector off the request path: what start-up built (modules,
    routes, schemas, settings) lives as long as the process, so it is frozen out of every
    future collection; and the young generation is made larger (GC_YOUNG_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
