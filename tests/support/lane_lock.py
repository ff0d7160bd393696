"""One machine, three pytest lanes (tests/run_all.py): a test that measures what the
stack can carry, or whose timing a busy neighbour would skew, runs with the other lanes
paused. Every other test shares the machine as before.

A readers-writer lock over two files, with the writer first: a test marked `alone`
takes the turnstile (no new test starts in any lane), waits for the tests already running
to end, and runs alone; every other test passes the turnstile and shares the room. Only
when tests/run_all.py names a lock directory (CHAOSLAB_LANE_LOCKS) is there any lock."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "CHAOSLAB_LANE_LOCKS"
MARKER = "alone"


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def held(directory: Path, *, alone: bool) -> Iterator[float]:
    """Hold the room (alone, or shared with the other lanes); yields the seconds waited."""
    directory.mkdir(parents=True, exist_ok=True)
    turnstile, room = directory / "turnstile", directory / "room"
    started = time.monotonic()
    if alone:
        with _flock(turnstile, fcntl.LOCK_EX), _flock(room, fcntl.LOCK_EX):
            yield time.monotonic() - started
        return
    with _flock(turnstile, fcntl.LOCK_EX):
        pass  # a test marked `alone` waiting holds the turnstile: wait behind it
    with _flock(room, fcntl.LOCK_SH):
        yield time.monotonic() - started


def directory() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None
