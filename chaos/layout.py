"""Where a native stack lives: its run directory, its ports, its tokens.

`chaoslab up` writes the layout to `<run dir>/stack.json`; every other command reads it
back, so `status`, `logs`, `verify` and the drills talk to the stack that is running.
"""

from __future__ import annotations

import json
import os
import random
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.common.web.credentials import read_file

SERVICES = ("gateway", "orders", "payments", "inventory", "notifications")
INFRA = ("postgres", "redis", "prometheus", "alertmanager")
DEFAULT_PORTS = {
    "gateway": 8000,
    "orders": 8001,
    "payments": 8002,
    "inventory": 8003,
    "notifications": 8004,
    "postgres": 5432,
    "redis": 6379,
    "prometheus": 9090,
    "alertmanager": 9093,
}


def default_run_dir() -> Path:
    return Path(os.environ.get("CHAOSLAB_RUN_DIR", ".chaoslab")).resolve()


# Where free_ports looks: from here up to the kernel's ephemeral range.
LOWEST_PICKED_PORT = 20000
# Where the ephemeral range starts when the kernel does not say (IANA's dynamic ports: macOS, Windows).
IANA_EPHEMERAL_START = 49152


def ephemeral_start(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The first port the kernel may give an outbound connection (Linux says; elsewhere IANA's)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return IANA_EPHEMERAL_START


def free_ports(count: int) -> list[int]:
    """Ports free now, below the ephemeral range, so that no outbound connection takes one first.

    A port from bind(0) lies in the ephemeral range: between picking it and a server binding it,
    any connection made on the machine (a locust shopper, a pool's new socket) may take it as its
    own end, and the server then fails with "address already in use". Ports below the range are
    never handed out that way; random ones, so that two stacks started together rarely pick alike.
    """
    start = ephemeral_start()
    if start - LOWEST_PICKED_PORT < 1000:
        return pick_free([0] * count, count)
    return pick_free(
        random.sample(range(LOWEST_PICKED_PORT, start), min(start - LOWEST_PICKED_PORT, count + 64)), count
    )


def pick_free(candidates: list[int], count: int) -> list[int]:
    """The first `count` candidates that bind on 127.0.0.1 now (0 lets the kernel choose one).

    They are held open together until the last is found, so they are distinct.
    """
    sockets: list[socket.socket] = []
    try:
        for port in candidates:
            if len(sockets) == count:
                break
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        if len(sockets) < count:
            raise OSError(f"only {len(sockets)} of {count} ports are free on 127.0.0.1")
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class StackLayout:
    run_dir: Path
    profile: str = "training"
    chaos_token: str = ""
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    # Extra settings for every service (HTTP_CLIENT=httpx), or one ("gateway:MAX_INFLIGHT": "64").
    env: dict[str, str] = field(default_factory=dict)
    # Ports of replicas beyond the first (`chaoslab scale`), per service.
    extra_replicas: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def new(
        cls, run_dir: Path, *, profile: str, chaos_token: str, pick_free_ports: bool, env: dict[str, str] | None = None
    ) -> StackLayout:
        ports = dict(DEFAULT_PORTS)
        if pick_free_ports:
            ports = dict(zip(DEFAULT_PORTS, free_ports(len(DEFAULT_PORTS)), strict=True))
        return cls(
            run_dir=run_dir.resolve(), profile=profile, chaos_token=chaos_token, ports=ports, env=dict(env or {})
        )

    @classmethod
    def load(cls, run_dir: Path) -> StackLayout:
        path = run_dir / "stack.json"
        if not path.exists():
            raise FileNotFoundError(f"no stack in {run_dir}: start one with `chaoslab up`")
        data = json.loads(path.read_text())
        return cls(
            run_dir=Path(data["run_dir"]),
            profile=data["profile"],
            chaos_token=data["chaos_token"],
            ports=data["ports"],
            env=data.get("env", {}),
            extra_replicas=data.get("extra_replicas", {}),
        )

    def save(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        data = {**asdict(self), "run_dir": str(self.run_dir)}
        path = self.run_dir / "stack.json"
        path.write_text(json.dumps(data, indent=2))
        path.chmod(0o600)  # it holds the chaos token

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def database_url(self) -> str:
        return f"postgresql://chaoslab@127.0.0.1:{self.ports['postgres']}/chaoslab"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"

    def log_file(self, program: str) -> Path:
        return self.logs_dir / f"{program}.log"

    def replica_ports(self, service: str) -> list[int]:
        return [self.ports[service], *self.extra_replicas.get(service, [])]

    def replica_urls(self, service: str) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.replica_ports(service)]

    @property
    def credentials_file(self) -> Path:
        """The service credential every service reads and `chaoslab secret rotate` rewrites
        (services/common/web/credentials.py); `<file>.current` holds the bare token."""
        return self.run_dir / "secrets" / "service-credentials.json"

    def service_headers(self) -> dict[str, str]:
        """What a chaoslab tool sends to an internal endpoint: the current credential."""
        return {"Authorization": f"Bearer {read_file(self.credentials_file).current}", "X-Service-Name": "chaoslab"}

    @property
    def replicas_dir(self) -> Path:
        return self.run_dir / "replicas"

    def write_replicas(self) -> None:
        """Callers read their downstreams' replicas from here (see services/common/web/http.py)."""
        self.replicas_dir.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            path = self.replicas_dir / service
            tmp = path.with_suffix(".tmp")
            tmp.write_text(",".join(self.replica_urls(service)) + "\n")
            tmp.replace(path)  # atomic: a reader never sees half a list

    @staticmethod
    def program_name(service: str, replica: int) -> str:
        return service if replica == 0 else f"{service}-{replica}"

    def program_port(self, program: str) -> int:
        """The port of a program: `payments-2` is the third replica of payments."""
        service, _, replica = program.partition("-")
        return self.replica_ports(service)[int(replica or 0)] if service in SERVICES else self.ports[program]

    def service_env(self, service: str, replica: int = 0) -> dict[str, str]:
        """The environment a service process gets: names its Settings read."""
        env = {
            **{k: v for k, v in self.env.items() if ":" not in k},
            **{k.split(":", 1)[1]: v for k, v in self.env.items() if k.startswith(f"{service}:")},
            "CHAOSLAB_PROFILE": self.profile,
            "PORT": str(self.replica_ports(service)[replica]),
            "REPLICA": str(replica),
            "REPLICAS_DIR": str(self.replicas_dir),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CHAOS_TOKEN": self.chaos_token,
            "SERVICE_TOKEN_FILE": str(self.credentials_file),
        }
        if service == "gateway":
            env["ORDERS_URL"] = self.url("orders")
        if service == "orders":
            env.update(
                INVENTORY_URL=self.url("inventory"),
                PAYMENTS_URL=self.url("payments"),
                NOTIFICATIONS_URL=self.url("notifications"),
            )
        return env
