-- The PostgreSQL store's first schema (store.postgres applies the files of this folder in
-- order, each once, recording it in schema_version).
--
-- Every table that holds a site's data carries its site and has it first in its key, so
-- Citus can distribute them all by site without a schema change (README: "PostgreSQL").
-- The three time-ordered tables are range-partitioned by their time column (unix seconds,
-- one partition per UTC month): store.postgres attaches a month's partition the first
-- time a row of that month is written. Text is compared bytewise (COLLATE "C"), as SQLite
-- does, so both backends sort devices and labels the same way.

CREATE TABLE IF NOT EXISTS meta (
    key text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE IF NOT EXISTS readings (
    site text COLLATE "C" NOT NULL,
    ts double precision NOT NULL,        -- unix seconds (UTC)
    device text COLLATE "C" NOT NULL,
    metric text COLLATE "C" NOT NULL,
    labels text COLLATE "C" NOT NULL,    -- 'k=v,k2=v2' sorted; '' for the device total
    value double precision,              -- NULL unless quality is ok
    quality text COLLATE "C" NOT NULL
) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS readings_series ON readings (device, metric, labels, ts);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);

-- Which site each device belongs to: the writers' site for a block or an imported reading
-- of a device they are told only the id of.
CREATE TABLE IF NOT EXISTS devices (
    site text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    PRIMARY KEY (site, device)
);

CREATE TABLE IF NOT EXISTS device_health (
    site text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    up boolean NOT NULL,
    last_poll_ts double precision,
    last_ok_ts double precision,
    last_duration_s double precision,
    last_error_kind text,
    last_error text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    polls_total bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (site, device)
);

CREATE TABLE IF NOT EXISTS poll_errors (
    site text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    kind text COLLATE "C" NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (site, device, kind)
);

CREATE TABLE IF NOT EXISTS device_profiles (
    site text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    profile text NOT NULL,
    PRIMARY KEY (site, device)
);

CREATE TABLE IF NOT EXISTS interval_energy (
    site text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    start double precision NOT NULL,
    "end" double precision NOT NULL,
    energy_kwh double precision,         -- NULL when the meter measured nothing in the block
    covered_s double precision NOT NULL,
    method text COLLATE "C" NOT NULL,
    resets integer NOT NULL DEFAULT 0,   -- counter resets or wraps inside the block
    counter_kwh double precision,        -- counter and integrated power over the time both
    power_kwh double precision,          -- measured (NULL: not both)
    PRIMARY KEY (site, device, start)
) PARTITION BY RANGE (start);
CREATE INDEX IF NOT EXISTS interval_energy_device ON interval_energy (device, start);

-- The day summary of the blocks (store.days explains it); kept by the writing transaction.
CREATE TABLE IF NOT EXISTS day_energy (
    site text COLLATE "C" NOT NULL,
    device text COLLATE "C" NOT NULL,
    day bigint NOT NULL,                 -- unix seconds of the day's start (the day offset)
    blocks integer NOT NULL,
    min_covered_s double precision NOT NULL,
    energy_kwh double precision,
    covered_s double precision NOT NULL,
    methods text NOT NULL,               -- distinct methods, comma separated
    resets integer NOT NULL,
    counter_kwh double precision,
    power_kwh double precision,
    PRIMARY KEY (site, device, day)
) PARTITION BY RANGE (day);
CREATE INDEX IF NOT EXISTS day_energy_device ON day_energy (device, day);

INSERT INTO meta VALUES ('day_offset_s', '0'), ('day_summary_complete', '1')
    ON CONFLICT (key) DO NOTHING;
