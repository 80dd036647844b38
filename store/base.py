"""The store's interface: what every persistence backend offers the layers above it.

``StoreProtocol`` is the seam between persistence (store/) and everything that reads or
writes through it (collectors/, figures/, exchange/, web/). Those layers type against it
and never name a backend; store.sqlite.Store and store.postgres.PostgresStore implement
it, tests/test_store_protocol.py checks that they match method by method, and
tests/test_store_backends.py that they answer the same.

Rules every backend keeps:

* Atomic writes. Each writing method is one transaction: all of it is stored or none of
  it. The day summary (see store.days) is derived data and is brought up to date inside
  the transaction that writes or deletes the blocks it summarises, so no reader ever sees
  day rows that disagree with the blocks. A backend may reorganise what it stored later,
  in transactions of its own that change no answer (the SQLite store moves the newest
  poll readings into its series index in bulk: store.recent).
* Who writes. The monitor's collectors (write_polls, set_device_profile), its run log
  (mark_run), its roll-up
  (write_interval_energy) and `pue-monitor import` (import_readings, then
  write_interval_energy). Writers may run at once, in threads or processes; the backend
  serialises them (it waits a bounded time for another writer, then raises).
* What a reader sees. Each reading method sees one committed state. Inside
  ``with store.snapshot():`` every read on that thread shares one consistent view (the
  blocks, day rows and readings of a single moment) while writers go on; readers never
  block writers, and writing inside a snapshot is an error (RuntimeError).
* Threads and processes. One instance may be shared between threads (each gets its own
  connection). Before a fork, close() it; the child reopens on first use.
* Times are unix seconds (UTC); ranges are half-open [start, end) unless said otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from pue_monitor.config.metrics import ENERGY_METRIC, POWER_METRIC
from pue_monitor.pue.quality import OUT_OF_LINE_READINGS
from pue_monitor.store.model import HealthState, Identified, PollResult, Reading

if TYPE_CHECKING:  # pandas is imported where a frame is built: `report` never needs it
    import numpy as np  # noqa: F401 - named in the Series alias's strings
    import pandas as pd

# The day summary's days: fixed chunks starting at the store's day offset (store.days).
DAY_S = 86400
# The metrics 15-minute blocks are made from: where a device's data starts, for blocks.
BLOCK_METRICS = (ENERGY_METRIC, POWER_METRIC)
# Readings read on each side of a window: the spike / dip rule (pue.counter) judges a
# step by up to OUT_OF_LINE_READINGS readings out of line and the one beyond them.
NEAR_READINGS = OUT_OF_LINE_READINGS + 1
# StoreProtocol.prune_readings deletes this much time of readings per transaction.
PRUNE_CHUNK_S = 86_400.0
# (done, total): called as long work advances (a summary rebuild), for a progress display.
ProgressFn = Callable[[int, int], None]
# (times, values) of one series, sorted by time.
Series = tuple["np.ndarray", "np.ndarray"]


@dataclass(frozen=True)
class DeviceHealth:
    """The latest poll outcome of one device, as stored."""

    device: str
    site: str
    up: bool
    last_poll_ts: float | None
    last_ok_ts: float | None
    last_duration_s: float | None
    last_error_kind: str | None
    last_error: str | None
    consecutive_failures: int
    polls_total: int
    # The last poll answered but some of its readings could not be decoded
    # (PollResult.state); a backend stores it with the rest of the health row.
    degraded: bool = False

    @property
    def state(self) -> HealthState:
        """UP, DEGRADED or DOWN from the last poll (UNKNOWN is a device with no row)."""
        if not self.up:
            return HealthState.DOWN
        return HealthState.DEGRADED if self.degraded else HealthState.UP


class BlockTotal(NamedTuple):
    """Sums over a device's blocks."""

    energy_kwh: float | None
    covered_s: float
    methods: str  # distinct methods joined by '+'
    resets: int
    counter_kwh: float | None  # cross-check: counter and power over the same time
    power_kwh: float | None
    # Flag counts of the blocks (pue.quality.COUNTED, each flag in the block it ends in).
    step_backs: int = 0
    wraps: int = 0
    stuck: int = 0
    implausible: int = 0


