"""Stored 15-minute blocks keep the method-3 flags (issue 11): each block counts the
flags ending in it (resets, step-backs, wraps, stuck, implausible), the day summary sums
them, and a figure read from blocks and days counts what the exact computation counts.

Two local days of one-minute polls with every kind of event placed by hand.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pue_monitor.config import load_config
from pue_monitor.config.metrics import JOULES_PER_KWH
from pue_monitor.figures.periods import period_result, segmented_results
from pue_monitor.figures.service import meter_inputs
from pue_monitor.pue.kpi import interval_pue
from pue_monitor.storage import open_store
from pue_monitor.store.model import PollResult, Reading

TZ = "Asia/Ho_Chi_Minh"
STEP = 60.0
WIDTH = 10_000.0  # the chiller's declared register width
CONFIG = f"""
polling: {{interval_s: 60}}
sites:
  - id: dc
    name: {{vi: "TTDL", en: "DC"}}
    timezone: {TZ}
    devices:
      # A steady synthetic 140 kW: not judged by the stuck-power rule (test_stuck_power.py).
      - {{id: incomer, profile: schneider_pm5xxx, role: facility, stuck_power_polls: 100000,
         modbus: {{host: 127.0.0.1, port: 15021}}}}
      - {{id: ups, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {{host: 127.0.0.1, port: 16101}}}}
      - {{id: chiller, profile: eastron_sdm630, role: cooling, counter_width_kwh: {WIDTH},
         rated_max_w: 100000, modbus: {{host: 127.0.0.1, port: 15022}}}}
"""


def local(*args: int) -> float:
    return datetime(*args, tzinfo=ZoneInfo(TZ)).timestamp()


D0, D1, D2 = local(2026, 3, 1), local(2026, 3, 2), local(2026, 3, 3)
CHILLER_KWH_PER_POLL = 25_000.0 * STEP / JOULES_PER_KWH  # 0.41667: under 100 kW's 1.667
# The chiller starts at 9 500 kWh: 500 kWh / 0.41667 = 1200 polls, it wraps at D0 20:00.
CHILLER_START = 9_500.0
GLITCH = local(2026, 3, 1, 3, 0)  # reads 0.5 kWh less from here on: a step-back
STUCK = (local(2026, 3, 1, 8, 0), local(2026, 3, 1, 8, 10))  # incomer frozen, power flows
SPIKE = local(2026, 3, 2, 5, 0)  # one reading 1000 kWh high: past 100 kW, implausible
RESET = local(2026, 3, 2, 12, 0)  # the register restarts at 1 kWh (< 10 % of ~400)
JUMP = local(2026, 3, 2, 18, 0)  # +10 kWh that stays: 600 kW in a minute, implausible

# Flags ending in each day, by hand: D0 the glitch (step_back), the wrap (at 20:00) and
# the incomer's frozen counter (stuck: 07:59 .. 08:11); D1 the spike (its rise past the
# rated maximum and its fall back: one implausible span 04:59 .. 05:01), the reset and
# the jump (implausible).
NONE = {"reset": 0, "step_back": 0, "wrap": 0, "stuck": 0, "implausible": 0}
WANT = {
    "D0": {"chiller": {**NONE, "step_back": 1, "wrap": 1}, "incomer": {**NONE, "stuck": 1},
           "ups": NONE},
    "D1": {"chiller": {**NONE, "reset": 1, "implausible": 2}, "incomer": NONE, "ups": NONE},
}


def fill(store) -> None:
    polls, chiller_offset, incomer_kwh = [], 0.0, 50_000.0
    frozen = None
    for i in range(int((D2 - D0) / STEP) + 1):
        t = D0 + i * STEP
        if i:
            incomer_kwh += 140_000.0 * STEP / JOULES_PER_KWH
        if t == GLITCH:
            chiller_offset -= 0.5
        if t == JUMP:
            chiller_offset += 10.0
        chiller = CHILLER_START + i * CHILLER_KWH_PER_POLL + chiller_offset
        if t == RESET:
            chiller_offset -= chiller % WIDTH - 1.0
            chiller = CHILLER_START + i * CHILLER_KWH_PER_POLL + chiller_offset
        chiller %= WIDTH
        if t == SPIKE:
            chiller += 1000.0
        if t == STUCK[0]:
            frozen = incomer_kwh
        shown = frozen if frozen is not None and STUCK[0] <= t <= STUCK[1] else incomer_kwh
        rows = {"incomer": [("active_power_w", 140_000.0), ("active_energy_kwh", shown)],
                "ups": [("active_power_w", 100_000.0 + 10.0 * (i % 7))],
                "chiller": [("active_energy_kwh", chiller)]}
        polls += [PollResult(d, "dc", t, 0.01, tuple(Reading(t, d, m, v) for m, v in values))
                  for d, values in rows.items()]
    store.write_polls(polls)


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    path = tmp_path_factory.mktemp("flags")
    (path / "site.yaml").write_text(CONFIG, encoding="utf-8")
    config = load_config(path / "site.yaml")
    store = open_store(path / "data", config)
    fill(store)
    period_result(store, config, config.sites[0], D0, D2, D2 + 3600)  # rolls the blocks up
    yield store, config
    store.close()


def counted(result) -> dict[str, dict[str, int]]:
    return {m.device: dict(m.counted) for m in result.meters}


def exact(store, config, start, end):
    site = config.sites[0]
    return interval_pue(site.id, meter_inputs(store, config, site, start, end), start, end)


def test_blocks_and_days_store_the_counts(filled):
    store, _ = filled
    assert store.days_complete()
    for by_day in (False, True):
        totals = store.block_totals(["chiller", "incomer"], D0, D2, [D1], by_day=by_day)
        got = {(d, seg): (t.resets, t.step_backs, t.wraps, t.stuck, t.implausible)
               for (d, seg), t in totals.items()}
        assert got == {("chiller", 0): (0, 1, 1, 0, 0), ("chiller", 1): (1, 0, 0, 0, 2),
                       ("incomer", 0): (0, 0, 0, 1, 0), ("incomer", 1): (0, 0, 0, 0, 0)}


@pytest.mark.parametrize(("name", "start", "end"), [("D0", D0, D1), ("D1", D1, D2)])
def test_a_day_from_the_summary_counts_what_the_readings_say(filled, name, start, end):
    store, config = filled
    from_blocks = period_result(store, config, config.sites[0], start, end, D2 + 3600,
                                ensure=False)
    assert counted(from_blocks) == WANT[name]
    assert counted(exact(store, config, start, end)) == WANT[name]


def test_segments_and_a_ragged_period_add_up(filled):
    store, config = filled
    # Off the block grid at the start (00:07 on D0, before any flag; 23:00 on D1 is
    # after the jump): the whole is the sum of its segments and equals the exact figure.
    start, end = local(2026, 3, 1, 0, 7), local(2026, 3, 2, 23, 0)
    segments, whole = segmented_results(store, config, config.sites[0], [start, D1, end],
                                        D2 + 3600, ["a", "b", "all"], ensure=False)
    assert [counted(s) for s in segments] == [WANT["D0"], WANT["D1"]]
    assert counted(whole) == counted(exact(store, config, start, end)) == {
        d: {k: WANT["D0"][d][k] + WANT["D1"][d][k] for k in NONE} for d in WANT["D0"]}
