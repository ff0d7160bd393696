from __future__ import annotations

import httpx
import pytest

from chaos.layout import StackLayout
from tests.support.stack import start_stack, stop_stack

# The integration tests fire bursts at an idle stack to test one pattern each (fifty
# identical requests at once, three orders on one locked row, a locust storm). The
# gateway's adaptive door (its default) rightly sheds a burst it has not yet learnt it
# can take, so their stack admits by a fixed limit instead. The adaptive door has its own
# tests (tests/unit/test_adaptive.py, test_backpressure.py) and runs in every drill.
STATIC_DOOR = {"gateway:ADMISSION": "static"}


@pytest.fixture(scope="session")
def stack() -> StackLayout:
    layout = start_stack(env=STATIC_DOOR)
    try:
        yield layout
    finally:
        stop_stack(layout)


@pytest.fixture(scope="session")
def gateway(stack: StackLayout) -> str:
    return stack.url("gateway")


@pytest.fixture()
def client() -> httpx.Client:
    with httpx.Client(timeout=30) as c:
        yield c
