"""`make test`'s runner: every test, in five pytest processes side by side.

Most tests spend their time waiting (scrapes, alert windows, SLO pages, containers
starting) and little CPU: a whole run used under half of one core of two. So they run
side by side, and `make test` takes about as long as the longest lane instead of the
sum of them all:

- `training-drills`: the training-profile drills (15 s scrapes, `for: 1m`, 5-minute pages);
- `ci-drills`: every incident drilled in the ci profile (tests/drills/test_drills.py);
- `drill-engine`: every way a drill can fail, and the Chaos Toolkit experiments, on a
  ci stack of their own (the rest of tests/drills);
- `containers`: the compose and Kubernetes tests (tests/e2e);
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
CONTAINERS = "tests/e2e"


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
    Lane("ci-drills", (f"{DRILLS}/test_drills.py", "-m", f"not {TRAINING}")),
    Lane("drill-engine", (DRILLS, "--ignore", f"{DRILLS}/test_drills.py", "-m", f"not {TRAINING}")),
    Lane("containers", (CONTAINERS, "-m", f"not {TRAINING}")),
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
        main_lane = pytest("-m", f"not {TRAINING}", "--ignore", DRILLS, "--ignore", CONTAINERS, *argv)
        statuses["main"] = subprocess.call(main_lane, cwd=REPO)
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
