-- The central service's tables (store.pg_central): data centers' ingest tokens, the site
-- definitions edges sent, and the edges' run logs. Like 0001 and 0002, every table has
-- its site first in its key; tokens belong to no one site and are kept under site ''.

CREATE TABLE IF NOT EXISTS central_tokens (
    site text COLLATE "C" NOT NULL,
    token_hash text COLLATE "C" NOT NULL,   -- sha256 of the token: the token is not kept
    data_center text COLLATE "C" NOT NULL,
    label text COLLATE "C" NOT NULL,
    created_ts double precision NOT NULL,
    revoked_ts double precision,            -- NULL while the token may write
    PRIMARY KEY (site, token_hash)
);

CREATE TABLE IF NOT EXISTS site_definitions (
    site text COLLATE "C" NOT NULL,
    received_ts double precision NOT NULL,  -- the central's clock
    changed_ts double precision NOT NULL,   -- the edge's clock when it changed
    data_center text COLLATE "C" NOT NULL,
    sender text NOT NULL,
    fingerprint text NOT NULL,
    definition text NOT NULL,               -- JSON (central.sitedef)
    PRIMARY KEY (site, received_ts)
);

CREATE TABLE IF NOT EXISTS edge_runs (
    site text COLLATE "C" NOT NULL,
    run text COLLATE "C" NOT NULL,
    started double precision NOT NULL,
    last_seen double precision NOT NULL,
    stopped boolean NOT NULL DEFAULT false,
    PRIMARY KEY (site, run)
);
