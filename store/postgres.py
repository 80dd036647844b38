"""The PostgreSQL store: StoreProtocol on psycopg 3 and a connection pool.

For large or highly available installations (several processes against one server). It
keeps store.base's rules the way the SQLite store does: a writing method is one
transaction; a reading method, and a ``snapshot()``, is one REPEATABLE READ READ ONLY
transaction (readers never wait for writers); the day summary (store.days explains it) is
recomputed for the days a write touches inside that write's transaction. Writers that
touch the same device's blocks are serialised by an advisory lock per device, held a
bounded time (LOCK_TIMEOUT) before the write fails with a BUSY_ERRORS exception.

Schema, migrations and partitions are in store.pg_schema. Every row carries its site:
a device's site is what the caller gives (``sites``, from the config), what a poll says,
or what is stored in ``devices``; a device none of them knows is stored under site ''.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from pue_monitor.store import pg_days as days
from pue_monitor.store import pg_kept as kept
from pue_monitor.store import pg_schema as schema
from pue_monitor.store.base import (BLOCK_METRICS, NEAR_READINGS, PRUNE_CHUNK_S, BlockTotal,
                                    DeviceHealth, ProgressFn, near_time)
from pue_monitor.store.model import (HealthState, Identified, PollResult, Quality, Reading,
                                     labels_key)
from pue_monitor.store.pg_accounts import PgUsersMixin
from pue_monitor.store.pg_central import PgCentralMixin
from pue_monitor.store.pg_events import PgEventsMixin
from pue_monitor.store.pg_replica import Replica, identity

if TYPE_CHECKING:  # pandas is imported where a frame is built: `report` never needs it
    import pandas as pd

POOL_MAX = 10  # connections per process (a snapshot holds one for its duration)
POOL_MIN = 4  # kept open: the collectors' writer, the rollup and a couple of readers
POOL_TIMEOUT_S = 30.0  # waiting for a free connection
CONNECT_TIMEOUT_S = 10  # reaching the server
LOCK_TIMEOUT = "5s"  # waiting for another writer's lock, as SQLite's busy timeout
UNKNOWN_SITE = ""
# What a caller catches when the store cannot be used now (a lock or the pool timed out,
# the server is unreachable).
BUSY_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, PoolTimeout)
_READING_COLUMNS = "site, ts, device, metric, labels, value, quality"


def server_of(url: str) -> str:
    """Where a URL points, for a message: host, port and database, never the password."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    return (f"PostgreSQL {info.get('host', 'localhost')}:{info.get('port', 5432)}"
            f"/{info.get('dbname', '')}")


