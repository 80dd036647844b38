"""Historical readings from CSV (BMS or meter exports) into the store, all or nothing.

Columns: ``timestamp`` (ISO 8601 with a UTC offset), ``device`` (an id from the config),
``metric`` (a canonical metric), ``value``; optional ``labels`` (``k=v,k2=v2``). Every
row is checked before anything is written, every bad row is reported with its line
number, and a file with any bad row imports nothing.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime

from config.metrics import COUNTER_METRICS, LABEL_KEYS, METRICS
from config.model import Config
from pue.periods import BLOCK_S
from store.model import Reading
from store.periods import NO_ENERGY_ROLES
from store.rollup import SETTLE_S, rollup_range
from store.sqlite import Store

REQUIRED = ("timestamp", "device", "metric", "value")
OPTIONAL = ("labels",)
# A reading may be this far ahead of the importing machine's clock (clock skew), no more.
FUTURE_SLACK_S = 300.0


@dataclass(frozen=True)
class RowError:
    line: int  # 1-based line of the file (the header is line 1)
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    devices: tuple[str, ...]
    start: float  # first and last reading time, unix seconds
    end: float
    blocks: int  # 15-minute blocks recomputed


def _timestamp(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {text!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        # A local time without an offset is ambiguous (which zone? which side of DST?).
        raise ValueError(f"timestamp {text!r} has no UTC offset (write e.g. +07:00 or Z)")
    return moment.timestamp()


def _labels(text: str) -> tuple[tuple[str, str], ...]:
    if not text:
        return ()
    out = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise ValueError(f"labels {text!r}: write k=v,k2=v2")
        if key not in LABEL_KEYS:
            raise ValueError(f"unknown label {key!r} (known: {', '.join(sorted(LABEL_KEYS))})")
        if key in out:
            raise ValueError(f"label {key!r} given twice")
        out[key] = value
    return tuple(sorted(out.items()))


def _row(cells: dict[str, str], devices: set[str], now: float | None) -> Reading:
    """One CSV row as a reading; ValueError listing every problem of the row."""
    problems = []
    ts = value = None
    labels: tuple[tuple[str, str], ...] = ()
    try:
        ts = _timestamp(cells["timestamp"])
        if now is not None and ts > now + FUTURE_SLACK_S:
            problems.append(f"timestamp {cells['timestamp']!r} is in the future")
    except ValueError as exc:
        problems.append(str(exc))
    device, metric = cells["device"], cells["metric"]
    if device not in devices:
        problems.append(f"unknown device {device!r}")
    if metric not in METRICS:
        problems.append(f"unknown metric {metric!r}")
    try:
        value = float(cells["value"])
        if not math.isfinite(value):
            problems.append(f"value {cells['value']!r} is not a finite number")
        elif metric in COUNTER_METRICS and value < 0:
            problems.append(f"value {value!r}: a cumulative counter is never negative")
    except ValueError:
        problems.append(f"value {cells['value']!r} is not a number")
    try:
        labels = _labels(cells.get("labels") or "")
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return Reading(ts, device, metric, value, labels)  # type: ignore[arg-type]


def parse_readings(text: str, config: Config, now: float | None = None
                   ) -> tuple[list[Reading], list[RowError]]:
    """Validate a whole CSV export: (readings, errors). Pure: no store, no clock."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None:
        return [], [RowError(1, "empty file: expected a header "
                                f"{','.join(REQUIRED)}[,labels]")]
    names = [h.strip().lower() for h in header]
    errors = []
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        errors.append(RowError(1, f"missing column(s) {', '.join(missing)} "
                                  f"(header: {','.join(names)})"))
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    if unknown:
        errors.append(RowError(1, f"unknown column(s) {', '.join(unknown)}"))
    if errors:
        return [], errors
    devices = {d.id for _, d in config.devices()}
    readings: list[Reading] = []
    seen: dict[tuple, int] = {}
    line = 1
    for row in reader:
        line_start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines (a trailing newline, a spreadsheet's empty rows)
        if len(row) != len(names):
            errors.append(RowError(line_start, f"{len(row)} fields, expected {len(names)}"))
            continue
        cells = {n: c.strip() for n, c in zip(names, row)}
        try:
            reading = _row(cells, devices, now)
        except ValueError as exc:
            errors.append(RowError(line_start, str(exc)))
            continue
        key = (reading.ts, reading.device, reading.metric, reading.labels)
        if key in seen:
            errors.append(RowError(line_start, f"same reading as line {seen[key]} "
                                               "(timestamp, device, metric, labels)"))
            continue
        seen[key] = line_start
        readings.append(reading)
    if not readings and not errors:
        errors.append(RowError(line + 1, "no readings after the header"))
    return readings, errors


def affected_blocks(readings: list[Reading], store: Store, now: float
                    ) -> dict[str, tuple[float, float]]:
    """Per device, the settled 15-minute blocks the new readings can change.

    A counter or power series is interpolated between neighbouring readings, so the
    blocks from the stored reading before the first new one to the stored reading after
    the last new one may change, not only those under the new readings.
    """
    settled = math.floor((now - SETTLE_S) / BLOCK_S) * BLOCK_S
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for r in readings:
        first[r.device] = min(first.get(r.device, r.ts), r.ts)
        last[r.device] = max(last.get(r.device, r.ts), r.ts)
    out = {}
    for device in sorted(first):
        lo, hi = store.neighbour_times(device, first[device], last[device])
        start = math.floor(lo / BLOCK_S) * BLOCK_S
        end = min(math.ceil(hi / BLOCK_S) * BLOCK_S, settled)
        if end > start:
            out[device] = (float(start), float(end))
    return out


def import_readings(store: Store, config: Config, readings: list[Reading],
                    now: float) -> ImportSummary:
    """Write validated readings in one transaction, then recompute the affected blocks."""
    blocks = affected_blocks(readings, store, now)
    # The stale blocks go in the same transaction as the readings: if the recomputation
    # below is interrupted, the periods compute the missing blocks again on demand.
    store.import_readings(readings, list(blocks.items()))
    sites = {d.id: (s, d) for s, d in config.devices()}
    written = 0
    for device, (start, end) in blocks.items():
        site, dev = sites[device]
        if dev.role in NO_ENERGY_ROLES:
            continue
        written += rollup_range(store, config, site, dev, start, end)
    times = [r.ts for r in readings]
    return ImportSummary(len(readings), tuple(sorted({r.device for r in readings})),
                         min(times), max(times), written)
