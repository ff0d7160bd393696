"""Service credentials: the shared secret one service shows another (docs/security.md).

A caller sends `Authorization: Bearer <token>` and names itself in `X-Service-Name`. A
service accepts its current token, and the previous one until the grace window after a
rotation ends; anything else (missing, unknown, or previous past its window) is refused.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

# How a presented token compares with the set: the first two are accepted.
Verdict = Literal["current", "previous", "expired", "unknown", "missing"]
ACCEPTED: frozenset[Verdict] = frozenset({"current", "previous"})
# Who may call an internal endpoint: the stack's own programs. Any other name is counted
# as "unknown", so the metric's labels stay few and a stranger stands out.
KNOWN_CALLERS = frozenset(
    {"gateway", "orders", "payments", "inventory", "notifications", "alertmanager", "chaoslab", "console", "tests"}
)
# A file re-read more often than this only when a token does not match it.
RELOAD_EVERY_S = 0.25


@dataclass(frozen=True)
class CredentialSet:
    """The tokens a service accepts. `previous_until` is a Unix time; `generation`
    counts rotations (1 for the first token), so an operator can see who has reloaded."""

    current: str
    previous: str = ""
    previous_until: float = 0.0
    generation: int = 1

    def __repr__(self) -> str:  # never the tokens
        return f"CredentialSet(generation={self.generation}, previous_until={self.previous_until})"

    def judge(self, token: str | None, now: float) -> Verdict:
        if not token:
            return "missing"
        if self.current and _same(token, self.current):
            return "current"
        if self.previous and _same(token, self.previous):
            return "previous" if now < self.previous_until else "expired"
        return "unknown"

    def rotated(self, new_token: str, grace_s: float, now: float) -> CredentialSet:
        """The set after a rotation: `new_token` current, this one's current accepted
        for `grace_s` more seconds, this one's previous forgotten."""
        return CredentialSet(new_token, self.current, now + grace_s, self.generation + 1)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None for any other form)."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def caller_label(name: str | None, user_agent: str | None = None) -> str:
    """Who a request says it comes from, as the audit counts it: its X-Service-Name, or
    Alertmanager by its User-Agent (its webhook cannot add headers); `unknown` otherwise."""
    if not name and user_agent and user_agent.startswith("Alertmanager/"):
        return "alertmanager"
    return name if name in KNOWN_CALLERS else "unknown"


def read_file(path: Path) -> CredentialSet:
    """The set a native stack keeps in its run directory (written by write_file)."""
    data = json.loads(path.read_text())
    return CredentialSet(
        current=str(data["current"]),
        previous=str(data.get("previous", "")),
        previous_until=float(data.get("previous_until", 0.0)),
        generation=int(data.get("generation", 1)),
    )


def write_file(path: Path, credentials: CredentialSet) -> None:
    """Write the set atomically (a reader never sees half of it), readable by its owner
    only, and the current token alone beside it (`<path>.current`) for programs that read
    a bare token from a file (Alertmanager's `credentials_file`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, text in ((path, json.dumps(asdict(credentials))), (bare_token_file(path), credentials.current)):
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        tmp.replace(target)


def bare_token_file(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".current")


_HELD: dict[tuple[str, str, str, str, float], ServiceCredentials] = {}


class ServiceCredentials:
    """The set one service process holds: from its settings, or from a file that
    `chaoslab secret rotate` rewrites (re-read when it changes, and at once when a token
    does not match, so a caller that reloaded first is never refused)."""

    def __init__(self, fixed: CredentialSet, file: Path | None = None, clock=time.time) -> None:
        self._set = fixed
        self._file = file
        self._clock = clock
        self._mtime_ns = -1
        self._checked = float("-inf")
        if file is not None:
            self._reload(force=True)

    @classmethod
    def from_settings(cls, settings) -> ServiceCredentials:
        """SERVICE_TOKEN_FILE when set, else SERVICE_TOKEN (and SERVICE_TOKEN_PREVIOUS,
        accepted for service_token_grace_s after the process starts: a rolling restart).
        One object per process and settings: the door and the callers share it."""
        key = (
            settings.service,
            settings.service_token.get_secret_value(),
            settings.service_token_previous.get_secret_value(),
            settings.service_token_file,
            settings.service_token_grace_s,
        )
        if key not in _HELD:
            _HELD[key] = cls._build(settings)
        return _HELD[key]

    @classmethod
    def _build(cls, settings) -> ServiceCredentials:
        file = Path(settings.service_token_file) if settings.service_token_file else None
        previous = settings.service_token_previous.get_secret_value()
        fixed = CredentialSet(
            current=settings.service_token.get_secret_value(),
            previous=previous,
            previous_until=time.time() + settings.service_token_grace_s if previous else 0.0,
        )
        return cls(fixed, file)

    @property
    def configured(self) -> bool:
        return bool(self.current_set().current)

    def current_set(self) -> CredentialSet:
        self._reload(force=False)
        return self._set

    def judge(self, token: str | None) -> Verdict:
        verdict = self.current_set().judge(token, self._clock())
        if verdict in ("unknown", "previous") and self._file is not None and self._reload(force=True):
            verdict = self._set.judge(token, self._clock())
        return verdict

    def outgoing(self, caller: str) -> dict[str, str]:
        """The headers a call to another service carries."""
        token = self.current_set().current
        return {"Authorization": f"Bearer {token}", "X-Service-Name": caller} if token else {"X-Service-Name": caller}

    def _reload(self, *, force: bool) -> bool:
        """Re-read the file if it changed; True when it did."""
        if self._file is None:
            return False
        now = time.monotonic()
        if not force and now - self._checked < RELOAD_EVERY_S:
            return False
        self._checked = now
        try:
            mtime = self._file.stat().st_mtime_ns
            if mtime == self._mtime_ns:
                return False
            self._set = read_file(self._file)
        except (OSError, ValueError, KeyError):
            return False  # keep the last good set: a half-written or missing file is no reason to refuse all
        self._mtime_ns = mtime
        return True
