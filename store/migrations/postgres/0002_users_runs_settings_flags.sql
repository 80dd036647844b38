-- What the store interface gained after 0001 (store.base): the web view's users and their
-- API tokens, the monitor's run log, each device's settings fingerprint, the block flag
-- counts and the degraded health state. Like 0001, every new table has its site first in
-- its key; rows that belong to no one site (a user, a monitor run) are stored under site
-- '' (store.postgres.UNKNOWN_SITE), so a distributed setup keeps one key for every table.

-- The last poll answered but some of its readings could not be decoded.
ALTER TABLE device_health ADD COLUMN IF NOT EXISTS degraded boolean NOT NULL DEFAULT false;

-- Flag counts of a block (pue.quality.COUNTED, each flag in the block it ends in) and
-- their sums over a day. ADD COLUMN on a partitioned table reaches every partition, and
-- the partitions made later copy the parent (store.pg_schema.ensure_months).
ALTER TABLE interval_energy
    ADD COLUMN IF NOT EXISTS step_backs integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS wraps integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS stuck integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS implausible integer NOT NULL DEFAULT 0;
ALTER TABLE day_energy
    ADD COLUMN IF NOT EXISTS step_backs integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS wraps integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS stuck integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS implausible integer NOT NULL DEFAULT 0;

-- The settings fingerprint (figures.settings) a device's stored blocks were made with.
CREATE TABLE IF NOT EXISTS device_settings (
    site text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    fingerprint text NOT NULL,
    PRIMARY KEY (site, device)
);

-- The monitor's run log (pue.runlog): a run's start, its last heartbeat or its stop.
CREATE TABLE IF NOT EXISTS monitor_runs (
    site text COLLATE "C" NOT NULL DEFAULT '',
    run text COLLATE "C" NOT NULL,
    started double precision NOT NULL,
    last_seen double precision NOT NULL,
    stopped boolean NOT NULL DEFAULT false,
    PRIMARY KEY (site, run)
);
CREATE INDEX IF NOT EXISTS monitor_runs_started ON monitor_runs (started);

-- The web view's users and API tokens: hashes only (web.accounts makes and checks them).
CREATE TABLE IF NOT EXISTS users (
    site text COLLATE "C" NOT NULL DEFAULT '',
    name text COLLATE "C" NOT NULL,
    role text NOT NULL,
    organisation text,                   -- operators only: the config's organisation id
    password_hash text NOT NULL,
    created_ts double precision NOT NULL,
    PRIMARY KEY (site, name)
);
CREATE TABLE IF NOT EXISTS api_tokens (
    site text COLLATE "C" NOT NULL DEFAULT '',
    token_hash text COLLATE "C" NOT NULL, -- sha256 of a random token, never the token
    user_name text COLLATE "C" NOT NULL,  -- users.name (remove_user deletes its tokens)
    label text NOT NULL,
    created_ts double precision NOT NULL,
    PRIMARY KEY (site, token_hash)
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_name);
