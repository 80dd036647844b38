"""Stuck power in the figures (method 3, rule 6): a power value bit-identical for
``stuck_power_polls`` consecutive polls while the site's other meters changed value
within that time is not measured, in stored blocks, reports and the live status (where
it makes the device degraded). tests/test_quality.py holds the rule on the pure series;
here it goes through import, roll-up, report and site_status. Every answer by hand.

The data: readings every minute over one hour. The incomer (facility) reports power
only, alternating 89 000 / 91 000 W (each minute's trapezoid is 90 kW); the UPS (IT,
power only) alternates 59 000 / 61 000 W (60 kW a minute). Alternating values never
repeat, so only a frozen stretch makes a run of equal values.
"""

from __future__ import annotations

import json

import pytest

from pue_monitor.cli import main

REL = 1e-9
MINUTE = 60
HOUR = 3600
ZERO = 1741885200.0  # 2025-03-14T00:00:00+07:00

CONFIG = """\
polling: {{interval_s: 60, timeout_s: 2, retries: 0}}
sites:
  - id: sp
    name: {{vi: "Công suất bị kẹt", en: "Frozen power"}}
    devices:
      - {{id: p-in, profile: schneider_pm5xxx, role: facility, modbus: {{host: 127.0.0.1, port: 15211}}}}
      - {{id: p-ups, profile: ups_mib, role: it, measurement_point: ups_output, stuck_power_polls: {polls}, snmp: {{host: 127.0.0.1, port: 16211}}}}
"""


def watts(mean: float, k: int) -> float:
    return mean - 1000 if k % 2 == 0 else mean + 1000


