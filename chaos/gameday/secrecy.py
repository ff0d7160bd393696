"""What a game day hides. While a game is in progress (the `gameday:current` key in the
stack's Redis, written by the game master), fault listings, in the console and in
`chaoslab chaos list`, say only that a game is on, unless the caller holds the game
master's token. Hiding is at the tools: a responder who reads Redis by hand is cheating,
and the audit stream shows it."""

from __future__ import annotations

import hashlib
import hmac
import json

from redis.asyncio import Redis

GAME_KEY = "gameday:current"
HIDDEN = "a game is in progress: faults are hidden"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hides(state: str | bytes | None, token: str | None) -> bool:
    """Whether a game `state` (the key's JSON, None when no game runs) hides the faults
    from a caller holding `token`."""
    if state is None:
        return False
    digest = json.loads(state).get("master_token_sha256", "")
    return not (token and hmac.compare_digest(token_digest(token), digest))


async def faults_hidden(redis: Redis, token: str | None) -> bool:
    return hides(await redis.get(GAME_KEY), token)
