from __future__ import annotations

import httpx
import pytest

from chaos.layout import StackLayout
from tests.support.api import SERVICE_HEADERS
from tests.support.stack import start_stack, stop_stack


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
