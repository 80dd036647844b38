"""Reads from a PostgreSQL streaming replica (``store: read_url``), never staler than
this process's own writes.

Reports and the web view read much and write little: a central under load sends their
reads to a hot standby and keeps the primary for ingest. A read goes to the replica only
when the replica has replayed the WAL past this process's last committed write (its
``pg_current_wal_insert_lsn()`` after the commit, compared with the replica's
``pg_last_wal_replay_lsn()``), so a figure computed from blocks this process has just
written never misses them; otherwise, and while the replica is unreachable, the read goes
to the primary. Another process's writes are seen as a read of the primary a moment
earlier would see them (what any concurrent reader sees). The replica is checked to be a
standby of the same cluster (same system identifier, in recovery) before it is read:
a ``read_url`` pointing at another server is refused, never read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import ExitStack

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

log = logging.getLogger(__name__)

# A replica that failed is not tried again for this long (the reads go to the primary).
RETRY_S = 30.0
# Waiting for a replica connection: short, the primary is there.
REPLICA_POOL_TIMEOUT_S = 2.0
IDENTITY_SQL = ("SELECT (SELECT system_identifier FROM pg_control_system())::text, "
                "pg_is_in_recovery()")


class ReplicaMismatch(ValueError):
    """``read_url`` is not a standby of the primary ``url`` points at."""


def lsn_value(text: str) -> int:
    """A WAL position as PostgreSQL writes it ('16/B374D848') as one comparable number."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def identity(conn: psycopg.Connection) -> tuple[str, bool]:
    """(system identifier, in recovery) of the server behind ``conn``."""
    system, recovering = conn.execute(IDENTITY_SQL).fetchone()
    return str(system), bool(recovering)


class Replica:
    """The replica's pool and what this process knows of it: the WAL position of its own
    last write, the replica's replay position last seen, reads served by each server."""

    def __init__(self, url: str, primary_system: str, pool_max: int, connect: dict,
                 where: str) -> None:
        self.url, self.primary_system, self.where = url, primary_system, where
        self.pool_max, self.connect = pool_max, connect
        self.written = 0  # WAL position after this process's last committed write
        self.replayed = 0  # the replica's replay position, as last read
        self.reads = {"replica": 0, "primary": 0}
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._pid = 0
        self._verified = False
        self._retry_at = 0.0
        self._disabled = False
        try:
            with psycopg.connect(url, autocommit=True, **connect) as conn:
                self._verify(conn)
        except psycopg.OperationalError as exc:
            log.warning("the read replica %s cannot be reached (%s): reads go to the "
                        "primary until it can", where, str(exc).strip().splitlines()[0])
            self._retry_at = time.monotonic() + RETRY_S

    def _verify(self, conn: psycopg.Connection) -> None:
        system, recovering = identity(conn)
        if system != self.primary_system or not recovering:
            raise ReplicaMismatch(
                f"store.read_url: {self.where} is not a standby of store.url's server "
                f"(system identifier {system} against {self.primary_system}, "
                f"{'in recovery' if recovering else 'not in recovery: a primary'})")
        self._verified = True

    def wrote(self, conn: psycopg.Connection) -> None:
        """After a committed write on ``conn`` (the primary): the WAL position the
        replica must have replayed before it serves this process's next read."""
        (text,) = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        position = lsn_value(text)
        with self._lock:
            self.written = max(self.written, position)

    def _pool_now(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.pool_max,
                    timeout=REPLICA_POOL_TIMEOUT_S, open=True,
                    kwargs={"autocommit": True, **self.connect})
                self._pid = os.getpid()
            return self._pool

    def connection(self, stack: ExitStack) -> psycopg.Connection | None:
        """A replica connection (entered in ``stack``) that has replayed this process's
        writes, else None: the caller reads the primary."""
        if self._disabled or time.monotonic() < self._retry_at:
            return self._primary()
        try:
            conn = stack.enter_context(self._pool_now().connection())
            if not self._verified:
                self._verify(conn)
            if self.written > self.replayed:
                (text,) = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
                with self._lock:
                    self.replayed = max(self.replayed, lsn_value(text))
                if self.written > self.replayed:
                    return self._primary()  # behind this process's own writes
        except ReplicaMismatch as exc:
            log.error("%s: reads go to the primary", exc)
            self._disabled = True
            return self._primary()
        except (psycopg.Error, PoolTimeout) as exc:
            log.warning("the read replica %s failed (%s): reads go to the primary for %.0f s",
                        self.where, str(exc).strip().splitlines()[0] if str(exc) else
                        type(exc).__name__, RETRY_S)
            self._retry_at = time.monotonic() + RETRY_S
            return self._primary()
        with self._lock:
            self.reads["replica"] += 1
        return conn

    def _primary(self) -> None:
        with self._lock:
            self.reads["primary"] += 1
        return None

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()


__all__ = ["RETRY_S", "Replica", "ReplicaMismatch", "identity", "lsn_value"]
