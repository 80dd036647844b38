"""`profile draft` for Modbus: a profile from a register list (CSV), as a points list or a
vendor table is typed in: one row per value, header ``address,type,order,scale,unit,metric``
and optional ``function`` (3 or 4), ``label`` (``key=value``) and ``name`` columns.

``unit`` is what the register counts (W, kW, Wh, kWh, V, mV, A, mA, Hz, VA, %, degC, or
empty for a power factor); the draft turns it into the metric's unit with ``scale``.
``metric`` may be left empty when the unit says it. Pure: text in, YAML text out.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import yaml

from pue_monitor.collectors.profile_draft import UNITS
from pue_monitor.config.datatypes import DATA_TYPES, normalise_order
from pue_monitor.config.metrics import LABEL_KEYS, METRICS

REQUIRED = ("address", "type", "order", "scale", "unit", "metric")


class ModbusListError(ValueError):
    """A register list row that cannot become a point, naming the file, row and value."""


def _point(row: dict[str, str], where: str) -> dict:
    try:
        address = int(row["address"], 0)
    except ValueError:
        raise ModbusListError(f"{where}: address {row['address']!r} is not a number") from None
    dtype = row["type"].strip().lower()
    if dtype not in DATA_TYPES:
        raise ModbusListError(f"{where}: type {row['type']!r} (known: {', '.join(DATA_TYPES)})")
    order = normalise_order(row["order"].strip() or "ABCD")
    if order is None:
        raise ModbusListError(f"{where}: word order {row['order']!r} (ABCD, CDAB, BADC, DCBA)")
    try:
        scale = float(row["scale"] or 1)
    except ValueError:
        raise ModbusListError(f"{where}: scale {row['scale']!r} is not a number") from None
    unit = row["unit"].strip()
    metric = row["metric"].strip()
    factor = 1.0
    if unit:
        known = UNITS.get(unit.lower().replace("°", "deg"))
        if known is None:
            raise ModbusListError(f"{where}: unit {unit!r} (known: {', '.join(sorted(UNITS))})")
        metric = metric or known[0]
        if metric != known[0]:
            raise ModbusListError(f"{where}: unit {unit!r} is not a unit of {metric}")
        factor = known[1]
    if metric not in METRICS:
        raise ModbusListError(f"{where}: metric {metric!r} (known: {', '.join(METRICS)})")
    point: dict = {"metric": metric, "register": address, "type": dtype, "order": order}
    if scale * factor != 1.0:
        point["scale"] = float(f"{scale * factor:.12g}")
    if (row.get("function") or "").strip():
        point["function"] = int(row["function"])
    if (row.get("label") or "").strip():
        key, _, value = row["label"].partition("=")
        if key.strip() not in LABEL_KEYS or not value.strip():
            raise ModbusListError(f"{where}: label {row['label']!r} (key=value, keys: "
                                  f"{', '.join(sorted(LABEL_KEYS))})")
        point["labels"] = {key.strip(): value.strip()}
    return point


def draft_modbus_profile(path: Path, name: str) -> str:
    """The draft profile's YAML for the register list at ``path``.

    :raises ModbusListError: naming the path and row of the first bad row.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ModbusListError(f"{path}: cannot read: {exc.strerror}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ModbusListError(f"{path}: missing column(s) {', '.join(missing)} "
                              f"(header: {','.join(REQUIRED)}[,function,label,name])")
    lines = [f"# DRAFT by `pue-monitor profile draft` from the register list {path.name}.",
             "# Review it against the device's register table; say there which document",
             "# and edition it comes from, and its \"not available\" markers.",
             yaml.safe_dump({"name": name, "protocol": "modbus",
                             "description": f"Draft from {path.name}", "models": [path.stem],
                             "source": f"register list {path.name}",
                             "numbering": "address",
                             "modbus_defaults": {"function": 3}},
                            sort_keys=False, default_flow_style=None, width=1000).rstrip(),
             "modbus_points:"]
    rows = 0
    for number, row in enumerate(reader, 2):
        if not any((v or "").strip() for v in row.values()):
            continue
        point = _point(row, f"{path}:{number}")
        if (row.get("name") or "").strip():
            lines.append(f"  # {row['name'].strip()}")
        lines.append("  - " + yaml.safe_dump(point, default_flow_style=True, sort_keys=False,
                                             width=1000).strip())
        rows += 1
    if not rows:
        raise ModbusListError(f"{path}: no register rows")
    return "\n".join(lines) + "\n"
