"""InfluxDB export: readings, interval energy and PUE results as line protocol, via an outbox.

Measurements (identity in tags, values in fields, nanosecond timestamps):

``pue_reading``  one canonical reading (only quality ``ok``), at the time it was read.
    tags ``site``, ``device``, ``role``, ``metric`` and the reading's labels (``phase``,
    ``line``, ``outlet``, ``sensor``, ...; one named like these tags becomes ``label_<name>``);
    field ``value`` (float, in the metric's canonical unit: W, kWh, V, ...).
``pue_interval_energy``  one meter's energy over one closed 15-minute block, at its start.
    tags ``site``, ``device``, ``role``; fields ``energy_kwh`` (float; absent when the meter
    measured nothing), ``covered_s`` (float), ``interval_s`` (float), ``method`` (string).
``pue_site``  one site's PUE over one window, at the time it was evaluated (long windows end
    at the last closed block, so their end is a field: evaluations never share a timestamp).
    tags ``site``, ``window`` (``instantaneous``, ``15m``, ``24h``, ``today``, ``30d``,
    ``12m``),
    ``category`` (``1``, ``2``, ``3``); fields ``pue`` (float; absent when there is none),
    ``status`` (string), ``compliant`` (boolean; absent when not judged), ``threshold``,
    and for energy windows ``coverage``, ``facility_energy_kwh``, ``it_energy_kwh``,
    ``start_s``, ``end_s``; for the instantaneous figure ``facility_power_w``, ``it_power_w``.

Every point is encoded once, stored verbatim in the outbox (store.outbox) and sent from
there, so a retry repeats the same series and timestamp. VictoriaMetrics, which accepts the
same /api/v2/write, names the series ``<measurement>_<field>`` and turns strings into 0.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

import pandas as pd
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from pue_monitor.config.history import device_at
from pue_monitor.config.model import Config, InfluxDb
from pue_monitor.figures.longterm import site_long_figures
from pue_monitor.figures.service import SiteStatus, province_status
from pue_monitor.pue.kpi import PueResult
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.base import StoreProtocol
from pue_monitor.store.model import PollResult, Quality, Reading
from pue_monitor.store.outbox import Outbox, OutboxState

log = logging.getLogger(__name__)

READING, INTERVAL_ENERGY, SITE_PUE = "pue_reading", "pue_interval_energy", "pue_site"
READING_TAGS = ("site", "device", "role", "metric")
# Interval energy is exported at most this far per device and pass (a backlog catches up).
EXPORT_SPAN_S = 7 * 86400
INSTANT_WINDOW = "instantaneous"
# Waits after a failed write, doubling up to the cap: an outage is not hammered.
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 30.0
REJECTED_STATUSES = (400, 422)  # malformed points: retrying the same bytes cannot help
# Points held in memory while the outbox cannot be written (disk full, file unwritable):
# beyond this many the oldest are dropped and counted, so a long failure cannot exhaust
# memory (about 200 bytes a point: 100 MB).
MEMORY_MAX_POINTS = 500_000
# InfluxDB's integer fields and nanosecond timestamps are signed 64-bit.
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def to_ns(ts: float) -> int:
    """Unix seconds to integer nanoseconds, exact to the float's fraction.

    ``int(ts * 1e9)`` is not: at today's epoch a float step is 256 ns.
    """
    whole = math.floor(ts)
    return whole * 1_000_000_000 + round((ts - whole) * 1e9)


NAME, TAG_VALUE, STRING = "name", "tag value", "string"  # what _check_text checks


def _check_text(what: str, text: str, kind: str = NAME) -> None:
    """Refuse what line protocol cannot carry unchanged (found by tests/test_fuzz_influx.py):
    a newline or other control character anywhere (no escape exists; the client wrote
    "\\n", read back as two characters); a backslash in a name or tag value (the client
    does not escape it, so one before an escaped comma or space changes where the text
    ends); and in names an empty string or a leading underscore (reserved by InfluxDB 2
    for names only: a tag value may start with one)."""
    bad = next((c for c in text if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise ValueError(f"line protocol cannot carry the control character {bad!r} in "
                         f"{what} {text!r}")
    if kind != STRING and "\\" in text:
        raise ValueError(f"line protocol cannot carry {what} {text!r}: it holds a backslash")
    if kind == NAME and (not text or text.startswith("_")):
        raise ValueError(f"line protocol cannot carry {what} {text!r}: empty or starting "
                         f"with '_'")


def encode(measurement: str, tags: Mapping[str, str], fields: Mapping[str, object],
           ts: float) -> str:
    """One point as line protocol; empty tags and None / non-finite fields are left out.

    :raises ValueError: no field left, a name or string line protocol cannot carry
        (see _check_text), an integer or the timestamp outside InfluxDB's 64 bits.
    """
    _check_text("the measurement", measurement)
    if measurement.startswith("#"):
        raise ValueError(f"line protocol reads measurement {measurement!r} as a comment")
    point = Point(measurement)
    for key, value in sorted(tags.items()):
        if value not in (None, ""):
            _check_text("the tag key", key)
            _check_text(f"the value of tag {key!r}", str(value), TAG_VALUE)
            point.tag(key, str(value))
    for key, value in fields.items():
        if value is not None:
            _check_text("the field key", key)
            if isinstance(value, str):
                _check_text(f"the value of field {key!r}", value, STRING)
            elif isinstance(value, int) and not isinstance(value, bool) and \
                    not INT64_MIN <= value <= INT64_MAX:
                raise ValueError(f"field {key!r}: {value} is outside InfluxDB's 64-bit "
                                 f"integers")
            point.field(key, value)
    ns = to_ns(ts) if math.isfinite(ts) else None
    if ns is None or not INT64_MIN <= ns <= INT64_MAX:
        raise ValueError(f"{measurement} point at {ts}: outside InfluxDB's time range")
    line = point.time(ns, WritePrecision.NS).to_line_protocol()
    if not line:
        raise ValueError(f"{measurement} point without a field at {ts}")
    return line


# A reading whose point cannot be encoded, with the reason (see Refusals).
Refused = Callable[[Reading, ValueError], None]


def reading_lines(result: PollResult, roles: Mapping[str, str],
                  refused: Refused | None = None) -> list[str]:
    """The ok readings of one poll as ``pue_reading`` points.

    A reading line protocol cannot carry (a label value a device gave with a backslash or
    a control character) goes to ``refused`` and the others are kept; without
    ``refused`` its ValueError is raised.
    """
    out = []
    for r in result.readings:
        if r.quality != Quality.OK or r.value is None or not math.isfinite(r.value):
            continue
        tags = {"site": result.site, "device": r.device, "role": roles.get(r.device, ""),
                "metric": r.metric}
        for key, value in r.labels:
            tags[f"label_{key}" if key in READING_TAGS else key] = value
        try:
            out.append(encode(READING, tags, {"value": float(r.value)}, r.ts))
        except ValueError as exc:
            if refused is None:
                raise
            refused(r, exc)
    return out


class Refusals:
    """Readings left out of the export because their point cannot be encoded: counted,
    and logged once per series (a device answering every poll with the same odd label
    must not fill the log). Safe to call from any thread."""

    SERIES_LOGGED_MAX = 1000  # beyond this many series, only the count grows

    def __init__(self, what: str) -> None:
        self.what = what
        self.total = 0
        self._logged: set[tuple] = set()
        self._lock = threading.Lock()

    def __call__(self, reading: Reading, exc: ValueError) -> None:
        key = (reading.device, reading.metric, reading.labels)
        with self._lock:
            self.total += 1
            first = key not in self._logged and len(self._logged) < self.SERIES_LOGGED_MAX
            if first:
                self._logged.add(key)
        if first:
            log.error("%s: the %s readings of %s (labels %s) are left out of the export, "
                      "their points cannot be encoded: %s; they stay in the store",
                      self.what, reading.metric, reading.device, dict(reading.labels), exc)


def interval_energy_line(site: str, device: str, role: str, start: float, end: float,
                         energy_kwh: float | None, covered_s: float, method: str) -> str:
    return encode(INTERVAL_ENERGY, {"site": site, "device": device, "role": role},
                  {"energy_kwh": None if energy_kwh is None else float(energy_kwh),
                   "covered_s": float(covered_s), "interval_s": float(end - start),
                   "method": method}, start)


def site_lines(status: SiteStatus, more: Mapping[str, PueResult] | None = None) -> list[str]:
    """A site's instantaneous and window PUE (live windows, then ``more``) as ``pue_site``."""
    i = status.instant
    out = [encode(SITE_PUE, {"site": i.site, "window": INSTANT_WINDOW,
                             "category": str(i.category)},
                  {"pue": i.pue, "status": i.status, "compliant": i.compliant,
                   "threshold": float(i.threshold), "facility_power_w": i.facility_power_w,
                   "it_power_w": i.it_power_w}, status.now)]
    for window, r in {**status.windows, **(more or {})}.items():
        out.append(encode(SITE_PUE, {"site": r.site, "window": window,
                                     "category": str(r.category)},
                          {"pue": r.pue, "status": r.status, "compliant": r.compliant,
                           "threshold": float(r.threshold), "coverage": float(r.coverage),
                           "facility_energy_kwh": float(r.facility_energy_kwh),
                           "it_energy_kwh": float(r.it_energy_kwh),
                           "start_s": float(r.start), "end_s": float(r.end)}, status.now))
    return out


