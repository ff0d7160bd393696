"""Which replica of its service a container is, under compose: the number compose put at
the end of the container's name (`chaoslab-payments-2` is replica 2).

Compose starts every replica of a service from one definition, so no environment
variable can tell them apart; `REPLICA=auto` asks this module at start. The name is found
by the container's own address: /etc/hosts first (Podman writes the container's name
there), then a PTR query to the network's resolver (Docker's embedded DNS answers with
the container's name). 0 (no replica number, as a single process) when neither knows.
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
from pathlib import Path

PTR, IN = 12, 1
RESOLV_CONF = Path("/etc/resolv.conf")


def from_names(service: str, names: list[str]) -> int:
    """The replica number in the first of `names` that is `<project>-<service>-<N>`
    (a DNS name may carry its network after a dot); 0 when none is."""
    pattern = re.compile(rf"^[\w.-]*-{re.escape(service)}-(\d+)(?:\..*)?$")
    for name in names:
        if match := pattern.match(name.rstrip(".")):
            return int(match.group(1))
    return 0


def ptr_query(ip: str, query_id: int) -> bytes:
    """A DNS query for the PTR record of an IPv4 address."""
    name = ".".join(reversed(ip.split("."))) + ".in-addr.arpa"
    question = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", PTR, IN)


def ptr_answers(reply: bytes, query_id: int) -> list[str]:
    """The names in the PTR answers of a DNS reply to `ptr_query` (none for another id,
    an error code, or a reply that does not parse)."""
    try:
        rid, flags, questions, answers = struct.unpack(">HHHH", reply[:8])
        if rid != query_id or flags & 0x000F:
            return []
        offset = 12
        for _ in range(questions):
            _, offset = _name(reply, offset)
            offset += 4
        found = []
        for _ in range(answers):
            _, offset = _name(reply, offset)
            rtype, _cls, _ttl, length = struct.unpack(">HHIH", reply[offset : offset + 10])
            offset += 10
            if rtype == PTR:
                found.append(_name(reply, offset)[0])
            offset += length
        return found
    except (struct.error, IndexError, UnicodeDecodeError, RecursionError):
        return []


def _name(data: bytes, offset: int) -> tuple[str, int]:
    """A (possibly compressed) domain name at `offset`, and the offset after it."""
    labels = []
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:  # a pointer to a name earlier in the message
            pointed = ((length & 0x3F) << 8) | data[offset + 1]
            labels.append(_name(data, pointed)[0])
            return ".".join(labels), offset + 2
        offset += 1
        if length == 0:
            return ".".join(labels), offset
        labels.append(data[offset : offset + length].decode())
        offset += length


def dns_names(ip: str, timeout_s: float = 1.0) -> list[str]:
    """PTR names of `ip` from the first nameserver of /etc/resolv.conf."""
    try:
        servers = [line.split()[1] for line in RESOLV_CONF.read_text().splitlines() if line.startswith("nameserver")]
    except (OSError, IndexError):
        return []
    if not servers:
        return []
    query_id = secrets.randbelow(0xFFFF)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.sendto(ptr_query(ip, query_id), (servers[0], 53))
            return ptr_answers(sock.recv(4096), query_id)
        except OSError:
            return []


def resolve(service: str) -> int:
    """This container's replica number (0 when its name does not tell)."""
    try:
        ip = socket.gethostbyname(socket.gethostname())
        host, aliases, _ = socket.gethostbyaddr(ip)
    except OSError:
        return 0
    return from_names(service, [host, *aliases]) or from_names(service, dns_names(ip))
