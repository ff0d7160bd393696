"""Error-budget arithmetic, as plain functions: how much budget a stretch of bad events
spends, and how long a burn takes to fire a burn-rate alert.

With a steady flow of requests, a share `bad` of them bad for `duration_s` spends

    bad / budget x duration_s / period_s

of the period's error budget (`bad / budget` is the burn rate): 14.4 for an hour is 2 %
of a 30-day budget, the SRE workbook's page. Steady traffic is the assumption every
burn-rate alert makes too; it lets a drill of two minutes say what share of a month's
budget it would have cost.
"""

from __future__ import annotations


def burn_rate(bad_share: float, budget: float) -> float:
    """How many times faster than the budget allows events go bad (1: exactly on budget)."""
    return bad_share / budget


def spent(bad_share: float, budget: float, duration_s: float, period_s: float) -> float:
    """The share of the period's error budget that `duration_s` at `bad_share` spends."""
    return burn_rate(bad_share, budget) * duration_s / period_s


def fire_after_s(threshold: float, window_s: float, bad_share: float) -> float:
    """How long after a share `bad_share` of requests starts going bad the error ratio
    over `window_s` passes `threshold` (it grows as bad_share x elapsed / window_s)."""
    if bad_share <= threshold:
        raise ValueError(f"a bad share of {bad_share:g} never passes the threshold {threshold:g}")
    return threshold * window_s / bad_share
