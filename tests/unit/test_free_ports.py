"""Free ports for stacks started side by side: below the ephemeral range, distinct, bindable."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from chaos.layout import IANA_EPHEMERAL_START, LOWEST_PICKED_PORT, ephemeral_start, free_ports, pick_free


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_free_ports_are_distinct_bindable_and_never_ones_an_outbound_connection_could_take():
    ports = free_ports(12)
    assert len(set(ports)) == 12
    assert all(LOWEST_PICKED_PORT <= port < ephemeral_start() for port in ports)
    assert all(bindable(port) for port in ports)


def test_a_port_already_bound_is_passed_over():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        [port] = pick_free([taken, 0], 1)
    assert port != taken


def test_too_few_free_ports_is_an_error_that_says_how_many():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        with pytest.raises(OSError, match="only 1 of 2 ports"):
            pick_free([taken, 0], 2)


@pytest.mark.parametrize(
    ("text", "start"),
    [("32768\t60999\n", 32768), ("1024 65535", 1024), ("", IANA_EPHEMERAL_START), ("x y", IANA_EPHEMERAL_START)],
)
def test_the_ephemeral_range_starts_where_the_kernel_says_else_where_iana_does(tmp_path: Path, text: str, start: int):
    path = tmp_path / "ip_local_port_range"
    path.write_text(text)
    assert ephemeral_start(path) == start


def test_without_the_kernels_word_the_range_is_iana_s(tmp_path: Path):
    assert ephemeral_start(tmp_path / "absent") == IANA_EPHEMERAL_START