@dataclass(frozen=True)
class UserRecord:
    """A user of the web view as stored (web.accounts makes and checks the hash)."""

    name: str
    role: str  # config.model.USER_ROLES
    organisation: str | None  # an operator's organisation id
    password_hash: str
    created_ts: float


class UserStoreProtocol(Protocol):
    """The web view's users and their API tokens (hashes only: no password or token is
    ever stored in clear). Each method is one transaction."""

    def add_user(self, user: UserRecord) -> None:
        """Add a user. :raises ValueError: the name is taken."""

    def user(self, name: str) -> UserRecord | None:
        """The user called ``name``, or None."""

    def users(self) -> list[UserRecord]:
        """Every user, by name."""

    def remove_user(self, name: str) -> bool:
        """Remove a user and their tokens; False if there was none."""

    def set_password_hash(self, name: str, password_hash: str) -> bool:
        """Replace a user's password hash; False if there is no such user."""

    def add_token(self, name: str, token_hash: str, label: str, created_ts: float) -> None:
        """Give a user an API token (by its hash). :raises ValueError: no such user."""

    def token_user(self, token_hash: str) -> UserRecord | None:
        """The user an API token (by its hash) belongs to, or None."""

    def revoke_tokens(self, name: str) -> int:
        """Remove every API token of a user; how many there were."""


class SessionStoreProtocol(Protocol):
    """The web view's log-in sessions, by the hash of their random id (the cookie carries
    the id; the store keeps only its hash). Log-out ends the session here, so a copied
    cookie is worthless afterwards. Each method is one transaction."""

    def add_session(self, session_hash: str, name: str, created_ts: float,
                    expires_ts: float) -> None:
        """Open a session of a user. :raises ValueError: no such user."""

    def session_user(self, session_hash: str, now: float) -> UserRecord | None:
        """The user of a session that is open and not expired at ``now``, or None."""

    def end_sessions(self, session_hash: str | None = None, name: str | None = None,
                     before: float | None = None) -> int:
        """End a session (by its hash), every session of a user (by name), and/or every
        session that expired before ``before``; how many ended. remove_user ends a
        user's sessions too."""


@dataclass(frozen=True)
class SiteEvent:
    """One entry of a site's alert history, as the monitor recorded it.

    ``kind``: "device" (``subject`` a device id, ``state`` up / degraded / down) or "pue"
    (``subject`` a window, ``state`` "over" or "within" its threshold, ``value`` the PUE).
    """

    site: str
    ts: float
    kind: str
    subject: str
    state: str
    value: float | None = None
    detail: str | None = None


class EventStoreProtocol(Protocol):
    """The monitor's own record of alert-worthy changes (a device going down, degraded or
    up again; a site's PUE crossing its threshold), kept for each site's alert history.
    Each method is one transaction."""

    def record_events(self, events: Sequence[SiteEvent]) -> None:
        """Store events (one transaction); an event at the same site, kind, subject and
        time as a stored one replaces it."""

    def events(self, site: str, start: float, end: float, limit: int = 100
               ) -> list[SiteEvent]:
        """The site's events in [start, end), newest first, at most ``limit``."""

    def latest_events(self) -> dict[tuple[str, str, str], SiteEvent]:
        """The latest event of each (site, kind, subject): the state last recorded."""


