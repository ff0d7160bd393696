"""Run one service: `python -m services <gateway|orders|payments|inventory|notifications>`.

Host, port and everything else come from the environment (each service's Settings).
One image and one command for all five; the name picks which.
"""

from __future__ import annotations

import importlib
import sys

SERVICES = ("gateway", "orders", "payments", "inventory", "notifications")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import uvicorn

    module = importlib.import_module(f"services.{argv[0]}.app")
    app = module.build_app()
    settings = module.Settings()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
