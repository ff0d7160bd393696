"""The stack as the console sees it from inside compose's network (`chaoslab console
--target network`, the compose `console` service): addresses from the environment
(`<SERVICE>_URL`, default `http://<service>:<port>`; REDIS_URL, CHAOS_TOKEN,
CHAOSLAB_PROFILE), each program's health probed over the network. There is no
supervisor to ask, so uptimes are unknown and drills are not launched from here."""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from chaos import runner
from chaos.layout import DEFAULT_PORTS, SERVICES

PROBES = {**{s: "/health" for s in SERVICES}, "prometheus": "/-/ready", "alertmanager": "/-/ready"}


@dataclass(frozen=True)
class NetworkStack:
    profile: str
    chaos_token: str
    redis_url: str
    urls: dict[str, str]
    run_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> NetworkStack:
        urls = {
            name: env.get(f"{name.upper()}_URL", f"http://{name}:{DEFAULT_PORTS[name]}").rstrip("/") for name in PROBES
        }
        return cls(
            profile=env.get("CHAOSLAB_PROFILE", "training"),
            chaos_token=env.get("CHAOS_TOKEN", ""),
            redis_url=env.get("REDIS_URL", "redis://redis:6379/0"),
            urls=urls,
            run_dir=Path(env.get("CONSOLE_DIR", "/tmp/chaoslab-console")),
        )

    def url(self, service: str) -> str:
        return self.urls[service]

    def status(self) -> list[runner.ProgramStatus]:
        """Every program probed at once, so one that hangs costs its timeout only once."""
        with ThreadPoolExecutor(len(self.urls) + 1) as pool:
            probes = {name: pool.submit(runner.http_ok, url + PROBES[name]) for name, url in self.urls.items()}
            redis_ok = pool.submit(self._redis_answers)
            rows = [self._row(name, probe.result(), self.urls[name]) for name, probe in probes.items()]
            return [*rows, self._row("redis", redis_ok.result(), self.redis_url)]

    @staticmethod
    def _row(name: str, ok: bool, url: str) -> runner.ProgramStatus:
        return runner.ProgramStatus(name, "RUNNING" if ok else "UNREACHABLE", 0, 0.0, ok, url)

    def _redis_answers(self) -> bool:
        parsed = urllib.parse.urlparse(self.redis_url)
        try:
            with socket.create_connection((parsed.hostname or "redis", parsed.port or 6379), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
