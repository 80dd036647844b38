"""Historical readings from CSV (BMS or meter exports) into the store, all or nothing.

Columns: ``timestamp`` (ISO 8601 with a UTC offset), ``device`` (an id from the config),
``metric`` (a canonical metric), ``value``; optional ``labels`` (``k=v,k2=v2``). Every
row is checked before anything is written, every bad row is reported with its line
number, and a file with any bad row imports nothing.

Importing is idempotent: a row already in the store with the same value is skipped (and
counted), one stored with another value is a bad row. A row repeated in the file is
counted once; the same reading with two values in the file is a bad row.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from pue_monitor.config.history import device_epochs
from pue_monitor.config.metrics import (
    COUNTER_METRICS,
    ENERGY_METRIC,
    LABEL_KEYS,
    METRICS,
    POWER_METRIC,
    Role,
)
from pue_monitor.config.model import Config
from pue_monitor.figures.rollup import SETTLE_S, has_blocks, rollup_range
from pue_monitor.figures.service import (
    power_polls,
    runs_bounds,
    stuck_candidates,
    whole_power,
)
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import ProgressFn, StoreProtocol, series_over
from pue_monitor.store.model import Reading, labels_key

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
class ParsedFile:
    readings: list[Reading]  # one per distinct (timestamp, device, metric, labels)
    lines: list[int]  # the file line of each reading
    errors: list[RowError]
    repeated: int = 0  # rows identical to an earlier row of the file, counted once


@dataclass(frozen=True)
class StoreCheck:
    """The readings of a file against what the store already holds."""

    new: list[Reading]  # not stored yet: to be written
    skipped: int  # stored already with the same value
    conflicts: list[RowError]  # stored already with another value


class ImportConflict(Exception):
    """Rows stored already with other values; nothing was imported."""

    def __init__(self, errors: list[RowError]) -> None:
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


@dataclass(frozen=True)
class ImportSummary:
    rows: int  # readings written
    devices: tuple[str, ...]  # devices of the readings written
    start: float | None  # first and last reading written, unix seconds (None: none)
    end: float | None
    blocks: int  # 15-minute blocks recomputed
    skipped: int = 0  # rows already in the store with the same value
    repeated: int = 0  # rows repeated in the file, counted once


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


def _number(value: float | None) -> str:
    """A value as an operator would write it: 1000, 52031.4."""
    if value is None:
        return "no value"
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _what(reading: Reading) -> str:
    labels = labels_key(reading.labels)
    at = datetime.fromtimestamp(reading.ts, timezone.utc).isoformat()
    return f"{reading.device} {reading.metric}{'{' + labels + '}' if labels else ''} at {at}"


def parse_readings(text: str, config: Config, now: float | None = None
                   ) -> tuple[list[Reading], list[RowError]]:
    """Validate a whole CSV export: (readings, errors). Pure: no store, no clock."""
    parsed = parse_file(text, config, now)
    return parsed.readings, parsed.errors


def _csv_rows(reader: Iterator[list[str]], errors: list[RowError]) -> Iterator[list[str]]:
    """The reader's rows; a file the csv module cannot split (a field over its size
    limit) ends them with a RowError, so nothing of it is imported."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(RowError(getattr(reader, "line_num", 0) or 1,
                                   f"not readable as CSV: {exc}"))
            return
        yield row


