"""One drill, run for the console in a process of its own: `python -m
chaos.console.drill_job --run-dir DIR INCIDENT REPORT_DIR` prints each step's progress
as a JSON line, writes the report as `chaoslab drill <id> --report DIR` does, and rolls
the drill back on SIGINT like Ctrl-C."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from chaos.compose import ComposeStack
from chaos.drills import report as reports
from chaos.drills.catalog import BY_ID
from chaos.drills.engine import Drill
from chaos.layout import StackLayout


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--target", choices=("native", "compose"), default="native")
    parser.add_argument("incident", choices=sorted(BY_ID))
    parser.add_argument("report", type=Path)
    args = parser.parse_args(argv)
    stack = ComposeStack.load(args.run_dir) if args.target == "compose" else StackLayout.load(args.run_dir)
    started = time.monotonic()
    drill = Drill(
        stack,
        BY_ID[args.incident],
        log_dir=args.report / "logs",
        progress=lambda _incident, step, status: say(step=step, status=status),
    )
    try:
        result = drill.run()
    except KeyboardInterrupt:
        say(done=False, detail="interrupted: rolled back")
        return 130  # chaos/console/drills.py INTERRUPTED
    reports.write([result], args.report, time.monotonic() - started)
    failed = next((f"{s.name}: {s.detail}" for s in result.steps if not s.ok), "")
    say(done=result.ok, detail=failed)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
