"""The native stack: start it, wait until it is healthy, report on it, stop it.

Redis, PostgreSQL, Prometheus (when installed) and the five services all run under one
supervisord per run directory, so a killed service comes back by itself and
`chaoslab stop|start <program>` is one XML-RPC call.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chaos import console, infra, prometheus_config, supervision
from chaos.drills.prom import Prometheus, PrometheusUnavailable
from chaos.layout import SERVICES, StackLayout, free_ports
from services.common.web import credentials
from services.common.web.credentials import CredentialSet

REPO = Path(__file__).resolve().parent.parent
CALLERS_REREAD_S = 1.5  # callers re-read the replicas directory every second
RESCRAPE_TIMEOUT_S = 15.0  # Prometheus' target discovery applies a change within 5 s


class StackError(RuntimeError):
    """The stack could not be started or reached; the message says why."""


def programs(layout: StackLayout) -> list[infra.Program]:
    progs = [infra.postgres(layout), infra.redis(layout)]
    alerting = infra.alertmanager(layout)
    prom = infra.prometheus(layout, prometheus_config.write(layout, alerting=alerting is not None))
    progs += [p for p in (prom, alerting) if p]
    for service in SERVICES:
        for replica in range(len(layout.replica_ports(service))):
            progs.append(
                infra.Program(
                    layout.program_name(service, replica),
                    [sys.executable, "-m", "services", service],
                    env=layout.service_env(service, replica),
                    priority=50,
                )
            )
    if "console" in layout.ports:  # `chaoslab up` asked for the training console
        command = [sys.executable, "-m", "chaos.cli", "console", "--run-dir", str(layout.run_dir)]
        progs.append(infra.Program("console", [*command, "--port", str(layout.ports["console"])], priority=60))
    return progs


def up(
    run_dir: Path,
    *,
    profile: str,
    chaos_token: str | None,
    pick_free_ports: bool,
    timeout_s: float,
    progress: Callable[[str], None],
    env: dict[str, str] | None = None,
    with_console: bool = False,
    service_token: str | None = None,
) -> StackLayout:
    """Start the stack and return once every service answers /health (or raise); with
    the training console (chaos/console/) too when `with_console`. The service credential
    is `service_token`, else a new random one."""
    sup_probe = StackLayout(run_dir=run_dir.resolve())
    if supervision.Supervisor(sup_probe).running():
        raise StackError(f"a stack is already running in {run_dir}: `chaoslab down` first, or choose another --run-dir")
    layout = StackLayout.new(
        run_dir,
        profile=profile,
        chaos_token=chaos_token or secrets.token_urlsafe(18),
        pick_free_ports=pick_free_ports,
        env=env,
    )
    if with_console:
        layout.ports["console"] = free_ports(1)[0] if pick_free_ports else console.DEFAULT_PORT
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    layout.run_dir.chmod(0o755)
    progress("initialising PostgreSQL")
    infra.init_postgres(layout)
    layout.save()
    credentials.write_file(layout.credentials_file, CredentialSet(current=service_token or secrets.token_urlsafe(24)))
    layout.write_replicas()
    config = supervision.write_config(layout, programs(layout), REPO)
    progress("starting supervisord")
    try:
        supervision.start(config)
        wait_healthy(layout, timeout_s=timeout_s, progress=progress)
    except BaseException as exc:
        # A stack that did not come up leaves nothing running behind it (Ctrl-C included).
        progress("the stack did not start: stopping what was started")
        supervision.Supervisor(layout).shutdown()
        if isinstance(exc, RuntimeError) and not isinstance(exc, StackError):
            raise StackError(str(exc)) from exc
        raise
    return layout


def wait_healthy(layout: StackLayout, *, timeout_s: float, progress: Callable[[str], None]) -> None:
    """Wait until PostgreSQL answers and every service's /health is 200. Fails at once
    when supervisord gives a program up (it crashed at every start), else at the
    deadline, naming the programs at fault with the end of their logs."""
    sup = supervision.Supervisor(layout)
    deadline = time.monotonic() + timeout_s
    database_ready = False
    pending = list(SERVICES)
    while True:
        try:
            fatal = [p["name"] for p in sup.processes() if p["statename"] == "FATAL"]
        except OSError as exc:
            raise StackError(f"supervisord stopped answering: {exc}; see {layout.log_file('supervisord')}") from exc
        if fatal:
            raise StackError(_failure(layout, fatal, "crashed at every start"))
        if time.monotonic() >= deadline:
            culprits = pending if database_ready else ["postgres"]
            raise StackError(_failure(layout, culprits, f"not healthy after {timeout_s:.0f}s"))
        if not database_ready:
            try:
                infra.create_database(layout)
                database_ready = True
                progress("PostgreSQL ready")
            except Exception:  # noqa: BLE001 - not up yet; any failure means "wait"
                time.sleep(0.2)
                continue
        pending = [s for s in pending if not http_ok(layout.url(s) + "/health")]
        if not pending:
            progress("all services healthy")
            return
        progress("waiting for " + ", ".join(pending))
        time.sleep(0.2)


def _failure(layout: StackLayout, programs: list[str], what: str) -> str:
    """`what` happened to `programs`, with the last lines of each one's log."""
    parts = [f"{', '.join(programs)}: {what}"]
    for name in programs:
        path = layout.log_file(name)
        tail = path.read_text(errors="replace").splitlines()[-12:] if path.exists() else []
        parts.append(f"last lines of {path}:" if tail else f"{path} is empty")
        parts += [f"  {line}" for line in tail]
    return "\n".join(parts)


