"""Shared fixtures: free loopback ports, the demo province rewritten onto them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pue_monitor.simulator.ports import distinct_ports, free_port, on_free_ports, read_raw, write_raw

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.yaml"

__all__ = ["demo_on_free_ports", "free_port"]  # free_port: the tests' import point


def demo_on_free_ports(target: Path, interval_s: float = 1.0) -> tuple[Path, dict]:
    """Write the demo province with every device and the control endpoint on free ports,
    polled every ``interval_s`` (the ports as the simulator's --free-ports picks them)."""
    raw = on_free_ports(read_raw(DEMO), distinct_ports(), DEMO.parent)
    raw["polling"]["interval_s"] = interval_s
    raw["polling"]["timeout_s"] = min(raw["polling"]["timeout_s"], interval_s)
    path = target / "province.yaml"
    write_raw(raw, path)
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


def pytest_terminal_summary(terminalreporter):
    """The figures the fuzz, fault and soak suites recorded (tests/suite_figures.py), when
    any ran."""
    from tests.suite_figures import lines

    if found := lines():
        terminalreporter.section("robustness figures")
        for line in found:
            terminalreporter.write_line(line)