@runtime_checkable
class StoreProtocol(UserStoreProtocol, SessionStoreProtocol, EventStoreProtocol, Protocol):
    """Readings, device health, 15-minute interval-energy blocks, their day summary, a
    little metadata, the web view's users and sessions (UserStoreProtocol,
    SessionStoreProtocol) and the alert history (EventStoreProtocol; see the module
    docstring for the transaction rules)."""

    # -- writing -----------------------------------------------------------------------

    def write_polls(self, results: Sequence[PollResult]) -> None:
        """Readings, health and error counts of many polls, in one transaction. Health
        keeps ``PollResult.state`` == DEGRADED as DeviceHealth.degraded; the error
        counts added per poll are ``PollResult.error_counts()``."""

    def import_readings(self, readings: Sequence[Reading],
                        stale: Sequence[tuple[str, tuple[float, float]]] = ()) -> None:
        """Historical readings, and the removal of the blocks they make stale (device,
        (start, end)), in one transaction: all of it or none of it."""

    def write_interval_energy(self, rows: Iterable[tuple]) -> None:
        """Upsert blocks (device, start, end, energy_kwh, covered_s, method[, resets,
        counter_kwh, power_kwh[, step_backs, wraps, stuck, implausible]]) and refresh
        their days of the summary, in one transaction. The flag counts (0 when not given)
        are summed by block_totals, from the blocks or the day summary alike."""

    def set_device_profile(self, device: str, name: str, sys_object_id: str = "",
                           reason: str = "", ts: float | None = None) -> None:
        """Record the profile an auto device was identified as, with the sysObjectID
        seen, the reason it was chosen and when (replacing what was recorded)."""

    def prune_readings(self, before: float) -> int:
        """Delete every reading older than ``before`` (unix seconds), a day of them per
        transaction so writers never wait long; returns how many went."""

    def mark_run(self, run: str, ts: float, stopped: bool = False) -> None:
        """The monitor's run log: the first mark of ``run`` (an id the monitor picks per
        start) records its start at ``ts``, every later one its last sign of life (a
        heartbeat); ``stopped`` marks a clean stop. Written by the monitor only."""

    def replace_settings(self, fingerprints: Mapping[str, str],
                         drop_blocks: bool = True,
                         since: Mapping[str, float] | None = None) -> None:
        """Record each device's settings record (figures.settings) and delete its blocks,
        in one transaction: blocks made with other settings are stale. ``since``: only
        the blocks starting at or after that time, and only of the devices it names
        (-inf: all of them); ``drop_blocks`` False: only record."""

    def align_days(self, offset_s: int) -> bool:
        """Start the summary's days at ``offset_s`` east of UTC (a block boundary); True
        if that changed, in which case the summary is incomplete until rebuilt."""

    def rebuild_days(self, progress: ProgressFn | None = None) -> bool:
        """Fill in an incomplete day summary in short transactions (one device each),
        calling ``progress(devices done, devices)``; True if there was anything to do."""

    def close(self) -> None:
        """Close this thread's connection (it reopens on next use)."""

    # -- reading -----------------------------------------------------------------------

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads on this thread inside share one consistent view (nestable)."""

    def series_windows(self, keys: Sequence[tuple[str, str]],
                       windows: Sequence[tuple[float, float]], labels: str = "",
                       near_s: float = 0.0) -> list[dict[tuple[str, str], Series]]:
        """For each window [start, end] (closed), the good readings of each (device,
        metric) with ``labels`` in it plus the NEAR_READINGS nearest on each side.

        ``near_s``: a hint, how far beyond a window the NEAR_READINGS nearest readings
        usually lie (a few poll intervals); the result is the same with any hint, only
        its cost may differ (a backend may read that much more at once instead of
        seeking the nearest readings series by series, or ignore it)."""

    def series_at(self, points: Sequence[tuple[tuple[str, str], float]], labels: str = ""
                  ) -> list[Series]:
        """For each ((device, metric), ts): what ``series_windows([key], [(ts, ts)])``
        gives for it (its good readings at ts and the NEAR_READINGS nearest on each side),
        for many series each at its own time in a few statements."""

    def latest(self, since: float, devices: Sequence[str] | None = None) -> pd.DataFrame:
        """The newest reading of every (device, metric, labels) seen since ``since``:
        columns device, metric, labels, ts, value, quality."""

    def runs(self, start: float, end: float, site: str | None = None
             ) -> list[tuple[float, float, bool]]:
        """(started, last seen, stopped) of the monitor's runs overlapping [start, end),
        by start (pue.runlog turns them into the spans it was not collecting); with
        ``site``, also the runs of the edge that collects that site (a central store's
        CentralStoreProtocol.mark_edge_runs)."""

    def health(self) -> dict[str, DeviceHealth]:
        """The latest poll outcome of every device polled so far."""

    def error_counts(self) -> dict[tuple[str, str], int]:
        """{(device, error kind): count} since the store was created."""

    def device_profiles(self) -> dict[str, str]:
        """{device id: identified profile name} of the auto devices identified so far."""

    def device_identifications(self) -> dict[str, Identified]:
        """{device id: what set_device_profile recorded} of the auto devices identified
        so far (reason '' and ts None where it was recorded without them)."""

    def settings_fingerprints(self) -> dict[str, str]:
        """{device id: the settings fingerprint its stored blocks were computed with}, as
        replace_settings recorded it."""

    def kept_parts(self, site: str, start: float, end: float
                   ) -> tuple[int, dict[float, tuple[float, str, str]]]:
        """(changes counted so far, {start: (end, fingerprint, payload)}) of the results
        kept for the site (keep_parts) starting in [start, end). Inside a snapshot, both
        as of it."""

    def keep_parts(self, site: str, seen: int,
                   rows: Sequence[tuple[float, float, float, float, str, str]]) -> bool:
        """Keep (start, end, lo, hi, fingerprint, payload) results of the site (opaque
        to the store), replacing those at the same start, unless a change was counted
        since ``seen`` (kept_parts): True if kept. A result is dropped, and a change
        counted, by any write that writes or drops a block of the site starting in its
        [lo, hi), or prunes readings in it (a store may drop more: the SQLite one drops
        every site's)."""

    def stored_values(self, readings: Sequence[Reading]
                      ) -> dict[int, list[tuple[float | None, str]]]:
        """{index in ``readings``: [(value, quality), ...] stored at the same (device,
        metric, labels, ts)}; a reading not stored yet is absent."""

    def first_reading_ts(self, device: str, metrics: Sequence[str] = BLOCK_METRICS
                         ) -> float | None:
        """The device's first reading of any of ``metrics`` (device totals)."""

    def neighbour_times(self, spans: Mapping[str, tuple[float, float]],
                        metrics: Sequence[str] = BLOCK_METRICS
                        ) -> dict[str, tuple[float, float]]:
        """{device: its NEAR_READINGS-th reading (or the farthest there is) of any of
        ``metrics`` before its ``start`` and after its ``end``} for ``spans`` {device:
        (start, end)} (the readings new ones can change the blocks of), ``start`` / ``end``
        themselves where there is none; a few statements whatever the number of devices."""

    def last_interval_end(self, device: str) -> float | None:
        """The end of the device's latest block, None without any."""

    def interval_energy(self, devices: Sequence[str], start: float, end: float
                        ) -> pd.DataFrame:
        """Blocks of these devices starting in [start, end), by device and start: columns
        device, start, end, energy_kwh, covered_s, method."""

    def block_starts(self, devices: Sequence[str], start: float, end: float) -> list[float]:
        """Distinct starts of the stored blocks of any of these devices in [start, end)."""

    def block_counts(self, devices: Sequence[str], start: float, end: float
                     ) -> dict[str, int]:
        """Stored blocks per device in [start, end) (devices without any are absent)."""

    def blocks_below(self, ranges: Sequence[tuple[str, float, float]],
                     covered_s: float) -> list[tuple[str, float, float]]:
        """(device, start, covered seconds) of the blocks covered less than
        ``covered_s`` in the (device, start, end) ranges."""

    def block_totals(self, devices: Sequence[str], start: float, end: float,
                     edges: Sequence[float] = (), starts: Sequence[float] | None = None,
                     by_day: bool = False) -> dict[tuple[str, int], BlockTotal]:
        """Sums per (device, segment) over the blocks in [start, end) (flag counts
        included; or only those
        starting at ``starts``); segment i lies between the i-th and (i+1)-th of
        start, *edges, end. ``by_day``: the same sums from the day summary, over the
        days starting in [start, end) (or at ``starts``); edges must not cut a day."""

    # -- the day summary ---------------------------------------------------------------

    @property
    def day_offset_s(self) -> int:
        """Where the summary's days start, in seconds east of UTC."""

    def days_complete(self) -> bool:
        """Whether the day summary covers every block (else readers use the blocks)."""

    def days_not_whole(self, devices: Sequence[str], start: float, end: float,
                       covered_s: float) -> list[tuple[str, float, int, float]]:
        """(device, day, blocks, least covered) of the days starting in [start, end) on
        which a device lacks a block or has one covered less than ``covered_s``; a day
        without a block at all is (device, day, 0, 0.0)."""

    def day_rows(self, devices: Sequence[str], start: float, end: float) -> list[tuple]:
        """(device, day, blocks, min_covered_s, energy_kwh, covered_s, methods, resets,
        counter_kwh, power_kwh) of the days of these devices starting in [start, end)."""


class CentralToken(NamedTuple):
    """A data center's ingest token at the central service, as stored (no hash)."""

    data_center: str
    label: str
    created_ts: float
    revoked_ts: float | None


class SiteDefinitionRecord(NamedTuple):
    """One site definition an edge sent the central service (central.sitedef)."""

    site: str
    received_ts: float  # the central's clock
    changed_ts: float  # the edge's clock when the definition changed
    data_center: str  # whose token sent it
    sender: str  # the token's label
    fingerprint: str
    definition: str  # JSON


class CentralStoreProtocol(Protocol):
    """What the central service keeps beside the readings (store.central,
    store.pg_central): ingest tokens by hash, site definitions with who sent them and
    when, the edges' run logs. Each method is one transaction."""

    def add_central_token(self, token_hash: str, data_center: str, label: str,
                          created_ts: float) -> None:
        """Record a data center's ingest token (by its hash).

        :raises ValueError: the data center has a live token of that label already."""

    def central_token(self, token_hash: str) -> CentralToken | None:
        """The live (not revoked) token of this hash, or None."""

    def central_tokens(self) -> list[CentralToken]:
        """Every token, revoked ones too, by data center and label."""

    def revoke_central_tokens(self, data_center: str, label: str | None, ts: float) -> int:
        """Revoke a data center's live tokens (only the one of ``label`` if given)."""

    def record_site_definition(self, record: SiteDefinitionRecord) -> bool:
        """Keep a site's definition unless it equals the latest one kept; True if kept."""

    def site_definitions(self) -> list[SiteDefinitionRecord]:
        """Every definition kept, by site and time received (the last is in force)."""

    def mark_edge_runs(self, rows: Sequence[tuple[str, str, float, bool]]) -> None:
        """Marks of edges' run logs (site, run, ts, stopped), idempotent and in any order."""

    def ingest_readings(self, rows: Any,
                        stale: Callable[[list[int]], Sequence[tuple[str, tuple[float, float]]]]
                        ) -> Any:
        """An edge's batch of good readings (a store.ingest.IngestBatch): those not stored
        yet written, the blocks ``stale(indices of the new rows)`` names deleted, in one
        transaction; a store.ingest.Ingested."""

    def set_sites(self, sites: Mapping[str, str]) -> None:
        """{device: site} of devices defined after the store was opened."""


def day_starts(offset_s: int, start: float, end: float) -> range:
    """Starts of the days (at ``offset_s``) beginning in [start, end)."""
    first = math.ceil((start + offset_s) / DAY_S) * DAY_S - offset_s
    return range(first, math.ceil(end), DAY_S)


def whole_span(offset_s: int, start: float, end: float) -> tuple[int, int] | None:
    """[first, last): the whole days (at ``offset_s``) inside [start, end), if any."""
    first = math.ceil((start + offset_s) / DAY_S) * DAY_S - offset_s
    last = math.floor((end + offset_s) / DAY_S) * DAY_S - offset_s
    return (first, last) if last > first else None


def near_time(found: Iterable[float], bound: float, before: bool) -> float:
    """neighbour_times' answer for one side: of the times ``found`` near ``bound`` (the
    NEAR_READINGS nearest of each metric), the NEAR_READINGS-th nearest distinct one, or
    ``bound`` itself without any."""
    near = sorted(set(found), reverse=before)[:NEAR_READINGS]
    return near[-1] if near else bound


def series_over(store: StoreProtocol, keys: Sequence[tuple[str, str]], start: float,
                end: float, labels: str = "") -> dict[tuple[str, str], Series]:
    """series_windows for one window."""
    return store.series_windows(keys, [(start, end)], labels)[0]


__all__ = ["BLOCK_METRICS", "CentralStoreProtocol", "CentralToken", "DAY_S", "NEAR_READINGS", "BlockTotal", "DeviceHealth", "ProgressFn",
           "SiteDefinitionRecord", "StoreProtocol", "UserRecord", "UserStoreProtocol", "day_starts", "near_time", "series_over",
           "whole_span"]
