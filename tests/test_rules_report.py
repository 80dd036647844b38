"""Each counter rule of method 3 through the whole chain: readings imported, the report
read from stored blocks (a whole hour) and recomputed from readings (ragged ends), both
equal to the answer worked out by hand (tests/test_quality.py has each rule on its own).

One site per row: a facility counter read every 10 minutes at 90 kW (15 kWh a step),
with the rule's event in it, and a UPS reporting 60 kW every minute (power only). Every
refused step is left out of both sides, so wherever the facility measured, E_DC is
1.5 kWh and E_IT 1 kWh a minute: PUE 1.5, and the energies and coverage follow from the
common seconds alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pue_monitor.cli import main

REL = 1e-9
STEP_S = 600
HOUR = "2025-03-14T00:00+07:00..2025-03-14T01:00+07:00"
RAGGED = "2025-03-14T00:05+07:00..2025-03-14T00:55+07:00"  # 300 .. 3300 s

# (name, facility readings at 0, 600, ..., 3600 s, extra device keys, flag group counted,
#  common seconds over the hour, over 300..3300 s)
RULES = [
    # 130 -> 5 at 1800 s: below 10 % of 130, a reset: 1200..1800 is a gap.
    ("reset gap", [100, 115, 130, 5, 20, 35, 50], "", "reset",
     3600 - 600, (1200 - 300) + (3300 - 1800)),
    # 130 -> 100: a decrease, not below 13: a step-back; the counter goes on from 100.
    ("step-back", [100, 115, 130, 100, 115, 130, 145], "", "step_back",
     3600 - 600, (1200 - 300) + (3300 - 1800)),
    # A 200 kWh register: 190 -> 5 (old in the top 10 %, new in the bottom 10 %) is a
    # wrap of 200 - 190 + 5 = 15 kWh, with a non-zero value after it: all measured.
    ("wrap", [130, 145, 160, 175, 190, 5, 20], "counter_width_kwh: 200, ", "wrap",
     3600, 3000),
    # Frozen at 130 from 1200 s to 2400 s while the UPS drew 60 kW (20 kWh over the run):
    # the run with the step into it and out of it, 600..3000 s, is a gap.
    ("stuck counter", [100, 115, 130, 130, 130, 145, 160], "", "stuck",
     3600 - 2400, (600 - 300) + (3300 - 3000)),
    # Rated 200 kW (33.3 kWh a step): 130 -> 99 999 is beyond it and back to 145: the
    # spike's two steps, 1200..2400 s, are implausible.
    ("rated-maximum spike", [100, 115, 130, 99_999, 145, 160, 175], "rated_max_w: 200000, ",
     "implausible", 3600 - 1200, (1200 - 300) + (3300 - 2400)),
    # A read of 0 between 130 and 160: out of line, not a reset: 1200..2400 s a gap.
    ("dip reading", [100, 115, 130, 0, 160, 175, 190], "", "step_back",
     3600 - 1200, (1200 - 300) + (3300 - 2400)),
    # Two reads of 0 between 130 and 175, across three blocks: out of line too (taken for
    # a reset before 3 December, the climb back to 175 counted): 1200..3000 s a gap, in
    # every block as in the ragged period (each reads four readings beyond its edges).
    ("two dip readings", [100, 115, 130, 0, 0, 175, 190], "", "step_back",
     3600 - 1800, (1200 - 300) + (3300 - 3000)),
    # Three, unequal (equal ones are read on as a run), 600..3000 s a gap: the block
    # 2700..3600 s holds the climb back (3 -> 175) and sees the fall only by reading four
    # readings before it (NEAR_READINGS), as the period does.
    ("three dip readings", [100, 115, 1, 2, 3, 175, 190], "", "step_back",
     3600 - 2400, (600 - 300) + (3300 - 3000)),
]

CONFIG = """\
polling: {{interval_s: 60, timeout_s: 2, retries: 0}}
sites:
  - id: rule
    name: {{vi: "Quy tắc", en: "Rule"}}
    devices:
      - {{id: rule-in, profile: schneider_pm5xxx, role: facility, {extra}modbus: {{host: 127.0.0.1, port: 15301}}}}
      # A steady synthetic 60 kW: not judged by the stuck-power rule (test_stuck_power.py).
      - {{id: rule-ups, profile: ups_mib, role: it, measurement_point: ups_output, stuck_power_polls: 1000, snmp: {{host: 127.0.0.1, port: 16301}}}}
