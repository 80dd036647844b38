"""The same readings give the same reports on SQLite and on PostgreSQL.

Every scenario of tests/data/scenarios is imported with `pue-monitor import`, once into
the SQLite store under --data-dir and once into PostgreSQL chosen by the config's
``store: {url: ...}`` (its password from the environment); `pue-monitor report --site all`
(one forked process per site) must then write the same JSON document from both, and
that document must hold the hand-computed figures of tests/test_import_report.py.
"""

from __future__ import annotations

import json

import pytest
import yaml

from pue_monitor.cli import main
from pue_monitor.config import load_config
from pue_monitor.storage import describe, exists, open_store
from pue_monitor.store.postgres import PostgresStore
from tests.test_import_report import CONFIG, DAY, SCENARIOS, SCENARIOS_DIR

PASSWORD_ENV = "PUE_TEST_PG_PASSWORD"


def cli(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def pg_config(postgres_server, tmp_path_factory):
    """The scenarios' config with a store on its own database of the test server."""
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    url = postgres_server.url(postgres_server.create())
    raw["store"] = {"url": url.replace("postgres@", "postgres:${%s}@" % PASSWORD_ENV)}
    path = tmp_path_factory.mktemp("pg-config") / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def import_and_report(config, data_dir, out) -> dict:
    for name in SCENARIOS:
        assert cli("import", "-c", config, "--data-dir", data_dir,
                   SCENARIOS_DIR / name / "readings.csv") == 0
    assert cli("report", "-c", config, "--data-dir", data_dir, "--site", "all",
               "--period", DAY, "--format", "json", "-o", out,
               "--at", "2025-03-20T00:00:00+07:00") == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_both_backends_give_the_same_report_document(pg_config, tmp_path, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "not-checked-by-trust-auth")
    on_sqlite = import_and_report(CONFIG, tmp_path / "data", tmp_path / "sqlite.json")
    # --data-dir is not used with a store url: nothing is written there.
    on_postgres = import_and_report(pg_config, tmp_path / "unused", tmp_path / "pg.json")
    assert not (tmp_path / "unused").exists()
    assert on_postgres == on_sqlite
    by_site = {site["site"]: site for site in on_postgres["sites"]}
    for name, want in SCENARIOS.items():
        assert by_site[name]["facility_energy_kwh"] == pytest.approx(want["facility"],
                                                                     rel=1e-9), name
        assert by_site[name]["it_energy_kwh"] == pytest.approx(want["it"], rel=1e-9), name
    # A second import of the same files stores nothing twice (the rows are found).
    again = import_and_report(pg_config, tmp_path / "unused", tmp_path / "pg2.json")
    assert again == on_sqlite


def test_a_store_url_chooses_postgresql_and_hides_its_password(pg_config, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pw")
    config = load_config(pg_config)
    assert exists(pg_config.parent / "nowhere", config)
    assert "s3cret-pw" not in repr(config) and "s3cret-pw" not in describe(None, config)
    assert describe(None, config).startswith("PostgreSQL 127.0.0.1:")
    store = open_store(pg_config.parent / "nowhere", config)
    try:
        assert isinstance(store, PostgresStore)
        assert store.day_offset_s == 7 * 3600  # aligned to the sites' local midnight
    finally:
        store.close()


@pytest.mark.parametrize("url", ["mysql://x@y/z", "sqlite:///tmp/x", "http://x"])
def test_a_store_url_that_is_not_postgresql_is_refused(tmp_path, url):
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    raw["store"] = {"url": url}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(Exception, match="postgresql://"):
        load_config(path)


def test_an_unreachable_server_is_told_in_one_line(tmp_path, monkeypatch, capsys):
    from tests.conftest import free_port

    monkeypatch.setenv(PASSWORD_ENV, "s3cret-pw")
    raw = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    port = free_port()  # nothing listens there
    raw["store"] = {"url": f"postgresql://pue:${{{PASSWORD_ENV}}}@127.0.0.1:{port}/pue"}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    assert cli("report", "-c", path, "--site", "reset", "--period", DAY) == 1
    err = capsys.readouterr().err
    assert f"the store PostgreSQL 127.0.0.1:{port}/pue cannot be used now" in err
    assert "s3cret-pw" not in err and "Traceback" not in err