def province_lines(store: StoreProtocol, config: Config, now: float) -> list[str]:
    """Every site's live windows and its long ones (30 days, 12 months) as of ``now``."""
    out = []
    for status in province_status(store, config, now):
        try:
            long = site_long_figures(store, config, status.site, now).windows
        except Exception:  # the long figures must not hold back the live ones
            log.exception("cannot compute the long PUE windows of %s", status.site.id)
            long = {}
        out.extend(site_lines(status, long))
    return out


def export_interval_energy(store: StoreProtocol, config: Config, outbox: Outbox) -> int:
    """Queue the closed interval-energy rows not yet exported; returns points queued.

    Each device has a cursor (the next block start to export) committed with its points,
    so a row is queued exactly once whatever stops the process. Blocks rewritten after
    they were exported are not sent again.
    """
    queued = 0
    for site, device in config.devices():
        last_end = store.last_interval_end(device.id)
        if last_end is None:
            continue
        name = f"interval_energy:{device.id}"
        start = outbox.cursor(name)
        if start is None:
            first = store.first_reading_ts(device.id)
            start = math.floor((first or last_end) / BLOCK_S) * BLOCK_S
        # One span per device and pass: a long history (export just switched on, an
        # import) is queued a week at a time, at the pace of the passes, rather than all
        # at once into an outbox it could overflow.
        if start < last_end:
            stop = min(last_end, start + EXPORT_SPAN_S)
            frame = store.interval_energy([device.id], start, stop)
            # Each block tagged with the role its meter had at its time (config.history).
            lines = [interval_energy_line(site.id, device.id,
                                          device_at(config, site, device, row.start).role.value,
                                          row.start,
                                          row.end, None if pd.isna(row.energy_kwh)
                                          else row.energy_kwh, row.covered_s, row.method)
                     for row in frame.itertuples(index=False)]
            outbox.enqueue(lines, {name: stop})
            queued += len(lines)
    return queued


