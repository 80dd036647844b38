"""Free loopback ports for a simulated province, so a second demo (or anything else on the
configured ports) never stops this one.

A province is rewritten on its raw YAML form, before environment substitution, so the
file written for the monitor keeps `${VAR}` references instead of their secret values.
"""

from __future__ import annotations

import copy
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

LOOPBACK = "127.0.0.1"
PORT_ATTEMPTS = 50  # bind(0) tries before giving up (each only fails on a reused number)


def free_port(kind: int = socket.SOCK_STREAM, avoid: set[int] | frozenset = frozenset(),
              host: str = LOOPBACK) -> int:
    """A port on host free for both TCP and UDP right now, and not in ``avoid``.

    Both, because an SNMP agent needs UDP and a Modbus server TCP, and one picker serves
    them all. Free now only: another process may take it before it is bound.
    """
    other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
    for _ in range(PORT_ATTEMPTS):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            if port in avoid:
                continue
            try:
                with socket.socket(socket.AF_INET, other) as second:
                    second.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port on {host}")


def port_is_free(host: str, port: int) -> bool:
    """Whether a TCP server could listen on host:port right now (as the web server does)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                       socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def distinct_ports() -> Callable[[], int]:
    """A port source that never hands out the same port twice (the OS may)."""
    used: set[int] = set()

    def take() -> int:
        used.add(port := free_port(avoid=used))
        return port
    return take


def on_free_ports(raw: dict, take: Callable[[], int], base_dir: Path | None = None) -> dict:
    """A copy of a raw province with every network endpoint and the control port on
    127.0.0.1 and a port from ``take``.

    Devices that share an address (meters behind one Modbus gateway, units told apart)
    keep sharing their new one. A relative profiles_dir is made absolute against
    base_dir, since the copy is written elsewhere. Serial devices are left as they are.
    """
    out = copy.deepcopy(raw)
    moved: dict[tuple, int] = {}
    for site in out.get("sites") or []:
        for device in site.get("devices") or []:
            for proto in ("snmp", "modbus"):
                target = device.get(proto)
                if not isinstance(target, dict) or "port" not in target or target.get("serial"):
                    continue
                where = (proto, target.get("host"), target["port"])
                if where not in moved:
                    moved[where] = take()
                target["host"], target["port"] = LOOPBACK, moved[where]
    if isinstance(out.get("simulation"), dict):
        out["simulation"]["control_port"] = take()
    folder = out.get("profiles_dir")
    if isinstance(folder, str) and base_dir is not None and not Path(folder).is_absolute():
        out["profiles_dir"] = str((base_dir / folder).resolve())
    return out


def read_raw(path: Path) -> dict:
    """A configuration file as YAML data (the loader validates it afterwards)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return raw


def write_raw(raw: dict, path: Path, note: str = "") -> None:
    """Write a raw configuration atomically (the monitor may read it at any moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write("".join(f"# {line}\n" for line in note.splitlines()) + text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