def parse_file(text: str, config: Config, now: float | None = None) -> ParsedFile:
    """Validate a whole CSV export, with the line of each reading. Pure: no store, no clock."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    errors: list[RowError] = []
    rows = _csv_rows(reader, errors)
    header = next(rows, None)
    if header is None:
        return ParsedFile([], [], errors or [RowError(1, "empty file: expected a header "
                                                         f"{','.join(REQUIRED)}[,labels]")])
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        errors.append(RowError(1, f"missing column(s) {', '.join(missing)} "
                                  f"(header: {','.join(names)})"))
    unknown = [n for n in names if n not in REQUIRED + OPTIONAL]
    if unknown:
        errors.append(RowError(1, f"unknown column(s) {', '.join(unknown)}"))
    if errors:
        return ParsedFile([], [], errors)
    devices = {d.id for _, d in config.devices()}
    readings: list[Reading] = []
    lines: list[int] = []
    seen: dict[tuple, int] = {}  # key: index in readings
    repeated = 0
    line = 1
    for row in rows:
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
            first = readings[seen[key]]
            if first.value == reading.value:
                repeated += 1  # the same reading twice (overlapping exports): once
            else:
                errors.append(RowError(line_start, (
                    f"{_number(reading.value)} here but {_number(first.value)} on line "
                    f"{lines[seen[key]]} for the same timestamp, device, metric and labels")))
            continue
        seen[key] = len(readings)
        readings.append(reading)
        lines.append(line_start)
    if not readings and not errors:
        errors.append(RowError(line + 1, "no readings after the header"))
    return ParsedFile(readings, lines, errors, repeated)


def check_against_store(store: StoreProtocol, readings: Sequence[Reading],
                        lines: Sequence[int] | None = None) -> StoreCheck:
    """Split readings into new ones, ones already stored with the same value (skipped)
    and ones stored with another value (conflicts, at their ``lines``; by default as in a
    file with a header: the first reading on line 2)."""
    lines = list(lines) if lines is not None else list(range(2, len(readings) + 2))
    stored = store.stored_values(readings)
    new: list[Reading] = []
    skipped = 0
    conflicts = []
    for i, reading in enumerate(readings):
        there = stored.get(i)
        if not there:
            new.append(reading)
        elif (reading.value, reading.quality.value) in there:
            skipped += 1
        else:
            conflicts.append(RowError(lines[i], conflict_reason(reading, there)))
    return StoreCheck(new, skipped, conflicts)


def conflict_reason(reading: Reading, there: Sequence[tuple[float | None, str]]) -> str:
    """Why a reading stored already with other (value, quality) ``there`` is refused."""
    values = " and ".join(_number(v) if q == "ok" else f"no value ({q})" for v, q in there)
    return f"{_what(reading)} is {_number(reading.value)} here but {values} in the store"


def affected_blocks(readings: list[Reading], store: StoreProtocol, now: float,
                    config: Config | None = None) -> dict[str, tuple[float, float]]:
    """Per device, the settled 15-minute blocks the new readings can change.

    A counter or power series is interpolated between neighbouring readings, so the
    blocks from the stored reading before the first new one to the stored reading after
    the last new one may change, not only those under the new readings. With ``config``,
    an IT meter's new power also changes its site's facility meters' blocks around it
    (it is the evidence of a stuck facility counter: see fed_spans).
    """
    settled = math.floor((now - SETTLE_S) / BLOCK_S) * BLOCK_S
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for r in readings:
        first[r.device] = min(first.get(r.device, r.ts), r.ts)
        last[r.device] = max(last.get(r.device, r.ts), r.ts)
    spans = _equal_runs_around(store, store.neighbour_times(
        {device: (first[device], last[device]) for device in first}))
    if config is not None:
        power = {r.device for r in readings if r.metric == POWER_METRIC and not r.labels}
        metered = {r.device for r in readings if r.metric in (ENERGY_METRIC, POWER_METRIC)
                   and not r.labels}
        for more in (fed_spans(store, config, power, spans),
                     moved_spans(store, config, metered, spans)):
            for device, (lo, hi) in more.items():
                was = spans.get(device)
                spans[device] = (lo, hi) if was is None else (min(lo, was[0]),
                                                              max(hi, was[1]))
    out = {}
    for device in sorted(spans):
        lo, hi = spans[device]
        start = math.floor(lo / BLOCK_S) * BLOCK_S
        end = min(math.ceil(hi / BLOCK_S) * BLOCK_S, settled)
        if end > start:
            out[device] = (float(start), float(end))
    return out


def fed_spans(store: StoreProtocol, config: Config, it_power: set[str],
              spans: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """{facility meter: the span of its readings new IT power can change the blocks of}.

    A facility counter's run of equal readings is judged stuck against its site's IT
    power over the run, and the run with the steps into and out of it is refused: every
    run of equal readings that overlaps the new IT power's span is recomputed whole, with
    the readings around it.
    """
    asks: list[tuple[str, tuple[float, float]]] = []
    for site, device in config.devices():
        if device.id not in it_power or not _ever(config, site, device, Role.IT):
            continue
        asks += [(fed.id, spans[device.id]) for fed in site.devices
                 if fed.id != device.id and _ever(config, site, fed, Role.FACILITY)]
    out: dict[str, tuple[float, float]] = {}
    for fed, (a, b) in zip((f for f, _ in asks), _runs_around(store, asks)):
        was = out.get(fed)
        out[fed] = (a, b) if was is None else (min(a, was[0]), max(b, was[1]))
    return out


def moved_spans(store: StoreProtocol, config: Config, metered: set[str],
                spans: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """{meter: the span of its runs of equal power that new readings of its site's other
    meters can change the judgement of}.

    A power value equal over ``stuck_power_polls`` readings is stuck only if the site's
    other meters changed value meanwhile: a reading of another meter added within such a
    run may make it stuck (or, splitting a change, not). Only meters with such a run in
    the new readings' span are recomputed, and not where their own new readings already
    recompute that span.
    """
    out: dict[str, tuple[float, float]] = {}
    polls: dict[str, int] = {}  # {meter: its stuck_power_polls}, read once per meter
    for site, device in config.devices():
        if device.id not in metered or not has_blocks(config, site, device):
            continue
        lo, hi = spans[device.id]
        others = [other for other in site.devices if other.id != device.id
                  and has_blocks(config, site, other) and not (
                      (own := spans.get(other.id)) is not None and own[0] <= lo
                      and hi <= own[1])]
        keys = [(other.id, POWER_METRIC) for other in others]
        series = series_over(store, keys, lo, hi) if keys else {}  # one statement
        for other, key in zip(others, keys):
            ts, watts = whole_power(store, key, *series[key])
            if other.id not in polls:
                polls[other.id] = min(power_polls(config, store, e.device)
                                      for e in device_epochs(config, site, other))
            span = stuck_candidates(ts, watts, polls[other.id])
            if span is not None:
                was = out.get(other.id)
                out[other.id] = span if was is None else (min(span[0], was[0]),
                                                          max(span[1], was[1]))
    return out


def _ever(config: Config, site, device, role: Role) -> bool:
    return any(e.device.role == role for e in device_epochs(config, site, device))


def _equal_runs_around(store: StoreProtocol, spans: dict[str, tuple[float, float]]
                       ) -> dict[str, tuple[float, float]]:
    """{device: its [lo, hi] widened over any run of equal counter readings crossing its
    ends, and one reading further each way} (the steps into and out of a run): the
    stuck-counter rule refuses a run whole, so a reading added inside or next to one
    changes all of it; the same for a run of equal power values (the stuck-power rule)."""
    return dict(zip(spans, _runs_around(store, list(spans.items()))))


def _runs_around(store: StoreProtocol, asks: Sequence[tuple[str, tuple[float, float]]]
                 ) -> list[tuple[float, float]]:
    """_equal_runs_around of each (device, (lo, hi)), every end read in one statement."""
    found = runs_bounds(store, [((device, metric), lo, hi) for device, (lo, hi) in asks
                                for metric in (ENERGY_METRIC, POWER_METRIC)])
    return [(min(a, c), max(b, d)) for (a, b), (c, d) in zip(found[0::2], found[1::2])]


def import_readings(store: StoreProtocol, config: Config, readings: list[Reading], now: float,
                    lines: Sequence[int] | None = None) -> ImportSummary:
    """Check validated readings against the store, then write the new ones.

    :raises ImportConflict: some are stored already with other values (nothing written).
    """
    check = check_against_store(store, readings, lines)
    if check.conflicts:
        raise ImportConflict(check.conflicts)
    return import_checked(store, config, check, now)


def import_checked(store: StoreProtocol, config: Config, check: StoreCheck, now: float,
                   repeated: int = 0, progress: ProgressFn | None = None) -> ImportSummary:
    """Write the new readings of a check without conflicts in one transaction, then
    recompute the blocks they change. Rows already stored change nothing, so a file
    stored already in full writes nothing and recomputes no block.

    The check is a separate transaction: two imports of overlapping files at the same
    moment are not guarded against each other. ``progress(devices done, devices)``
    follows the recomputation.
    """
    if check.conflicts:
        raise ImportConflict(check.conflicts)
    readings = check.new
    if not readings:
        return ImportSummary(0, (), None, None, 0, check.skipped, repeated)
    blocks = affected_blocks(readings, store, now, config)
    # The stale blocks go in the same transaction as the readings: if the recomputation
    # below is interrupted, the periods compute the missing blocks again on demand.
    store.import_readings(readings, list(blocks.items()))
    sites = {d.id: (s, d) for s, d in config.devices()}
    written = 0
    for done, (device, (start, end)) in enumerate(blocks.items(), 1):
        site, dev = sites[device]
        if has_blocks(config, site, dev):
            written += rollup_range(store, config, site, dev, start, end)
        if progress is not None:
            progress(done, len(blocks))
    times = [r.ts for r in readings]
    return ImportSummary(len(readings), tuple(sorted({r.device for r in readings})),
                         min(times), max(times), written, check.skipped, repeated)
