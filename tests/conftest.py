from __future__ import annotations

import httpx
import pytest

from chaos.layout import StackLayout
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
    with httpx.Client(timeout=30) as c:
        yield c
