"""Line-protocol points as the central takes them: readings and run-log marks.

``pue_reading`` (exchange.influx writes it): tags ``site``, ``device``, ``metric``,
optional ``role`` (ignored: the site definition says what a meter counts as) and the
reading's labels (``label_<name>`` for a label named like one of those tags); field
``value`` (a finite number in the metric's canonical unit); a timestamp.
``pue_run`` (the edge's run log, pue.runlog): tags ``site``, ``run``; field ``stopped``
(boolean); a timestamp: the run's start, a heartbeat or its stop.
``pue_site`` and ``pue_interval_energy`` are derived figures: accepted and ignored (the
central computes its own from the readings). Anything else is refused.

``read_batch`` is the ingest's way in: a line as the edge writes it (no escapes, no
string field, one ``value`` field, a timestamp) is split with plain string operations
and its tag section looked up in a cache of the tag sections seen before (a live edge
sends the same series in every batch), so most lines cost a split, a dict look-up and
two number conversions; any other line goes through the full parser (central.lineproto)
and sort_points' checks, so both ways take and refuse the same lines with the same
messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import itemgetter, methodcaller

from pue_monitor.central.lineproto import (INT64_MAX, PRECISION_NS, LineError, Point,
                                           parse_line)
from pue_monitor.config.metrics import LABEL_KEYS, METRICS
from pue_monitor.exchange.influx import INTERVAL_ENERGY, READING, READING_TAGS, SITE_PUE, encode
from pue_monitor.store.model import Labels, Reading, labels_key

RUN = "pue_run"
DERIVED = frozenset({SITE_PUE, INTERVAL_ENERGY})
NS_PER_S = 1_000_000_000
LABEL_PREFIX = "label_"
FAST_FIELD = "value="
# Tag sections remembered by read_batch (each a few hundred bytes); the cache starts
# over when full, so a stream of ever new series costs memory up to this bound only.
HEAD_CACHE_MAX = 100_000
# {tag section of a pue_reading line: (site, device, metric, labels, labels_key)}
_heads: dict[str, tuple[str, str, str, Labels, str]] = {}
_SPACES = methodcaller("count", " ")


@dataclass
class Batch:
    """What one write request carried, sorted out: the readings as columns (one entry
    per reading in each list), the run-log marks, and the refused lines."""

    lines: list[int] = field(default_factory=list)  # the body line of each reading
    sites: list[str] = field(default_factory=list)  # the site tag of each reading
    ts: list[float] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    labels: list[Labels] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # labels_key of each reading's labels
    values: list[float] = field(default_factory=list)
    runs: list[tuple[str, str, float, bool]] = field(default_factory=list)
    run_lines: list[int] = field(default_factory=list)
    ignored: int = 0
    errors: list[LineError] = field(default_factory=list)

    COLUMNS = ("lines", "sites", "ts", "devices", "metrics", "labels", "keys", "values")

    def add(self, line: int, site: str, reading: Reading) -> None:
        self.lines.append(line)
        self.sites.append(site)
        self.ts.append(reading.ts)
        self.devices.append(reading.device)
        self.metrics.append(reading.metric)
        self.labels.append(reading.labels)
        self.keys.append(labels_key(reading.labels))
        self.values.append(float(reading.value))  # type: ignore[arg-type]

    def reading(self, i: int) -> Reading:
        return Reading(self.ts[i], self.devices[i], self.metrics[i], self.values[i],
                       self.labels[i])

    @property
    def readings(self) -> list[Reading]:
        return [self.reading(i) for i in range(len(self.ts))]

    def keep(self, indices: list[int]) -> None:
        """Keep only the readings at ``indices`` (in that order)."""
        for name in self.COLUMNS:
            column = getattr(self, name)
            setattr(self, name, [column[i] for i in indices])

    def site_ids(self) -> set[str]:
        return set(self.sites) | {site for site, *_ in self.runs}


def seconds(ts_ns: int) -> float:
    """Integer nanoseconds to unix seconds: the float the edge had (int / int is
    correctly rounded, and a float near today's epoch has 238 ns steps)."""
    return ts_ns / NS_PER_S


def sort_points(points: list[Point], batch: Batch | None = None) -> Batch:
    batch = Batch() if batch is None else batch
    for point in points:
        try:
            if point.measurement == READING:
                site, reading = _reading(point)
                batch.add(point.line, site, reading)
            elif point.measurement == RUN:
                batch.runs.append(_run(point))
                batch.run_lines.append(point.line)
            elif point.measurement in DERIVED:
                batch.ignored += 1
            else:
                raise LineError(point.line, f"unknown measurement {point.measurement!r} "
                                f"(the central takes {READING} and {RUN})")
        except LineError as exc:
            batch.errors.append(exc)
    return batch


def read_batch(body: str, precision: str = "ns") -> Batch:
    """A write request's body sorted out: what ``sort_points(parse(body))`` gives, with
    the parse errors first, in less time (see the module's docstring).

    :raises ValueError: an unknown precision.
    """
    if precision not in PRECISION_NS:
        raise ValueError(f"precision must be one of {', '.join(PRECISION_NS)}, "
                         f"not {precision!r}")
    scale = PRECISION_NS[precision]
    clean = _read_clean(body, scale)
    if clean is not None:
        return clean
    batch = Batch()
    slow: list[Point] = []
    parse_errors: list[LineError] = []
    heads = _heads
    lines, sites, tss, devices = batch.lines, batch.sites, batch.ts, batch.devices
    metrics, labels, keys, values = batch.metrics, batch.labels, batch.keys, batch.values
    for number, raw in enumerate(body.split("\n"), 1):
        parts = raw.split(" ")
        if len(parts) == 3:
            head, field_text, ts_text = parts
            known = heads.get(head)
            if known is not None and field_text.startswith(FAST_FIELD) and \
                    "\\" not in raw and '"' not in raw:
                value_text = field_text[6:]
                try:
                    value = float(value_text)
                    ts_ns = int(ts_text.rstrip("\r"), 10) * scale
                except ValueError:
                    value = math.nan
                if math.isfinite(value) and "_" not in value_text and \
                        -INT64_MAX - 1 <= ts_ns <= INT64_MAX:
                    site, device, metric, tags, key = known
                    lines.append(number)
                    sites.append(site)
                    tss.append(ts_ns / NS_PER_S)
                    devices.append(device)
                    metrics.append(metric)
                    labels.append(tags)
                    keys.append(key)
                    values.append(value)
                    continue
        text = raw.rstrip("\r")
        stripped = text.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            point = parse_line(text, number, scale)
        except LineError as exc:
            parse_errors.append(exc)
            continue
        slow.append(point)
        if point.measurement == READING and "\\" not in text and '"' not in text:
            _remember_head(text.split(" ", 1)[0], point)
    sort_points(slow, batch)
    batch.errors[:0] = parse_errors
    if slow:  # back in body order, as sort_points(parse(body)) has them
        order = sorted(range(len(batch.lines)), key=batch.lines.__getitem__)
        batch.keep(order)
    return batch


def _read_clean(body: str, scale: int) -> Batch | None:
    """The batch of a body whose every line is a pue_reading line of a known tag section
    in the plain form, column by column (each step one pass in C); None if any line is
    not, for read_batch to go line by line."""
    if "\\" in body or '"' in body or "\r" in body:
        return None
    text = body[:-1] if body.endswith("\n") else body
    if set(map(_SPACES, text.split("\n"))) != {2}:
        return None
    flat = text.replace("\n", " ").split(" ")
    if "" in flat:  # each line is now three non-empty sections
        return None
    heads, fields, stamps = flat[0::3], flat[1::3], flat[2::3]
    known = list(map(_heads.get, heads))
    if None in known or {f[:6] for f in fields} != {FAST_FIELD}:
        return None
    value_texts = [f[6:] for f in fields]
    try:
        values = list(map(float, value_texts))
        stamps_ns = list(map(int, stamps))  # int(text) reads base 10, as parse_line
    except ValueError:
        return None
    if scale != 1:
        stamps_ns = [t * scale for t in stamps_ns]
    if "_" in "".join(value_texts) or not all(map(math.isfinite, values)) or \
            min(stamps_ns) < -INT64_MAX - 1 or max(stamps_ns) > INT64_MAX:
        return None
    sites, devices, metrics, labels, keys = (list(map(itemgetter(k), known))
                                             for k in range(5))
    return Batch(list(range(1, len(heads) + 1)), sites, [t / NS_PER_S for t in stamps_ns],
                 devices, metrics, labels, keys, values)


def _remember_head(head: str, point: Point) -> None:
    """Cache the tag section of a pue_reading line whose tags are good."""
    try:
        site, reading = _reading(Point(point.line, point.measurement, point.tags,
                                       {"value": 0.0}, 0))
    except LineError:
        return
    if len(_heads) >= HEAD_CACHE_MAX:
        _heads.clear()
    _heads[head] = (site, reading.device, reading.metric, reading.labels,
                    labels_key(reading.labels))


def _need_ts(point: Point) -> int:
    if point.ts_ns is None:
        raise LineError(point.line, "a timestamp is required (the time it was read)")
    return point.ts_ns


def _reading(point: Point) -> tuple[str, Reading]:
    tags = dict(point.tags)
    missing = [t for t in ("site", "device", "metric") if not tags.get(t)]
    if missing:
        raise LineError(point.line, f"{READING} without tag {', '.join(missing)}")
    site, device, metric = tags.pop("site"), tags.pop("device"), tags.pop("metric")
    tags.pop("role", None)
    if metric not in METRICS:
        raise LineError(point.line, f"unknown metric {metric!r}")
    labels = []
    for key, value in tags.items():
        name = key.removeprefix(LABEL_PREFIX) if key.startswith(LABEL_PREFIX) else key
        if key.startswith(LABEL_PREFIX) and name not in READING_TAGS:
            raise LineError(point.line, f"tag {key!r}: only a label named like a reserved tag "
                            f"({', '.join(READING_TAGS)}) is written label_<name>")
        if name not in LABEL_KEYS and name not in READING_TAGS:
            raise LineError(point.line, f"unknown label {key!r} (known: "
                            f"{', '.join(sorted(LABEL_KEYS))})")
        labels.append((name, value))
    extra = set(point.fields) - {"value"}
    if extra or "value" not in point.fields:
        raise LineError(point.line, f"{READING} takes one field, value"
                        + (f" (not {', '.join(sorted(extra))})" if extra else ""))
    value = point.fields["value"]
    if isinstance(value, (bool, str)):
        raise LineError(point.line, f"value must be a number, not {value!r}")
    return site, Reading(seconds(_need_ts(point)), device, metric, float(value),
                         tuple(sorted(labels)))


def _run(point: Point) -> tuple[str, str, float, bool]:
    site, run = point.tags.get("site"), point.tags.get("run")
    stopped = point.fields.get("stopped")
    if not site or not run or set(point.tags) != {"site", "run"}:
        raise LineError(point.line, f"{RUN} takes the tags site and run, no others")
    if set(point.fields) != {"stopped"} or not isinstance(stopped, bool):
        raise LineError(point.line, f"{RUN} takes one boolean field, stopped")
    return site, run, seconds(_need_ts(point)), stopped


def run_line(site: str, run: str, ts: float, stopped: bool) -> str:
    """One run-log mark as the edge sends it."""
    return encode(RUN, {"site": site, "run": run}, {"stopped": bool(stopped)}, ts)


__all__ = ["Batch", "DERIVED", "RUN", "read_batch", "run_line", "seconds", "sort_points"]
