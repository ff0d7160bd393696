"""`make test`'s runner: every test, with the training-profile drills beside the rest.

The training drills spend most of their time waiting (15 s scrapes, `for: 1m`, an SLO
page that needs minutes of a 5-minute window) and little CPU, so they run in a second
pytest process while the main one runs everything else; `make test` takes about as long
as the longer of the two instead of their sum. The second process writes to
reports/training-drills.log, printed when it ends; the run fails if either fails.

    python tests/run_all.py [pytest arguments for the main run]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOG = REPO / "reports" / "training-drills.log"
TRAINING = "training"  # the pytest marker of the tests that run a training-profile stack


def pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", *args]


def main(argv: list[str]) -> int:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("w") as log:
        # Its own session (process group), so an interrupted run ends it and its children.
        background = subprocess.Popen(
            pytest("-m", TRAINING, "-p", "no:cacheprovider"),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    print(f"training-profile drills run beside the rest (pid {background.pid}); log: {LOG.relative_to(REPO)}")
    started = time.monotonic()
    try:
        main_status = subprocess.call(pytest("-m", f"not {TRAINING}", *argv), cwd=REPO)
        if background.poll() is None:
            print("\nwaiting for the training-profile drills ...", flush=True)
        training_status = background.wait()
    except KeyboardInterrupt:
        os.killpg(background.pid, signal.SIGTERM)
        background.wait()
        raise
    print(f"\n---- training-profile drills (exit {training_status}) ----")
    print(LOG.read_text(), end="")
    print(f"---- whole run: {time.monotonic() - started:.0f}s ----")
    return main_status or training_status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
