"""`make test`'s runner: every test, in three pytest processes side by side.

The drills spend most of their time waiting (scrapes, alert windows, SLO pages) and
little CPU, so they run beside the rest instead of after it, and `make test` takes about
as long as the longest lane instead of the sum of all three:

- `training`: the training-profile drills (15 s scrapes, `for: 1m`, 5-minute pages);
- `drills`: every incident drilled in the ci profile (tests/drills);
- the main lane, in the foreground: everything else, with the arguments given here.

The background lanes write to reports/<lane>.log, printed when they end; the run fails
if any lane fails. A test whose timing a busy neighbour would skew (marked `alone`) runs
with the other lanes paused (tests/support/lane_lock.py), all but the light training
lane. Each lane names its slowest tests at the end. Ctrl-C ends every lane and its
children (each is its own session).

    python -m tests.run_all [pytest arguments for the main lane]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support import lane_lock

REPO = Path(__file__).resolve().parent.parent
REPORTS = REPO / "reports"
TRAINING = "training"  # the pytest marker of the tests that run a training-profile stack
DRILLS = "tests/drills"


@dataclass(frozen=True)
class Lane:
    name: str
    args: tuple[str, ...]
    pauses: bool = True  # for an `alone` test of another lane

    @property
    def log(self) -> Path:
        return REPORTS / f"{self.name}.log"


BACKGROUND = (
    # A few shoppers and 15 s scrapes barely load the machine, and its tests last 5 to 8
    # minutes each: an `alone` test runs beside it rather than wait for one to end.
    Lane("training-drills", ("-m", TRAINING), pauses=False),
    Lane("ci-drills", (DRILLS, "-m", f"not {TRAINING}")),
)


def pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=12", *args]


def start(lane: Lane) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if lane.pauses or k != lane_lock.ENV}
    with lane.log.open("w") as log:
        return subprocess.Popen(
            pytest(*lane.args), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def main(argv: list[str]) -> int:
    REPORTS.mkdir(parents=True, exist_ok=True)
    os.environ[lane_lock.ENV] = tempfile.mkdtemp(prefix="chaoslab-lanes-")
    started = time.monotonic()
    running = {lane: start(lane) for lane in BACKGROUND}
    for lane, proc in running.items():
        print(f"{lane.name} run beside the rest (pid {proc.pid}); log: {lane.log.relative_to(REPO)}")
    statuses: dict[str, int] = {}
    try:
        statuses["main"] = subprocess.call(pytest("-m", f"not {TRAINING}", "--ignore", DRILLS, *argv), cwd=REPO)
        print(f"---- main lane (exit {statuses['main']}) after {time.monotonic() - started:.0f}s ----", flush=True)
        for lane, proc in running.items():
            if proc.poll() is None:
                print(f"waiting for {lane.name} ...", flush=True)
            statuses[lane.name] = proc.wait()
            print(f"\n---- {lane.name} (exit {statuses[lane.name]}) ----")
            print(lane.log.read_text(), end="")
    except KeyboardInterrupt:
        for proc in running.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait()
        raise
    print(f"---- whole run: {time.monotonic() - started:.0f}s; exits {statuses} ----")
    return next((status for status in statuses.values() if status), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
