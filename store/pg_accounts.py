"""The web view's users, their API tokens and log-in sessions in the PostgreSQL store
(store.postgres).

store.accounts' rules on PostgreSQL: hashes only (web.accounts makes and checks them),
each method one transaction. Users belong to no one site: their rows are kept under site
'' (migration 0002), the first column of every key as in the other tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pue_monitor.store.base import UserRecord

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import psycopg

NO_SITE = ""
_COLUMNS = "name, role, organisation, password_hash, created_ts"


class PgUsersMixin:
    """store.base.UserStoreProtocol and SessionStoreProtocol over PostgresStore's _read /
    _write transactions (sessions: migration 0003)."""

    _read: Callable[..., AbstractContextManager[psycopg.Connection]]
    _write: Callable[..., AbstractContextManager[psycopg.Connection]]

    def add_user(self, user: UserRecord) -> None:
        """Add a user. :raises ValueError: the name is taken."""
        with self._write() as conn:
            added = conn.execute(
                f"INSERT INTO users (site, {_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING", (NO_SITE, user.name, user.role, user.organisation,
                                           user.password_hash, user.created_ts)).rowcount
        if not added:
            raise ValueError(f"user {user.name!r} exists already")

    def user(self, name: str) -> UserRecord | None:
        """The user called ``name``, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE site = %s AND name = %s",
                               (NO_SITE, name)).fetchone()
        return None if row is None else UserRecord(*row)

    def users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE site = %s ORDER BY name",
                                (NO_SITE,)).fetchall()
        return [UserRecord(*row) for row in rows]

    def remove_user(self, name: str) -> bool:
        """Remove a user and their tokens; False if there was none."""
        with self._write() as conn:
            conn.execute("DELETE FROM api_tokens WHERE site = %s AND user_name = %s",
                         (NO_SITE, name))
            conn.execute("DELETE FROM web_sessions WHERE site = %s AND user_name = %s",
                         (NO_SITE, name))
            return conn.execute("DELETE FROM users WHERE site = %s AND name = %s",
                                (NO_SITE, name)).rowcount > 0

    def set_password_hash(self, name: str, password_hash: str) -> bool:
        """Replace a user's password hash; False if there is no such user."""
        with self._write() as conn:
            return conn.execute("UPDATE users SET password_hash = %s WHERE site = %s "
                                "AND name = %s", (password_hash, NO_SITE, name)).rowcount > 0

    def add_token(self, name: str, token_hash: str, label: str, created_ts: float) -> None:
        """Give a user an API token (by its hash). :raises ValueError: no such user."""
        with self._write() as conn:
            # The user's row locked: a concurrent remove_user cannot leave the token behind.
            if conn.execute("SELECT 1 FROM users WHERE site = %s AND name = %s FOR SHARE",
                            (NO_SITE, name)).fetchone() is None:
                raise ValueError(f"no user {name!r}")
            conn.execute("INSERT INTO api_tokens (site, token_hash, user_name, label, "
                         "created_ts) VALUES (%s, %s, %s, %s, %s)",
                         (NO_SITE, token_hash, name, label, created_ts))

    def token_user(self, token_hash: str) -> UserRecord | None:
        """The user an API token (by its hash) belongs to, or None."""
        columns = ", ".join("u." + c for c in _COLUMNS.split(", "))
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {columns} FROM api_tokens t JOIN users u ON u.site = t.site "
                "AND u.name = t.user_name WHERE t.site = %s AND t.token_hash = %s",
                (NO_SITE, token_hash)).fetchone()
        return None if row is None else UserRecord(*row)

    def revoke_tokens(self, name: str) -> int:
        """Remove every API token of a user; how many there were."""
        with self._write() as conn:
            return conn.execute("DELETE FROM api_tokens WHERE site = %s AND user_name = %s",
                                (NO_SITE, name)).rowcount

    def add_session(self, session_hash: str, name: str, created_ts: float,
                    expires_ts: float) -> None:
        """Open a session of a user. :raises ValueError: no such user."""
        with self._write() as conn:
            # The user's row locked: a concurrent remove_user cannot leave the session.
            if conn.execute("SELECT 1 FROM users WHERE site = %s AND name = %s FOR SHARE",
                            (NO_SITE, name)).fetchone() is None:
                raise ValueError(f"no user {name!r}")
            conn.execute("INSERT INTO web_sessions (site, session_hash, user_name, created_ts, "
                         "expires_ts) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (site, "
                         "session_hash) DO UPDATE SET user_name = EXCLUDED.user_name, "
                         "created_ts = EXCLUDED.created_ts, expires_ts = EXCLUDED.expires_ts",
                         (NO_SITE, session_hash, name, created_ts, expires_ts))

    def session_user(self, session_hash: str, now: float) -> UserRecord | None:
        """The user of a session that is open and not expired at ``now``, or None."""
        columns = ", ".join("u." + c for c in _COLUMNS.split(", "))
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {columns} FROM web_sessions s JOIN users u ON u.site = s.site "
                "AND u.name = s.user_name WHERE s.site = %s AND s.session_hash = %s "
                "AND s.expires_ts > %s", (NO_SITE, session_hash, now)).fetchone()
        return None if row is None else UserRecord(*row)

    def end_sessions(self, session_hash: str | None = None, name: str | None = None,
                     before: float | None = None) -> int:
        """End a session (by its hash), every session of a user (by name), and/or every
        session that expired before ``before``; how many ended."""
        ended = 0
        with self._write() as conn:
            if session_hash is not None:
                ended += conn.execute("DELETE FROM web_sessions WHERE site = %s AND "
                                      "session_hash = %s", (NO_SITE, session_hash)).rowcount
            if name is not None:
                ended += conn.execute("DELETE FROM web_sessions WHERE site = %s AND "
                                      "user_name = %s", (NO_SITE, name)).rowcount
            if before is not None:
                ended += conn.execute("DELETE FROM web_sessions WHERE site = %s AND "
                                      "expires_ts < %s", (NO_SITE, before)).rowcount
        return ended
