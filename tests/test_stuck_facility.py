"""A stuck facility counter judged against the site's IT power (method 3, rule 5: "a
counter that does not move while ... the site's IT power, for a facility meter, says
energy flows"). A facility meter feeds the IT load: where the IT meters drew more than
one register step of energy while the facility counter stood still, the counter is
stuck, whether or not it reports power itself. Every answer worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pue_monitor.cli import main
from pue_monitor.config.metrics import MeasurementPoint as MP
from pue_monitor.config.metrics import Role
from pue_monitor.pue.energy import CounterSeries, MeterEnergy, PowerSeries
from pue_monitor.pue.kpi import MeterInput, interval_pue
from pue_monitor.pue.quality import Flag

REL = 1e-9
MINUTE = 60


def arrays(points):
    ts, values = zip(*points)
    return np.asarray(ts, dtype=float), np.asarray(values, dtype=float)


def it_power(watts, end=3000, max_gap_s=180.0):
    return PowerSeries.from_arrays(*arrays([(t, watts) for t in range(0, end + 1, MINUTE)]),
                                   max_gap_s)


# The counter of "stuck counter" in test_quality (froze at 110 from 600 s to 1800 s,
# 140 at 2400 s, 150 at 3000 s), now without power of its own: the evidence is the IT's.
FROZEN = [(0, 100), (600, 110), (1200, 110), (1800, 110), (2400, 140), (3000, 150)]

# (name, IT power (W) and share, kWh measured, spans measured, flags)
EVIDENCE = [
    # IT 48 kW over the run 600..1800 s: 16 kWh > the 0.1 kWh step: stuck. The run, the
    # step into it and the one out of it are refused: only 140 -> 150 (+10) measured.
    ("IT draws: stuck", [(48_000, 1.0)], 10, [(2400, 3000)], [Flag(0, 2400, "stuck_counter")]),
    # Half of that IT meter belongs to the site (share 0.5): 8 kWh, still > 0.1.
    ("IT share applied", [(48_000, 0.5)], 10, [(2400, 3000)],
     [Flag(0, 2400, "stuck_counter")]),
    # The IT load is off: a still counter is right: 100 -> 150, 50 kWh over 0..3000.
    ("IT off: not stuck", [(0, 1.0)], 50, [(0, 3000)], []),
    # 250 W for 1200 s is 0.0833 kWh, under one 0.1 kWh step: a coarse register.
    ("IT under one step", [(250, 1.0)], 50, [(0, 3000)], []),
    # Two IT meters of 150 W each: each alone is 0.05 kWh, together 0.1 kWh, not more than
    # one step: not stuck. The sum is what the facility must have counted.
    ("two small IT meters", [(150, 1.0), (150, 1.0)], 50, [(0, 3000)], []),
    # Two of 200 W: 0.1333 kWh together over the run: stuck.
    ("two IT meters add up", [(200, 1.0), (200, 1.0)], 10, [(2400, 3000)],
     [Flag(0, 2400, "stuck_counter")]),
    # No IT power at all (IT counters only): nothing says energy flowed.
    ("no IT power", [], 50, [(0, 3000)], []),
]


@pytest.mark.parametrize(("name", "it", "kwh", "spans", "flags"), EVIDENCE,
                         ids=[e[0] for e in EVIDENCE])
def test_facility_counter_against_the_site_it_power(name, it, kwh, spans, flags):
    counter = CounterSeries.from_arrays(
        *arrays(FROZEN), resolution_kwh=0.1,
        site_power=tuple((it_power(w), share) for w, share in it))
    m = MeterEnergy(counter, None)
    got = m.spans(-1e12, 1e12)
    assert m.energy(got) == pytest.approx(kwh, rel=REL)
    assert got == spans
    assert list(counter.flags) == flags


# Issue 11: the facility counter froze for 6 minutes and the figure trusted it. Facility
# read every minute, 90 kW (1.5 kWh a minute) from 100 kWh; frozen at 130 from 1200 s
# to 1560 s (7 equal readings), then counting on from 131.5 at 1620 s (the energy of the
# stall lost). IT: a UPS reporting power only, 60 kW every minute.
def facility_kwh(t: int) -> float:
    if t <= 1200:
        return 100 + 1.5 * t / MINUTE
    if t <= 1560:
        return 130.0
    return 130 + 1.5 * (t - 1560) / MINUTE


def test_a_frozen_facility_counter_is_left_out_of_both_sides():
    # Refused: the run 1200..1560 with the step into it (1140..1200) and out (1560..1620):
    # common time 0..1140 and 1620..3600 = 3120 s. E_DC 1.5 * 3120 / 60 = 78 kWh; E_IT
    # 60 kW * 3120 s = 52 kWh; PUE 1.5, coverage 3120 / 3600. Trusting the counter gave
    # E_DC 81 kWh over the hour against 60 kWh: 1.35, "compliant" on a frozen meter.
    points = [(t, facility_kwh(t)) for t in range(0, 3601, MINUTE)]
    it = it_power(60_000, end=3600)
    facility = CounterSeries.from_arrays(*arrays(points), resolution_kwh=0.001,
                                         site_power=((it, 1.0),))
    result = interval_pue("s", [
        MeterInput("in", Role.FACILITY, MeterEnergy(facility, None)),
        MeterInput("ups", Role.IT, MeterEnergy(None, it), measurement_point=MP.UPS_OUTPUT),
    ], 0, 3600)
    assert facility.flags == (Flag(1140, 1620, "stuck_counter"),)
    assert result.facility_energy_kwh == pytest.approx(78.0, rel=REL)
    assert result.it_energy_kwh == pytest.approx(52.0, rel=REL)
    assert result.pue == pytest.approx(1.5, rel=REL)
    assert result.coverage == pytest.approx(3120 / 3600, rel=REL)
    assert result.meters[0].quality.stuck == 1


CONFIG = """\
polling: {interval_s: 60, timeout_s: 2, retries: 0}
sites:
  - id: frozen
    name: {vi: "Công tơ tổng bị kẹt", en: "Frozen incomer"}
    devices:
      - {id: f-in, profile: schneider_pm5xxx, role: facility, modbus: {host: 127.0.0.1, port: 15201}}
      # A steady synthetic 60 kW: not judged by the stuck-power rule (test_stuck_power.py).
      - {id: f-ups, profile: ups_mib, role: it, measurement_point: ups_output, stuck_power_polls: 1000, snmp: {host: 127.0.0.1, port: 16201}}
