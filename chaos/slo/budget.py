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


def fire_after_s(
    threshold: float, window_s: float, bad_share: float, *, rate: float = 1.0, prior_rate: float | None = None
) -> float:
    """How long after a share `bad_share` of requests starts going bad the error ratio
    over `window_s` passes `threshold`.

    Requests flow at `rate` a second from then on; the window held `prior_rate` a second
    before (the same, unless said). At `t` the ratio is

        bad_share x rate x t / (prior_rate x (window_s - t) + rate x t)

    which, with steady traffic, is bad_share x t / window_s. A busy window before and
    clients backing off since (Retry-After) make the same share page later."""
    prior = rate if prior_rate is None else prior_rate
    if bad_share <= threshold:
        raise ValueError(f"a bad share of {bad_share:g} never passes the threshold {threshold:g}")
    if rate <= 0:
        raise ValueError("no request flows: the error ratio cannot grow")
    return threshold * prior * window_s / (rate * (bad_share - threshold) + threshold * prior)
