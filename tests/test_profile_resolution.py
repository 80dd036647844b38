"""How far a model's energy register steps (Profile.counter_resolution_kwh): the figures
hand a window over to the meter's power where its counter is too coarse for it, so a
device total summed from labelled rows must step as its parts do, not by 0 ("exact")."""

from __future__ import annotations

import pytest

from pue_monitor.config.profiles import load_profiles

PROFILES = load_profiles()

# (profile, counter value near which it steps, kWh per step, why)
STEPS = [
    ("apc_rpdu2", 1000.0, 0.1, "an unlabelled device counter in 0.1 kWh"),
    ("carlo_gavazzi_em24", 1000.0, 0.1, "INT32 kWh x 10"),
    ("janitza_umg96rm", 1000.0, 0.001 / 16, "float32 Wh x 0.001: 1 000 000 Wh steps by 1/16 Wh"),
    ("panduit_pdu", 1000.0, 1.0, "a total of whole-kWh rows (pdug5InputTotalEnergy)"),
    ("schleifenbauer_pdu", 1000.0, 1.0, "a total of whole-kWh inputs (sdbDevInKWhTotal)"),
    ("sentry4", 1000.0, 0.1, "a total of cords in 0.1 kWh; the phase rows are no part of it"),
    ("eaton_epdu", 1000.0, 0.001, "a total of inlets in Wh"),
    ("vertiv_geist_pdu", 1000.0, 0.001, "a total of units in Wh"),
    ("ups_mib", 1000.0, 0.0, "no energy counter at all"),
]


@pytest.mark.parametrize(("name", "value", "step"), [c[:3] for c in STEPS],
                         ids=[c[0] for c in STEPS])
def test_an_energy_register_steps_as_its_parts_do(name, value, step):
    assert PROFILES[name].counter_resolution_kwh("active_energy_kwh", value) == \
        pytest.approx(step, rel=1e-12, abs=0.0)
