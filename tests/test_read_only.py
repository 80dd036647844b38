"""Read-only by construction: the collectors can only send SNMP GET, GETNEXT and GETBULK and
Modbus read function codes (1-4). Proven two ways: the only Modbus request builder refuses
every other function code, and no code under collectors/ names an SNMP SET or a Modbus
write (an AST scan, so a new client or helper cannot slip one in)."""

from __future__ import annotations

import ast
import asyncio
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

from pue_monitor import collectors
from pue_monitor.collectors import snmp_client
from pue_monitor.collectors.modbus_client import ModbusConnection
from pue_monitor.collectors.modbus_frame import read_pdu
from pue_monitor.config.datatypes import READ_FUNCTIONS

COLLECTORS = Path(__file__).resolve().parent.parent / "collectors"
# Modbus Application Protocol V1.1b3, 6.5-6.17: write single coil (5), write single
# register (6), write multiple coils (15), write multiple registers (16), mask write
# register (22), read/write multiple registers (23).
WRITE_FUNCTIONS = frozenset({5, 6, 15, 16, 22, 23})
# Names that would send a write: pysnmp's SET (set_cmd, setCmd, SetCommandGenerator,
# SetRequestPDU), and Modbus writes as libraries and manuals name them.
WRITE_NAMES = re.compile(
    r"set_?cmd|set_?request|setcommandgenerator|setrequestpdu|"
    r"write_?(single_?|multiple_?)?(coil|register)s?|mask_?write|read_?write_?(multiple_?)?"
    r"registers|fc_?write", re.IGNORECASE)
# Calls whose first argument is a Modbus function code.
FUNCTION_CODE_CALLS = {"read_pdu", "read", "exception_answer_pdu", "registers_answer_pdu",
                       "answer_values"}


def test_read_functions_are_exactly_one_to_four():
    assert READ_FUNCTIONS == {1, 2, 3, 4} and not READ_FUNCTIONS & WRITE_FUNCTIONS


@pytest.mark.parametrize("function", sorted(READ_FUNCTIONS))
def test_the_request_builder_builds_reads(function):
    # function, address 0x0010, count 2: the PDU of Modbus Application Protocol 6.1-6.4
    assert read_pdu(function, 16, 2) == bytes((function, 0x00, 0x10, 0x00, 0x02))


@pytest.mark.parametrize("function", [f for f in range(256) if f not in READ_FUNCTIONS]
                         + [True, 3.0])
def test_the_request_builder_refuses_every_other_function_code(function):
    with pytest.raises(ValueError, match="is not a read function"):
        read_pdu(function, 0, 1)


@pytest.mark.parametrize("function", sorted(WRITE_FUNCTIONS))
def test_the_client_refuses_a_write_before_connecting(function):
    # nothing listens on port 9 of this documentation address: the refusal comes first
    connection = ModbusConnection("192.0.2.1", 9, timeout_s=0.1)
    with pytest.raises(ValueError, match="is not a read function"):
        asyncio.run(connection.read(function, 0, 1, unit=1))
    assert connection.stats.reconnects == 0 and connection._stream is None


def _snmp_clients() -> list[type]:
    """Every class under collectors/ with the SNMP seam's get and walk (each backend)."""
    found = []
    for info in pkgutil.iter_modules(collectors.__path__):
        module = importlib.import_module(f"{collectors.__name__}.{info.name}")
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if cls.__module__ == module.__name__ and hasattr(cls, "get")
                  and hasattr(cls, "walk")]
    return found


def test_no_snmp_client_has_a_set_path():
    clients = _snmp_clients()
    assert snmp_client.SnmpClient in clients and snmp_client.PysnmpClient in clients
    for cls in clients:
        members = {name.lower() for name in dir(cls) if not name.startswith("__")}
        assert {"get", "walk", "close"} <= members, cls
        assert {n for n in members if "set" in n} == set(), cls


def _sources() -> list[Path]:
    paths = sorted(COLLECTORS.rglob("*.py"))
    assert len(paths) > 10  # the scan really reads the collectors
    return paths


def _write_references(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
        elif isinstance(node, ast.alias):
            names += [node.name, node.asname or ""]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.append(node.value)
        elif isinstance(node, ast.keyword) and node.arg:
            names.append(node.arg)
        found += [(getattr(node, "lineno", 0), n) for n in names if WRITE_NAMES.search(n)]
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else ""
            codes = [node.args[0]] if called in FUNCTION_CODE_CALLS and node.args else []
            codes += [k.value for k in node.keywords if k.arg == "function"]
            # bytes((5, ...)): a PDU written out by hand
            if called == "bytes" and node.args and isinstance(node.args[0], ast.Tuple | ast.List):
                codes += node.args[0].elts[:1]
            found += [(node.lineno, f"function code {c.value} in {called}()") for c in codes
                      if isinstance(c, ast.Constant) and c.value in WRITE_FUNCTIONS]
    return found


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(COLLECTORS).as_posix())
def test_no_collector_code_names_a_write(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    assert _write_references(tree) == []


# The scan itself, on code that does write: each must be found.
WRITERS = [
    ("from pysnmp.hlapi.v1arch.asyncio import set_cmd\n", "set_cmd"),
    ("from pysnmp.hlapi.asyncio import setCmd as s\n", "setCmd"),
    ("from pysnmp.proto.api import v2c\npdu = v2c.SetRequestPDU()\n", "SetRequestPDU"),
    ("g = cmdgen.SetCommandGenerator()\n", "SetCommandGenerator"),
    ("await client.write_register(1, 2)\n", "write_register"),
    ("await client.write_coils(1, [True])\n", "write_coils"),
    ("pdu = read_pdu(6, 1, 2)\n", "function code 6 in read_pdu()"),
    ("await conn.read(16, 0, 1, unit=1)\n", "function code 16 in read()"),
    ("x = conn.read(function=15, address=0, count=1, unit=1)\n", "function code 15 in read()"),
    ("pdu = bytes((5, 0, 1, 0xFF, 0))\n", "function code 5 in bytes()"),
]


@pytest.mark.parametrize(("code", "expected"), WRITERS, ids=[w[1] for w in WRITERS])
def test_the_scan_finds_writes(code, expected):
    assert [name for _, name in _write_references(ast.parse(code))] == [expected]
