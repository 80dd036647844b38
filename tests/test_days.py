"""The day summary of the blocks: kept right on every write, and periods read through it
give exactly what the raw readings give."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pue_monitor.config import load_config
from pue_monitor.config.metrics import JOULES_PER_KWH
from pue_monitor.figures.periods import day_offset, period_result, segmented_results
from pue_monitor.figures.service import meter_inputs
from pue_monitor.pue.kpi import interval_pue
from pue_monitor.store.base import day_starts
from pue_monitor.store.model import PollResult, Reading
from tests.conftest import STORE_BACKENDS
from tests.pg_server import StoreMaker

TZ = "Asia/Ho_Chi_Minh"
STEP = 60.0  # one poll a minute: power gaps over 3 minutes are not bridged

CONFIG = """
polling: {interval_s: 60}
sites:
  - id: dc
    name: {vi: "TTDL", en: "DC"}
    timezone: TZ
    devices:
      # Steady synthetic power (held for many polls): not judged by the stuck-power
      # rule, which tests/test_stuck_power.py is about.
      - {id: incomer, profile: schneider_pm5xxx, role: facility, stuck_power_polls: 100000,
         modbus: {host: 127.0.0.1, port: 15021}}
      - {id: ups-a, profile: ups_mib, role: it, measurement_point: ups_output,
         stuck_power_polls: 100000, snmp: {host: 127.0.0.1, port: 16101}}
      - {id: ups-b, profile: ups_mib, role: it, measurement_point: ups_output,
         stuck_power_polls: 100000, snmp: {host: 127.0.0.1, port: 16102}}
      - {id: chiller, profile: eastron_sdm630, role: cooling,
         modbus: {host: 127.0.0.1, port: 15022}}
