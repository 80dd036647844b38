"""The same readings give the same reports on SQLite and on PostgreSQL, and every
reading method of the store the same answer.

Every scenario of tests/data/scenarios is imported with `pue-monitor import`, once into
the SQLite store under --data-dir and once into PostgreSQL chosen by the config's
``store: {url: ...}`` (its password from the environment); `pue-monitor report --site all`
(one forked process per site) must then write the same JSON document from both, and
that document must hold the hand-computed figures of tests/test_import_report.py.
The same for a province's year (`--period 2025`) with gaps, a reset, wraps and a settings
change (issue 14: the same report on SQLite and on PostgreSQL is the same document).
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


def fill_both(stores) -> None:
    """The same polls (labelled series, unavailable values, failures), imports, blocks
    over three days (one short, one reset, one method change) and a profile, into each."""
    from pue_monitor.store.model import ErrorKind, PollResult, Quality, Reading

    t0 = 1_741_910_400.0  # 2025-03-14 00:00 UTC
    polls = []
    for i in range(0, 3 * 96 * 3):  # every 5 minutes for three days
        t = t0 + i * 300.0 + (i % 7) * 0.25
        for device in ("m1", "m2"):
            readings = (Reading(t, device, "active_power_w", 1000.0 + i % 13),
                        Reading(t, device, "active_energy_kwh", 10.0 + i * 0.08),
                        Reading(t, device, "current_a", 4.0, labels=(("phase", "1"),)),
                        Reading(t, device, "temperature_c", None,
                                quality=Quality.NOT_AVAILABLE))
            failed = device == "m2" and i % 50 == 0
            polls.append(PollResult(device, "site-a", t, 0.05, () if failed else readings,
                                    ErrorKind.TIMEOUT if failed else None,
                                    "timed out" if failed else None,
                                    point_errors={"decode": 1} if i % 40 == 1 else {}))
    blocks = [(d, t0 + k * 900.0, t0 + (k + 1) * 900.0, 0.25 + (k % 5) * 0.01,
               800.0 if k == 100 else 900.0, "counter" if k < 150 else "power",
               1 if k == 60 else 0, 0.25, 0.26)
              for d in ("m1", "m2") for k in range(0, 3 * 96) if not (d == "m2" and k == 200)]
    for store in stores:
        store.align_days(7 * 3600)
        store.rebuild_days()  # nothing to fill in: the summary is complete again
        for i in range(0, len(polls), 97):
            store.write_polls(polls[i:i + 97])
        for k in range(2):  # batches of failures only: they add up across batches
            store.write_polls([PollResult("m2", "site-a", t0 + 9e5 + k * 10 + j, 0.5,
                                          error_kind=ErrorKind.CONNECTION, error="refused")
                               for j in range(3)])
        store.import_readings([Reading(t0 - 3600.0, "m3", "active_power_w", 5.0)])
        store.write_interval_energy(blocks)
        store.import_readings([], stale=[("m1", (t0 + 50 * 900.0, t0 + 52 * 900.0))])
        store.set_device_profile("m2", "ups_mib")


def records(frame) -> list[dict]:
    """A frame's rows, NaN as None (NaN never equals itself)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def answers(store) -> dict:
    """Every reading method of StoreProtocol, asked the same questions."""
    from pue_monitor.store.model import Reading

    t0, devices = 1_741_910_400.0, ["m1", "m2", "m3", "nobody"]
    keys = [(d, m) for d in devices for m in ("active_power_w", "active_energy_kwh")]
    windows = [(t0 + 1000.0, t0 + 4000.0), (t0 - 7200.0, t0 + 10.0), (t0 + 3e5, t0 + 4e5)]
    series = store.series_windows(keys, windows)
    frame = store.interval_energy(devices, t0, t0 + 2 * 86400)
    days = (t0 - 86400, t0 + 4 * 86400)
    return {
        "series": [{k: (list(ts), list(v)) for k, (ts, v) in w.items()} for w in series],
        "labelled": [{k: list(ts) for k, (ts, _) in w.items()} for w in store.series_windows(
            [("m1", "current_a")], windows[:1], "phase=1")],
        "latest": records(store.latest(t0 + 86400, ["m1", "m2"])),
        "health": store.health(), "errors": store.error_counts(),
        "profiles": store.device_profiles(),
        "stored": store.stored_values([Reading(t0 + 300.25, "m1", "active_power_w", 1.0),
                                       Reading(t0, "m2", "active_power_w", 1.0),
                                       Reading(t0 + 1.0, "m2", "active_power_w", 1.0)]),
        "first": [store.first_reading_ts(d) for d in devices],
        "around": store.neighbour_times({d: (t0 + 1000.0 + k, t0 + 2000.0 + 9 * k)
                                         for k, d in enumerate(devices)}),
        "at": [(list(ts), list(v)) for ts, v in store.series_at(
            [(k, t0 + 100.0 * i) for i, k in enumerate(keys)] + [(keys[0], t0 + 300.25)])],
        "last_block": [store.last_interval_end(d) for d in devices],
        "blocks": records(frame),
        "starts": sorted(store.block_starts(devices, t0 + 40 * 900.0, t0 + 60 * 900.0)),
        "counts": [store.block_counts(devices, a, b) for a, b in
                   [(t0, t0 + 3 * 86400), (t0 + 1234.0, t0 + 2 * 86400 + 99.0)]],
        "below": store.blocks_below([("m1", t0, t0 + 86400), ("m2", t0, t0 + 3 * 86400)],
                                    900.0 - 1e-6),
        "totals": [store.block_totals(devices, t0, t0 + 3 * 86400, edges, starts, by_day)
                   for edges, starts, by_day in [((), None, False),
                                                 ((t0 + 86400 - 25200,), None, True),
                                                 ((t0 + 3600,), [t0 + k * 900.0 for k in
                                                                 range(0, 300, 7)], False)]],
        "offset": store.day_offset_s, "complete": store.days_complete(),
        "not_whole": sorted(store.days_not_whole(devices, *days, 900.0 - 1e-6)),
        "day_rows": sorted(store.day_rows(devices, *days)),
    }


