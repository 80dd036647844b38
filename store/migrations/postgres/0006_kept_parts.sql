-- Results kept for reports (store.pg_kept, figures.keptparts): the exact result of a run
-- of partial blocks, opaque here, keyed by site (the distribution column, as every table
-- of the store) and the run's start. Dropped by the writes that change a block of the site
-- in its [lo, hi) or prune readings in it; kept_changes counts those writes, so a reader
-- keeps a result only if nothing changed since its snapshot. Site '' counts changes of
-- every site (retention, a device of no known site).

CREATE TABLE IF NOT EXISTS kept_parts (
    site text COLLATE "C" NOT NULL,
    start double precision NOT NULL,
    "end" double precision NOT NULL,
    lo double precision NOT NULL,
    hi double precision NOT NULL,
    fingerprint text NOT NULL,
    payload text NOT NULL,
    PRIMARY KEY (site, start)
);

CREATE TABLE IF NOT EXISTS kept_changes (
    site text COLLATE "C" NOT NULL PRIMARY KEY,
    changes bigint NOT NULL
);
INSERT INTO kept_changes (site, changes) VALUES ('', 0) ON CONFLICT (site) DO NOTHING;