"""


def local(*args: int) -> float:
    return datetime(*args, tzinfo=ZoneInfo(TZ)).timestamp()


T0 = local(2026, 3, 1, 21, 0)
T_END = local(2026, 3, 4, 14, 0)
RESET_AT = local(2026, 3, 2, 11, 11)  # the incomer's register restarts (a whole day)
CHILLER_SILENT = (local(2026, 3, 2, 15, 0), local(2026, 3, 2, 15, 40))  # bridged: counter
UPS_B_SILENT = (local(2026, 3, 3, 10, 2), local(2026, 3, 3, 10, 25))  # not bridged: power
PERIOD = (local(2026, 3, 1, 21, 7, 3), local(2026, 3, 4, 13, 52))
MIDNIGHTS = [local(2026, 3, 2), local(2026, 3, 3), local(2026, 3, 4)]


def config_for(path, tz=TZ):
    file = path / "site.yaml"
    file.write_text(CONFIG.replace("TZ", tz), encoding="utf-8")
    return load_config(file)


def fill(store) -> None:
    """Three days of one site: a reset, a bridged counter gap, an unbridged power gap."""
    kwh = {"incomer": 40_000.0, "chiller": 7_000.0}
    polls = []
    for i in range(int((T_END - T0) / STEP) + 1):
        t = T0 + i * STEP
        incomer_w = 140_000.0 + 6_000.0 * ((i // 47) % 4)
        if i:
            kwh["incomer"] += incomer_w * STEP / JOULES_PER_KWH
            kwh["chiller"] += 25_000.0 * STEP / JOULES_PER_KWH
        if t == RESET_AT:
            kwh["incomer"] = 0.0
        rows = {"incomer": [("active_power_w", incomer_w), ("active_energy_kwh", kwh["incomer"])],
                "ups-a": [("active_power_w", 50_000.0 + 15.0 * (i % 9))],
                "ups-b": [("active_power_w", 47_000.0)],
                "chiller": [("active_energy_kwh", kwh["chiller"])]}
        if UPS_B_SILENT[0] < t < UPS_B_SILENT[1]:
            rows.pop("ups-b")
        if CHILLER_SILENT[0] < t < CHILLER_SILENT[1]:
            rows.pop("chiller")
        polls += [PollResult(d, "dc", t, 0.01, tuple(Reading(t, d, m, v) for m, v in values))
                  for d, values in rows.items()]
    store.write_polls(polls)


@pytest.fixture(scope="module", params=STORE_BACKENDS)
def filled(request, tmp_path_factory):
    """The store of each backend with its blocks rolled up once; each test copies it."""
    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    maker = StoreMaker(request.param, tmp_path_factory.mktemp("days"), server)
    config = config_for(maker.folder)
    store = maker.open("filled", config)
    fill(store)
    period_result(store, config, config.sites[0], T0, T_END, T_END + 3600)
    store.close()
    return maker


@pytest.fixture
def store_at(filled, tmp_path):
    def open_at(offset: int):
        name = tmp_path.name  # one copy per test
        filled.copy("filled", name)
        config = config_for(tmp_path)
        store = filled.open(name)
        if store.align_days(offset):  # a new offset: the summary waits for its rebuild
            assert not store.days_complete()
            assert store.rebuild_days() is True
        assert store.days_complete()
        return store, config
    return open_at


WHOLE = 900 - 1e-6  # a block counts as whole when covered to within a microsecond


def whole_days(store, devices, start, end):
    """Days starting in [start, end) on which every one of ``devices`` has every block."""
    short = {day for _, day, _, _ in store.days_not_whole(devices, start, end, WHOLE)}
    return [float(d) for d in day_starts(store.day_offset_s, start, end) if d not in short]


def exact(store, config, start, end):
    site = config.sites[0]
    return interval_pue(site.id, meter_inputs(store, config, site, start, end), start, end,
                        threshold=site.pue_threshold, operator=site.threshold_operator,
                        coverage_threshold=site.coverage_threshold)


def assert_same(got, want):
    assert got.coverage == pytest.approx(want.coverage, abs=1e-9)
    assert got.facility_energy_kwh == pytest.approx(want.facility_energy_kwh, rel=1e-9)
    assert got.it_energy_kwh == pytest.approx(want.it_energy_kwh, rel=1e-9)
    assert got.status == want.status
    for a, b in zip(got.meters, want.meters, strict=True):
        assert a.device == b.device
        assert a.energy_kwh == pytest.approx(b.energy_kwh, rel=1e-9), a.device
        assert a.covered_s == pytest.approx(b.covered_s, abs=1e-6), a.device
        assert a.common_s == pytest.approx(b.common_s, abs=1e-6), a.device
        assert a.resets == b.resets, a.device
        assert a.method == b.method, a.device


# (day offset of the summary, the days read whole from it): local midnight (UTC+7), UTC
# midnight, and an offset no Vietnamese edge falls on (UTC+5:30).
OFFSETS = [
    (25_200, [local(2026, 3, 2)]),  # 3 March has UPS B's gap; 1 and 4 March are partial
    (0, [local(2026, 3, 2, 7)]),  # the UTC day 2 March 07:00 .. 3 March 07:00
    (19_800, [local(2026, 3, 2, 1, 30)]),
]


@pytest.mark.parametrize(("offset", "whole"), OFFSETS, ids=[str(o[0]) for o in OFFSETS])
def test_periods_through_the_day_summary_equal_the_exact_figure(store_at, offset, whole):
    store, config = store_at(offset)
    site = config.sites[0]
    ratio = ["incomer", "ups-a", "ups-b"]
    assert whole_days(store, ratio, T0, T_END) == whole
    bounds = [PERIOD[0], *MIDNIGHTS, PERIOD[1]]
    segments, total = segmented_results(store, config, site, bounds, T_END + 3600,
                                        ["1", "2", "3", "4", "all"])
    for got, a, b in zip(segments, bounds[:-1], bounds[1:], strict=True):
        assert_same(got, exact(store, config, a, b))
    assert_same(total, exact(store, config, *PERIOD))
    # Without the midnights as edges, a day of another alignment is whole too.
    alone = period_result(store, config, site, *PERIOD, T_END + 3600)
    assert_same(alone, exact(store, config, *PERIOD))
    incomer = next(m for m in total.meters if m.device == "incomer")
    assert incomer.resets == 1
    # 23 minutes of UPS B's silence count for neither side.
    assert total.coverage == pytest.approx(1 - 23 * 60 / (PERIOD[1] - PERIOD[0]), abs=1e-9)
    store.close()


def test_a_changed_or_deleted_block_changes_the_days_it_is_in(store_at):
    store, config = store_at(25_200)
    site = config.sites[0]
    day = (local(2026, 3, 2), local(2026, 3, 3))
    before = period_result(store, config, site, *day, T_END + 3600)
    block = local(2026, 3, 2, 12, 0)
    (row,) = store.interval_energy(["incomer"], block, block + 900).itertuples(index=False)
    store.write_interval_energy([(row.device, row.start, row.end, row.energy_kwh + 1.0,
                                  row.covered_s, row.method)])
    changed = period_result(store, config, site, *day, T_END + 3600, ensure=False)
    assert changed.facility_energy_kwh == pytest.approx(before.facility_energy_kwh + 1.0,
                                                        rel=1e-12)
    # An import that makes the day's blocks stale deletes them; the report rolls them up
    # again from the readings and the day is what it was.
    store.import_readings([], stale=[("incomer", day)])
    assert store.days_not_whole(["incomer", "ups-a"], *day, WHOLE) == [
        ("incomer", day[0], 0, 0.0)]
    gone = period_result(store, config, site, *day, T_END + 3600, ensure=False)
    assert (gone.coverage, gone.status, gone.facility_energy_kwh) == (0.0, "no_data", 0.0)
    again = period_result(store, config, site, *day, T_END + 3600)
    assert again.facility_energy_kwh == pytest.approx(before.facility_energy_kwh, rel=1e-12)
    assert store.days_not_whole(["incomer"], *day, WHOLE) == []
    store.close()


def test_the_summary_matches_its_blocks_after_every_kind_of_write(store_at):
    store, _ = store_at(25_200)
    devices = ["incomer", "ups-a", "ups-b", "chiller"]
    store.write_interval_energy([("chiller", local(2026, 3, 5), local(2026, 3, 5, 0, 15),
                                  1.5, 900.0, "counter")])  # a block on a new day
    store.import_readings([], stale=[("ups-a", (local(2026, 3, 3), local(2026, 3, 3, 6)))])
    rows = {(r[0], r[1]): r[2:] for r in store.day_rows(devices, 0, 2e9)}
    blocks = store.interval_energy(devices, 0, 2e9)
    for (device, day), group in blocks.groupby(
            [blocks["device"], blocks["start"] - (blocks["start"] + 25_200) % 86_400]):
        n, least, energy, covered, *_ = rows.pop((device, day))
        assert (n, least) == (len(group), group["covered_s"].min())
        assert energy == pytest.approx(group["energy_kwh"].sum(), rel=1e-12)
        assert covered == pytest.approx(group["covered_s"].sum(), rel=1e-12)
    assert rows == {}  # no day row without blocks
    assert (store.day_rows(["chiller"], local(2026, 3, 5), local(2026, 3, 6))[0][2:4]
            == (1, 900.0))
    store.close()


@pytest.mark.parametrize(("tz", "offset"), [
    ("Asia/Ho_Chi_Minh", 25_200), ("UTC", 0), ("Asia/Kolkata", 19_800),
    ("Europe/Berlin", 3_600),  # standard time, so a DST change does not move the days
])
def test_days_start_at_local_midnight_of_the_sites(tmp_path, tz, offset):
    assert day_offset(config_for(tmp_path, tz)) == offset


def test_a_new_alignment_rebuilds_the_summary(store_at):
    store, _ = store_at(0)
    assert store.day_offset_s == 0
    assert store.align_days(25_200) is True and store.align_days(25_200) is False
    assert store.day_rows(["incomer"], 0, 2e9) == [] and not store.days_complete()
    calls: list[tuple[int, int]] = []
    assert store.rebuild_days(lambda done, total: calls.append((done, total))) is True
    assert store.rebuild_days() is False
    assert {r[1] % 86_400 for r in store.day_rows(["incomer"], 0, 2e9)} == {86_400 - 25_200}
    # four meters with blocks (incomer, ups-a, ups-b, chiller): one call after each
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    store.close()


@pytest.mark.parametrize(("start", "end"), [
    (T0, T_END),  # blocks on both sides of the whole days
    (local(2026, 3, 2), local(2026, 3, 4)),  # whole days only
    (local(2026, 3, 2, 5), local(2026, 3, 2, 9)),  # inside a day
    (local(2026, 2, 1), local(2026, 4, 1)),  # beyond the data on both sides
])
def test_block_counts_from_the_days_equal_counting_blocks(store_at, start, end):
    store, _ = store_at(25_200)
    store.import_readings([], stale=[("ups-a", (local(2026, 3, 3, 1), local(2026, 3, 3, 2)))])
    devices = ["incomer", "ups-a"]
    counted = store.interval_energy(devices, start, end).groupby("device").size().to_dict()
    assert store.block_counts(devices, start, end) == counted
    store.close()


def test_an_incomplete_summary_is_not_read(store_at):
    """Until a rebuild has filled it in, periods come from the blocks (and are right)."""
    store, config = store_at(25_200)
    site = config.sites[0]
    with_days = period_result(store, config, site, *PERIOD, T_END + 3600, ensure=False)
    store.align_days(0)  # emptied, marked incomplete
    assert not store.days_complete()
    from_blocks = period_result(store, config, site, *PERIOD, T_END + 3600, ensure=False)
    assert_same(from_blocks, with_days)
    assert from_blocks.facility_energy_kwh > 0
    store.close()


def uncommitted_delete(store, device: str):
    """Another connection that has deleted the device's blocks and not committed (SQLite:
    holding the write lock; PostgreSQL: holding the rows' locks). Close it to roll back."""
    if hasattr(store, "path"):  # SQLite
        import sqlite3
        writer = sqlite3.connect(store.path, timeout=0.1, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM interval_energy WHERE device = ?", (device,))
    else:
        import psycopg
        writer = psycopg.connect(store.url)  # in a transaction until rolled back
        writer.execute("DELETE FROM interval_energy WHERE device = %s", (device,))
    return writer


def test_readers_never_wait_for_a_writer(store_at):
    """A writer in the middle of a long write (an import) does not stop a report: reading
    a period writes nothing, so SQLite's WAL, and PostgreSQL's snapshots, let it through."""
    store, config = store_at(25_200)
    site = config.sites[0]
    # A block just written (its day recomputed by that write, not left to a reader).
    block = local(2026, 3, 2, 12, 0)
    (row,) = store.interval_energy(["incomer"], block, block + 900).itertuples(index=False)
    store.write_interval_energy([tuple(row)])
    writer = uncommitted_delete(store, "incomer")
    try:
        result = period_result(store, config, site, *PERIOD, T_END + 3600, ensure=False)
    finally:
        writer.rollback()
        writer.close()
    assert_same(result, exact(store, config, *PERIOD))
    store.close()


OUTAGES = [(local(2026, 3, d, 10), local(2026, 3, d, 14)) for d in (2, 3, 4)]


def outage_store(store_factory, role, seed):
    """Four days where UPS B is silent 10:00-14:00 each day, and a fifth meter ("crac")
    of ``role`` draws power only then (0 W the rest of the time)."""
    import random

    rnd = random.Random(seed)
    file = store_factory.folder / "site.yaml"
    file.write_text(CONFIG.replace("TZ", TZ) + f"""      - {{id: crac, profile: ups_mib, role: {role},
         snmp: {{host: 127.0.0.1, port: 16103}}}}
""", encoding="utf-8")
    config = load_config(file)
    store = store_factory.open("data", config)
    t, kwh, polls = local(2026, 3, 1) - 600, 1000.0, []
    while t <= local(2026, 3, 5) + 600:
        kwh += 140_000.0 * STEP / JOULES_PER_KWH
        out = any(a <= t < b for a, b in OUTAGES)
        rows = {"incomer": [("active_power_w", 140_000.0), ("active_energy_kwh", kwh)],
                "ups-a": [("active_power_w", 50_000.0)],
                "chiller": [("active_energy_kwh", kwh / 7)],
                "crac": [("active_power_w", rnd.uniform(8000, 9000) if out else 0.0)]}
        if not out:
            rows["ups-b"] = [("active_power_w", 47_000.0)]
        polls += [PollResult(d, "dc", t, 0.01, tuple(Reading(t, d, m, v) for m, v in values))
                  for d, values in rows.items()]
        t += STEP
    store.write_polls(polls)
    return store, config


# The meter's energy in the common time is zero (0 W there, or nothing measured there);
# taking the outage blocks out of a day's sum must leave exactly that, not -4e-14 (which
# made the whole figure invalid).
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("role", ["cooling", "exclude"])
def test_what_leaves_the_ratio_leaves_no_rounding_behind(store_factory, role, seed):
    store, config = outage_store(store_factory, role, seed)
    site = config.sites[0]
    period = (local(2026, 3, 1), local(2026, 3, 5))
    got = period_result(store, config, site, *period, local(2026, 3, 5, 3))
    want = exact(store, config, *period)
    assert got.status == want.status == "incomplete"  # 12 of 96 hours left out: 87.5 %
    crac = next(m for m in got.meters if m.device == "crac")
    assert crac.energy_kwh == 0.0
    assert_same(got, want)
    store.close()
