"""Shared fixtures: free loopback ports, the demo province rewritten onto them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "config" / "demo.yaml"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free for both TCP and UDP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
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
    for site in raw["sites"]:
        for device in site["devices"]:
            target_block = device.get("snmp") or device.get("modbus")
            target_block["port"] = free_port()
    raw["simulation"]["control_port"] = free_port()
    path = target / "province.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, raw


@pytest.fixture()
def demo_config(tmp_path):
    """(path, raw dict) of the demo province on free ports, polled every second."""
    return demo_on_free_ports(tmp_path)
