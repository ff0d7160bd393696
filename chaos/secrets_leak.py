"""A leaked service credential in use: the secret-rotation drill's fault.

A program the stack does not know (it names itself `LEAK_CALLER`) reads the current
service credential once, as a leak would give it, and calls an internal read endpoint
with it twice a second. Services count it under caller="unknown", which fires
CredentialLeak. It stops by itself once the credential is refused (after a rotation's
grace window) a few times in a row, or when its time is up: nothing outlives a drill.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from chaos.layout import StackLayout
from services.common.web import credentials

LEAK_CALLER = "nightly-export"  # a name no program of the stack has
INTERVAL_S = 0.5
REFUSALS_TO_STOP = 5


def pid_file(layout: StackLayout) -> Path:
    return layout.run_dir / "secrets" / "leak.pid"


def start(layout: StackLayout, duration_s: float) -> int:
    """Start the leaking caller in the background; its pid (also in pid_file)."""
    log = (layout.logs_dir / "leak.log").open("a")
    command = [sys.executable, "-m", "chaos.secrets_leak", str(layout.run_dir), "--for", str(duration_s)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file(layout).write_text(str(process.pid))
    return process.pid


def call(url: str, token: str) -> int:
    """One call with the leaked token; the HTTP status (0: no answer)."""
    ask = urllib.request.Request(
        f"{url}/charges?order_id=leak-check",
        headers={"Authorization": f"Bearer {token}", "X-Service-Name": LEAK_CALLER},
    )
    try:
        with urllib.request.urlopen(ask, timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def run(layout: StackLayout, duration_s: float) -> str:
    """Call until refused REFUSALS_TO_STOP times in a row or `duration_s` passes; why it stopped."""
    token = credentials.read_file(layout.credentials_file).current
    url = layout.url("payments")
    deadline = time.monotonic() + duration_s
    refusals = 0
    while time.monotonic() < deadline:
        refusals = refusals + 1 if call(url, token) == 401 else 0
        if refusals >= REFUSALS_TO_STOP:
            return "refused: the leaked credential no longer works"
        time.sleep(INTERVAL_S)
    return f"time is up ({duration_s:.0f}s)"


def main() -> None:
    parser = argparse.ArgumentParser(description="Call payments with a leaked service credential (a drill's fault).")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--for", dest="duration_s", type=float, required=True)
    args = parser.parse_args()
    layout = StackLayout.load(args.run_dir)
    print(f"leak: calling {layout.url('payments')} as {LEAK_CALLER}", flush=True)
    print(f"leak: stopped, {run(layout, args.duration_s)}", flush=True)
    pid_file(layout).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