"""


def stamp(t: int) -> str:
    return f"2025-03-14T{t // 3600:02d}:{t % 3600 // 60:02d}:00+07:00"


@pytest.fixture(scope="module", params=RULES, ids=[r[0] for r in RULES])
def imported(request, tmp_path_factory):
    name, readings, extra, flag, hour_s, ragged_s = request.param
    folder = tmp_path_factory.mktemp("rule")
    rows = ["timestamp,device,metric,value"]
    rows += [f"{stamp(i * STEP_S)},rule-in,active_energy_kwh,{v}"
             for i, v in enumerate(readings)]
    rows += [f"{stamp(t)},rule-ups,active_power_w,60000" for t in range(0, 3601, 60)]
    (folder / "r.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "c.yaml").write_text(CONFIG.format(extra=extra), encoding="utf-8")
    assert main([str(a) for a in ("import", "-c", folder / "c.yaml", "--data-dir",
                                  folder / "d", folder / "r.csv")]) == 0
    return folder, flag, {HOUR: (hour_s, 3600), RAGGED: (ragged_s, 3000)}


@pytest.mark.parametrize("period", [HOUR, RAGGED], ids=["whole-blocks", "ragged-ends"])
def test_the_rule_through_import_and_report(imported, period):
    folder, flag, common = imported
    seconds, length = common[period]
    out = folder / "out.json"
    assert main([str(a) for a in ("report", "-c", folder / "c.yaml", "--data-dir",
                                  folder / "d", "--site", "rule", "--period", period,
                                  "-o", out)]) == 0
    doc = json.loads(Path(out).read_text(encoding="utf-8"))
    assert doc["facility_energy_kwh"] == pytest.approx(1.5 * seconds / 60, rel=REL)
    assert doc["it_energy_kwh"] == pytest.approx(seconds / 60, rel=REL)
    assert doc["pue"] == pytest.approx(1.5, rel=REL)
    assert doc["coverage"] == pytest.approx(seconds / length, rel=REL)
    flags = {m["device"]: m["flags"] for m in doc["meters"]}
    assert flags["rule-in"] == {k: int(k == flag) for k in flags["rule-in"]}
    assert set(flags["rule-in"]) == {"reset", "step_back", "wrap", "stuck", "implausible"}


def test_the_roll_up_waits_for_the_readings_a_dip_needs(tmp_path):
    """Polled every minute, three low readings (14:00 + 840, 900, 960 s) across the end
    of the first block: closed 60 s after its end, the block saw the fall but not the
    climb back, took it for a reset and measured the dip's own rise. It now closes when
    NEAR_READINGS and a half polls are in, and equals the block made from every reading."""
    from pue_monitor.config.loader import load_config_text
    from pue_monitor.figures.rollup import rollup, settle_s
    from pue_monitor.store.model import Reading
    from pue_monitor.store.sqlite import Store

    config = load_config_text(CONFIG.format(extra=""))
    zero = 1741885200.0  # 2025-03-14T00:00:00+07:00
    dip = {840: 1.0, 900: 2.0, 960: 3.0}

    def until(last):
        out = []
        for t in range(0, last + 1, 60):
            out += [Reading(zero + t, "rule-in", "active_energy_kwh",
                            dip.get(t, 100 + 1.5 * t / 60)),
                    Reading(zero + t, "rule-ups", "active_power_w", 60_000.0)]
        return out

    def blocks(store):
        frame = store.interval_energy(["rule-in"], zero, zero + 3600)
        return [(r.start - zero, r.covered_s, r.energy_kwh)
                for r in frame.itertuples(index=False)]

    settle = settle_s(config, config.sites[0], config.sites[0].devices)
    live, once = Store.open(tmp_path / "live"), Store.open(tmp_path / "once")
    try:
        live.import_readings(until(int(900 + settle)))  # what has arrived by then
        rollup(live, config, zero + 900 + settle)
        assert [start for start, _, _ in blocks(live)] == [0.0]
        live.import_readings([r for r in until(3600) if r.ts > zero + 900 + settle])
        rollup(live, config, zero + 3600 + settle)
        once.import_readings(until(3600))
        rollup(once, config, zero + 3600 + settle)
        # 780..1020 s is the dip's gap: 780 s of the first block, 780 of the second.
        assert [(s, c) for s, c, _ in blocks(once)] == [(0.0, 780.0), (900.0, 780.0),
                                                        (1800.0, 900.0), (2700.0, 900.0)]
        assert blocks(live) == blocks(once)
    finally:
        live.close()
        once.close()
