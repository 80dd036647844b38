"""The simulator's energy truth over a span (simulator/truth.py, GET /truth/energy): the
same trapezoid sum the registers make tick by tick, recomputed from the physics alone, so
a register's reset or a restart without a state file leaves it untouched. And how often
the registers refresh: simulation.tick_s."""

from __future__ import annotations

import pytest

from pue_monitor.simulator.truth import MAX_TRUTH_SPAN_S, check_span, energy_truth, grid
from tests.simulator_support import START, FakeClock, advance, demo_config, http, running

SECONDS = 60


# (name, start, end, grid)
GRIDS = [
    ("whole-seconds", 0.0, 3.0, [0.0, 1.0, 2.0, 3.0]),
    ("short-last-step", 0.0, 2.5, [0.0, 1.0, 2.0, 2.5]),
    ("under-a-step", 10.0, 10.25, [10.0, 10.25]),
    # 7200 s in at most 3600 steps: 2 s each.
    ("coarser-when-long", 0.0, 7200.0, [0.0 + 2.0 * i for i in range(3601)]),
]


@pytest.mark.parametrize(("start", "end", "times"), [g[1:] for g in GRIDS],
                         ids=[g[0] for g in GRIDS])
def test_grid(start, end, times):
    assert grid(start, end)[0] == times


# (name, start, end, message part)
BAD_SPANS = [
    ("not-a-number", "noon", "1", "unix seconds"),
    ("missing", None, "1", "unix seconds"),
    ("backwards", "10", "5", "end must come after start"),
    ("empty", "10", "10", "end must come after start"),
    ("infinite", "0", "inf", "end must come after start"),
    ("too-long", "0", str(MAX_TRUTH_SPAN_S + 1), "longer than"),
]


@pytest.mark.parametrize(("start", "end", "message"), [b[1:] for b in BAD_SPANS],
                         ids=[b[0] for b in BAD_SPANS])
def test_bad_span(start, end, message):
    with pytest.raises(ValueError, match=message):
        check_span(start, end)


async def test_truth_is_what_the_registers_counted_and_ignores_their_reset(tmp_path):
    config = demo_config(tmp_path)
    async with running(config, FakeClock()) as sim:
        sites0 = {sid: (f.kwh, i.kwh) for sid, (f, i) in sim.true_energy.items()}
        devices0 = {did: d.counter.kwh for did, d in sim.devices.items()}
        await sim.set_fault("prov-ups-a", "counter_reset")
        for _ in range(SECONDS):
            advance(sim, 1.0)
        truth = energy_truth(*sim.physics_snapshot(), START, START + SECONDS)
        status, served = await http(
            "GET", f"{sim.control_url}/truth/energy?start={START}&end={START + SECONDS}")
        status_bad, refused = await http("GET", f"{sim.control_url}/truth/energy?start=1")
        reset_kwh = sim.devices["prov-ups-a"].counter.kwh
    assert truth.step_s == 1.0
    for sid, (facility0, it0) in sites0.items():
        facility, it = sim.true_energy[sid]
        assert truth.sites[sid].facility_kwh == pytest.approx(facility.kwh - facility0,
                                                              rel=1e-9)
        assert truth.sites[sid].it_kwh == pytest.approx(it.kwh - it0, rel=1e-9)
        assert truth.sites[sid].pue_min <= truth.sites[sid].pue <= truth.sites[sid].pue_max
    for did, kwh0 in devices0.items():
        if did != "prov-ups-a":
            assert truth.devices[did] == pytest.approx(sim.devices[did].counter.kwh - kwh0,
                                                       rel=1e-9), did
    # The reset register restarted at 0 on the first tick, from thousands of kWh, and
    # counted the whole span from there: what the truth says its load drew.
    assert devices0["prov-ups-a"] > 1000
    assert reset_kwh == pytest.approx(truth.devices["prov-ups-a"], rel=1e-9)
    assert status == 200 and served == truth.as_dict()
    assert status_bad == 400 and "unix seconds" in refused["error"]


# (name, simulation.tick_s in the config (None: left out), Simulator's tick_s argument,
# the tick used)
TICKS = [
    ("default", None, None, 1.0),
    ("from-config", 0.25, None, 0.25),
    ("argument-wins", 0.25, 3600.0, 3600.0),
]


@pytest.mark.parametrize(("configured", "argument", "tick"), [t[1:] for t in TICKS],
                         ids=[t[0] for t in TICKS])
def test_meters_refresh_every_tick_s(tmp_path, configured, argument, tick):
    from pue_monitor.config import load_config
    from pue_monitor.simulator.ports import write_raw
    from pue_monitor.simulator.runner import Simulator
    from tests.conftest import demo_on_free_ports

    path, raw = demo_on_free_ports(tmp_path)
    if configured is not None:
        raw["simulation"]["tick_s"] = configured
        write_raw(raw, path)
    sim = Simulator(load_config(path, env={}), control_port=0, tick_s=argument)
    assert sim.tick_s == tick


def test_a_tick_too_short_is_refused_naming_it(tmp_path):
    from pue_monitor.config import ConfigError, load_config
    from pue_monitor.simulator.ports import write_raw
    from tests.conftest import demo_on_free_ports

    path, raw = demo_on_free_ports(tmp_path)
    raw["simulation"]["tick_s"] = 0.001
    write_raw(raw, path)
    with pytest.raises(ConfigError, match=r"simulation\.tick_s"):
        load_config(path, env={})
