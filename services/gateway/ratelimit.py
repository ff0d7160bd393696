"""The gateway's rate limit: a token bucket per client, under a budget per source address.

The limit comes from settings (`RATE_LIMIT_RPS`, 0 = none) unless the `rate_limit_rps`
fault overrides it (the rate-limit-misconfig incident). Refusals are 429 with
`Retry-After`, counted in `rate_limited_total{client}`.

A client names itself with `X-Client-ID`, else it is named by its address. The header is
the client's own word, so the limit cannot rest on it alone: a caller that invents a new
id for every request would get a fresh, full bucket every time. Hence two buckets:

- **Per client**, keyed by the source address *and* the id: each client gets the limit
  (burst and rate). Keyed by the address too, so nobody can spend another address's
  client's tokens by sending its id.
- **Per source address**, `ADDRESS_SHARE` clients' worth (`ADDRESS_SHARE` x the burst and
  the rate): every admitted request takes a token from both. A few clients on one
  address each keep their own limit (locust's users each have an id of their own, all
  from 127.0.0.1), but whatever ids one address invents, together they get at most
  `ADDRESS_SHARE` times the limit. The address is the TCP peer, which a client cannot
  choose by setting a header. Clients behind one proxy share its address: give them a
  larger share, or rate-limit in front of the proxy.

Honouring ids only from a configured list was the other way: it needs a list kept in
step with every client (locust's ids are random), and every client left off it would be
squeezed into its address's single bucket. The budget per address needs no list.

The metric's label is bounded: a refusal is counted under the client's family when the
id is one of `KNOWN_CLIENTS` or starts with one and a dash (`locust-shopper-1a2b` counts
as `locust`), and under `other` otherwise (an unknown id, or no id). Claiming a known
name changes what a refusal is counted under, never what is allowed. The
RateLimitMisconfig alert watches the known clients: good clients refused means the limit
is set too low, while `other`s refused at their address's cap are a caller trying ids.

Memory is bounded too: past `_MAX_BUCKETS` keys, buckets that have refilled (the same
as no bucket) are dropped, and if that is not enough all of them; a reset only ever
lets more through, and the address buckets are kept apart, so ids invented to fill the
client buckets do not reset the cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable

from services.common.web.errors import ChaoslabError
from services.common.web.metrics import rate_limited_total

# One source address gets at most this many clients' worth of the per-client limit.
ADDRESS_SHARE = 16
# Client families counted under their own name in rate_limited_total{client}: the
# stack's load generator (loadtests/users.py). Any other id is counted as OTHER.
KNOWN_CLIENTS: tuple[str, ...] = ("locust",)
OTHER = "other"
_MAX_BUCKETS = 10_000


class RateLimited(ChaoslabError):
    code = "rate_limited"
    http_status = 429


class _Buckets:
    """Token buckets by key, refilled lazily: key -> (tokens, last refill)."""

    def __init__(self) -> None:
        self._state: dict[Hashable, tuple[float, float]] = {}

    def tokens(self, key: Hashable, rate: float, burst: float, now: float) -> float:
        tokens, last = self._state.get(key, (burst, now))
        return min(burst, tokens + (now - last) * rate)

    def set(self, key: Hashable, tokens: float, now: float, rate: float, burst: float) -> None:
        if key not in self._state and len(self._state) >= _MAX_BUCKETS:
            self._state = {k: v for k, v in self._state.items() if self.tokens(k, rate, burst, now) < burst}
            if len(self._state) >= _MAX_BUCKETS * 3 // 4:
                self._state.clear()
        self._state[key] = (tokens, now)


class RateLimiter:
    def __init__(
        self,
        limit_rps: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
        *,
        address_share: float = ADDRESS_SHARE,
        known_clients: Iterable[str] = KNOWN_CLIENTS,
    ) -> None:
        self.limit_rps = limit_rps
        self.clock = clock
        self.address_share = address_share
        self.known_clients = tuple(known_clients)
        self._clients = _Buckets()
        self._addresses = _Buckets()

    def label(self, client_id: str | None) -> str:
        """The bounded value of rate_limited_total's `client` label for this id."""
        for name in self.known_clients:
            if client_id == name or (client_id or "").startswith(f"{name}-"):
                return name
        return OTHER

    def check(self, address: str, client_id: str | None = None) -> None:
        """Take one token for the client (`client_id`, else its address) and one for its
        address, or raise RateLimited and take none."""
        rate = self.limit_rps()
        if not rate:
            return
        now = self.clock()
        burst = max(1.0, rate)
        shared_rate, shared_burst = rate * self.address_share, burst * self.address_share
        client = (address, client_id)
        own = self._clients.tokens(client, rate, burst, now)
        shared = self._addresses.tokens(address, shared_rate, shared_burst, now)
        if own < 1 or shared < 1:
            self._clients.set(client, own, now, rate, burst)
            self._addresses.set(address, shared, now, shared_rate, shared_burst)
            rate_limited_total.labels(self.label(client_id)).inc()
            message = (
                f"client {client_id or address!r} is over its limit of {rate:g} requests/s"
                if own < 1
                else f"address {address!r} is over its budget of {shared_rate:g} requests/s for all its clients"
            )
            raise RateLimited(message, retry_after_s=max((1 - own) / rate, (1 - shared) / shared_rate))
        self._clients.set(client, own - 1, now, rate, burst)
        self._addresses.set(address, shared - 1, now, shared_rate, shared_burst)
