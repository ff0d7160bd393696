"""A headless Chromium driven over the DevTools protocol: open a page, evaluate
JavaScript in it, poll the DOM with a deadline, save screenshots. Debian's `chromium`
package (no browser download), one websocket, no driver."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

BINARY = shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page; close() ends the process we started."""

    def __init__(self, width: int = 1600, height: int = 1000) -> None:
        if BINARY is None:
            raise BrowserError("chromium is not installed (apt-get install -y chromium)")
        self.profile = tempfile.mkdtemp(prefix="chaoslab-chromium-")
        self._log = (Path(self.profile) / "chromium.log").open("w")
        self.proc = subprocess.Popen(
            [
                BINARY,
                "--headless=new",
                "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        self._ids = itertools.count(1)
        self.ws: websocket.WebSocket | None = None
        try:
            self.ws = websocket.create_connection(self._page_socket(self._browser_port()), timeout=30)
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _browser_port(self, timeout_s: float = 30) -> int:
        """Chromium writes its DevTools port to DevToolsActivePort in its profile."""
        marker = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            lines = marker.read_text().splitlines() if marker.exists() else []
            if lines and lines[0].isdigit():
                return int(lines[0])
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        log = (Path(self.profile) / "chromium.log").read_text(errors="replace")
        raise BrowserError(f"chromium did not start within {timeout_s}s: {log[-2000:]}")

    @staticmethod
    def _page_socket(port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; events arriving meanwhile are skipped."""
        assert self.ws is not None
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", timeout_s=30, message=f"{url} loaded")

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float, message: str, interval_s: float = 0.25) -> Any:
        """Poll a JavaScript expression until it is truthy (an element found counts as
        true); fail after `timeout_s`."""
        probe = f"(() => {{ const v = ({expression}); return v instanceof Node ? true : v; }})()"
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            last = self.js(probe)
            if last:
                return last
            time.sleep(interval_s)
        raise AssertionError(f"{message} not seen within {timeout_s}s (last: {last!r})")

    def fill(self, selector: str, value: str) -> None:
        """Set a form field as a user would (its change event fires)."""
        self.js(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            f" el.value = {json.dumps(value)}; el.dispatchEvent(new Event('change')); }})()"
        )

    def click(self, selector: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).click()")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