def readings(frozen: range, incomer_frozen: bool, end: int = HOUR) -> dict[str, list]:
    """{device: [(t, W)]}: reading k at k minutes; over ``frozen`` (reading indices) the
    UPS holds the value of the run's first reading, and the incomer too if told."""
    out: dict[str, list] = {"p-in": [], "p-ups": []}
    for k in range(end // MINUTE + 1):
        held = frozen.start if k in frozen else k
        out["p-ups"].append((k * MINUTE, watts(60_000, held)))
        out["p-in"].append((k * MINUTE, watts(90_000, held if incomer_frozen else k)))
    return out


def kwh(watt_seconds: float) -> float:
    return watt_seconds / 3.6e6


# The UPS frozen at 61 000 W over readings 13..19 (00:13..00:19, 7 readings: 780..1140 s),
# a run across the 00:15 block edge. Trusted, its 6 frozen minutes at 61 kW give
# 60 kWh + 6 x 60 s x 1 kW = 60.1 kWh over the hour. (name, UPS stuck_power_polls,
# incomer frozen too, E_DC, E_IT, common seconds, UPS stuck flags); each for the whole
# hour (blocks) and 00:05..00:55 (ragged ends, raw readings).
FROZEN = range(13, 20)
CASES = [
    # 7 equal readings >= 5 while the incomer moves: 780..1140 s not measured on either
    # side. Common time 0..780 and 1140..3600 = 3240 s: E_DC 90 kW, E_IT 60 kW over it.
    ("frozen while the incomer moves", 5, False,
     {"hour": (kwh(90_000 * 3240), kwh(60_000 * 3240), 3240),
      "ragged": (kwh(90_000 * 2640), kwh(60_000 * 2640), 2640)}, 1),
    # The incomer frozen over the same readings: nothing else moved, nothing flagged;
    # both trusted: E_DC 90 kWh + 6 x 60 s x 1 kW, E_IT 60.1 kWh.
    ("frozen while nothing else moves", 5, True,
     {"hour": (kwh(90_000 * 3600 + 360_000), kwh(60_000 * 3600 + 360_000), 3600),
      "ragged": (kwh(90_000 * 3000 + 360_000), kwh(60_000 * 3000 + 360_000), 3000)}, 0),
    # 7 equal readings, shorter than the 8 polls set: not flagged, trusted.
    ("shorter than the setting", 8, False,
     {"hour": (kwh(90_000 * 3600), kwh(60_000 * 3600 + 360_000), 3600),
      "ragged": (kwh(90_000 * 3000), kwh(60_000 * 3000 + 360_000), 3000)}, 0),
]
PERIODS = {"hour": ("2025-03-14T00:00+07:00..2025-03-14T01:00+07:00", 3600),
           "ragged": ("2025-03-14T00:05+07:00..2025-03-14T00:55+07:00", 3000)}


def stamp(t: int) -> str:
    return f"2025-03-14T{t // 3600:02d}:{t % 3600 // 60:02d}:00+07:00"


def write_csv(path, series: dict[str, list]) -> None:
    lines = ["timestamp,device,metric,value"]
    for device, points in series.items():
        lines += [f"{stamp(t)},{device},active_power_w,{w}" for t, w in points]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(*argv) -> None:
    assert main([str(a) for a in argv]) == 0


def report(tmp_path, data, period: str) -> dict:
    out = tmp_path / "out.json"
    run("report", "-c", tmp_path / "c.yaml", "--data-dir", data, "--site", "sp",
        "--period", period, "-o", out)
    return json.loads(out.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("name", "polls", "incomer_frozen", "want", "stuck"), CASES,
                         ids=[c[0] for c in CASES])
def test_import_and_report(tmp_path, name, polls, incomer_frozen, want, stuck):
    (tmp_path / "c.yaml").write_text(CONFIG.format(polls=polls), encoding="utf-8")
    write_csv(tmp_path / "r.csv", readings(FROZEN, incomer_frozen))
    run("import", "-c", tmp_path / "c.yaml", "--data-dir", tmp_path / "d", tmp_path / "r.csv")
    for which, (period, seconds) in PERIODS.items():
        doc = report(tmp_path, tmp_path / "d", period)
        e_dc, e_it, common = want[which]
        assert doc["facility_energy_kwh"] == pytest.approx(e_dc, rel=REL), which
        assert doc["it_energy_kwh"] == pytest.approx(e_it, rel=REL), which
        assert doc["pue"] == pytest.approx(e_dc / e_it, rel=REL), which
        assert doc["coverage"] == pytest.approx(common / seconds, rel=REL), which
        flags = {m["device"]: m["flags"]["stuck"] for m in doc["meters"]}
        assert flags == {"p-in": 0, "p-ups": stuck}, which


def test_the_incomer_imported_later_recomputes_the_ups_blocks(tmp_path):
    # The UPS's readings alone first (reported: its blocks made; nothing else moved, so
    # nothing is stuck), the incomer's in a second file: the frozen run is found then,
    # and the report equals one import of both (PUE 1.5 over 3240 s).
    (tmp_path / "c.yaml").write_text(CONFIG.format(polls=5), encoding="utf-8")
    series = readings(FROZEN, False)
    write_csv(tmp_path / "ups.csv", {"p-ups": series["p-ups"]})
    write_csv(tmp_path / "in.csv", {"p-in": series["p-in"]})
    write_csv(tmp_path / "both.csv", series)
    later, once = tmp_path / "later", tmp_path / "once"
    run("import", "-c", tmp_path / "c.yaml", "--data-dir", later, tmp_path / "ups.csv")
    first = report(tmp_path, later, PERIODS["hour"][0])
    assert {m["device"]: m["flags"]["stuck"] for m in first["meters"]}["p-ups"] == 0
    run("import", "-c", tmp_path / "c.yaml", "--data-dir", later, tmp_path / "in.csv")
    run("import", "-c", tmp_path / "c.yaml", "--data-dir", once, tmp_path / "both.csv")
    got, want = (report(tmp_path, d, PERIODS["hour"][0]) for d in (later, once))
    assert want["pue"] == pytest.approx(1.5, rel=REL)
    assert want["coverage"] == pytest.approx(3240 / 3600, rel=REL)
    for key in ("pue", "facility_energy_kwh", "it_energy_kwh", "coverage", "meters"):
        assert got[key] == want[key], key


def test_a_growing_run_becomes_stuck_in_the_roll_up(tmp_path):
    # As the monitor receives them: blocks closed at 00:15 while the UPS's run is 4
    # readings (00:13..00:16, not stuck at 5), then the rest: the run grows to 7 and the
    # 00:00 block is made again, as from all readings at once.
    from pue_monitor.config.loader import load_config_text
    from pue_monitor.figures.rollup import rollup, settle_s
    from pue_monitor.store.model import Reading
    from pue_monitor.store.sqlite import Store

    config = load_config_text(CONFIG.format(polls=5))
    # When the roll-up closes a block: the readings its rules need after it are in.
    SETTLE_S = settle_s(config, config.sites[0], config.sites[0].devices)  # noqa: N806
    series = readings(FROZEN, False)

    def batch(first, last):
        return [Reading(ZERO + t, device, "active_power_w", w)
                for device, points in series.items() for t, w in points if first <= t <= last]

    def blocks(store):
        frame = store.interval_energy(["p-ups"], ZERO, ZERO + HOUR)
        return [(r.start - ZERO, r.covered_s, r.energy_kwh)
                for r in frame.itertuples(index=False)]

    live, once = Store.open(tmp_path / "live"), Store.open(tmp_path / "once")
    try:
        live.import_readings(batch(0, 960))
        rollup(live, config, ZERO + 900 + SETTLE_S)
        assert [c for _, c, _ in blocks(live)] == [900.0]
        live.import_readings(batch(1020, HOUR))
        rollup(live, config, ZERO + HOUR + SETTLE_S)
        once.import_readings(batch(0, HOUR))
        rollup(once, config, ZERO + HOUR + SETTLE_S)
        # 780..900 left out of the first block, 900..1140 of the second.
        assert [c for _, c, _ in blocks(once)] == [780.0, 660.0, 900.0, 900.0]
        assert blocks(live) == blocks(once)
    finally:
        live.close()
        once.close()


# The live status, 15 minutes ending at 00:15 (readings 0..15). (name, UPS polls,
# readings frozen, incomer frozen too, UPS state, UPS stuck_power flags, E_DC, E_IT,
# common seconds.)
LIVE = [
    # The UPS holds 59 000 W from 00:08 (readings 8..15, 480..900 s): stuck, degraded;
    # the figure over 0..480 s: 90 and 60 kW.
    ("frozen while the incomer moves", 5, range(8, 16), False, "degraded", 1,
     kwh(90_000 * 480), kwh(60_000 * 480), 480),
    # The incomer frozen too: nothing flagged; the UPS's 7 frozen minutes at 59 kW.
    ("frozen while nothing else moves", 5, range(8, 16), True, "up", 0,
     kwh(90_000 * 480 + 89_000 * 420), kwh(60_000 * 480 + 59_000 * 420), 900),
    # 8 equal readings, 9 polls set: not stuck.
    ("shorter than the setting", 9, range(8, 16), False, "up", 0,
     kwh(90_000 * 900), kwh(60_000 * 480 + 59_000 * 420), 900),
]


@pytest.mark.parametrize(("name", "polls", "frozen", "incomer_frozen", "state", "stuck",
                          "e_dc", "e_it", "common"), LIVE, ids=[c[0] for c in LIVE])
def test_live_status(tmp_path, name, polls, frozen, incomer_frozen, state, stuck, e_dc,
                     e_it, common):
    from pue_monitor.config.loader import load_config_text
    from pue_monitor.figures.service import site_status
    from pue_monitor.store.model import PollResult, Reading
    from pue_monitor.store.sqlite import Store

    config = load_config_text(CONFIG.format(polls=polls))
    series = readings(frozen, incomer_frozen, end=900)
    store = Store.open(tmp_path / "d")
    try:
        for device, points in series.items():
            store.write_polls([PollResult(device, "sp", ZERO + t, 0.1, (Reading(
                ZERO + t, device, "active_power_w", w),)) for t, w in points])
        status = site_status(store, config, config.sites[0], ZERO + 900, windows=("15m",))
    finally:
        store.close()
    devices = {d.device.id: d for d in status.devices}
    assert devices["p-ups"].state == state
    assert devices["p-ups"].quality_flags["stuck_power"] == stuck
    assert devices["p-in"].state == "up"
    assert devices["p-in"].quality_flags["stuck_power"] == 0
    figure = status.windows["15m"]
    assert figure.facility_energy_kwh == pytest.approx(e_dc, rel=REL)
    assert figure.it_energy_kwh == pytest.approx(e_it, rel=REL)
    assert figure.pue == pytest.approx(e_dc / e_it, rel=REL)
    assert figure.coverage == pytest.approx(common / 900, rel=REL)


# Power read as an integer (or text) in steps of 10 W or more repeats itself under a steady
# load, so the rule would flag a healthy unit. Every such profile must say so: the rule is
# switched off (the value the profiles use) for each of them, and only for them.
COARSE_STEP_W = 10.0
RULE_OFF = 100_000


def coarse_power_profiles() -> dict[str, int | None]:
    from pathlib import Path

    from pue_monitor.config.profiles import load_profiles
    profiles = load_profiles(Path(__file__).parent.parent / "config" / "profiles")
    return {name: p.stuck_power_polls for name, p in sorted(profiles.items())
            if any(pt.metric == "active_power_w" and pt.scale >= COARSE_STEP_W
                   and not str(pt.type).startswith("float") for pt in p.points_for())}


def test_profiles_with_coarse_power_do_not_apply_the_stuck_power_rule():
    coarse = coarse_power_profiles()
    assert set(coarse) == {"apc_isx_pdu", "apc_rpdu2", "carel_pcoweb_chiller", "eaton_sc200",
                           "liebert_apm", "liebert_gp", "socomec_diris_a40", "socomec_ups",
                           "tripplite_modbuscard"}
    assert {name: polls for name, polls in coarse.items() if polls != RULE_OFF} == {}
