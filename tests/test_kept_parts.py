"""Exact results of partial blocks kept between reports (figures.keptparts, store.kept,
store.pg_kept): a report is the same document with them, without them, cold or warm, and
every change of what they rest on drops or bypasses them."""

from __future__ import annotations

import json
from contextlib import contextmanager
from unittest import mock

import pytest

from pue_monitor.figures import keptparts, periods
from pue_monitor.figures.report import site_report
from pue_monitor.figures.rollup import rollup_range
from pue_monitor.figures.settings import refresh_settings
from pue_monitor.store.model import Reading
from tests.test_periods import T0, scenario_store
from tests.web_fixtures import demo_config

SITE = "bn-provincial"
START, END, NOW = T0, T0 + 4 * 3600, T0 + 5 * 3600
# UPS B is silent from +3720 s to +5100 s: its two blocks are partial, one run.
RUN = (T0 + 3600, T0 + 5400)
# The scenario has four hours of readings: kept results reach half an hour here (the
# roll-up's frontier is at +4 h), not the two days of the real REACH_S.
REACH_S = 1800.0


@pytest.fixture(autouse=True)
def short_reach(monkeypatch):
    monkeypatch.setattr(keptparts, "REACH_S", REACH_S)


@contextmanager
def counting():
    """Counts the runs recomputed from raw readings."""
    runs: list[tuple[float, float]] = []
    real = periods._exact_many

    def spy(store, config, site, wanted):
        runs.extend(wanted)
        return real(store, config, site, wanted)

    with mock.patch.object(periods, "_exact_many", spy):
        yield runs


def document(store, config, kept: bool = True) -> str:
    site = config.site(SITE)
    if kept:
        doc = site_report(store, config, site, START, END, NOW, "4h")
    else:
        with mock.patch.object(keptparts, "active", lambda: None):
            doc = site_report(store, config, site, START, END, NOW, "4h")
    return json.dumps(doc, sort_keys=True)


def kept_rows(store) -> dict:
    return store.kept_parts(SITE, START, END)[1]


def test_cold_warm_and_uncached_reports_are_the_same_document(store_factory):
    config = demo_config()
    store = scenario_store(store_factory)
    with counting() as cold_runs:
        cold = document(store, config)
    assert RUN in cold_runs
    assert sorted(kept_rows(store)) == [RUN[0]]
    with counting() as warm_runs:
        warm = document(store, config)
    assert RUN not in warm_runs  # taken from the store
    assert cold == warm == document(store, config, kept=False)
    store.close()


def _late_reading(store, config):
    from pue_monitor.exchange.importer import import_readings

    # Two minutes of UPS B's readings in its silence, imported late: its blocks and the
    # run change.
    import_readings(store, config, [Reading(T0 + 4200 + 5 * i, "prov-ups-b",
                                            "active_power_w", 48_000.0) for i in range(25)],
                    NOW)
    return config


def _rolled_up_again(store, config):
    site = config.site(SITE)
    rollup_range(store, config, site, next(d for d in site.devices if d.id == "prov-incomer"),
                 RUN[0], RUN[0] + 900)
    return config


def _changed_gap(store, config, refresh: bool):
    raw = config.model_dump()
    for site in raw["sites"]:
        for device in site["devices"]:
            if device["id"] == "prov-ups-b":
                device["max_gap_s"] = 3600.0  # UPS B's silence is bridged now
    changed = type(config).model_validate(raw)
    if refresh:  # as every command opening the store does
        refresh_settings(store, config)  # a fresh store: only records the settings
        refresh_settings(store, changed)
    return changed


def _pruned(store, config):
    store.prune_readings(RUN[0] - 600)
    return config


# (change, whether the report changes, whether the kept result is dropped from the store)
CHANGES = [
    ("late reading into the kept run (import)", _late_reading, True, True),
    ("block of the run rolled up again", _rolled_up_again, False, True),
    ("settings changed, blocks dropped (refresh_settings)",
     lambda s, c: _changed_gap(s, c, True), True, True),
    ("settings changed, blocks not yet dropped (fingerprint)",
     lambda s, c: _changed_gap(s, c, False), True, False),
    ("readings pruned within its reach (retention)", _pruned, None, True),
]