"""


def test_the_report_leaves_the_frozen_span_out(tmp_path):
    # The same hour imported and reported (blocks and the exact path): the same figure.
    files = frozen_later(tmp_path)
    cli_import(files, tmp_path / "d", "both")
    for period in ("2025-03-14T00:00+07:00..2025-03-14T01:00+07:00",  # whole blocks
                   "2025-03-14T00:05+07:00..2025-03-14T00:55+07:00"):  # ragged ends
        doc = cli_report({**files, "period": period}, tmp_path / "d")
        # 00:05..00:55: common time 300..1140 and 1620..3300 = 2520 s of 3000.
        common = 3120 if period.startswith("2025-03-14T00:00") else 2520
        assert doc["facility_energy_kwh"] == pytest.approx(1.5 * common / 60, rel=REL)
        assert doc["it_energy_kwh"] == pytest.approx(60 * common / 3600, rel=REL)
        assert doc["pue"] == pytest.approx(1.5, rel=REL)
        span = 3600 if period.startswith("2025-03-14T00:00") else 3000
        assert doc["coverage"] == pytest.approx(common / span, rel=REL)
        meters = {m["device"]: m for m in doc["meters"]}
        assert meters["f-in"]["flags"]["stuck"] == 1


def frozen_later(folder: Path) -> dict:
    """The incomer's readings (first), the UPS's power (second) and both in one file, as
    CSV, with the site's configuration, period and the facility energy of both."""
    incomer, ups = ["timestamp,device,metric,value"], ["timestamp,device,metric,value"]
    for t in range(0, 3601, MINUTE):
        stamp = f"2025-03-14T00:{t // 60:02d}:00+07:00" if t < 3600 else \
            "2025-03-14T01:00:00+07:00"
        incomer.append(f"{stamp},f-in,active_energy_kwh,{facility_kwh(t)}")
        ups.append(f"{stamp},f-ups,active_power_w,60000")
    return _written(folder, CONFIG, "frozen", "2025-03-14T00:00+07:00..2025-03-14T01:00+07:00",
                    incomer, ups)


