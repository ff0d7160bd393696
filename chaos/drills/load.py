"""locust load for a drill, as a headless subprocess that stops by itself.

Every drill runs under load (docs/incidents.md): steady shoppers, and for some
incidents a second, incident-shaped load (a surge, a duplicate storm, capacity steps)
that the runbook's remediation stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"


class Load:
    """One locust run: `tags` pick the users, `shape` (env CHAOSLAB_SHAPE) a load shape."""

    def __init__(
        self,
        host: str,
        *,
        users: int,
        tags: str = "shop",
        shape: str | None = None,
        max_s: float = 900,
        log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.host, self.users, self.tags, self.shape, self.max_s = host, users, tags, shape, max_s
        self.log = log
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Load:
        command = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--host",
            self.host,
            "-u",
            str(self.users),
            "-r",
            str(max(1, self.users)),
            "-t",
            f"{int(self.max_s)}s",
            "--tags",
            self.tags,
            "--only-summary",
            "--stop-timeout",
            "2",
            "--exit-code-on-error",
            "0",
        ]
        env = {**os.environ, **self.env}
        if self.shape:
            env["CHAOSLAB_SHAPE"] = self.shape
        # The child keeps its own copy of the log's descriptor: ours closes at once.
        with open(self.log or os.devnull, "ab") as out:
            self.proc = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 15) -> None:
        """SIGINT first (locust finishes cleanly), SIGKILL if it lingers; only our own pid."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