class RejectedBatch(Exception):
    """The server refused the points themselves (HTTP 400/422): they are not retried."""


class TooLarge(Exception):
    """The server refused the request as too large (HTTP 413): the points are sent again
    in smaller batches, never dropped for it (one point alone too large is rejected)."""


TOO_LARGE_STATUS = 413


class InfluxTransport:
    """Synchronous writes through influxdb-client; no retries of its own (the writer's)."""

    def __init__(self, url: str, token: str, org: str, bucket: str, timeout_s: float) -> None:
        self.org, self.bucket = org, bucket
        self._client = InfluxDBClient(url=url, token=token, org=org,
                                      timeout=int(timeout_s * 1000))
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, lines: Sequence[str]) -> None:
        try:
            self._api.write(bucket=self.bucket, org=self.org, record=list(lines),
                            write_precision=WritePrecision.NS)
        except ApiException as exc:
            if exc.status in REJECTED_STATUSES:
                raise RejectedBatch(f"HTTP {exc.status}: {exc.body}") from exc
            if exc.status == TOO_LARGE_STATUS:
                raise TooLarge(f"HTTP {exc.status}: {exc.body}") from exc
            raise

    def close(self) -> None:
        self._client.close()


class InfluxWriter:
    """Spools submitted points to the outbox and sends them in batches, on its own threads.

    ``submit`` never blocks: it appends to memory. A spool thread moves points to disk every
    ``flush_interval_s``; a send thread writes the oldest batch, acknowledges it only when
    the server confirmed it, and backs off while the server is unreachable.
    """

    def __init__(self, outbox: Outbox, transport, batch_size: int = 5000,
                 flush_interval_s: float = 1.0, clock: Callable[[], float] = time.time,
                 max_backoff_s: float = BACKOFF_MAX_S, what: str = "InfluxDB") -> None:
        self.outbox, self.transport, self.max_backoff_s = outbox, transport, max_backoff_s
        self.what = what  # who receives the points, for the log
        self.batch_size, self.flush_interval_s, self.clock = batch_size, flush_interval_s, clock
        self._memory: deque[str] = deque()
        self.memory_max = min(MEMORY_MAX_POINTS, outbox.max_points)
        self.memory_dropped_total = 0
        self._memory_full = False
        self._spool_failing = False  # the last move to disk failed
        self._spool_now = threading.Event()  # memory is full: move it before the interval
        self.refusals = Refusals(what)  # readings whose points cannot be encoded
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self.written_total = self.errors_total = self.rejected_total = 0
        self.last_success_ts: float | None = None
        self._failing = False

    @classmethod
    def from_config(cls, cfg: InfluxDb, data_dir) -> InfluxWriter:
        transport = InfluxTransport(cfg.url, cfg.token.get_secret_value(), cfg.org, cfg.bucket,
                                    cfg.timeout_s)
        return cls(Outbox.open(data_dir, cfg.buffer_max_points), transport, cfg.batch_size,
                   cfg.flush_interval_s)

    def submit(self, lines: Iterable[str]) -> None:
        """Hand points over (never blocks: they go to memory, the spool thread moves them
        to disk). Beyond ``memory_max`` in memory the spool thread is woken; while moving
        them to disk fails, the oldest beyond it are dropped and counted."""
        memory = self._memory
        memory.extend(lines)  # deque.extend is thread-safe
        if len(memory) <= self.memory_max:
            return
        if not self._spool_failing:
            self._spool_now.set()
            return
        dropped = 0
        while len(memory) > self.memory_max:
            try:
                memory.popleft()
            except IndexError:  # the spool thread took them meanwhile
                break
            dropped += 1
        self.memory_dropped_total += dropped
        if dropped and not self._memory_full:
            self._memory_full = True
            log.error("%s points cannot be queued on disk and %d wait in memory: dropping "
                      "the oldest; pue_monitor_influx_points_dropped_total counts them",
                      self.what, self.memory_max)

    def start(self) -> None:
        for target, name in ((self._spool_loop, "influx-spool"), (self._send_loop, "influx-send")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop both threads; whatever is in memory goes to disk first. Never raises: what
        cannot be written is logged and counted, and the rest is still closed."""
        self._stop.set()
        self._wake.set()
        self._spool_now.set()
        for thread in self._threads:
            thread.join(timeout_s)
        try:
            self.spool()
        except Exception as exc:  # sqlite3.Error, OSError (disk full)
            lost = len(self._memory)
            self.memory_dropped_total += lost
            log.error("%s: %d points held in memory could not be queued on disk at stop "
                      "and are lost: %s", self.what, lost, exc)
        for part in (self.transport, self.outbox):
            try:
                part.close()
            except Exception as exc:
                log.error("%s: closing %s failed: %s", self.what, type(part).__name__, exc)

    def state(self) -> OutboxState:
        return OutboxState(queued_points=self.outbox.queued() + len(self._memory),
                           oldest_queued_ts=self.outbox.oldest_ts(),
                           points_written_total=self.written_total,
                           write_errors_total=self.errors_total,
                           points_dropped_total=(self.outbox.dropped_total
                                                 + self.memory_dropped_total),
                           points_rejected_total=self.rejected_total + self.refusals.total,
                           last_success_ts=self.last_success_ts)

    def spool(self) -> int:
        """Move the points held in memory to the outbox; returns how many."""
        batch = []
        while self._memory:
            batch.append(self._memory.popleft())
        if not batch:
            return 0
        try:
            self.outbox.enqueue(batch)
        except Exception:
            self._memory.extendleft(reversed(batch))  # keep order; retried next pass
            self._spool_failing = True
            raise
        self._spool_failing = False
        self._wake.set()
        if self._memory_full and len(self._memory) < self.memory_max:
            self._memory_full = False
        return len(batch)

    def send_batch(self) -> int:
        """Write the oldest queued batch; returns points confirmed (0 when empty).

        :raises Exception: the transport's error; the batch stays queued.
        """
        rows = self.outbox.peek(self.batch_size)
        if not rows:
            return 0
        try:
            self.transport.write([line for _, line in rows])
        except TooLarge as exc:
            if len(rows) > 1:
                # The server's limit stays: so does the smaller size, for this process.
                self.batch_size = max(1, len(rows) // 2)
                log.warning("%s refused a batch of %d points as too large (%s): sending "
                            "batches of at most %d from now on", self.what, len(rows), exc,
                            self.batch_size)
                self.outbox.release()
                return 0
            log.error("%s refused a single point as too large, dropping it: %s", self.what,
                      exc)
            self.rejected_total += 1
            self.outbox.ack(rows[-1][0])
            return 0
        except RejectedBatch as exc:
            log.error("%s refused %d points, dropping them: %s", self.what, len(rows), exc)
            self.rejected_total += len(rows)
            self.outbox.ack(rows[-1][0])
            return 0
        except BaseException:
            self.outbox.release()
            raise
        self.outbox.ack(rows[-1][0])
        self.written_total += len(rows)
        self.last_success_ts = self.clock()
        return len(rows)

    def _spool_loop(self) -> None:
        failing = False
        while True:
            self._spool_now.wait(self.flush_interval_s)
            self._spool_now.clear()
            if self._stop.is_set():
                break
            try:
                self.spool()
            except Exception as exc:  # sqlite3.Error, OSError (disk full): kept in memory
                if not failing:
                    log.error("cannot queue %s points on disk, keeping them in memory: "
                              "%s", self.what, exc)
                failing = True
                continue
            if failing:
                log.info("%s points are queued on disk again", self.what)
            failing = False

    def _send_loop(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self._stop.is_set():
            try:
                sent = self.send_batch()
            except Exception as exc:
                self.errors_total += 1
                if not self._failing:
                    log.error("%s write failed, points stay queued on disk: %s", self.what,
                              exc)
                self._failing = True
                self._stop.wait(backoff)
                backoff = min(self.max_backoff_s, backoff * 2)
                continue
            if self._failing:
                log.info("%s writes work again", self.what)
            self._failing, backoff = False, BACKOFF_MIN_S
            if sent < self.batch_size:  # caught up: wait for more
                self._wake.wait(self.flush_interval_s)
                self._wake.clear()
