-- What the store interface gained after 0002 (store.base): the web view's log-in sessions
-- (SessionStoreProtocol: log-out ends a session in the store, not only in the browser)
-- and the alert history (EventStoreProtocol). Sessions belong to no one site: their rows
-- are kept under site '', as users are; an event belongs to its site.

CREATE TABLE IF NOT EXISTS web_sessions (
    site text COLLATE "C" NOT NULL DEFAULT '',
    session_hash text COLLATE "C" NOT NULL,  -- sha256 of the random id in the cookie
    user_name text COLLATE "C" NOT NULL,     -- users.name (remove_user ends its sessions)
    created_ts double precision NOT NULL,
    expires_ts double precision NOT NULL,
    PRIMARY KEY (site, session_hash)
);
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (user_name);

CREATE TABLE IF NOT EXISTS site_events (
    site text COLLATE "C" NOT NULL,
    ts double precision NOT NULL,
    kind text COLLATE "C" NOT NULL,      -- "device" or "pue" (store.base.SiteEvent)
    subject text COLLATE "C" NOT NULL,   -- the device id, or the PUE window
    state text NOT NULL,
    value double precision,
    detail text,
    PRIMARY KEY (site, kind, subject, ts)
);
CREATE INDEX IF NOT EXISTS site_events_time ON site_events (site, ts);
