"""Line-protocol points as the central takes them: readings and run-log marks.

``pue_reading`` (exchange.influx writes it): tags ``site``, ``device``, ``metric``,
optional ``role`` (ignored: the site definition says what a meter counts as) and the
reading's labels (``label_<name>`` for a label named like one of those tags); field
``value`` (a finite number in the metric's canonical unit); a timestamp.
``pue_run`` (the edge's run log, pue.runlog): tags ``site``, ``run``; field ``stopped``
(boolean); a timestamp: the run's start, a heartbeat or its stop.
``pue_site`` and ``pue_interval_energy`` are derived figures: accepted and ignored (the
central computes its own from the readings). Anything else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pue_monitor.central.lineproto import LineError, Point
from pue_monitor.config.metrics import LABEL_KEYS, METRICS
from pue_monitor.exchange.influx import INTERVAL_ENERGY, READING, READING_TAGS, SITE_PUE, encode
from pue_monitor.store.model import Reading

RUN = "pue_run"
DERIVED = frozenset({SITE_PUE, INTERVAL_ENERGY})
NS_PER_S = 1_000_000_000
LABEL_PREFIX = "label_"


@dataclass
class Batch:
    """What one write request carried, sorted out."""

    readings: list[Reading] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the body line of each reading
    sites: list[str] = field(default_factory=list)  # the site tag of each reading
    runs: list[tuple[str, str, float, bool]] = field(default_factory=list)
    run_lines: list[int] = field(default_factory=list)
    ignored: int = 0
    errors: list[LineError] = field(default_factory=list)

    def site_ids(self) -> set[str]:
        return set(self.sites) | {site for site, *_ in self.runs}


def seconds(ts_ns: int) -> float:
    """Integer nanoseconds to unix seconds: the float the edge had (int / int is
    correctly rounded, and a float near today's epoch has 238 ns steps)."""
    return ts_ns / NS_PER_S


def sort_points(points: list[Point]) -> Batch:
    batch = Batch()
    for point in points:
        try:
            if point.measurement == READING:
                site, reading = _reading(point)
                batch.readings.append(reading)
                batch.lines.append(point.line)
                batch.sites.append(site)
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


__all__ = ["Batch", "DERIVED", "RUN", "run_line", "seconds", "sort_points"]
