from __future__ import annotations

import httpx
import pytest

from chaos.layout import StackLayout
from tests.support import lane_lock
from tests.support.api import SERVICE_HEADERS
from tests.support.stack import start_stack, stop_stack


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Under tests/run_all.py, an `alone` test runs with the other lanes paused."""
    where = lane_lock.directory()
    if where is None:
        yield
        return
    alone = item.get_closest_marker(lane_lock.MARKER) is not None
    with lane_lock.held(where, alone=alone) as waited_s:
        if alone:
            reporter = item.config.pluginmanager.get_plugin("terminalreporter")
            reporter.write_line(
                f"{item.nodeid}: alone on the machine after {waited_s:.0f}s waiting for the other lanes"
            )
        yield


@pytest.fixture(scope="session")
def stack() -> StackLayout:
    layout = start_stack()
    try:
        yield layout
    finally:
        stop_stack(layout)


@pytest.fixture(scope="session")
def gateway(stack: StackLayout) -> str:
    return stack.url("gateway")


@pytest.fixture()
def client() -> httpx.Client:
    """A client that shows the test stacks' service credential: tests read and poke
    internal endpoints (tests/integration/test_service_auth.py checks the refusals)."""
    with httpx.Client(timeout=30, headers=SERVICE_HEADERS) as c:
        yield c
