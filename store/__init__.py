"""Persistence: readings, device health, 15-minute blocks and their day summary.

Persistence only, behind one interface (store.base.StoreProtocol, with its transaction
and snapshot rules); store.sqlite.Store is its SQLite implementation and
store.postgres.PostgresStore its PostgreSQL one (imported where chosen, in
pue_monitor.storage, so SQLite users never load psycopg), store.outbox the
durable queue the InfluxDB exporter sends from. Collectors write here and the figures
read from here: collectors and web never import each other.
"""

from pue_monitor.store.base import StoreProtocol
from pue_monitor.store.model import ErrorKind, PollResult, Quality, Reading, labels_key
from pue_monitor.store.sqlite import Store

__all__ = ["ErrorKind", "PollResult", "Quality", "Reading", "Store", "StoreProtocol",
           "labels_key"]