def test_every_reading_method_answers_the_same_on_both_backends(postgres_server, tmp_path):
    from pue_monitor.store.sqlite import Store

    stores = [Store.open(tmp_path / "data"),
              PostgresStore(postgres_server.url(postgres_server.create()))]
    try:
        fill_both(stores)
        on_sqlite, on_postgres = (answers(store) for store in stores)
        with stores[1].snapshot():
            assert answers(stores[1]) == on_postgres
    finally:
        for store in stores:
            store.close()
    assert on_sqlite["complete"] and on_sqlite["day_rows"] and on_sqlite["below"]
    for name in on_sqlite:
        assert on_postgres[name] == on_sqlite[name], name


# ---- a province's year, on both backends ------------------------------------------------

YEAR = 2025
HOUR = 3600.0
DAY_S = 86400.0
FIRST = 1_763_226_000.0  # 2025-11-16 00:00 +07:00 (Asia/Ho_Chi_Minh, the sites' zone)
DAYS = 46  # to 2026-01-01 00:00: the year's end

# Two sites, hourly readings over the last six weeks of the year (a store that began
# in mid-November: the report's first ten months are empty, and the year's figure is
# not judged; the blocks are those of the readings' time, few enough for a test on
# PostgreSQL, where a block costs round trips):
#   north: an incomer reset to zero on 28 November; a CRAH measured as cooling, moved to
#          "excluded" from 1 December (a settings change: the auditor's case in issue
#          14); a UPS reporting power only, silent for three days in December (more than
#          its max_gap_s: left out of both sides);
#   south: an incomer whose counter is silent for five days from 20 November (bridged
#          exactly by the counter), and an IT meter with a 100 000 kWh register that wraps.
YEAR_CONFIG = """\
title: {vi: "Một năm của tỉnh", en: "A province's year"}
polling: {interval_s: 60, timeout_s: 2, retries: 0}
sites:
  - id: north
    name: {vi: "TTDL Bắc", en: "North DC"}
    devices:
      - {id: n-in, profile: schneider_pm5xxx, role: facility, modbus: {host: 127.0.0.1, port: 15001}}
      - id: n-crah
        profile: eastron_sdm630
        role: cooling
        modbus: {host: 127.0.0.1, port: 15002}
        changes: [{from: "2025-12-01T00:00:00+07:00", role: exclude}]
      - {id: n-ups, profile: ups_mib, role: it, measurement_point: ups_output, max_gap_s: 7200, stuck_power_polls: 100000, snmp: {host: 127.0.0.1, port: 16001}}
  - id: south
    name: {vi: "TTDL Nam", en: "South DC"}
    devices:
      - {id: s-in, profile: schneider_pm5xxx, role: facility, modbus: {host: 127.0.0.1, port: 15003}}
      - {id: s-it, profile: eastron_sdm630, role: it, measurement_point: ups_output, counter_width_kwh: 100000, modbus: {host: 127.0.0.1, port: 15004}}
"""
RESET_AT = FIRST + 12 * DAY_S + 14 * HOUR  # 28 November 14:00
UPS_SILENT = (FIRST + 24 * DAY_S, FIRST + 27 * DAY_S)  # 10-13 December
COUNTER_SILENT = (FIRST + 4 * DAY_S, FIRST + 9 * DAY_S)  # 20-25 November


