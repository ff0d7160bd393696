"""A compose container's replica number, from its name as the resolver gives it."""

from __future__ import annotations

import struct

import pytest

from services.common.replica_number import from_names, ptr_answers, ptr_query


@pytest.mark.parametrize(
    ("names", "number"),
    [
        (["2c26f5595fcc", "chaoslab-payments-2"], 2),  # Podman's /etc/hosts: id, then name
        (["chaoslab-payments-13.chaoslab_chaoslab."], 13),  # Docker's PTR: name.network.
        (["my-lab-payments-1"], 1),  # any project name
        (["2c26f5595fcc"], 0),  # no name: a single process's 0
        (["chaoslab-inventory-2"], 0),  # another service's name is not ours
        (["chaoslab-payments-x"], 0),
    ],
)
def test_the_number_at_the_end_of_the_service_s_container_name(names, number):
    assert from_names("payments", names) == number


def reply_to(query: bytes, *names: str, rcode: int = 0) -> bytes:
    """What a resolver answers: the question echoed, then one PTR per name, each pointing
    back at the question's name (compression), as real resolvers do."""
    query_id = struct.unpack(">H", query[:2])[0]
    header = struct.pack(">HHHHHH", query_id, 0x8180 | rcode, 1, len(names), 0, 0)
    answers = b""
    for name in names:
        rdata = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
        answers += b"\xc0\x0c" + struct.pack(">HHIH", 12, 1, 600, len(rdata)) + rdata
    return header + query[12:] + answers


def test_a_ptr_reply_gives_back_the_container_s_name():
    query = ptr_query("10.89.0.3", 4242)
    assert b"\x013\x010\x0289\x0210\x07in-addr\x04arpa\x00" in query  # reversed, as DNS wants it
    assert ptr_answers(reply_to(query, "chaoslab-payments-2.chaoslab"), 4242) == ["chaoslab-payments-2.chaoslab"]


@pytest.mark.parametrize(
    "reply",
    [
        lambda q: reply_to(q, "chaoslab-payments-2", rcode=3),  # NXDOMAIN
        lambda q: reply_to(ptr_query("10.89.0.3", 1), "chaoslab-payments-2"),  # another query's answer
        lambda q: reply_to(q, "chaoslab-payments-2")[:-5],  # cut short
        lambda q: b"",
    ],
)
def test_a_reply_that_is_not_an_answer_to_our_query_gives_no_name(reply):
    query = ptr_query("10.89.0.3", 4242)
    assert ptr_answers(reply(query), 4242) == []
