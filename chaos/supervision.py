"""Supervision of a native stack by supervisord (a kept library, not a home-made loop).

supervisord restarts a process that dies (`autorestart`), keeps one log per program and
answers XML-RPC on a private Unix socket; we generate its config per run directory.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, cast

from chaos.infra import Program
from chaos.layout import StackLayout


def _quote(value: str) -> str:
    # supervisor's environment= syntax: quoted values, % doubled (it interpolates %(x)s).
    return '"' + value.replace("%", "%%").replace('"', '\\"') + '"'


def write_config(layout: StackLayout, programs: list[Program], workdir: Path) -> Path:
    run = layout.run_dir
    layout.logs_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "[unix_http_server]",
        f"file={run / 'supervisor.sock'}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={layout.log_file('supervisord')}",
        f"pidfile={run / 'supervisord.pid'}",
        f"childlogdir={layout.logs_dir}",
        "logfile_maxbytes=20MB",
        "loglevel=info",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{run / 'supervisor.sock'}",
        "",
    ]
    for program in programs:
        log_file = layout.log_file(program.name)
        log_file.touch()
        if program.user:
            # Another user may not be able to reach our log directory: supervisord (us)
            # writes its output instead, and it starts in a folder of its own.
            command, logging = "exec " + shlex.join(program.command), f"stdout_logfile={log_file}"
        else:
            # The program appends to its log itself: supervisord copying every line through
            # a pipe cost ~7 % of a core under load.
            command = "exec " + shlex.join(program.command) + f" >> {shlex.quote(str(log_file))} 2>&1"
            logging = "stdout_logfile=NONE"
        lines += [
            f"[program:{program.name}]",
            "command=/bin/sh -c " + _arg(command),
            f"directory={program.workdir or workdir}",
            f"priority={program.priority}",
            "autostart=true",
            "autorestart=true",
            "startsecs=1",
            "startretries=5",
            f"stopsignal={program.stop_signal}",
            "stopwaitsecs=15",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            logging,
            "stdout_logfile_maxbytes=20MB",
        ]
        if program.user:
            lines.append(f"user={program.user}")
        if program.env:
            lines.append("environment=" + ",".join(f"{k}={_quote(v)}" for k, v in program.env.items()))
        lines.append("")
    path = run / "supervisord.conf"
    path.write_text("\n".join(lines))
    return path


def _arg(arg: str) -> str:
    """supervisor splits `command=` with shlex and interpolates %: quote accordingly."""
    arg = arg.replace("%", "%%")
    if not arg or any(c in arg for c in " \"'\\"):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def start(config: Path) -> None:
    """Start supervisord in the background; it daemonizes once its socket is ready."""
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(config)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"supervisord did not start: {result.stderr.strip() or result.stdout.strip()}")


class Supervisor:
    """A client for one stack's supervisord over its Unix socket."""

    def __init__(self, layout: StackLayout) -> None:
        from supervisor.xmlrpc import SupervisorTransport

        self.socket = layout.run_dir / "supervisor.sock"
        self.pidfile = layout.run_dir / "supervisord.pid"
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        self.rpc = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            state = cast(dict[str, Any], self.rpc.supervisor.getState())
            return bool(state["statename"] == "RUNNING")
        except (OSError, xmlrpc.client.Fault):
            return False

    def processes(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.rpc.supervisor.getAllProcessInfo())

    def process(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.rpc.supervisor.getProcessInfo(name))

    def stop(self, name: str) -> None:
        self.rpc.supervisor.stopProcess(name, True)

    def start(self, name: str) -> None:
        self.rpc.supervisor.startProcess(name, True)

    def stop_if_running(self, name: str) -> None:
        try:
            self.stop(name)
        except xmlrpc.client.Fault as fault:
            if "NOT_RUNNING" not in fault.faultString:
                raise

    def restart(self, name: str) -> None:
        self.stop_if_running(name)
        self.start(name)

    def add(self, name: str) -> None:
        """Start a program that was added to the config file since supervisord started."""
        self.rpc.supervisor.reloadConfig()
        self.rpc.supervisor.addProcessGroup(name)

    def remove(self, name: str) -> None:
        self.stop_if_running(name)
        self.rpc.supervisor.removeProcessGroup(name)
        self.rpc.supervisor.reloadConfig()

    def shutdown(self, timeout_s: float = 60.0) -> None:
        """Stop every program (in reverse priority) and supervisord itself, and wait
        until supervisord is gone. SIGTERM (which stops the programs too) when it does
        not answer over its socket."""
        pid = int(self.pidfile.read_text()) if self.pidfile.exists() else None
        try:
            self.rpc.supervisor.shutdown()
        except (OSError, xmlrpc.client.Fault):
            if pid is None or not _alive(pid):
                return
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while pid and _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()