def year_readings(path) -> int:
    """The CSV `pue-monitor import` reads: every meter hourly (see above); loads vary by
    the hour of the day and the day, so that no two blocks of a meter hold the same
    energy and no sum is round. Returns how many times the IT register wrapped."""
    from datetime import datetime, timezone

    rows, wraps = ["timestamp,device,metric,value"], 0
    counters = {"n-in": 52_000.0, "n-crah": 7_000.0, "s-in": 310_000.0, "s-it": 99_500.0}
    for k in range(DAYS * 24 + 1):
        t = FIRST + k * HOUR
        stamp = datetime.fromtimestamp(t, timezone.utc).isoformat()
        load = 1.0 + 0.013 * (k % 24) + 0.0007 * (k // 24)
        kw = {"n-in": 230.0 * load, "n-crah": 31.0 * load, "n-ups": 150.0 * load,
              "s-in": 410.0 * load, "s-it": 287.0 * load}
        for device in ("n-in", "n-crah", "s-in", "s-it"):
            if k:
                counters[device] += kw[device]  # the energy of the hour before t
            if device == "n-in" and t == RESET_AT:
                counters[device] = 17.25  # reset to zero, then 17.25 kWh since
            if device == "s-it" and counters[device] >= 100_000.0:
                counters[device] -= 100_000.0  # the register wraps
                wraps += 1
            if device == "s-in" and COUNTER_SILENT[0] < t < COUNTER_SILENT[1]:
                continue
            rows.append(f"{stamp},{device},active_energy_kwh,{counters[device]:.3f}")
        if not UPS_SILENT[0] < t < UPS_SILENT[1]:
            rows.append(f"{stamp},n-ups,active_power_w,{kw['n-ups'] * 1000:.1f}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return wraps


def year_report(config, data_dir, csv, out) -> dict:
    assert cli("import", "-c", config, "--data-dir", data_dir, csv) == 0
    assert cli("report", "-c", config, "--data-dir", data_dir, "--site", "all",
               "--period", YEAR, "--format", "json", "-o", out,
               "--at", "2026-03-01T00:00:00+07:00") == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_a_year_with_gaps_a_reset_and_a_settings_change_is_the_same_document(
        postgres_server, tmp_path, monkeypatch):
    # The JSON document holds nothing of where or when it was made (the store is not
    # named, the time of making is only in the HTML), so the whole document is compared.
    monkeypatch.setenv(PASSWORD_ENV, "not-checked-by-trust-auth")
    csv = tmp_path / "year.csv"
    wraps = year_readings(csv)
    on_sqlite = tmp_path / "sqlite.yaml"
    on_sqlite.write_text(YEAR_CONFIG, encoding="utf-8")
    url = postgres_server.url(postgres_server.create())
    on_postgres = tmp_path / "postgres.yaml"
    on_postgres.write_text('store: {url: "%s"}\n' % url.replace(
        "postgres@", "postgres:${%s}@" % PASSWORD_ENV) + YEAR_CONFIG, encoding="utf-8")
    want = year_report(on_sqlite, tmp_path / "data", csv, tmp_path / "sqlite.json")
    got = year_report(on_postgres, tmp_path / "unused", csv, tmp_path / "pg.json")
    assert [s["site"] for s in want["sites"]] == ["north", "south"]
    north, south = want["sites"]
    # What the year holds is in the document: the reset, the wraps, the change of role
    # (the CRAH one figure per role), the UPS's silent days, twelve months per site.
    meters = {(m["device"], m["role"]): m for site in want["sites"] for m in site["meters"]}
    assert meters[("n-in", "facility")]["resets"] == 1
    assert meters[("s-it", "it")]["flags"]["wrap"] == wraps
    assert {("n-crah", "cooling"), ("n-crah", "exclude")} <= set(meters)
    assert [(c["device"], c["from"], c["changed"]) for c in north["settings_changes"]] == [
        ("n-crah", "2025-12-01T00:00:00+07:00", {"role": {"old": "cooling", "new": "exclude"}})]
    # South measured every hour of its 46 days (its counter bridges its silence); the
    # UPS's three silent days are missing from north's.
    assert south["coverage"] == pytest.approx(DAYS * 24 / (365 * 24), rel=1e-12)
    assert north["coverage"] < south["coverage"]
    assert len(north["months"]) == len(south["months"]) == 12
    for key in want:
        assert got[key] == want[key], key
    assert got == want
