"""Rotating a native stack's service credential with no dropped request.

The new token goes into the run directory's credential file, the old one kept valid
for a grace window; every service re-reads the file (services/common/web/credentials.py),
so callers switch to the new token within a fraction of a second while callees still
accept the old one. The rotation waits until every replica holds the new generation,
sits out the grace window, fails if any program of the stack was refused meanwhile,
then proves the old token is refused.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.compare.collect import metric_sum
from chaos.layout import SERVICES, StackLayout
from services.common.web import credentials
from services.common.web.credentials import ACCEPTED, CredentialSet
from services.common.web.settings import profile_defaults

# The internal services (every one but the gateway), and a path no route has: an internal
# service judges the credential before routing, so it answers 401 there, or 404 if accepted.
INTERNAL = tuple(s for s in SERVICES if s != "gateway")
PROBE_PATH = "/internal/credential-check"
# Not a program of the stack: its refusals count under caller="unknown", so a drill can
# tell them from a stack program refused because of the rotation.
PROBE_CALLER = "rotation-check"
# Who is audited: a request counted with the previous or expired token.
OLD = ("previous", "expired")


class RotationError(RuntimeError):
    """The rotation could not be completed; the message says what to look at."""


@dataclass
class Rotation:
    generation: int
    grace_s: float
    # (service, caller) -> requests that showed the old token (inside the window, and after it).
    old_use: dict[tuple[str, str], float] = field(default_factory=dict)


def default_grace_s(profile: str) -> float:
    return float(profile_defaults(profile)["service_token_grace_s"])


def held_generation(url: str) -> int | None:
    """The credential generation a service process holds (its /metrics), None when it
    does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return int(metric_sum(text, "service_credential_generation"))


def refused(url: str, token: str) -> bool:
    """Whether a service refuses `token` (401 for an internal path, before any route)."""
    ask = urllib.request.Request(
        url + PROBE_PATH, headers={"Authorization": f"Bearer {token}", "X-Service-Name": PROBE_CALLER}
    )
    try:
        with urllib.request.urlopen(ask, timeout=2):
            return False
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except (urllib.error.URLError, OSError):
        return False


def judgements(layout: StackLayout) -> dict[tuple[str, str, str], float]:
    """service_auth_requests_total by (service, caller, credential), over every replica."""
    found: dict[tuple[str, str, str], float] = {}
    for service in INTERNAL:
        for url in layout.replica_urls(service):
            try:
                with urllib.request.urlopen(f"{url}/metrics", timeout=2) as resp:
                    text = resp.read().decode()
            except (urllib.error.URLError, OSError, ValueError):
                continue
            for line in text.splitlines():
                if line.startswith("service_auth_requests_total{"):
                    caller = line.split('caller="', 1)[1].split('"', 1)[0]
                    credential = line.split('credential="', 1)[1].split('"', 1)[0]
                    key = (service, caller, credential)
                    found[key] = found.get(key, 0.0) + float(line.rpartition(" ")[2])
    return found


def audit(layout: StackLayout) -> dict[tuple[str, str], float]:
    """Requests that showed an old token, by (service, caller)."""
    found: dict[tuple[str, str], float] = {}
    for (service, caller, credential), count in judgements(layout).items():
        if credential in OLD and count:
            found[(service, caller)] = found.get((service, caller), 0.0) + count
    return found


def refused_programs(before: dict, after: dict) -> dict[tuple[str, str, str], float]:
    """Requests of the stack's own programs (a known caller) refused between two
    judgements(): a rotation that drops no request has none."""
    return {
        key: count - before.get(key, 0.0)
        for key, count in after.items()
        if key[1] != "unknown" and key[2] not in ACCEPTED and count > before.get(key, 0.0)
    }


def rotate(
    layout: StackLayout,
    *,
    grace_s: float,
    progress: Callable[[str], None],
) -> Rotation:
    """Replace the stack's service credential; return once every internal service
    refuses the old one (RotationError if one does not)."""
    path = layout.credentials_file
    try:
        old = credentials.read_file(path)
    except (OSError, ValueError, KeyError) as exc:
        raise RotationError(f"no credential file at {path} ({exc}): was the stack started by `chaoslab up`?") from exc
    before = judgements(layout)
    new = old.rotated(secrets.token_urlsafe(24), grace_s, time.time())
    credentials.write_file(path, new)
    progress(f"generation {new.generation} written; the previous one is accepted for {grace_s:.0f}s more")
    _wait_loaded(layout, new, progress)
    while (left := new.previous_until - time.time()) > 0:
        progress(f"grace window: the previous credential is accepted for {left:.0f}s more")
        time.sleep(min(1.0, left))
    # Read before the check below, whose own requests show the old token (as a caller
    # the stack does not know).
    after = judgements(layout)
    if dropped := refused_programs(before, after):
        listed = ", ".join(
            f"{caller} -> {service} ({credential}): {n:.0f}" for (service, caller, credential), n in dropped.items()
        )
        raise RotationError(f"the stack's own programs were refused during the rotation: {listed}")
    rotation = Rotation(new.generation, grace_s, old_use=audit(layout))
    # A replica's clock check has a little slack: poll briefly for its refusal.
    deadline = time.monotonic() + 5
    while not all(refused(url, old.current) for url in _urls(layout)):
        if time.monotonic() > deadline:
            raise RotationError("a service still accepts the previous credential after the grace window")
        time.sleep(0.2)
    return rotation


def _urls(layout: StackLayout) -> list[str]:
    return [url for service in INTERNAL for url in layout.replica_urls(service)]


def _wait_loaded(layout: StackLayout, new: CredentialSet, progress: Callable[[str], None]) -> None:
    """Every replica holds the new generation before the grace window ends, or fail:
    past it, a service still sending the old token would be refused."""
    pending = _urls(layout)
    while pending:
        pending = [url for url in pending if (held_generation(url) or 0) < new.generation]
        if not pending:
            break
        if time.time() >= new.previous_until:
            raise RotationError(
                f"{', '.join(pending)} did not load generation {new.generation} within the grace window: "
                "are they running? (`chaoslab status`)"
            )
        progress(f"waiting for {len(pending)} service process(es) to load generation {new.generation}")
        time.sleep(0.2)
    progress(f"every service holds generation {new.generation}")
