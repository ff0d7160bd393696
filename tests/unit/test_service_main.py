"""What `python -m services` hands uvicorn beyond host and port."""

from __future__ import annotations

from services.__main__ import keep_alive_s


def test_an_idle_connection_outlives_the_longest_retry_after_the_service_says():
    assert keep_alive_s(10.0) == 15  # a shed client told 10 s comes back on its connection
    assert keep_alive_s(2.5) == 8
    assert keep_alive_s(0.0) == 5  # never below uvicorn's own 5 s
