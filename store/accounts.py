"""The web view's users, their API tokens and log-in sessions, in the SQLite store
(store.sqlite.Store).

Persistence only: password and token hashes are made and checked by web.accounts; this
module never sees a password or a token in clear. Each method is one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from pue_monitor.store.base import UserRecord

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    organisation TEXT,            -- operators only: the config's organisation id
    password_hash TEXT NOT NULL,  -- werkzeug scrypt (web.accounts)
    created_ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
    token_hash TEXT PRIMARY KEY,  -- sha256 of a random token: the token itself is not kept
    user TEXT NOT NULL,           -- users.name (remove_user deletes the tokens too)
    label TEXT NOT NULL,
    created_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user);
CREATE TABLE IF NOT EXISTS web_sessions (
    session_hash TEXT PRIMARY KEY,  -- sha256 of the random session id in the cookie
    user TEXT NOT NULL,             -- users.name (remove_user ends the sessions too)
    created_ts REAL NOT NULL,
    expires_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (user);
"""
_COLUMNS = "name, role, organisation, password_hash, created_ts"


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


class UsersMixin:
    """store.base.UserStoreProtocol and SessionStoreProtocol over the store's per-thread
    connections."""

    _connect: Callable[..., AbstractContextManager[sqlite3.Connection]]

    def add_user(self, user: UserRecord) -> None:
        """Add a user. :raises ValueError: the name is taken."""
        with self._connect(immediate=True) as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (user.name,)).fetchone():
                raise ValueError(f"user {user.name!r} exists already")
            conn.execute(f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                         (user.name, user.role, user.organisation, user.password_hash,
                          user.created_ts))

    def user(self, name: str) -> UserRecord | None:
        """The user called ``name``, or None."""
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?",
                               (name,)).fetchone()
        return None if row is None else UserRecord(*row)

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()
        return [UserRecord(*row) for row in rows]

    def remove_user(self, name: str) -> bool:
        """Remove a user and their tokens; False if there was none."""
        with self._connect(immediate=True) as conn:
            conn.execute("DELETE FROM api_tokens WHERE user = ?", (name,))
            conn.execute("DELETE FROM web_sessions WHERE user = ?", (name,))
            return conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0

    def set_password_hash(self, name: str, password_hash: str) -> bool:
        """Replace a user's password hash; False if there is no such user."""
        with self._connect(immediate=True) as conn:
            return conn.execute("UPDATE users SET password_hash = ? WHERE name = ?",
                                (password_hash, name)).rowcount > 0

    def add_token(self, name: str, token_hash: str, label: str, created_ts: float) -> None:
        """Give a user an API token (by its hash). :raises ValueError: no such user."""
        with self._connect(immediate=True) as conn:
            if not conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"no user {name!r}")
            conn.execute("INSERT INTO api_tokens VALUES (?, ?, ?, ?)",
                         (token_hash, name, label, created_ts))

    def token_user(self, token_hash: str) -> UserRecord | None:
        """The user an API token (by its hash) belongs to, or None."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {', '.join('u.' + c for c in _COLUMNS.split(', '))} FROM api_tokens t "
                "JOIN users u ON u.name = t.user WHERE t.token_hash = ?",
                (token_hash,)).fetchone()
        return None if row is None else UserRecord(*row)

    def revoke_tokens(self, name: str) -> int:
        """Remove every API token of a user; how many there were."""
        with self._connect(immediate=True) as conn:
            return conn.execute("DELETE FROM api_tokens WHERE user = ?", (name,)).rowcount

    def add_session(self, session_hash: str, name: str, created_ts: float,
                    expires_ts: float) -> None:
        """Open a session of a user. :raises ValueError: no such user."""
        with self._connect(immediate=True) as conn:
            if not conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"no user {name!r}")
            conn.execute("INSERT OR REPLACE INTO web_sessions VALUES (?, ?, ?, ?)",
                         (session_hash, name, created_ts, expires_ts))

    def session_user(self, session_hash: str, now: float) -> UserRecord | None:
        """The user of a session that is open and not expired at ``now``, or None."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {', '.join('u.' + c for c in _COLUMNS.split(', '))} FROM "
                "web_sessions s JOIN users u ON u.name = s.user WHERE s.session_hash = ? "
                "AND s.expires_ts > ?", (session_hash, now)).fetchone()
        return None if row is None else UserRecord(*row)

    def end_sessions(self, session_hash: str | None = None, name: str | None = None,
                     before: float | None = None) -> int:
        """End a session (by its hash), every session of a user (by name), and/or every
        session that expired before ``before``; how many ended."""
        ended = 0
        with self._connect(immediate=True) as conn:
            if session_hash is not None:
                ended += conn.execute("DELETE FROM web_sessions WHERE session_hash = ?",
                                      (session_hash,)).rowcount
            if name is not None:
                ended += conn.execute("DELETE FROM web_sessions WHERE user = ?",
                                      (name,)).rowcount
            if before is not None:
                ended += conn.execute("DELETE FROM web_sessions WHERE expires_ts < ?",
                                      (before,)).rowcount
        return ended
