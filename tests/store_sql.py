"""SQL for tests that look into an SQLite store's file directly (a running monitor's, or
one a command wrote): the readings with their series' text keys (store.series), those
moved into ``readings`` and those still waiting in ``recent`` (store.recent)."""

# One row per reading, (ts, device, metric, labels, value, quality): readings in rowid
# order, then recent in rowid order; the columns of the readings table before series
# ids, for ``FROM {READINGS}``.
_ARM = ("SELECT r.ts AS ts, s.device AS device, s.metric AS metric, s.labels AS labels, "
        "r.value AS value, r.quality AS quality, {n} AS part, r.rowid AS at "
        "FROM {table} AS r JOIN series AS s ON s.id = r.series")
READINGS = ("(SELECT ts, device, metric, labels, value, quality FROM ("
            f"{_ARM.format(n=0, table='readings')} UNION ALL "
            f"{_ARM.format(n=1, table='recent')}) ORDER BY part, at) AS readings")
