"""A game's files, under the stack's run directory: what another terminal, or a
responder program, needs to reach the game that runs in the foreground.

<run dir>/gameday/current names the game in progress; its directory holds state.json
(the public facts), token (the game master's, mode 0600), actions.jsonl (ack, diagnose,
resolve: one JSON line each), commands.jsonl (every `chaoslab` command run during the
game), and at the end result.json and report.html.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

from chaos.layout import default_run_dir
from services.common.faults.store import default_who


class NoGame(LookupError):
    pass


def games_dir(run_dir: Path) -> Path:
    return run_dir / "gameday"


class Game:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, run_dir: Path, game_id: str, token: str, facts: dict[str, Any]) -> Game:
        game = cls(games_dir(run_dir) / game_id)
        game.path.mkdir(parents=True, exist_ok=False)
        fd = os.open(game.path / "token", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        game.write("state.json", facts)
        (games_dir(run_dir) / "current").write_text(str(game.path) + "\n")
        return game

    @classmethod
    def current(cls, run_dir: Path) -> Game:
        pointer = games_dir(run_dir) / "current"
        if not pointer.exists():
            raise NoGame(f"no game is in progress in {run_dir} (start one with `chaoslab gameday start`)")
        return cls(Path(pointer.read_text().strip()))

    @classmethod
    def latest(cls, run_dir: Path) -> Game:
        """The game in progress, or else the last one played."""
        try:
            return cls.current(run_dir)
        except NoGame:
            played = sorted(p for p in games_dir(run_dir).glob("*/state.json"))
            if not played:
                raise NoGame(f"no game has been played in {run_dir}") from None
            return cls(played[-1].parent)

    @staticmethod
    def end(run_dir: Path) -> None:
        (games_dir(run_dir) / "current").unlink(missing_ok=True)

    def write(self, name: str, data: Any) -> None:
        (self.path / name).write_text(json.dumps(data, indent=2) + "\n")

    def read(self, name: str) -> Any:
        return json.loads((self.path / name).read_text())

    def record(self, stream: str, **fields: Any) -> dict[str, Any]:
        entry = {"t": round(time.time(), 3), "who": os.environ.get("CHAOSLAB_RESPONDER") or default_who(), **fields}
        with open(self.path / f"{stream}.jsonl", "a") as out:
            out.write(json.dumps(entry) + "\n")
        return entry

    def entries(self, stream: str) -> list[dict[str, Any]]:
        path = self.path / f"{stream}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def record_command(argv: list[str]) -> None:
    """Log a `chaoslab` command (its arguments `argv`) in the game in progress on its run
    directory, if one is: the debrief's log of the commands run. Without a game, nothing."""
    run_dir = default_run_dir()
    for i, arg in enumerate(argv):
        if arg.startswith("--run-dir="):
            run_dir = Path(arg.partition("=")[2])
        elif arg == "--run-dir" and i + 1 < len(argv):
            run_dir = Path(argv[i + 1])
    if argv[:1] == ["gameday"]:  # the game's own commands are in actions.jsonl
        return
    try:
        Game.current(run_dir).record("commands", command=shlex.join(["chaoslab", *argv]))
    except (NoGame, OSError):
        return
