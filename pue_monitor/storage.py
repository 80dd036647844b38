"""Opens the store a command works on: the composition root's choice of backend.

The config's ``store: {url: postgresql://...}`` chooses the PostgreSQL store
(store.postgres, for large or highly available installations); without it, the SQLite
store under the data directory. Either way its day summary is aligned to the config's
sites (figures.periods.align_store); the layers above get it as a
store.base.StoreProtocol and never name the backend.
"""

from __future__ import annotations

from pathlib import Path

from pue_monitor.config.model import Config
from pue_monitor.figures.periods import align_store
from pue_monitor.store.base import ProgressFn, StoreProtocol
from pue_monitor.store.sqlite import BUSY_ERRORS as SQLITE_BUSY
from pue_monitor.store.sqlite import DB_FILE, Store

__all__ = ["BUSY_ERRORS", "describe", "device_sites", "exists", "open_store"]


def _postgres_busy() -> tuple[type[Exception], ...]:
    import psycopg  # a lock or pool timeout, an unreachable server (PoolTimeout is one)

    return (psycopg.OperationalError,)


# What a caller catches when the store cannot be used now, whichever the backend.
BUSY_ERRORS: tuple[type[Exception], ...] = SQLITE_BUSY + _postgres_busy()


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
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(config.store.url.get_secret_value())
    return (f"PostgreSQL {info.get('host', 'localhost')}:{info.get('port', 5432)}"
            f"/{info.get('dbname', '')}")


def device_sites(config: Config) -> dict[str, str]:
    """{device id: site id} of the configured devices: what the server store keys by."""
    return {device.id: site.id for site, device in config.devices()}


def open_store(data_dir: str | Path, config: Config,
               progress: ProgressFn | None = None) -> StoreProtocol:
    """The configured server store, else the SQLite store under ``data_dir`` (created
    if needed), its summary days aligned to the config's sites; ``progress`` follows a
    rebuild of the day summary."""
    if config.store is not None:
        from pue_monitor.store.postgres import PostgresStore

        store: StoreProtocol = PostgresStore(config.store.url.get_secret_value(),
                                             sites=device_sites(config),
                                             pool_max=config.store.pool_max)
    else:
        store = Store.open(data_dir)
    return align_store(store, config, progress)
