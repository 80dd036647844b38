"""The store's seam: the SQLite and PostgreSQL stores implement store.base.StoreProtocol
method by method, and imports flow one way (store/ never imports the layers above it; the layers
above never name the SQLite backend)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from pue_monitor.store.base import (EventStoreProtocol, SessionStoreProtocol, StoreProtocol,
                                    UserStoreProtocol)
from pue_monitor.store.postgres import PostgresStore
from pue_monitor.store.sqlite import Store

ROOT = Path(__file__).resolve().parent.parent


def _members(protocol) -> list[str]:
    return sorted(name for name, value in vars(protocol).items()
                  if not name.startswith("_") and (callable(value) or isinstance(value, property)))


PROTOCOL_MEMBERS = _members(StoreProtocol)
# The users and tokens part (UserStoreProtocol), which StoreProtocol extends.
USER_MEMBERS = _members(UserStoreProtocol)
# The web view's sessions and the alert history, which StoreProtocol extends too.
SESSION_MEMBERS = _members(SessionStoreProtocol)
EVENT_MEMBERS = _members(EventStoreProtocol)


def _params(function) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter: what a caller can rely on."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def test_the_protocol_is_small_and_documented():
    # 31: prune_readings; 32: device_identifications (why an auto device has its profile);
    # 33: series_at (many series each at its own time: the set-based affected_blocks);
    # 34, 35: kept_parts, keep_parts (exact results of partial blocks kept for reports)
    assert 20 <= len(PROTOCOL_MEMBERS) <= 35, PROTOCOL_MEMBERS
    undocumented = [name for name in PROTOCOL_MEMBERS
                    if not inspect.getdoc(getattr(StoreProtocol, name))]
    assert undocumented == []


def test_the_users_part_is_small_documented_and_inherited():
    assert 5 <= len(USER_MEMBERS) <= 10, USER_MEMBERS
    assert [n for n in USER_MEMBERS if not inspect.getdoc(getattr(UserStoreProtocol, n))] == []
    assert UserStoreProtocol in StoreProtocol.__mro__
    assert not set(USER_MEMBERS) & set(PROTOCOL_MEMBERS)


@pytest.mark.parametrize("protocol", [SessionStoreProtocol, EventStoreProtocol])
def test_the_sessions_and_events_parts_are_documented_and_inherited(protocol):
    members = _members(protocol)
    assert 3 == len(members), members
    assert [n for n in members if not inspect.getdoc(getattr(protocol, n))] == []
    assert protocol in StoreProtocol.__mro__
    assert not set(members) & set(PROTOCOL_MEMBERS + USER_MEMBERS)


@pytest.mark.parametrize("backend", [Store, PostgresStore], ids=["sqlite", "postgres"])
@pytest.mark.parametrize(("protocol", "name"),
                         [(StoreProtocol, n) for n in PROTOCOL_MEMBERS]
                         + [(UserStoreProtocol, n) for n in USER_MEMBERS]
                         + [(SessionStoreProtocol, n) for n in SESSION_MEMBERS]
                         + [(EventStoreProtocol, n) for n in EVENT_MEMBERS])
def test_each_store_has_each_protocol_member_with_its_signature(backend, protocol, name):
    wanted, have = vars(protocol)[name], inspect.getattr_static(backend, name, None)
    assert have is not None, f"{backend.__name__} lacks {name}"
    if isinstance(wanted, property):
        assert isinstance(have, property), f"{backend.__name__}.{name} is not a property"
        return
    assert _params(have) == _params(wanted), name


def test_each_store_is_a_store_protocol(store_factory):
    store = store_factory.open()
    try:
        assert isinstance(store, StoreProtocol)
    finally:
        store.close()


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
    return found


# folder -> module prefixes no module in it may import
FORBIDDEN = {
    "store": ("pue_monitor.figures", "pue_monitor.exchange", "pue_monitor.web",
              "pue_monitor.collectors"),
    "pue": ("pue_monitor.store", "pue_monitor.figures", "pue_monitor.exchange",
            "pue_monitor.web", "pue_monitor.collectors", "sqlite3"),
    "collectors": ("pue_monitor.exchange", "pue_monitor.web", "pue_monitor.figures",
                   "pue_monitor.store.sqlite", "pue_monitor.store.postgres", "sqlite3",
                   "psycopg"),
    "figures": ("pue_monitor.exchange", "pue_monitor.web", "pue_monitor.collectors",
                "pue_monitor.store.sqlite", "pue_monitor.store.postgres",
                "pue_monitor.store.days", "pue_monitor.store.pg_days", "sqlite3", "psycopg"),
    "exchange": ("pue_monitor.web", "pue_monitor.collectors", "pue_monitor.store.sqlite",
                 "pue_monitor.store.postgres", "sqlite3", "psycopg"),
    "web": ("pue_monitor.collectors", "pue_monitor.store.sqlite", "pue_monitor.store.postgres",
            "sqlite3", "psycopg"),
}


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_flow_one_way(folder):
    bad = [f"{path.relative_to(ROOT)}: {name}" for path in sorted((ROOT / folder).rglob("*.py"))
           for name in _imports(path)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[folder])]
    assert bad == []


def test_only_the_store_imports_sqlite3():
    folders = ["pue_monitor", "config", "pue", "collectors", "figures", "exchange", "web",
               "simulator"]
    bad = [str(path.relative_to(ROOT)) for folder in folders
           for path in sorted((ROOT / folder).rglob("*.py")) if "sqlite3" in _imports(path)]
    assert bad == []
