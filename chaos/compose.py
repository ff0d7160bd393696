"""A compose stack seen from the host: its published ports, and `docker compose`.

`chaoslab <command> --target compose` (or CHAOSLAB_TARGET=compose) reads the compose
model as `docker compose config` resolves it (the file, `.env`, the shell's overrides
such as GATEWAY_PORT or COMPOSE_PROJECT_NAME), so it finds the ports, chaos token and
profile the stack was started with. It acts on containers through `docker compose`;
a crash is a SIGKILL to the container's main process, which the restart policy answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from chaos.layout import INFRA, SERVICES
from chaos.runner import ProgramStatus

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = SERVICES + INFRA


class ComposeError(Exception):
    pass


def _docker(*args: str, timeout_s: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout_s, env=env)
    except FileNotFoundError:
        raise ComposeError(
            "no `docker` command on PATH: install Docker (with compose v2) or use the native stack (`chaoslab up`)"
        ) from None
    except subprocess.TimeoutExpired:
        raise ComposeError(f"`docker {' '.join(args[:3])}` did not answer within {timeout_s:.0f}s") from None
    if result.returncode != 0:
        raise ComposeError(f"`docker {' '.join(args)}` failed: {result.stderr.strip()[-600:]}")
    return result


@dataclass
class ComposeStack:
    project: str
    profile: str
    chaos_token: str
    ports: dict[str, int]
    postgres_password: str
    run_dir: Path  # the --run-dir option: where drill reports go
    compose_args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None  # for `docker`: this process's environment when None

    @classmethod
    def load(cls, run_dir: Path, env: dict[str, str] | None = None) -> ComposeStack:
        # COMPOSE_FILE and COMPOSE_PROJECT_NAME are docker compose's own; without them,
        # the repository's file and its project name.
        files = [] if (env or os.environ).get("COMPOSE_FILE") else ["-f", str(REPO / "docker-compose.yml")]
        model = json.loads(_docker("compose", *files, "config", "--format", "json", timeout_s=30, env=env).stdout)
        services = model["services"]
        ports = {
            name: int(services[name]["ports"][0]["published"])
            for name in PROGRAMS
            if services.get(name, {}).get("ports")
        }
        gateway_env = services["gateway"].get("environment", {})
        return cls(
            project=model["name"],
            profile=gateway_env.get("CHAOSLAB_PROFILE", "training"),
            chaos_token=gateway_env.get("CHAOS_TOKEN", ""),
            ports=ports,
            postgres_password=services["postgres"].get("environment", {}).get("POSTGRES_PASSWORD", ""),
            run_dir=run_dir.resolve(),
            compose_args=[*files, "-p", model["name"]],
            env=env,
        )

    # -- the same addresses a native StackLayout gives ---------------------------------

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def replica_urls(self, service: str) -> list[str]:
        return [self.url(service)]

    @property
    def database_url(self) -> str:
        return f"postgresql://chaoslab:{self.postgres_password}@127.0.0.1:{self.ports['postgres']}/chaoslab"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    # -- containers --------------------------------------------------------------------

    def compose(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
        return _docker("compose", *self.compose_args, *args, timeout_s=timeout_s, env=self.env)

    def containers(self) -> dict[str, dict]:
        """Each service's container as `docker inspect` describes it (created ones only)."""
        ids = self.compose("ps", "-a", "-q", timeout_s=30).stdout.split()
        if not ids:
            return {}
        inspected = json.loads(_docker("inspect", *ids, timeout_s=30, env=self.env).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in inspected}

    def _container(self, program: str) -> dict:
        self._check(program)
        container = self.containers().get(program)
        if container is None:
            raise ComposeError(
                f"{program} has no container in compose project {self.project!r}: "
                "is the stack up (`docker compose up -d --wait`)?"
            )
        return container

    def status(self) -> list[ProgramStatus]:
        containers = self.containers()
        if not containers:
            raise ComposeError(
                f"no containers in compose project {self.project!r}: start them with `docker compose up -d --wait`"
            )
        rows = []
        for name in [*PROGRAMS, *sorted(set(containers) - set(PROGRAMS))]:
            state = containers.get(name, {}).get("State")
            if state is None:
                continue
            running = state.get("Running", False)
            health = (state.get("Health") or {}).get("Status")
            started = _timestamp(state.get("StartedAt", ""))
            address = (
                self.database_url
                if name == "postgres"
                else self.redis_url
                if name == "redis"
                else self.url(name)
                if name in self.ports
                else "-"
            )
            rows.append(
                ProgramStatus(
                    name,
                    state.get("Status", "?").upper(),
                    state.get("Pid", 0) if running else 0,
                    time.time() - started if running and started else 0,
                    None if not running or health is None else health == "healthy",
                    address,
                )
            )
        return rows

    def kill(self, program: str) -> int:
        """SIGKILL the container's main process, as a crash would (`docker kill` counts as
        a deliberate stop, which the restart policy leaves alone). Returns the host pid."""
        pid = self._container(program)["State"].get("Pid", 0)
        if not pid:
            raise ComposeError(f"{program} is not running")
        try:
            os.kill(pid, signal.SIGKILL)
        except PermissionError:
            raise ComposeError(
                f"not allowed to signal {program}'s process (host pid {pid}): run as root, "
                "or use `docker compose restart`"
            ) from None
        return pid

    def act(self, verb: str, program: str) -> None:
        """restart, stop or start one service's container."""
        self._container(program)
        self.compose(verb, program, timeout_s=120)

    def logs(self, program: str, lines: int) -> list[str]:
        self._check(program)
        result = self.compose("logs", "--no-color", "--no-log-prefix", "--tail", str(lines), program, timeout_s=60)
        return (result.stdout + result.stderr).splitlines()

    def start_stopped(self) -> list[str]:
        """Start every container that is not running; the names started."""
        stopped = [name for name, c in self.containers().items() if not c["State"].get("Running")]
        if stopped:
            self.compose("start", *stopped, timeout_s=120)
        return stopped

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            waiting = [row.name for row in self.status() if row.state != "RUNNING" or row.healthy is False]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise ComposeError(f"not healthy after {timeout_s:.0f}s: {', '.join(waiting)}")
            time.sleep(0.5)

    def _check(self, program: str) -> None:
        if program not in PROGRAMS:
            raise ComposeError(f"no service {program!r} in compose: services are {', '.join(PROGRAMS)}")


def _timestamp(text: str) -> float:
    """Docker's RFC 3339 time with nanoseconds, as epoch seconds (0 when unreadable)."""
    try:
        head, _, rest = text.partition(".")
        zone = rest.lstrip("0123456789") or "Z"
        return datetime.fromisoformat(head + (zone if zone != "Z" else "+00:00")).timestamp()
    except ValueError:
        return 0.0
