"""The baseline responder's score for every playable wave-1 incident: the par a human
team plays against, and how long a game of one easy incident takes.

    .venv/bin/python bench/gameday_par.py                       # every incident, ci profile, a fresh stack
    .venv/bin/python bench/gameday_par.py --incident payments-errors --profile training
    .venv/bin/python bench/gameday_par.py --run-dir .chaoslab   # on a running stack

One easy game per incident (chaoslab gameday start --incident ID with the baseline
responder), one after the other on the same stack (each rolls its faults back). Long:
a few minutes per incident in ci. Prints a row per game with the load average beside
it (the machine's other work slows the stack); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chaos import infra, runner  # noqa: E402
from chaos.gameday import picking  # noqa: E402
from chaos.gameday.master import GameMaster, Settings  # noqa: E402
from chaos.gameday.scoring import TIMES  # noqa: E402
from chaos.layout import StackLayout  # noqa: E402

BASELINE = f"{sys.executable} -m chaos.gameday.responders.baseline"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incident", action="append", help="only this incident (repeat it); default: every one")
    parser.add_argument("--profile", default="ci", choices=("ci", "training"))
    parser.add_argument("--run-dir", type=Path, help="play on this running stack instead of a fresh one")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--duration",
        type=float,
        help="each game's longest, in seconds (default: 600 in ci, 1800 in training: the inject comes "
        "5-25 %% in, then the incident's par to mitigate, with room)",
    )
    args = parser.parse_args()
    playable = [inc.id for inc in picking.pool("easy")]
    chosen = args.incident or playable
    unknown = sorted(set(chosen) - set(playable))
    if unknown:
        parser.error(f"not playable: {', '.join(unknown)}; choose among {', '.join(playable)}")
    layout = StackLayout.load(args.run_dir) if args.run_dir else fresh_stack(args.profile)
    header = f"{'incident':<22}" + "".join(f"{t:>13}" for t in TIMES) + f"{'score':>7} {'par?':>5} {'wall':>6}  load"
    print(f"baseline responder, {layout.profile} profile; times in s (par in brackets)\n{header}", flush=True)
    try:
        for incident in chosen:
            duration_s = args.duration or (600 if layout.profile == "ci" else 1800)
            settings = Settings(args.seed, "easy", duration_s, count=1, responder=BASELINE, only=(incident,))
            started = time.monotonic()
            result = GameMaster(layout, settings).play()
            wall = time.monotonic() - started
            [inc] = result["score"]["incidents"]
            cells = "".join(f"{_cell(inc['times'][t], inc['par'][t]):>13}" for t in TIMES)
            penalties = len(result["score"]["penalties"])
            verdict = "yes" if result["score"]["within_par"] else f"no{f' ({penalties} pen.)' if penalties else ''}"
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"{incident:<22}{cells}{inc['score']:>7} {verdict:>5} {wall:>5.0f}s  {load}", flush=True)
            if result["failure"]:
                print(f"  the game could not go on: {result['failure']}", flush=True)
    finally:
        if not args.run_dir:
            runner.down(layout)
            infra.remove_postgres_data(layout)


def _cell(took: float | None, par: float) -> str:
    return f"{'-' if took is None else f'{took:.0f}'} ({par:.0f})"


def fresh_stack(profile: str) -> StackLayout:
    base = Path(tempfile.mkdtemp(prefix="chaoslab-gameday-par-"))
    base.chmod(0o755)
    print(f"starting a {profile} stack in {base / 'run'} ...", flush=True)
    return runner.up(
        base / "run",
        profile=profile,
        chaos_token=secrets.token_urlsafe(12),
        pick_free_ports=True,
        timeout_s=180,
        progress=lambda _m: None,
    )


if __name__ == "__main__":
    main()