def _num(value) -> float | None:
    """A float column's value as SQLite stores it: NaN and None are NULL."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _add(total: float | None, value: float | None) -> float | None:
    return total if value is None else (value if total is None else total + value)


class PostgresStore(PgUsersMixin, PgEventsMixin, PgCentralMixin):
    """Readings, device health, interval energy and the web view's users (store.pg_accounts)
    in PostgreSQL. Safe to share between threads; close() before a fork (a child process
    opens its own pool)."""

    def __init__(self, url: str, sites: Mapping[str, str] | None = None,
                 pool_max: int = POOL_MAX, read_url: str | None = None) -> None:
        self.url = url
        self.pool_max = pool_max
        self._sites = dict(sites or {})
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._pid = 0
        self._partitions: set = set()
        self._recorded: set[tuple[str, str]] = set()  # (site, device) known in `devices`
        # One direct connection first: an unreachable server fails in CONNECT_TIMEOUT_S
        # with its own message, not after the pool's wait.
        with psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            schema.migrate(conn)
            primary = identity(conn)[0] if read_url else ""
        # Reads (reports, the web view) from a streaming replica when it has replayed
        # this process's writes (store.pg_replica); None: every read from the primary.
        self.replica = None if not read_url else Replica(
            read_url, primary, pool_max, {"connect_timeout": CONNECT_TIMEOUT_S},
            server_of(read_url))

    # -- connections and transactions ---------------------------------------------------

    def _pool_now(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                # A pool inherited through fork is left alone: its sockets are the parent's.
                # Kept open: starting a server backend costs more than most reads.
                # The lock timeout is the session's: no SET per write transaction.
                self._pool = ConnectionPool(
                    self.url, min_size=min(POOL_MIN, self.pool_max), max_size=self.pool_max,
                    timeout=POOL_TIMEOUT_S, open=True,
                    kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                            "options": f"-c lock_timeout={LOCK_TIMEOUT}"})
                self._pid = os.getpid()
            return self._pool

    @contextmanager
    def _read(self, statements: int = 1) -> Iterator[psycopg.Connection]:
        """The thread's snapshot, else a pooled connection: one statement alone sees one
        committed state; several share a REPEATABLE READ READ ONLY transaction."""
        conn = getattr(self._local, "snapshot", None)
        if conn is not None:
            yield conn
            return
        with ExitStack() as stack:
            conn = None if self.replica is None else self.replica.connection(stack)
            if conn is None:
                conn = stack.enter_context(self._pool_now().connection())
            if statements == 1:  # autocommit: no BEGIN and COMMIT round trips
                yield conn
                return
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self, devices: Iterable[str] = ()) -> Iterator[psycopg.Connection]:
        """One READ COMMITTED transaction; with ``devices``, holding their day-summary
        locks (after the shared one align_days excludes), taken in order."""
        if getattr(self._local, "snapshot", None) is not None:
            raise RuntimeError("a write inside a read snapshot")
        with self._pool_now().connection() as conn:
            with conn.transaction():
                self._lock_devices(conn, devices)
                self._local.recorded = []
                yield conn
            if self.replica is not None:
                self.replica.wrote(conn)
            # Recorded once committed (a rolled back pair is recorded by the next write).
            self._recorded.update(self._local.recorded)

    @staticmethod
    def _lock_devices(conn: psycopg.Connection, devices: Iterable[str]) -> None:
        """Take these devices' day-summary locks (after the shared one align_days
        excludes), in order, for the rest of the transaction."""
        locked = sorted(set(devices))
        if locked:
            conn.execute("SELECT pg_advisory_xact_lock_shared(%s, 0)",
                         (schema.LOCK_CLASS_DAYS,))
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(d)) FROM "
                         "unnest(%s::text[]) WITH ORDINALITY AS u(d, n) ORDER BY n",
                         (schema.LOCK_CLASS_DEVICE, locked))

    def _ensure(self, table: str, months: set) -> None:
        if all((table, m) in self._partitions for m in months):
            return
        with self._pool_now().connection() as conn:
            schema.ensure_months(conn, table, months, self._partitions)
            if self.replica is not None:
                self.replica.wrote(conn)

    def _ensure_blocks(self, starts: Iterable[float]) -> None:
        blocks, day_months = schema.block_months(starts)
        self._ensure("interval_energy", blocks)
        self._ensure("day_energy", day_months)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads on this thread inside share one REPEATABLE READ transaction: one
        consistent view of blocks, day rows and readings while writers go on."""
        if getattr(self._local, "snapshot", None) is not None:
            yield
            return
        with self._read(statements=2) as conn:
            self._local.snapshot = conn
            try:
                yield
            finally:
                self._local.snapshot = None

    def close(self) -> None:
        """Close the pool (it reopens on next use; call before a fork)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()
        if self.replica is not None:
            self.replica.close()

    # -- sites ----------------------------------------------------------------------------

    def _site_of(self, conn: psycopg.Connection, devices: Iterable[str]) -> dict[str, str]:
        """{device: site} from the config, the polls seen, else ``devices`` (and each
        known pair recorded there, for a process that is not told)."""
        devices = set(devices)
        missing = sorted(devices - self._sites.keys())
        if missing:
            for device, site in conn.execute(
                    "SELECT device, min(site) FROM devices WHERE device = ANY(%s) "
                    "GROUP BY device", (missing,)):
                self._sites[device] = site
                self._recorded.add((site, device))
        found = {d: self._sites.get(d, UNKNOWN_SITE) for d in devices}
        self._remember(conn, [(s, d) for d, s in found.items()])
        return found

    def _remember(self, conn: psycopg.Connection, pairs: Iterable[tuple[str, str]]) -> None:
        rows = sorted(set(pairs) - self._recorded)
        if rows:
            conn.cursor().executemany("INSERT INTO devices VALUES (%s, %s) ON CONFLICT DO "
                                      "NOTHING", rows)
            self._local.recorded = [*getattr(self._local, "recorded", []), *rows]

    def _copy_readings(self, conn: psycopg.Connection, readings: Sequence[Reading],
                       site_of: Mapping[str, str]) -> None:
        with conn.cursor().copy(f"COPY readings ({_READING_COLUMNS}) FROM STDIN") as copy:
            for r in readings:
                copy.write_row((site_of[r.device], float(r.ts), r.device, r.metric,
                                labels_key(r.labels),
                                _num(r.value) if r.quality == Quality.OK else None,
                                r.quality.value))

    # -- writing (collectors) ---------------------------------------------------------------

    def write_polls(self, results: Sequence[PollResult]) -> None:
        """Store readings, health and error counts of many polls in one transaction."""
        readings = [r for res in results for r in res.readings]
        self._ensure("readings", schema.months_of(r.ts for r in readings))
        site_of = {res.device: res.site for res in results}
        with self._write() as conn:
            self._remember(conn, [(s, d) for d, s in site_of.items()])
            sites = {**self._site_of(conn, {r.device for r in readings} - site_of.keys()),
                     **site_of}
            self._copy_readings(conn, readings, sites)
            self._write_health(conn, results)
        self._sites.update(site_of)

    @staticmethod
    def _write_health(conn: psycopg.Connection, results: Sequence[PollResult]) -> None:
        """Health and error counts of the polls: one row per device, as if its polls had
        been applied in turn, in one statement each (rows in one order in every writer,
        so concurrent writers never deadlock)."""
        health: dict[tuple[str, str], list] = {}
        errors: dict[tuple[str, str, str], int] = {}
        for res in results:
            end = res.started + res.duration_s
            key = (res.site, res.device)
            # up, last poll, last ok, duration, error kind, error, failures since the
            # batch's last ok poll (all of them if none), polls, degraded (the last poll)
            row = health.setdefault(key, [True, None, None, None, None, None, 0, 0, False])
            row[0], row[1], row[3] = res.ok, end, res.duration_s
            row[4] = res.error_kind.value if res.error_kind else None
            row[5], row[7] = res.error, row[7] + 1
            row[8] = res.state == HealthState.DEGRADED
            if res.ok:
                row[2], row[6] = end, 0
            else:
                row[6] += 1
            for kind, n in res.error_counts().items():
                errors[(*key, kind)] = errors.get((*key, kind), 0) + n
        keys = sorted(health)
        columns = [[k[0] for k in keys], [k[1] for k in keys],
                   *([health[k][i] for k in keys] for i in range(9))]
        conn.execute(
            """INSERT INTO device_health (site, device, up, last_poll_ts, last_ok_ts,
                   last_duration_s, last_error_kind, last_error, consecutive_failures,
                   polls_total, degraded)
               SELECT * FROM unnest(%s::text[], %s::text[],
                   %s::bool[], %s::float8[], %s::float8[], %s::float8[], %s::text[],
                   %s::text[], %s::int[], %s::bigint[], %s::bool[])
               ON CONFLICT (site, device) DO UPDATE SET
                 up = excluded.up, degraded = excluded.degraded,
                 last_poll_ts = excluded.last_poll_ts,
                 last_ok_ts = COALESCE(excluded.last_ok_ts, device_health.last_ok_ts),
                 last_duration_s = excluded.last_duration_s,
                 last_error_kind = excluded.last_error_kind, last_error = excluded.last_error,
                 consecutive_failures = CASE WHEN excluded.last_ok_ts IS NOT NULL
                     THEN excluded.consecutive_failures
                     ELSE device_health.consecutive_failures + excluded.consecutive_failures
                     END,
                 polls_total = device_health.polls_total + excluded.polls_total""", columns)
        if errors:
            ordered = sorted(errors.items())
            conn.execute(
                "INSERT INTO poll_errors SELECT * FROM unnest(%s::text[], %s::text[], "
                "%s::text[], %s::bigint[]) ON CONFLICT (site, device, kind) DO UPDATE SET "
                "count = poll_errors.count + excluded.count",
                [[k[i] for k, _ in ordered] for i in range(3)] + [[n for _, n in ordered]])

    def import_readings(self, readings: Sequence[Reading],
                        stale: Sequence[tuple[str, tuple[float, float]]] = ()) -> None:
        """Historical readings, and the removal of the blocks they make stale (device,
        (start, end)), in one transaction: all of it or none of it."""
        self._ensure("readings", schema.months_of(r.ts for r in readings))
        with self._write(d for d, _ in stale) as conn:
            self._copy_readings(conn, readings,
                                self._site_of(conn, {r.device for r in readings}))
            self._drop_stale(conn, stale)

    @staticmethod
    def _drop_stale(conn: psycopg.Connection,
                    stale: Sequence[tuple[str, tuple[float, float]]]) -> None:
        """Delete the blocks (device, (start, end)) new readings make stale, and their
        day rows, in the caller's transaction (holding the devices' locks: _write)."""
        dirty: set[tuple[str, int]] = set()
        offset = days.offset(conn)
        for device, (a, b) in stale:
            dirty |= {(device, days.day_of(start, offset)) for (start,) in conn.execute(
                "DELETE FROM interval_energy WHERE device = %s AND start >= %s "
                "AND start < %s RETURNING start", (device, a, b))}
        if stale:
            kept.changed(conn, kept.sites_of(conn, (d for d, _ in stale)),
                         min(a for _, (a, _) in stale), max(b for _, (_, b) in stale))
        days.refresh(conn, dirty)

    def write_interval_energy(self, rows: Iterable[tuple]) -> None:
        """Upsert (device, start, end, energy_kwh, covered_s, method[, resets, counter_kwh,
        power_kwh[, step_backs, wraps, stuck, implausible]]) rows and refresh their days, in
        one transaction."""
        tails = {6: (0, None, None, 0, 0, 0, 0), 9: (0, 0, 0, 0), 13: ()}
        full = [(*r, *tails[len(r)]) for r in rows]
        if not full:
            return
        self._ensure_blocks(float(r[1]) for r in full)
        with self._write(str(r[0]) for r in full) as conn:
            site_of = self._site_of(conn, {str(r[0]) for r in full})
            clean = [(site_of[str(d)], str(d), float(s), float(e), _num(kwh), float(cov),
                      str(method), int(resets), _num(ck), _num(pk), *(int(n) for n in flags))
                     for d, s, e, kwh, cov, method, resets, ck, pk, *flags in full]
            conn.cursor().executemany(
                'INSERT INTO interval_energy (site, device, start, "end", energy_kwh, '
                "covered_s, method, resets, counter_kwh, power_kwh, "
                f"{', '.join(days.FLAG_COLUMNS)}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, %s, %s, %s, %s, %s) ON CONFLICT (site, device, start) DO UPDATE SET "
                '"end" = excluded."end", energy_kwh = excluded.energy_kwh, '
                "covered_s = excluded.covered_s, method = excluded.method, "
                "resets = excluded.resets, counter_kwh = excluded.counter_kwh, "
                "power_kwh = excluded.power_kwh, "
                + ", ".join(f"{c} = excluded.{c}" for c in days.FLAG_COLUMNS), clean)
            kept.changed(conn, {r[0] for r in clean}, min(r[2] for r in clean),
                         max(r[3] for r in clean))
            offset = days.offset(conn)
            days.refresh(conn, {(r[1], days.day_of(r[2], offset)) for r in clean})

    def set_device_profile(self, device: str, name: str, sys_object_id: str = "",
                           reason: str = "", ts: float | None = None) -> None:
        """Record the profile an auto device was identified as, and why."""
        with self._write() as conn:
            site = self._site_of(conn, [device])[device]
            conn.execute("INSERT INTO device_profiles (site, device, profile, sys_object_id, "
                         "reason, identified_ts) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT "
                         "(site, device) DO UPDATE SET profile = excluded.profile, "
                         "sys_object_id = excluded.sys_object_id, reason = excluded.reason, "
                         "identified_ts = excluded.identified_ts",
                         (site, device, name, sys_object_id, reason, ts))

    def prune_readings(self, before: float) -> int:
        """Delete the readings older than ``before``, a day per transaction."""
        with self._read() as conn:
            oldest = conn.execute("SELECT min(ts) FROM readings").fetchone()[0]
        gone = 0
        while oldest is not None and oldest < before:
            upto = min(before, oldest + PRUNE_CHUNK_S)
            with self._write() as conn:
                gone += conn.execute("DELETE FROM readings WHERE ts < %s", (upto,)).rowcount
                kept.changed(conn, None, -math.inf, upto)
            oldest = upto
        return gone

    def mark_run(self, run: str, ts: float, stopped: bool = False) -> None:
        """Start, heartbeat or clean stop of a monitor run (see StoreProtocol.mark_run);
        a run belongs to no one site: kept under site ''."""
        with self._write() as conn:
            conn.execute("INSERT INTO monitor_runs (site, run, started, last_seen, stopped) "
                         "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (site, run) DO UPDATE SET "
                         "last_seen = greatest(monitor_runs.last_seen, excluded.last_seen), "
                         "stopped = excluded.stopped",
                         (UNKNOWN_SITE, run, float(ts), float(ts), bool(stopped)))

    def replace_settings(self, fingerprints: Mapping[str, str],
                         drop_blocks: bool = True,
                         since: Mapping[str, float] | None = None) -> None:
        """Record these devices' settings and delete their blocks (from ``since``, see
        StoreProtocol) and the day rows they made (blocks made with other settings are
        stale), in one transaction."""
        if not fingerprints:
            return
        cut = {d: -math.inf if since is None else since.get(d) for d in fingerprints}
        cut = {d: t for d, t in cut.items() if t is not None} if drop_blocks else {}
        with self._write(cut) as conn:
            site_of = self._site_of(conn, fingerprints)
            devices = sorted(fingerprints)
            whole = sorted(d for d, t in cut.items() if t == -math.inf)
            if whole:
                # Every block of the device goes, so every day row of it goes too.
                for table in ("interval_energy", "day_energy"):
                    conn.execute(f"DELETE FROM {table} WHERE device = ANY(%s::text[])",
                                 (whole,))
            dirty: set[tuple[str, int]] = set()
            offset = days.offset(conn)
            for device, t in sorted(cut.items()):
                if t != -math.inf:
                    dirty |= {(device, days.day_of(start, offset)) for (start,) in conn.execute(
                        "DELETE FROM interval_energy WHERE device = %s AND start >= %s "
                        "RETURNING start", (device, t))}
            if dirty:
                days.refresh(conn, dirty)
            if cut:
                kept.changed(conn, {site_of[d] for d in cut}, min(cut.values()), math.inf)
            conn.cursor().executemany(
                "INSERT INTO device_settings VALUES (%s, %s, %s) ON CONFLICT (site, device) "
                "DO UPDATE SET fingerprint = excluded.fingerprint",
                [(site_of[d], d, str(fingerprints[d])) for d in devices])

    def stored_values(self, readings: Sequence[Reading]
                      ) -> dict[int, list[tuple[float | None, str]]]:
        """For an import: {index in ``readings``: [(value, quality), ...] stored at the same
        (device, metric, labels, ts)}; a reading not stored yet is absent. One join of the
        keys (as arrays) against the series index."""
        out: dict[int, list[tuple[float | None, str]]] = {}
        if not readings:
            return out
        columns = ([i for i in range(len(readings))], [float(r.ts) for r in readings],
                   [r.device for r in readings], [r.metric for r in readings],
                   [labels_key(r.labels) for r in readings])
        with self._read() as conn:
            for i, value, quality in conn.execute(
                    "SELECT k.i, r.value, r.quality FROM unnest(%s::int[], %s::float8[], "
                    "%s::text[], %s::text[], %s::text[]) AS k(i, ts, device, metric, labels) "
                    "JOIN readings r ON r.device = k.device AND r.metric = k.metric "
                    "AND r.labels = k.labels AND r.ts = k.ts", columns):
                out.setdefault(i, []).append((value, quality))
        return out

    # -- reading (web, reports, exporters) ---------------------------------------------------

    def series_windows(self, keys: Sequence[tuple[str, str]],
                       windows: Sequence[tuple[float, float]], labels: str = "",
                       near_s: float = 0.0
                       ) -> list[dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]]:
        """Good readings of each (device, metric) in each window [start, end], plus the
        NEAR_READINGS nearest on each side, as sorted (times, values) arrays; one statement
        (the server seeks the nearest readings within it, so ``near_s`` is not needed)."""
        keys = list(dict.fromkeys(keys))
        found: list[dict[tuple[str, str], list]] = [{k: [] for k in keys} for _ in windows]
        if keys and windows:
            w = ([i for i in range(len(windows))], [float(a) for a, _ in windows],
                 [float(b) for _, b in windows])
            k = ([d for d, _ in keys], [m for _, m in keys])
            near = ("SELECT w.i, k.device, k.metric, x.ts, x.value FROM w CROSS JOIN k "
                    "CROSS JOIN LATERAL (SELECT ts, value FROM readings r WHERE "
                    "r.device = k.device AND r.metric = k.metric AND r.labels = %(labels)s "
                    "AND r.quality = 'ok' AND r.ts {op} w.{edge} ORDER BY r.ts {order} "
                    f"LIMIT {NEAR_READINGS}) x")
            sql = ("WITH w AS (SELECT * FROM unnest(%(wi)s::int[], %(wa)s::float8[], "
                   "%(wb)s::float8[]) AS w(i, a, b)), k AS (SELECT * FROM unnest("
                   "%(kd)s::text[], %(km)s::text[]) AS k(device, metric)) "
                   "SELECT w.i, k.device, k.metric, r.ts, r.value FROM w CROSS JOIN k "
                   "JOIN readings r ON r.device = k.device AND r.metric = k.metric "
                   "AND r.labels = %(labels)s AND r.quality = 'ok' AND r.ts >= w.a "
                   "AND r.ts <= w.b UNION ALL "
                   + near.format(op="<", edge="a", order="DESC") + " UNION ALL "
                   + near.format(op=">", edge="b", order="ASC"))
            args = {"wi": w[0], "wa": w[1], "wb": w[2], "kd": k[0], "km": k[1],
                    "labels": labels}
            with self._read() as conn:
                for i, device, metric, ts, value in conn.execute(sql, args):
                    found[i][(device, metric)].append((ts, value))
        out = []
        for per_key in found:
            arrays = {}
            for key, points in per_key.items():
                points.sort(key=lambda p: p[0])
                data = np.asarray(points, dtype=float).reshape(-1, 2)
                arrays[key] = (data[:, 0], data[:, 1])
            out.append(arrays)
        return out

    def series_at(self, points: Sequence[tuple[tuple[str, str], float]], labels: str = ""
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each ((device, metric), ts): its good readings at ts and the NEAR_READINGS
        nearest on each side, as series_windows([key], [(ts, ts)]) gives them; one
        statement for every point."""
        found: list[list] = [[] for _ in points]
        if points:
            near = ("SELECT p.i, x.ts, x.value FROM p CROSS JOIN LATERAL (SELECT ts, value "
                    "FROM readings r WHERE r.device = p.device AND r.metric = p.metric AND "
                    "r.labels = %(labels)s AND r.quality = 'ok' AND r.ts {op} p.at ORDER BY "
                    f"r.ts {{order}} LIMIT {NEAR_READINGS}) x")
            # The same three parts in the same order as series_windows, so equal times
            # keep the same order once sorted; each a lateral probe of the series index
            # (a join would be planned from the partitions' statistics, which a batch
            # just written leaves far off: a scan of the whole partition per point).
            sql = ("WITH p AS (SELECT * FROM unnest(%(i)s::int[], %(d)s::text[], "
                   "%(m)s::text[], %(at)s::float8[]) AS p(i, device, metric, at)) "
                   "SELECT p.i, x.ts, x.value FROM p CROSS JOIN LATERAL (SELECT ts, value "
                   "FROM readings r WHERE r.device = p.device AND r.metric = p.metric AND "
                   "r.labels = %(labels)s AND r.quality = 'ok' AND r.ts = p.at OFFSET 0) x "
                   "UNION ALL " + near.format(op="<", order="DESC")
                   + " UNION ALL " + near.format(op=">", order="ASC"))
            args = {"i": list(range(len(points))), "d": [d for (d, _), _ in points],
                    "m": [m for (_, m), _ in points], "at": [float(t) for _, t in points],
                    "labels": labels}
            with self._read() as conn:
                for i, ts, value in conn.execute(sql, args):
                    found[i].append((ts, value))
        out = []
        for rows in found:
            rows.sort(key=lambda p: p[0])
            data = np.asarray(rows, dtype=float).reshape(-1, 2)
            out.append((data[:, 0], data[:, 1]))
        return out

    def latest(self, since: float, devices: Sequence[str] | None = None) -> pd.DataFrame:
        """The newest reading of every (device, metric, labels) seen since ``since``."""
        import pandas as pd

        sql = ("SELECT DISTINCT ON (device, metric, labels) device, metric, labels, ts, "
               "value, quality FROM readings WHERE ts >= %s")
        args: list = [since]
        if devices is not None:
            sql += " AND device = ANY(%s::text[])"
            args.append(list(devices))
        sql += " ORDER BY device, metric, labels, ts DESC"
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return pd.DataFrame(rows, columns=["device", "metric", "labels", "ts", "value", "quality"])

    def health(self) -> dict[str, DeviceHealth]:
        """The latest poll outcome of every device polled so far."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT device, site, up, last_poll_ts, last_ok_ts, last_duration_s, "
                "last_error_kind, last_error, consecutive_failures, polls_total, degraded "
                "FROM device_health ORDER BY last_poll_ts NULLS FIRST").fetchall()
        return {r[0]: DeviceHealth(*r[:10], degraded=bool(r[10])) for r in rows}

    def error_counts(self) -> dict[tuple[str, str], int]:
        """{(device, error kind): count} since the store was created."""
        out: dict[tuple[str, str], int] = {}
        with self._read() as conn:
            for device, kind, n in conn.execute("SELECT device, kind, count FROM poll_errors"):
                out[(device, kind)] = out.get((device, kind), 0) + n
        return out

    def device_profiles(self) -> dict[str, str]:
        """{device id: identified profile name} of the auto devices identified so far."""
        with self._read() as conn:
            return dict(conn.execute("SELECT device, profile FROM device_profiles").fetchall())

    def device_identifications(self) -> dict[str, Identified]:
        """{device id: profile, sysObjectID, reason and time recorded}."""
        with self._read() as conn:
            rows = conn.execute("SELECT device, profile, sys_object_id, reason, identified_ts "
                                "FROM device_profiles").fetchall()
        return {device: Identified(profile, oid, reason, ts)
                for device, profile, oid, reason, ts in rows}

    def kept_parts(self, site: str, start: float, end: float
                   ) -> tuple[int, dict[float, tuple[float, str, str]]]:
        """The site's kept results starting in [start, end) and the changes counted so
        far (store.pg_kept)."""
        with self._read(statements=2) as conn:
            return kept.read(conn, site, start, end)

    def keep_parts(self, site: str, seen: int,
                   rows: Sequence[tuple[float, float, float, float, str, str]]) -> bool:
        """Keep these results of the site unless a change was counted since ``seen``
        (store.pg_kept); whether they were kept."""
        with self._write() as conn:
            return kept.keep(conn, site, seen, rows)

    def settings_fingerprints(self) -> dict[str, str]:
        """{device id: fingerprint of the settings its stored blocks were computed with}."""
        with self._read() as conn:
            return dict(conn.execute("SELECT device, fingerprint FROM device_settings")
                        .fetchall())

    def runs(self, start: float, end: float, site: str | None = None
             ) -> list[tuple[float, float, bool]]:
        """(started, last seen, stopped) of the runs overlapping [start, end), by start:
        this monitor's, and with ``site`` its edge's (store.pg_central)."""
        with self._read() as conn:
            rows = conn.execute("SELECT started, last_seen, stopped FROM (SELECT started, "
                                "last_seen, stopped, run FROM monitor_runs UNION ALL SELECT "
                                "started, last_seen, stopped, run FROM edge_runs WHERE site = "
                                "%s) AS r WHERE started < %s AND last_seen >= %s "
                                "ORDER BY started, run", (site, end, start)).fetchall()
        return [(a, b, bool(s)) for a, b, s in rows]

    def first_reading_ts(self, device: str, metrics: Sequence[str] = BLOCK_METRICS
                         ) -> float | None:
        """The device's first reading of any of ``metrics`` (device totals)."""
        return self._edge_ts(device, metrics, "min", ">", -math.inf)

    def neighbour_times(self, spans: Mapping[str, tuple[float, float]],
                        metrics: Sequence[str] = BLOCK_METRICS
                        ) -> dict[str, tuple[float, float]]:
        """{device: its NEAR_READINGS-th reading (or the farthest there is) of any of
        ``metrics`` before its start and after its end, or start / end themselves where
        there is none}; one statement for every device."""
        devices = list(spans)
        if not devices:
            return {}
        # The nearest NEAR_READINGS times of each metric off the series index, then (in
        # near_time) the NEAR_READINGS-th nearest distinct time of them all, per side.
        near = ("SELECT s.i, {side}, x.ts FROM s CROSS JOIN m CROSS JOIN LATERAL (SELECT ts "
                "FROM readings r WHERE r.device = s.device AND r.metric = m.metric AND "
                "r.labels = '' AND r.ts {op} s.{edge} ORDER BY r.ts {order} "
                f"LIMIT {NEAR_READINGS}) x")
        sql = ("WITH s AS (SELECT * FROM unnest(%s::int[], %s::text[], %s::float8[], "
               "%s::float8[]) AS s(i, device, a, b)), m AS (SELECT unnest(%s::text[]) AS "
               "metric) " + near.format(side=0, op="<", edge="a", order="DESC")
               + " UNION ALL " + near.format(side=1, op=">", edge="b", order="ASC"))
        found: list[tuple[set, set]] = [(set(), set()) for _ in devices]
        with self._read() as conn:
            for i, side, ts in conn.execute(sql, (
                    list(range(len(devices))), devices,
                    [float(spans[d][0]) for d in devices],
                    [float(spans[d][1]) for d in devices], list(metrics))):
                found[i][side].add(ts)
        return {d: (near_time(found[i][0], spans[d][0], True),
                    near_time(found[i][1], spans[d][1], False))
                for i, d in enumerate(devices)}

    def _edge_ts(self, device: str, metrics: Sequence[str], agg: str, op: str,
                 bound: float) -> float | None:
        # One index seek per metric (the whole (device, metric, labels) prefix given, the
        # planner reads min/max(ts) off each partition's index end, not the device's rows).
        with self._read() as conn:
            return conn.execute(
                f"SELECT {agg}(x) FROM unnest(%s::text[]) AS m(metric) CROSS JOIN LATERAL "
                f"(SELECT {agg}(ts) AS x FROM readings r WHERE r.device = %s "
                f"AND r.metric = m.metric AND r.labels = '' AND r.ts {op} %s) s",
                (list(metrics), device, bound)).fetchone()[0]

    def last_interval_end(self, device: str) -> float | None:
        """The end of the device's latest block, None without any."""
        with self._read() as conn:
            row = conn.execute('SELECT "end" FROM interval_energy WHERE device = %s '
                               "ORDER BY start DESC LIMIT 1", (device,)).fetchone()
        return None if row is None else row[0]

    def interval_energy(self, devices: Sequence[str], start: float, end: float) -> pd.DataFrame:
        """Stored interval energy rows of these devices starting in [start, end)."""
        import pandas as pd

        with self._read() as conn:
            rows = conn.execute(
                'SELECT device, start, "end", energy_kwh, covered_s, method FROM '
                "interval_energy WHERE device = ANY(%s::text[]) AND start >= %s "
                "AND start < %s ORDER BY device, start", (list(devices), start, end)).fetchall()
        return pd.DataFrame(rows, columns=["device", "start", "end", "energy_kwh", "covered_s",
                                           "method"])

    def block_starts(self, devices: Sequence[str], start: float, end: float) -> list[float]:
        """Distinct starts of the stored blocks of any of these devices in [start, end)."""
        with self._read() as conn:
            rows = conn.execute("SELECT DISTINCT start FROM interval_energy WHERE device = "
                                "ANY(%s::text[]) AND start >= %s AND start < %s ORDER BY start",
                                (list(devices), start, end)).fetchall()
        return [r[0] for r in rows]

    def block_counts(self, devices: Sequence[str], start: float, end: float) -> dict[str, int]:
        """Stored blocks per device in [start, end) (devices without any are absent); the
        whole days in between from the day summary when it is complete."""
        with self._read(statements=2) as conn:
            return days.block_counts(conn, list(dict.fromkeys(devices)), start, end)

    def blocks_below(self, ranges: Sequence[tuple[str, float, float]],
                     covered_s: float) -> list[tuple[str, float, float]]:
        """(device, start, covered seconds) of the blocks covered less than ``covered_s``
        in (device, start, end) ranges, range by range, each by start."""
        if not ranges:
            return []
        columns = ([r[0] for r in ranges], [float(r[1]) for r in ranges],
                   [float(r[2]) for r in ranges])
        with self._read() as conn:
            rows = conn.execute(
                "SELECT e.device, e.start, e.covered_s FROM unnest(%s::text[], %s::float8[], "
                "%s::float8[]) WITH ORDINALITY AS q(device, a, b, n) JOIN interval_energy e "
                "ON e.device = q.device AND e.start >= q.a AND e.start < q.b "
                "WHERE e.covered_s < %s ORDER BY q.n, e.start", (*columns, covered_s))
            return [tuple(r) for r in rows]

    def block_totals(self, devices: Sequence[str], start: float, end: float,
                     edges: Sequence[float] = (), starts: Sequence[float] | None = None,
                     by_day: bool = False) -> dict[tuple[str, int], BlockTotal]:
        """Per (device, segment), over its blocks in [start, end) (or only those starting
        at ``starts``): see StoreProtocol.block_totals. One statement."""
        if not devices:
            return {}
        table, t, method_col = ("day_energy", "day", "methods") if by_day else (
            "interval_energy", "start", "method")
        segment = " + ".join(["0", *(f"({t} >= %s)::int" for _ in edges)])
        # Float sums in time order, as SQLite adds them along its index (pg_days._SUMS).
        sql = (f"SELECT device, {segment} AS seg, sum(energy_kwh ORDER BY {t}), "
               f"sum(covered_s ORDER BY {t}), string_agg(DISTINCT {method_col}, ','), "
               f"sum(resets), sum(counter_kwh ORDER BY {t}), sum(power_kwh ORDER BY {t}), "
               + ", ".join(f"sum({c})" for c in days.FLAG_COLUMNS) +
               f" FROM {table} WHERE device = ANY(%s::text[]) ")
        args: list = [*(float(e) for e in edges), list(devices)]
        if starts is None:
            sql += f"AND {t} >= %s AND {t} < %s"
            args += [start, end]
        else:
            sql += f"AND {t} = ANY(%s::float8[])"
            args.append([float(x) for x in starts if start <= x < end])
        out: dict[tuple[str, int], list] = {}
        with self._read() as conn:
            for (device, seg, energy, covered, methods, resets, by_counter, by_power,
                 *flags) in conn.execute(sql + " GROUP BY device, seg", args):
                acc = out.setdefault((device, seg),
                                     [None, 0.0, set(), 0, None, None, 0, 0, 0, 0])
                acc[0] = _add(acc[0], energy)
                acc[1] += covered or 0.0
                acc[2] |= {m for m in (methods or "").split(",") if m and m != "none"}
                acc[3] += resets or 0
                acc[4], acc[5] = _add(acc[4], by_counter), _add(acc[5], by_power)
                for i, n in enumerate(flags):
                    acc[6 + i] += int(n or 0)
        return {k: BlockTotal(e, c, "+".join(sorted(m)), r, bc, bp, *flags)
                for k, (e, c, m, r, bc, bp, *flags) in out.items()}

    # -- the day summary of the blocks (store.pg_days) ------------------------------------

    @property
    def day_offset_s(self) -> int:
        """Where the summary's days start, in seconds east of UTC."""
        with self._read() as conn:
            return days.offset(conn)

    def align_days(self, offset_s: int) -> bool:
        """Start the summary's days at ``offset_s`` east of UTC (the sites' local
        midnight); True if that changed, in which case the summary is rebuilt."""
        with self._write() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (schema.LOCK_CLASS_DAYS,))
            return days.align(conn, offset_s)

    def rebuild_days(self, progress: ProgressFn | None = None) -> bool:
        """Fill in an incomplete day summary one device per transaction, calling
        ``progress(devices done, devices)`` after each; True if there was anything to do."""
        with self._read(statements=2) as conn:
            if days.complete(conn):
                return False
            total = days.device_count(conn) if progress is not None else 0
        device, done = None, 0
        while True:
            with self._read() as conn:
                device = days.next_device(conn, device)
            if device is None:
                with self._write() as conn:
                    conn.execute("SELECT pg_advisory_xact_lock(%s, 0)",
                                 (schema.LOCK_CLASS_DAYS,))
                    days.set_complete(conn, True)
                return True
            with self._write([device]) as conn:
                days.rebuild(conn, device)
            done += 1
            if progress is not None:
                progress(done, max(total, done))

    def days_complete(self) -> bool:
        """Whether the day summary covers every block (else readers use the blocks)."""
        with self._read() as conn:
            return days.complete(conn)

    def days_not_whole(self, devices: Sequence[str], start: float, end: float,
                       covered_s: float) -> list[tuple[str, float, int, float]]:
        """(device, day, blocks, least covered) of the days starting in [start, end) on
        which a device lacks a block or has one covered less than ``covered_s``; a day
        without a block at all is (device, day, 0, 0.0)."""
        with self._read(statements=4) as conn:
            return days.not_whole(conn, devices, start, end, covered_s)

    def day_rows(self, devices: Sequence[str], start: float, end: float) -> list[tuple]:
        """Day summaries of these devices starting in [start, end) (see store.pg_days)."""
        with self._read() as conn:
            return days.rows(conn, devices, start, end)
