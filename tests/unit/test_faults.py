"""The fault catalogue: every bound tried just inside and just outside, keys both ways."""

from __future__ import annotations

import pytest

from services.common.faults.catalogue import CATALOGUE, parse_key, redis_key
from services.common.web.errors import BadInput

NUMERIC = [f for f in CATALOGUE.values() if f.kind in ("rate", "int", "float")]


def _service(fault):
    return fault.services[0]


@pytest.mark.parametrize("fault", NUMERIC, ids=lambda f: f.name)
def test_numeric_bounds_inside_and_outside(fault):
    step = 1 if fault.kind == "int" else 0.001
    service = _service(fault)
    assert fault.parse(fault.low, service) == fault.low
    assert fault.parse(fault.high, service) == fault.high
    for outside in (fault.low - step, fault.high + step):
        with pytest.raises(BadInput) as err:
            fault.parse(outside, service)
        assert f"between {fault.low:g} and {fault.high:g}" in err.value.message


@pytest.mark.parametrize("raw", ["abc", "", None, [1]])
def test_non_numbers_are_refused_with_the_range(raw):
    with pytest.raises(BadInput) as err:
        CATALOGUE["latency_ms"].parse(raw, "payments")
    assert "from 0 to 30000 ms" in err.value.message


def test_int_faults_refuse_fractions():
    with pytest.raises(BadInput):
        CATALOGUE["error_first_n"].parse(2.5, "payments")
    assert CATALOGUE["error_first_n"].parse("3", "payments") == 3


@pytest.mark.parametrize(
    "raw, expected", [("1", True), ("true", True), ("on", True), ("0", False), ("false", False), (True, True)]
)
def test_bool_faults(raw, expected):
    assert CATALOGUE["unhealthy"].parse(raw, "orders") is expected


def test_bool_faults_refuse_other_words():
    with pytest.raises(BadInput):
        CATALOGUE["unhealthy"].parse("maybe", "orders")


@pytest.mark.parametrize("status", ["500", "502", "503", "504"])
def test_error_status_takes_only_server_errors(status):
    assert CATALOGUE["error_status"].parse(status, "payments") == int(status)


@pytest.mark.parametrize("status", ["499", "501", "505", "200"])
def test_error_status_refuses_others(status):
    with pytest.raises(BadInput):
        CATALOGUE["error_status"].parse(status, "payments")


def test_block_takes_only_the_callers_downstreams():
    assert CATALOGUE["block"].parse("payments, inventory", "orders") == ["payments", "inventory"]
    for bad in ("gateway", "", "payments,nowhere"):
        with pytest.raises(BadInput):
            CATALOGUE["block"].parse(bad, "orders")
    with pytest.raises(BadInput):  # payments calls nobody
        CATALOGUE["block"].parse("orders", "payments")


def test_faults_apply_only_to_their_services():
    with pytest.raises(BadInput) as err:
        CATALOGUE["outbox_paused"].parse("1", "payments")
    assert "applies to orders" in err.value.message


@pytest.mark.parametrize("route, replica", [(None, None), ("/charges", None), (None, 2), ("/charges/void", 0)])
def test_keys_round_trip(route, replica):
    key = redis_key("payments", "error_rate", route=route, replica=replica)
    assert parse_key(key) == ("payments", "error_rate", replica, route)


def test_not_a_fault_key():
    assert parse_key("chaos:audit") is None
    assert parse_key("other:payments:error_rate") is None
    assert parse_key("chaos:payments:error_rate:weird=1") is None


def test_encode_is_what_parse_reads_back():
    for fault in CATALOGUE.values():
        service = _service(fault)
        sample = {
            "rate": 0.25,
            "int": int(fault.high),
            "float": fault.high,
            "bool": True,
            "status": 503,
            "services": ["orders"] if service == "gateway" else ["payments"],
        }[fault.kind]
        assert fault.parse(fault.encode(sample), service) == sample
