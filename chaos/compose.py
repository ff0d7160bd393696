"""A compose stack seen from the host: its published ports, and `docker compose`.

`chaoslab <command> --target compose` (or CHAOSLAB_TARGET=compose) reads the compose
model as `docker compose config` resolves it (the file, `.env`, the shell's overrides
such as GATEWAY_PORT or COMPOSE_PROJECT_NAME), so it finds the ports, chaos token and
profile the stack was started with. It acts on containers through `docker compose`;
a crash is a SIGKILL to the container's main process, which the restart policy answers.

Only the gateway and the infrastructure publish ports: orders, payments, inventory and
notifications may run several replicas (`scale`), which one host port cannot front, so
the tools reach them inside their containers (`docker compose exec`, `service_json`).
Replicas are named as natively: `payments` is the first, `payments-2` the third.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from chaos.layout import DEFAULT_PORTS, INFRA, SERVICES
from chaos.runner import ProgramStatus

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = SERVICES + INFRA
# The services that publish no port, so compose can run several containers of each.
SCALABLE = tuple(s for s in SERVICES if s != "gateway")
MAX_REPLICAS = 8  # as natively (chaos/runner.py)


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
        if service not in self.ports:
            raise ComposeError(
                f"{service} publishes no port in compose (it can run several replicas): "
                "only the gateway, redis, postgres, prometheus and alertmanager are reachable from the host"
            )
        return f"http://127.0.0.1:{self.ports[service]}"

    def service_json(self, program: str, path: str, timeout_s: float = 30) -> object:
        """GET `path` from one replica of a service, inside its container (no published port)."""
        service, index = self._replica(program)
        port = DEFAULT_PORTS[service]
        # With the container's own service credential (SERVICE_TOKEN): the path may be internal.
        fetch = (
            "import os, sys, urllib.request; "
            f"ask = urllib.request.Request('http://127.0.0.1:{port}' + sys.argv[1], headers={{"
            "'Authorization': 'Bearer ' + os.environ.get('SERVICE_TOKEN', ''), 'X-Service-Name': 'chaoslab'}); "
            "sys.stdout.write(urllib.request.urlopen(ask, timeout=10).read().decode())"
        )
        exec_args = ["exec", "-T", "--index", str(index), service, "python", "-c", fetch, path]
        result = self.compose(*exec_args, timeout_s=timeout_s)
        try:
            return json.loads(result.stdout)
        except ValueError:
            raise ComposeError(f"{program}{path} answered no JSON: {result.stdout[:200]!r}") from None

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
        """Each container as `docker inspect` describes it (created ones only), by program
        name: `payments` for replica 1 of the service, `payments-1` for replica 2, ..."""
        ids = self.compose("ps", "-a", "-q", timeout_s=30).stdout.split()
        if not ids:
            return {}
        inspected = json.loads(_docker("inspect", *ids, timeout_s=30, env=self.env).stdout)
        out = {}
        for c in sorted(inspected, key=_replica_number):
            service = c["Config"]["Labels"]["com.docker.compose.service"]
            out[program_name(service, _replica_number(c))] = c
        return out

    def _container(self, program: str) -> dict:
        self._replica(program)
        container = self.containers().get(program)
        if container is None:
            raise ComposeError(
                f"{program} has no container in compose project {self.project!r}: "
                "is the stack up (`docker compose up -d --wait`), with that many replicas?"
            )
        return container

    def status(self) -> list[ProgramStatus]:
        containers = self.containers()
        if not containers:
            raise ComposeError(
                f"no containers in compose project {self.project!r}: start them with `docker compose up -d --wait`"
            )
        rows = []
        for name in sorted(containers, key=lambda n: (_rank(n.partition("-")[0]), n.partition("-")[0], len(n), n)):
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
        """restart, stop or start one service's containers (every replica), or one replica's."""
        container = self._container(program)
        if program in PROGRAMS:
            self.compose(verb, program, timeout_s=120)
        else:
            _docker(verb, container["Id"], timeout_s=120, env=self.env)

    def scale(
        self, service: str, count: int, *, timeout_s: float = 120, progress: Callable[[str], None] = lambda _m: None
    ) -> int:
        """Run `count` containers of `service`, then wait until each is healthy. Callers
        re-resolve the service's name within 10 s; Prometheus finds the replicas by DNS."""
        progress(f"docker compose up --scale {service}={count}")
        self.compose(*scale_command(service, count), timeout_s=timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            rows = [r for r in self.status() if r.name in _names(service)]
            waiting = [r.name for r in rows if r.state != "RUNNING" or r.healthy is not True]
            if len(rows) == count and not waiting:
                return count
            if time.monotonic() > deadline:
                raise ComposeError(
                    f"{service}: {len(rows)} of {count} replica(s) up, not yet healthy: {', '.join(waiting) or '-'}"
                )
            progress(f"waiting for {service}: {len(rows) - len(waiting)} of {count} healthy")
            time.sleep(0.5)

    def logs(self, program: str, lines: int) -> list[str]:
        service, index = self._replica(program)
        flags = ["--no-color", "--no-log-prefix", "--tail", str(lines), "--index", str(index)]
        result = self.compose("logs", *flags, service, timeout_s=60)
        return (result.stdout + result.stderr).splitlines()

    def start_stopped(self) -> list[str]:
        """Start every container that is not running; the names started."""
        stopped = {name: c["Id"] for name, c in self.containers().items() if not c["State"].get("Running")}
        if stopped:
            _docker("start", *stopped.values(), timeout_s=120, env=self.env)
        return list(stopped)

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            waiting = [row.name for row in self.status() if row.state != "RUNNING" or row.healthy is False]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise ComposeError(f"not healthy after {timeout_s:.0f}s: {', '.join(waiting)}")
            time.sleep(0.5)

    def _replica(self, program: str) -> tuple[str, int]:
        """(service, compose's container number) of `payments` (1) or `payments-2` (3)."""
        service, dash, replica = program.partition("-")
        if program in PROGRAMS:
            return program, 1
        if service in SCALABLE and dash and replica.isdigit() and int(replica) >= 1:
            return service, int(replica) + 1
        raise ComposeError(
            f"no service {program!r} in compose: services are {', '.join(PROGRAMS)} "
            f"(a replica of {', '.join(SCALABLE)} is named like payments-1)"
        )


def scale_command(service: str, count: int) -> list[str]:
    """`docker compose` arguments that run `count` containers of `service` and touch
    nothing else: running replicas stay (--no-recreate), its dependencies too (--no-deps)."""
    if service not in SCALABLE:
        raise ComposeError(
            f"cannot scale {service!r} in compose: scalable services are {', '.join(SCALABLE)} "
            "(the gateway publishes the stack's one front port)"
        )
    if not 1 <= count <= MAX_REPLICAS:
        raise ComposeError(f"replicas must be between 1 and {MAX_REPLICAS}, not {count}")
    return ["up", "-d", "--no-deps", "--no-recreate", "--scale", f"{service}={count}", service]


def program_name(service: str, number: int) -> str:
    """The native naming of compose's container `number` (1-based) of a service."""
    return service if number <= 1 else f"{service}-{number - 1}"


def _names(service: str) -> set[str]:
    return {program_name(service, n) for n in range(1, MAX_REPLICAS + 1)}


def _rank(service: str) -> int:
    return PROGRAMS.index(service) if service in PROGRAMS else len(PROGRAMS)


def _replica_number(container: dict) -> int:
    return int(container["Config"]["Labels"].get("com.docker.compose.container-number", "1"))


def _timestamp(text: str) -> float:
    """Docker's RFC 3339 time with nanoseconds, as epoch seconds (0 when unreadable)."""
    try:
        head, _, rest = text.partition(".")
        zone = rest.lstrip("0123456789") or "Z"
        return datetime.fromisoformat(head + (zone if zone != "Z" else "+00:00")).timestamp()
    except ValueError:
        return 0.0