def _written(folder: Path, config: str, site: str, period: str, first: list[str],
             second: list[str]) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    out = {"site": site, "period": period, "config": folder / "c.yaml"}
    out["config"].write_text(config, encoding="utf-8")
    for name, rows in (("first", first), ("second", second), ("both", first + second[1:])):
        out[name] = folder / f"{name}.csv"
        out[name].write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def cli_report(files: dict, data: Path) -> dict:
    out = data.parent / f"{data.name}-report.json"
    assert main([str(a) for a in ("report", "-c", files["config"], "--data-dir", data,
                                  "--site", files["site"], "--period", files["period"],
                                  "-o", out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def cli_import(files: dict, data: Path, which: str) -> None:
    assert main([str(a) for a in ("import", "-c", files["config"], "--data-dir", data,
                                  files[which])]) == 0


def test_it_power_imported_later_recomputes_the_facility_blocks(tmp_path):
    # The incomer's readings first (reported: its blocks are made, nothing says it was
    # stuck), the UPS's power in a second file: the frozen span is found then, and the
    # report equals one import of both files.
    files = frozen_later(tmp_path)
    later, once = tmp_path / "later", tmp_path / "once"
    cli_import(files, later, "first")
    assert cli_report(files, later)["status"] == "no_data"  # no IT yet; blocks made
    cli_import(files, later, "second")
    cli_import(files, once, "both")
    got, want = cli_report(files, later), cli_report(files, once)
    assert want["facility_energy_kwh"] == pytest.approx(78.0, rel=REL)
    for key in ("pue", "facility_energy_kwh", "it_energy_kwh", "coverage", "meters"):
        assert got[key] == want[key], key


RUN_CONFIG = """\
polling: {interval_s: 60, timeout_s: 2, retries: 0}
sites:
  - id: run
    name: {vi: "Bộ đếm đứng yên", en: "A still counter"}
    devices:
      - {id: r-in, profile: schneider_pm5xxx, role: facility, modbus: {host: 127.0.0.1, port: 15202}}
      # A steady synthetic 0.5 W: not judged by the stuck-power rule (test_stuck_power.py).
      - {id: r-it, profile: schneider_pm5xxx, role: it, measurement_point: it_input, stuck_power_polls: 1000, modbus: {host: 127.0.0.1, port: 15203}}
"""


def run_later(folder: Path) -> dict:
    """r-it's counter reads hourly, 100 then 110 from 01:00; its power is 0.5 W every
    minute. The first file ends at 02:00: the run 01:00..02:00 saw 0.5 W x 3600 s =
    0.0005 kWh, under the 0.001 kWh register step: not stuck. The second keeps it at 110
    to 04:00 (0.0015 kWh over 01:00..04:00: stuck) and 140 at 05:00."""
    def stamp(t):
        return f"2025-03-14T{t // 3600:02d}:{t % 3600 // 60:02d}:00+07:00"

    counter = {0: 100, 3600: 110, 7200: 110, 10800: 110, 14400: 110, 18000: 140}
    head = "timestamp,device,metric,value"
    files: dict[str, list[str]] = {"one": [head], "two": [head]}
    for t in range(0, 18001, MINUTE):
        part = files["one" if t <= 7200 else "two"]
        part.append(f"{stamp(t)},r-it,active_power_w,0.5")
        part.append(f"{stamp(t)},r-in,active_energy_kwh,{1000 + t / 3600}")
        if t in counter:
            part.append(f"{stamp(t)},r-it,active_energy_kwh,{counter[t]}")
    return _written(folder, RUN_CONFIG, "run", "2025-03-14T00:00+07:00..2025-03-14T05:00+07:00",
                    files["one"], files["two"])


def test_a_reading_that_makes_a_run_stuck_recomputes_all_of_it(tmp_path):
    # The second file makes the run stuck: the whole run with the step into it
    # (00:00..01:00) is refused now, hours before the new readings, as one import of
    # both files finds.
    files = run_later(tmp_path)
    later, once = tmp_path / "later", tmp_path / "once"
    cli_import(files, later, "first")
    first = cli_report(files, later)  # the blocks of 00:00..02:00 made: nothing stuck yet
    assert first["meters"][1]["flags"]["stuck"] == 0
    cli_import(files, later, "second")
    cli_import(files, once, "both")
    got, want = cli_report(files, later), cli_report(files, once)
    # All five hours refused for r-it (00:00..05:00): nothing is common, no figure.
    assert want["meters"][1]["flags"]["stuck"] == 1
    assert (want["coverage"], want["status"]) == (0.0, "no_data")
    for key in ("pue", "facility_energy_kwh", "it_energy_kwh", "coverage", "meters"):
        assert got[key] == want[key], key


def test_the_monitor_roll_up_judges_a_growing_run_again(tmp_path):
    # The readings of the test above as the monitor receives them: blocks closed at
    # 02:00 (the run 01:00..02:00 not stuck yet), then the rest arrives and the blocks to
    # 05:00 close: the run's earlier blocks are made again, as from all readings at once.
    from pue_monitor.config.loader import load_config_text
    from pue_monitor.figures.rollup import rollup, settle_s
    from pue_monitor.store.model import Reading
    from pue_monitor.store.sqlite import Store

    config = load_config_text(RUN_CONFIG)
    # When the roll-up closes a block: the readings its rules need after it are in.
    SETTLE_S = settle_s(config, config.sites[0], config.sites[0].devices)  # noqa: N806
    zero = 1741885200.0  # 2025-03-14T00:00:00+07:00
    counter = {0: 100, 3600: 110, 7200: 110, 10800: 110, 14400: 110, 18000: 140}

    def batch(first, last):
        out = []
        for t in range(first, last + 1, MINUTE):
            out += [Reading(zero + t, "r-it", "active_power_w", 0.5),
                    Reading(zero + t, "r-in", "active_energy_kwh", 1000 + t / 3600)]
            if t in counter:
                out.append(Reading(zero + t, "r-it", "active_energy_kwh", counter[t]))
        return out

    def blocks(store):
        frame = store.interval_energy(["r-it"], zero, zero + 18000)
        return [(r.start, r.covered_s, r.energy_kwh) for r in frame.itertuples(index=False)]

    live, once = Store.open(tmp_path / "live"), Store.open(tmp_path / "once")
    try:
        live.import_readings(batch(0, 7200))
        rollup(live, config, zero + 7200 + SETTLE_S)
        assert [c for _, c, _ in blocks(live)] == [900.0] * 8  # 00:00..02:00, measured
        live.import_readings(batch(7260, 18000))
        rollup(live, config, zero + 18000 + SETTLE_S)
        once.import_readings(batch(0, 18000))
        rollup(once, config, zero + 18000 + SETTLE_S)
        # The whole run with its steps in and out, 00:00..05:00, is refused: no block of
        # r-it measured anything.
        assert [c for _, c, _ in blocks(once)] == [0.0] * 20
        assert blocks(live) == blocks(once)
    finally:
        live.close()
        once.close()
