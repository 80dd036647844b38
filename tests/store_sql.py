"""SQL for tests that look into an SQLite store's file directly (a running monitor's, or
one a command wrote): the readings with their series' text keys (store.series)."""

# One row per reading, (ts, device, metric, labels, value, quality) in rowid order: the
# columns and order of the readings table before series ids, for ``FROM {READINGS}``.
READINGS = ("(SELECT r.ts AS ts, s.device AS device, s.metric AS metric, s.labels AS labels, "
            "r.value AS value, r.quality AS quality FROM readings AS r "
            "JOIN series AS s ON s.id = r.series ORDER BY r.rowid) AS readings")
