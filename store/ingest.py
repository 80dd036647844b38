"""The central's batch of readings into a store, shared by both backends (store.central
for SQLite, store.pg_central for PostgreSQL give the SQL that differs).

One transaction, three set statements whatever the batch's size: the batch is staged
in a temporary table (PostgreSQL: one COPY), one join of it against the series index
finds the readings stored already (with their values), and one INSERT ... SELECT writes
the others. Between the two, the caller's ``stale`` function is told which readings are
new and answers the closed blocks they change; they are deleted in the same transaction
(by the backend, which keeps its day summary), so a crash never leaves a stale block.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol


class IngestBatch(NamedTuple):
    """A batch of readings as columns (row i is the i-th of each); every value is a good
    one (quality ok), as only those travel from an edge."""

    sites: Sequence[str]
    ts: Sequence[float]
    devices: Sequence[str]
    metrics: Sequence[str]
    labels: Sequence[str]  # labels_key of each reading's labels
    values: Sequence[float]


Stale = Sequence[tuple[str, tuple[float, float]]]  # (device, (start, end)) of blocks
STAGE_TABLE = "ingest_batch"
# (i, value, quality) of the staged rows stored already; the staged table drives the
# join (one probe of the series index per row), whatever the planner guesses of it.
PROBE = ("SELECT b.i, r.value, r.quality FROM {stage} AS b CROSS JOIN readings AS r "
         "WHERE r.device = b.device AND r.metric = b.metric AND r.labels = b.labels "
         "AND r.ts = b.ts").format(stage=STAGE_TABLE)


@dataclass(frozen=True)
class Ingested:
    new: list[int]  # indices of the rows written
    same: int  # rows stored already with the same value (skipped)
    # {index: [(value, quality), ...] stored} of rows stored already with another value
    conflicts: dict[int, list[tuple[float | None, str]]]


class Dialect(Protocol):
    """The SQL of one backend. One whose readings are not keyed by (device, metric,
    labels, ts) gives its own PROBE as a ``probe`` attribute (store.central)."""

    def stage(self, conn: Any, rows: IngestBatch) -> None:
        """Put ``rows`` (i = their index) in an empty STAGE_TABLE of this transaction."""

    def insert(self, conn: Any, skip: list[int]) -> None:
        """Copy the staged rows but those at ``skip`` into readings."""


def ingest(conn: Any, dialect: Dialect, rows: IngestBatch,
           stale: Callable[[list[int]], Stale]) -> tuple[Ingested, Stale]:
    """Write the rows not stored yet, inside the caller's transaction on ``conn``; the
    result and the blocks ``stale`` named, for the caller to delete."""
    dialect.stage(conn, rows)
    stored: dict[int, list[tuple[float | None, str]]] = {}
    for i, value, quality in conn.execute(getattr(dialect, "probe", PROBE)):
        stored.setdefault(i, []).append((value, quality))
    values = rows.values
    same = sum(1 for i, there in stored.items() if (values[i], "ok") in there)
    conflicts = {i: there for i, there in stored.items() if (values[i], "ok") not in there}
    n = len(values)
    new = [i for i in range(n) if i not in stored] if stored else list(range(n))
    blocks = stale(new) if new else []
    if new:
        dialect.insert(conn, sorted(stored))
    return Ingested(new, same, conflicts), blocks


__all__ = ["PROBE", "STAGE_TABLE", "Dialect", "IngestBatch", "Ingested", "Stale", "ingest"]
