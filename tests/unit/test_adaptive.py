"""The adaptive concurrency limit against a model service: `knee` requests are served at
once in `base_s`; past the knee, requests queue and latency grows in step."""

from __future__ import annotations

import pytest

from services.common.resilience.adaptive import AdaptiveConfig, GradientLimit


class ModelService:
    """A service and its clients on the model's own clock: clients keep `offered`
    requests waiting, the door admits up to the limit."""

    def __init__(self, *, knee: int = 8, base_s: float = 0.02, **overrides) -> None:
        self.knee, self.base_s, self.now = knee, base_s, 0.0
        values = {
            "initial": 20,
            "min_limit": 2,
            "max_limit": 500,
            "tolerance": 1.5,
            "probe_interval_s": 5.0,
            "probe_samples": 10,
            "smoothing": 0.2,
        }
        self.limit = GradientLimit(AdaptiveConfig(**(values | overrides)), lambda: self.now)

    def rtt(self, inflight: int) -> float:
        return self.base_s * max(1.0, inflight / self.knee)

    def run(self, samples: int, *, offered: int) -> list[tuple[int, float]]:
        """(limit, latency) of each admitted request."""
        seen = []
        for _ in range(samples):
            inflight = min(offered, self.limit.limit)
            rtt = self.rtt(inflight)
            self.now += rtt / inflight  # requests finish at the service's throughput
            seen.append((self.limit.update(rtt, inflight), rtt))
        return seen


def test_under_overload_the_limit_settles_near_the_knee_and_latency_stays_near_the_quiet_one():
    service = ModelService(initial=100)
    settled = service.run(20_000, offered=500)[-2000:]
    assert all(limit <= 4 * service.knee for limit, _rtt in settled)  # not the 500 asking, nor the 100 it began with
    assert max(rtt for _limit, rtt in settled) <= 0.02 * 2.5
    # And it still serves at full speed: most of the time at least the knee is admitted.
    assert sum(limit >= service.knee for limit, _rtt in settled) >= 0.8 * len(settled)


def test_a_limit_that_starts_far_above_the_knee_falls_to_it_within_a_few_windows():
    service = ModelService(initial=64, max_limit=64)
    samples = 0
    while service.limit.probing or service.limit.min_rtt_s == 0 or service.limit.limit > 2 * service.knee:
        service.run(1, offered=500)
        samples += 1
        assert samples <= 10 + 10 + 64 + 40 + 30  # a busy window, the probe, then a few windows


def test_when_the_service_gets_slower_the_next_probe_relearns_its_quiet_latency():
    service = ModelService(initial=20)
    service.run(5000, offered=500)
    assert service.limit.min_rtt_s == pytest.approx(0.02)
    service.base_s = 0.08  # a slower dependency
    service.run(20_000, offered=500)
    assert service.limit.min_rtt_s == pytest.approx(0.08)
    assert service.knee / 2 <= service.limit.limit <= 4 * service.knee


def test_the_limit_it_keeps_is_a_multiple_of_this_machines_quiet_latency_however_slow():
    # A machine ten times slower than the last test's: no fixed ceiling pulls it to the floor.
    service = ModelService(initial=40, base_s=0.3)
    settled = service.run(20_000, offered=500)[-2000:]
    assert service.limit.min_rtt_s == pytest.approx(0.3)
    assert all(limit <= 4 * service.knee for limit, _rtt in settled)
    assert sum(limit >= service.knee for limit, _rtt in settled) >= 0.8 * len(settled)  # probes aside
    assert max(rtt for _limit, rtt in settled) <= 0.3 * 2.5


def test_with_spare_capacity_the_limit_grows():
    service = ModelService(initial=4, knee=64)
    service.run(3000, offered=500)
    assert service.limit.limit > 16


def test_clients_that_send_little_teach_nothing_and_never_meet_a_probe():
    service = ModelService(initial=40)
    seen = service.run(5000, offered=3)  # far below half the limit: the clients set the pace
    assert {limit for limit, _rtt in seen} == {40}
    assert service.limit.min_rtt_s == 0  # never probed: nothing to learn from


def test_the_first_probe_waits_for_load_then_admits_only_the_minimum_until_it_has_its_samples():
    service = ModelService(initial=40, probe_samples=10)
    assert not service.limit.probing and service.limit.limit == 40  # a static limit until then
    service.run(10, offered=500)  # one busy window: before the first probe, probe_samples long
    assert service.limit.probing and service.limit.limit == 2
    service.run(9, offered=500)
    assert service.limit.probing
    service.run(1, offered=500)
    assert not service.limit.probing and service.limit.limit == 40
    assert service.limit.min_rtt_s == pytest.approx(0.02)


def test_a_probe_comes_again_only_after_its_interval_and_only_under_load():
    service = ModelService(initial=40, probe_interval_s=5.0)
    service.run(50, offered=500)
    assert service.limit.min_rtt_s > 0 and not service.limit.probing
    probes = 0
    for _ in range(3000):
        was = service.limit.probing
        service.run(1, offered=500)
        probes += service.limit.probing and not was
    assert 1 <= probes <= service.now / 5.0 + 1
    service.now += 60  # long past the interval, but only a few clients now
    seen = service.run(2000, offered=2)
    assert not any(limit == 2 and service.limit.probing for limit, _rtt in seen[100:])


def test_after_a_surge_a_few_clients_bring_the_limit_back_to_where_it_started():
    service = ModelService(initial=40, knee=4)
    service.run(5000, offered=500)  # the surge teaches a limit near the knee
    assert service.limit.limit <= 4 * service.knee
    seen = service.run(3000, offered=2)  # then a couple of clients, never queueing
    assert seen[-1][0] == 40  # back to the start, and no further: quiet windows prove nothing more
    assert max(limit for limit, _rtt in seen) == 40


def test_quiet_windows_that_queue_do_not_grow_the_limit_back():
    service = ModelService(initial=40, knee=4, probe_interval_s=1e9)  # one probe, during the surge
    service.run(5000, offered=500)
    settled = service.limit.limit
    service.base_s *= 10  # a few clients, but every request now far slower than the probe saw
    seen = service.run(3000, offered=2)
    assert max(limit for limit, _rtt in seen) <= settled


@pytest.mark.parametrize(
    "bad",
    [
        {"min_limit": 0},
        {"initial": 1, "min_limit": 2},
        {"initial": 600},
        {"tolerance": 0.9},
        {"probe_interval_s": 0},
        {"probe_samples": 0},
        {"smoothing": 0},
    ],
)
def test_nonsense_configs_are_refused(bad):
    with pytest.raises(ValueError):
        ModelService(**bad)