@pytest.mark.parametrize(("change", "report_changes", "dropped"),
                         [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_a_change_of_what_a_kept_result_rests_on_shows_in_the_next_report(
        store_factory, change, report_changes, dropped):
    config = demo_config()
    store = scenario_store(store_factory)
    before = document(store, config)
    assert kept_rows(store)
    config = change(store, config)
    assert bool(kept_rows(store)) is not dropped
    after = document(store, config)
    assert after == document(store, config, kept=False)  # what a fresh recompute gives
    if report_changes is not None:
        assert (after != before) is report_changes
    assert after == document(store, config)  # warm again, the same
    store.close()


ROWS = [(100.0, 1000.0, 0.0, 2000.0, "f", "p1"), (9000.0, 9900.0, 8000.0, 11000.0, "f", "p2")]
# (what is written, the kept starts left): a block or pruned readings within a row's
# [lo, hi) drop it, elsewhere not.
WRITES = [
    ("block in the first's reach", lambda s: s.write_interval_energy(
        [("pdu", 1800.0, 2700.0, 1.0, 900.0, "counter")]), [9000.0]),
    ("block beyond both", lambda s: s.write_interval_energy(
        [("pdu", 4500.0, 5400.0, 1.0, 900.0, "counter")]), [100.0, 9000.0]),
    ("stale blocks in the second's reach", lambda s: s.import_readings(
        [], [("pdu", (10800.0, 12600.0))]), [100.0]),
    ("readings pruned before the first's hi", lambda s: s.prune_readings(500.0), [9000.0]),
    ("settings of a device replaced", lambda s: s.replace_settings({"pdu": "x"}), []),
]


@pytest.mark.parametrize(("write", "left"), [w[1:] for w in WRITES],
                         ids=[w[0] for w in WRITES])
def test_the_store_drops_kept_rows_where_blocks_change(store_factory, write, left):
    store = store_factory.open()
    store.import_readings([Reading(10.0, "pdu", "active_energy_kwh", 1.0)])
    seen, rows = store.kept_parts("s1", 0.0, 1e6)
    assert rows == {}
    assert store.keep_parts("s1", seen, ROWS) is True
    write(store)
    assert sorted(store.kept_parts("s1", 0.0, 1e6)[1]) == left
    # Kept only if no change was counted since the count was read.
    assert store.keep_parts("s1", seen, ROWS) is False
    assert sorted(store.kept_parts("s1", 0.0, 1e6)[1]) == left
    store.close()


def test_a_kept_part_decodes_to_the_same_part(store_factory):
    config = demo_config()
    store = scenario_store(store_factory)
    site = config.site(SITE)
    part = periods._exact_many(store, config, site, [RUN])[0]
    assert keptparts.decode(keptparts.encode(part)) == part
    store.close()


def test_a_report_whose_results_cannot_be_kept_is_still_made(store_factory):
    config = demo_config()
    store = scenario_store(store_factory)
    with mock.patch.object(store, "keep_parts", side_effect=RuntimeError("store busy")):
        failed = document(store, config)
    assert kept_rows(store) == {}
    assert failed == document(store, config, kept=False)
    store.close()


def test_the_monitors_hourly_keeper_leaves_a_report_nothing_to_recompute(store_factory):
    """keep_years, which the monitor and the central run every hour beside the roll-up,
    computes each site's years month by month as the yearly report cuts them: the report
    then recomputes none of the kept runs and is the same document."""
    from pue_monitor.figures.rollup import rollup

    config = demo_config()
    store = scenario_store(store_factory)
    rollup(store, config, NOW)
    with counting() as kept_now:
        assert keptparts.keep_years(store, config, NOW) == len(config.sites)
    assert RUN in kept_now
    assert sorted(kept_rows(store)) == [RUN[0]]
    with counting() as runs:
        warm = document(store, config)
    assert RUN not in runs
    assert warm == document(store, config, kept=False)
    store.close()


def _at(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


# keep_span: which (site, calendar year) it computes for the devices and span an import or
# a recompute changed: the sites of those devices, the local years the span touches (its
# end excluded), none after the present one.
SPAN_YEARS = [  # (devices, start, end, now, (site, year) computed)
    (["prov-ups-b"], "2025-03-14T00:00+07:00", "2025-03-15T00:00+07:00",
     "2026-12-03T12:00+07:00", [(SITE, 2025)]),
    (["prov-ups-b"], "2025-06-01T00:00+07:00", "2026-01-01T00:00+07:00",
     "2026-12-03T12:00+07:00", [(SITE, 2025)]),
    (["prov-ups-b", "prov-incomer"], "2024-12-31T23:00+07:00", "2025-01-01T01:00+07:00",
     "2026-12-03T12:00+07:00", [(SITE, 2024), (SITE, 2025)]),
    (["qv-ups-1", "prov-ups-b"], "2023-05-01T00:00+07:00", "2026-02-01T00:00+07:00",
     "2025-07-01T00:00+07:00", [(s, y) for s in (SITE, "que-vo-dc") for y in (2023, 2024, 2025)]),
    (["nobody"], "2025-03-14T00:00+07:00", "2025-03-15T00:00+07:00",
     "2026-12-03T12:00+07:00", []),
]


@pytest.mark.parametrize(("devices", "start", "end", "now", "computed"), SPAN_YEARS)
def test_keep_span_computes_the_years_of_the_sites_it_changed(devices, start, end, now,
                                                              computed):
    config = demo_config()
    done = []
    store = mock.Mock()
    store.kept_parts.return_value = (0, {})
    with mock.patch.object(keptparts, "_keep",
                           lambda _store, _config, site, years, _now: done.extend(
                               (site.id, y) for y in years)):
        assert keptparts.keep_span(store, config, devices, _at(start), _at(end),
                                   _at(now)) == 0
    assert done == computed
