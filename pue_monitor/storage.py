"""Opens the store a command works on: the composition root's choice of backend.

The config's ``store: {url: postgresql://...}`` chooses the PostgreSQL store
(store.postgres, for large or highly available installations); without it, the SQLite
store under the data directory. Either way its day summary is aligned to the config's
sites (figures.periods.align_store) and its blocks kept in step with the meters' settings
(figures.settings.refresh_settings); the layers above get it as a
store.base.StoreProtocol and never name the backend.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pue_monitor.config.model import Config
from pue_monitor.figures.periods import align_store
from pue_monitor.figures.settings import refresh_settings
from pue_monitor.store.base import ProgressFn, StoreProtocol, UserStoreProtocol
from pue_monitor.store.sqlite import BUSY_ERRORS as SQLITE_BUSY
from pue_monitor.store.sqlite import DB_FILE, Store

__all__ = ["busy_errors", "describe", "device_sites", "exists", "open_store", "open_users"]
POSTGRES_MODULE = "pue_monitor.store.postgres"


def busy_errors() -> tuple[type[Exception], ...]:
    """What a caller catches when the store cannot be used now, whichever the backend
    (the PostgreSQL ones only once that backend is loaded: a SQLite command never pays
    for importing psycopg)."""
    loaded = sys.modules.get(POSTGRES_MODULE)
    return SQLITE_BUSY + (loaded.BUSY_ERRORS if loaded is not None else ())


def exists(data_dir: Path, config: Config | None = None) -> bool:
    """Whether there is a store already: the SQLite file under ``data_dir``, or a
    configured server (its schema is created on first use)."""
    if config is not None and config.store is not None:
        return True
    return (Path(data_dir) / DB_FILE).is_file()


def describe(data_dir: Path, config: Config) -> str:
    """Where the store is, for a message (a server URL without its password)."""
    if config.store is None:
        return str(Path(data_dir).resolve())
    from pue_monitor.store.postgres import server_of

    return server_of(config.store.url.get_secret_value())


def device_sites(config: Config) -> dict[str, str]:
    """{device id: site id} of the configured devices: what the server store keys by."""
    return {device.id: site.id for site, device in config.devices()}


def open_store(data_dir: str | Path, config: Config,
               progress: ProgressFn | None = None,
               stale: dict | None = None) -> StoreProtocol:
    """The configured server store, else the SQLite store under ``data_dir`` (created
    if needed), its summary days aligned to the config's sites and the blocks of meters
    whose settings changed dropped (recomputed when next needed, figures.settings; put in
    ``stale`` {device: span its blocks covered} if given); ``progress`` follows a rebuild
    of the day summary."""
    store = _open(data_dir, config)
    store = align_store(store, config, progress)
    dropped = refresh_settings(store, config)
    if stale is not None:
        stale.update(dropped)
    return store


def _open(data_dir: str | Path, config: Config) -> StoreProtocol:
    if config.store is not None:
        from pue_monitor.store.postgres import PostgresStore

        read_url = config.store.read_url
        return PostgresStore(config.store.url.get_secret_value(), sites=device_sites(config),
                             pool_max=config.store.pool_max,
                             read_url=read_url.get_secret_value() if read_url else None)
    return Store.open(data_dir)


def open_users(data_dir: str | Path, config: Config | None = None) -> UserStoreProtocol:
    """The users and tokens of the store (created if needed), without aligning the day
    summary (the `user` commands touch no figures)."""
    if config is not None:
        return _open(data_dir, config)
    return Store.open(data_dir)
