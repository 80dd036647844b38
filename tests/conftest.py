"""Shared fixtures: free loopback ports, the demo province rewritten onto them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.yaml"


def free_port(kind: int = socket.SOCK_STREAM, avoid: set[int] | frozenset = frozenset()) -> int:
    """A port on 127.0.0.1 free for both TCP and UDP right now, and not in ``avoid``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port in avoid:
                continue
            other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
            try:
                with socket.socket(socket.AF_INET, other) as second:
                    second.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def demo_on_free_ports(target: Path, interval_s: float = 1.0) -> tuple[Path, dict]:
    """Write the demo province with every device and the control endpoint on free ports."""
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    raw["polling"]["interval_s"] = interval_s
    raw["polling"]["timeout_s"] = min(raw["polling"]["timeout_s"], interval_s)
    # The OS may hand the same free port out twice in a row: keep them distinct.
    used: set[int] = set()

    def take() -> int:
        used.add(port := free_port(avoid=used))
        return port

    for site in raw["sites"]:
        for device in site["devices"]:
            target_block = device.get("snmp") or device.get("modbus")
            target_block["port"] = take()
    raw["simulation"]["control_port"] = take()
    path = target / "province.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, raw


@pytest.fixture()
def demo_config(tmp_path):
    """(path, raw dict) of the demo province on free ports, polled every second."""
    return demo_on_free_ports(tmp_path)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of our own for the whole run (tests/pg_server.py)."""
    from tests.pg_server import pg_server

    yield from pg_server()


STORE_BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=STORE_BACKENDS)
def store_factory(request, tmp_path):
    """Opens stores of each backend in turn (tests/pg_server.StoreMaker); the PostgreSQL
    server starts only when a test asks for that backend."""
    from tests.pg_server import StoreMaker

    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    return StoreMaker(request.param, tmp_path, server)
