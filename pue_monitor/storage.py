"""Opens the store a command works on: the composition root's choice of backend.

The SQLite store under the data directory, its day summary aligned to the config's
sites (figures.periods.align_store) and its blocks in step with the meters' settings
(figures.settings.refresh_settings); the layers above get it as a
store.base.StoreProtocol and never name the backend.
"""

from __future__ import annotations

from pathlib import Path

from pue_monitor.config.model import Config
from pue_monitor.figures.periods import align_store
from pue_monitor.figures.settings import refresh_settings
from pue_monitor.store.base import ProgressFn, StoreProtocol, UserStoreProtocol
from pue_monitor.store.sqlite import BUSY_ERRORS, DB_FILE, Store

__all__ = ["BUSY_ERRORS", "exists", "open_store", "open_users"]


def exists(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds a store already."""
    return (Path(data_dir) / DB_FILE).is_file()


def open_store(data_dir: str | Path, config: Config,
               progress: ProgressFn | None = None,
               stale: dict | None = None) -> StoreProtocol:
    """The store under ``data_dir`` (created if needed), its summary days aligned to the
    config's sites and the blocks of meters whose settings changed dropped (recomputed
    when next needed, figures.settings; put in ``stale`` {device: span its blocks
    covered} if given); ``progress`` follows a rebuild of the summary."""
    store = align_store(Store.open(data_dir), config, progress)
    dropped = refresh_settings(store, config)
    if stale is not None:
        stale.update(dropped)
    return store


def open_users(data_dir: str | Path) -> UserStoreProtocol:
    """The users and tokens of the store under ``data_dir`` (created if needed), without
    aligning the day summary (the `user` commands touch no figures)."""
    return Store.open(data_dir)
