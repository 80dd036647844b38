"""A throwaway PostgreSQL server for the tests, and both store backends behind one factory.

The server is Debian's `postgresql` (the binaries under /usr/lib/postgresql/VERSION/bin,
not on PATH): initdb in a temporary directory, then `postgres` on 127.0.0.1 on a free port
with its socket in that directory. PostgreSQL refuses to run as root, so as root both run
as the `postgres` user (the directory is handed to it). Each store a test opens gets its
own database.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port
from tests.tools import require_tool

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
PG_USER = "postgres"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def pg_bin_dir() -> Path:
    """The newest installed PostgreSQL's bin folder (else the test skips, or fails in CI)."""
    found = sorted(glob.glob(PG_BIN_GLOB), key=lambda p: int(Path(p).parent.name)
                   if Path(p).parent.name.isdigit() else 0)
    if not found:
        return Path(require_tool("initdb")).parent
    return Path(found[-1])


def _as_postgres() -> dict:
    """Popen arguments that run a command as the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(PG_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class PgServer:
    """One running server: ``url(database)``, ``create(name)``, ``stop()``. With
    ``standby_of``, a hot standby streaming from that server (pg_basebackup -R), as a
    read replica is set up."""

    def __init__(self, standby_of: PgServer | None = None) -> None:
        bindir = pg_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="pue-pg-"))
        as_pg = _as_postgres()
        if as_pg:
            os.chown(self.root, as_pg["user"], as_pg["group"])
        data = self.root / "data"
        if standby_of is None:
            make = [str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust",
                    "-E", "UTF8", "--locale=C", "--no-sync"]
        else:
            make = [str(bindir / "pg_basebackup"), "-h", "127.0.0.1", "-p",
                    str(standby_of.port), "-U", PG_USER, "-D", str(data), "-R", "-X", "stream",
                    "--no-sync", "-c", "fast"]
        subprocess.run(make, check=True, capture_output=True, timeout=120, cwd=self.root,
                       **as_pg)
        self.port = free_port()
        self.log = open(self.root / "server.log", "wb")
        # Durability off: a test database is thrown away (speed on a loaded machine).
        self.proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(self.root), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.root, **as_pg)
        self._wait_ready()
        self._made = 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited ({self.proc.returncode}): "
                                   f"{(self.root / 'server.log').read_text(errors='replace')}")
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"postgres not ready in {READY_TIMEOUT_S} s") from None
                time.sleep(0.2)

    def create(self, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``, which nobody may be using)."""
        import psycopg

        self._made += 1
        name = f"t{self._made}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        return name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: the fast shutdown
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def pg_server() -> Iterator[PgServer]:
    server = PgServer()
    try:
        yield server
    finally:
        server.stop()


class StoreMaker:
    """Opens stores of one backend by name: the same name reopens the same store, and
    ``copy`` makes a new store holding what another (closed) one holds."""

    def __init__(self, kind: str, folder: Path, server: PgServer | None = None) -> None:
        self.kind, self.folder, self.server = kind, folder, server
        self._databases: dict[str, str] = {}

    def open(self, name: str = "data", config=None):
        """The store ``name``; with ``config``, its days aligned as the commands open it."""
        from pue_monitor.figures.periods import align_store

        if self.kind == "sqlite":
            from pue_monitor.store.sqlite import Store
            store = Store.open(self.folder / name)
        else:
            from pue_monitor.storage import device_sites
            from pue_monitor.store.postgres import PostgresStore
            if name not in self._databases:
                self._databases[name] = self.server.create()
            store = PostgresStore(self.server.url(self._databases[name]),
                                  sites=device_sites(config) if config else None)
        return store if config is None else align_store(store, config)

    def copy(self, source: str, name: str) -> None:
        if self.kind == "sqlite":
            shutil.copytree(self.folder / source, self.folder / name)
        else:
            self._databases[name] = self.server.create(template=self._databases[source])
