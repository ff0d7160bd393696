"""The console's drill launcher: one drill at a time, run by chaos/console/drill_job.py
in a process of its own (the console keeps answering while locust and the drill work),
its steps' progress read line by line from that process, its report served under
/reports/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from chaos.cli_drill import STEPS
from chaos.drills.catalog import BY_ID, INCIDENTS
from services.common.web.errors import BadInput, Conflict

INTERRUPTED = 130  # drill_job's exit status after SIGINT, once it has rolled back


def incidents() -> list[dict[str, str]]:
    return [{"id": i.id, "title": i.title, "severity": i.severity, "alert": i.alert or "watchdog"} for i in INCIDENTS]


class DrillDesk:
    def __init__(self, run_dir: Path, target: str, reports_dir: Path) -> None:
        self.run_dir, self.target, self.reports_dir = run_dir, target, reports_dir
        self.current: dict[str, Any] | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None

    def view(self) -> dict[str, Any]:
        return {"steps": list(STEPS), "run": self.current}

    async def start(self, incident: str, who: str) -> dict[str, Any]:
        if incident not in BY_ID:
            raise BadInput(f"unknown incident {incident!r}; GET /api/drills lists them", code="incident_unknown")
        if self.target == "network":
            raise Conflict(
                "drills_unavailable",
                "drills run against a native or compose stack (`chaoslab drill`), not from inside compose's network",
            )
        if self.current and self.current["state"] == "running":
            raise Conflict("drill_running", f"the drill {self.current['incident']} is still running: one at a time")
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{incident}"
        report = self.reports_dir / name
        report.mkdir(parents=True, exist_ok=True)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "chaos.console.drill_job",
            "--run-dir",
            str(self.run_dir),
            "--target",
            self.target,
            incident,
            str(report),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self.current = {
            "incident": incident,
            "who": who,
            "started_at": time.time(),
            "state": "running",
            "steps": {},
            "detail": "",
            "report": f"/reports/{name}/index.html",
            "command": f"chaoslab drill {incident} --report {report}",
        }
        self.task = asyncio.create_task(self._follow(self.proc, self.current))
        return self.view()

    async def _follow(self, proc: asyncio.subprocess.Process, run: dict[str, Any]) -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # locust's or a script's own output
            if "step" in line:
                run["steps"][line["step"]] = line["status"]
            elif "done" in line:
                run["detail"] = line.get("detail", "")
        code = await proc.wait()
        run["state"] = {0: "passed", INTERRUPTED: "interrupted"}.get(code, "failed")
        run["ended_at"] = time.time()

    async def stop(self) -> dict[str, Any]:
        """Interrupt a running drill (it rolls its faults back) and wait for it."""
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 60)
            if self.proc.returncode is None:
                self.proc.kill()
        if self.task:
            await asyncio.gather(self.task, return_exceptions=True)
        return self.view()