def scale(
    layout: StackLayout,
    service: str,
    count: int,
    *,
    timeout_s: float = 60,
    progress: Callable[[str], None] = lambda _m: None,
) -> list[str]:
    """Run `count` replicas of `service` (on further free ports); callers pick the new
    list up from the replicas directory within a second, and Prometheus scrapes it before
    this returns. Returns the replicas' URLs."""
    if service not in SERVICES:
        raise StackError(f"unknown service {service!r}; services are {', '.join(SERVICES)}")
    if not 1 <= count <= 8:
        raise StackError(f"replicas must be between 1 and 8, not {count}")
    sup = supervision.Supervisor(layout)
    if not sup.running():
        raise StackError(f"no stack is running in {layout.run_dir}")
    before = len(layout.replica_ports(service))
    extra = layout.extra_replicas.get(service, [])
    if count < before:
        gone = [layout.program_name(service, r) for r in range(count, before)]
        layout.extra_replicas[service] = extra[: count - 1]
        layout.save()
        layout.write_replicas()  # callers stop sending first,
        callers_told = time.monotonic()
        # then Prometheus stops scraping them, so the last sample of each says up (a
        # sample stays current 5 minutes when Prometheus stops before marking it stale:
        # an `up` of 0 would fire the service's Down alert that long), then they stop.
        scrape_replicas(layout, service, sup, progress)
        time.sleep(max(0.0, CALLERS_REREAD_S - (time.monotonic() - callers_told)))
        supervision.write_config(layout, programs(layout), REPO)
        for name in gone:
            progress(f"stopping {name}")
            sup.remove(name)
    elif count > before:
        layout.extra_replicas[service] = extra + free_ports(count - before)
        layout.save()
        supervision.write_config(layout, programs(layout), REPO)
        for replica in range(before, count):
            name = layout.program_name(service, replica)
            progress(f"starting {name}")
            sup.add(name)
        deadline = time.monotonic() + timeout_s
        for url in layout.replica_urls(service)[before:]:
            while not http_ok(url + "/health"):
                if time.monotonic() > deadline:
                    raise StackError(f"replica at {url} not healthy after {timeout_s:.0f}s")
                time.sleep(0.2)
        layout.write_replicas()
        scrape_replicas(layout, service, sup, progress)
    return layout.replica_urls(service)


def scrape_replicas(
    layout: StackLayout, service: str, sup: supervision.Supervisor, progress: Callable[[str], None]
) -> None:
    """Prometheus scrapes the replicas `layout` lists for `service`, no more, no fewer:
    its file rewritten and reloaded, then its targets polled until they match (its target
    discovery applies a change within 5 s). One that does not run reads the file when it
    starts; one that never matches is named, and the scale goes on."""
    prometheus_config.write(layout, alerting=any(p["name"] == "alertmanager" for p in sup.processes()))
    prom = Prometheus(layout.url("prometheus"))
    if not prom.reload():
        return
    want = set(prometheus_config.native_targets(layout)[service])
    deadline = time.monotonic() + RESCRAPE_TIMEOUT_S
    try:
        while (scraped := prom.scraped(service)) != want:
            if time.monotonic() >= deadline:
                progress(
                    f"Prometheus scrapes {service} at {', '.join(sorted(scraped)) or 'nothing'}, "
                    f"not {', '.join(sorted(want))}, after {RESCRAPE_TIMEOUT_S:.0f}s"
                )
                return
            time.sleep(0.2)
    except PrometheusUnavailable:
        return  # stopped meanwhile: it reads the file when it starts


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def clean(run_dir: Path) -> None:
    """Stop the stack of `run_dir` if it runs, then delete its run directory and
    PostgreSQL's data, wherever that lives."""
    layout = StackLayout(run_dir=run_dir.resolve())
    down(layout)
    infra.remove_postgres_data(layout)
    shutil.rmtree(layout.run_dir, ignore_errors=True)


def down(layout: StackLayout) -> bool:
    """Stop everything; False when nothing was running. Prometheus first, so its last
    sample of every service says up: were the services to stop first, it would record
    them down, and the next start's Prometheus (same data) would read those 0s for its
    5-minute lookback and fire their Down alerts."""
    sup = supervision.Supervisor(layout)
    if not sup.running():
        return False
    # A Fault: Prometheus is not installed, or not running; an OSError: supervisord does
    # not answer, which shutdown() copes with.
    with contextlib.suppress(OSError, xmlrpc.client.Fault):
        sup.stop("prometheus")
    sup.shutdown()
    return True


@dataclass(frozen=True)
class ProgramStatus:
    name: str
    state: str
    pid: int
    uptime_s: float
    healthy: bool | None
    url: str


def status(layout: StackLayout) -> list[ProgramStatus]:
    sup = supervision.Supervisor(layout)
    if not sup.running():
        raise StackError(f"no stack is running in {layout.run_dir}")
    rows = []
    for info in sup.processes():
        name = info["name"]
        url = _probe_url(layout, name)
        healthy = None
        if info["statename"] == "RUNNING":
            healthy = _healthy(layout, name, url)
        uptime = info["now"] - info["start"] if info["statename"] == "RUNNING" else 0
        rows.append(ProgramStatus(name, info["statename"], info["pid"], uptime, healthy, url))
    return rows


def _probe_url(layout: StackLayout, name: str) -> str:
    if name == "postgres":
        return layout.database_url
    if name == "redis":
        return layout.redis_url
    return f"http://127.0.0.1:{layout.program_port(name)}"


def _healthy(layout: StackLayout, name: str, url: str) -> bool:
    if name.partition("-")[0] in SERVICES:
        return http_ok(url + "/health")
    if name == "prometheus":
        return http_ok(url + "/-/ready")
    try:
        with socket.create_connection(("127.0.0.1", layout.ports[name]), timeout=1) as sock:
            if name == "redis":
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
            return True
    except OSError:
        return False
