"""Every real capture of tests/corpus/snmp, served by snmpsim on 127.0.0.1, identified
and decoded through the real client, plan and profile: one test per capture and sensor,
for each SNMP engine (fast and reference), which must give identical readings.

Expected values are LibreNMS's; where the vendor MIB disagrees (`mib_expected`) the MIB
is followed, and the test id says so.
"""

from __future__ import annotations

import asyncio

import pytest

from pue_monitor.collectors.snmp_decode import decode_points
from pue_monitor.collectors.snmp_identify import identify
from pue_monitor.collectors.snmp_plan import plan_for
from pue_monitor.collectors.snmp_read import read_answers
from pue_monitor.config.profiles import load_profiles
from pue_monitor.store.model import Quality
from tests.snmp_support import (
    CORPUS,
    ENGINES,
    captures,
    expected,
    snmp_client,
    snmpsim,
    snmpsim_command,
)

pytestmark = pytest.mark.integration
PROFILES = load_profiles()
TIMEOUT_S = 2.0

# Which shipped profile each capture belongs to (and must be identified as).
PROFILE_OF = {
    "apc_ap8853": "apc_rpdu2", "apc_smart1500": "apc_ups", "apc_inrow-dx": "apc_inrow",
    "netvision-rfc": "ups_mib", "huaweiups_ups2000": "huawei_ups2000", "liebert_apm": "liebert_gp",
    "eatonpdu_2": "eaton_epdu", "eatonups": "eaton_xups", "raritan-pdu_px3": "raritan_pdu2",
    "sentry4": "sentry4", "cyberpower_pdu81005": "cyberpower_epdu",
    "vertiv-pdu_mg02e4w1": "vertiv_geist_pdu", "janitza_generic": "janitza_umg",
    "pcoweb-rittalchiller": "carel_pcoweb_chiller",
}
# The reference's unit -> the canonical metric it must decode to.
METRIC_OF_UNIT = {"W": "active_power_w", "VA": "apparent_power_va", "kWh": "active_energy_kwh",
                  "A": "current_a", "V": "voltage_v", "%": "load_pct", "Hz": "frequency_hz",
                  "C": "temperature_c"}
# Sensors deliberately not read, and why.
NOT_READ = {
    "var": "reactive power has no canonical metric",
    "kvarh": "reactive energy has no canonical metric",
    "kW": "thermal cooling demand/output, not electrical power: must never count as power",
    "min": "battery runtime has no canonical metric",
}
# Objects of one capture not read, and why.
NOT_READ_HERE = {
    ("huaweiups_ups2000", "1.3.6.1.2.1.33.1.4.4.1.4.1"):
        "upsOutputPower in whole kW on this card (1 at 7.2 A x 230 V), W per the MIB: too "
        "coarse for energy either way (huawei_ups2000.yaml)",
}
# The same quantity read from another object of the same device.
SAME_AS = {
    # rPDULoadStatusLoad row 1 is the phase total, which rPDU2PhaseStatusCurrent.1 gives.
    ("apc_ap8853", "1.3.6.1.4.1.318.1.1.12.2.3.1.1.2.1"): "1.3.6.1.4.1.318.1.1.26.6.3.1.5.1",
}


def sensor_cases() -> list:
    cases = []
    for capture in captures():
        for sensor in expected(capture)["sensors"]:
            oid = sensor["oid"].lstrip(".")
            follows = "mib" if "mib_expected" in sensor else "librenms"
            cases.append(pytest.param(capture, sensor,
                                      id=f"{capture}:{sensor['class']}:{oid}:{follows}"))
    return cases


async def _read_all(port: int, engine: str) -> dict[str, tuple]:
    out = {}
    for capture in captures():
        client = snmp_client(engine, "127.0.0.1", port, capture, "2c", timeout_s=TIMEOUT_S,
                             retries=1)
        try:
            found, _oid, _descr = await identify(client, PROFILES.values())
            profile = PROFILES[PROFILE_OF[capture]]
            answers, refused = await read_answers(client, plan_for(profile))
        finally:
            client.close()
        sourced = {s.oid: s.reading for s in decode_points(profile, answers, capture, 0.0)}
        out[capture] = (found.name, sourced, refused, answers)
    return out


@pytest.fixture(scope="module")
def readings_by_engine(tmp_path_factory) -> dict[str, dict[str, tuple]]:
    """engine -> capture -> (identified profile, {source OID: reading}, refused requests,
    the agent's answers by OID)."""
    if not snmpsim_command():
        pytest.fail("snmpsim is part of the test extra: pip install -e '.[test]'")
    with snmpsim(tmp_path_factory.mktemp("snmpsim")) as port:
        return {engine: asyncio.run(_read_all(port, engine)) for engine in ENGINES}


@pytest.fixture(params=ENGINES)
def corpus(request, readings_by_engine) -> dict[str, tuple]:
    return readings_by_engine[request.param]


def test_corpus_is_there():
    assert CORPUS.is_dir(), f"the shared corpus belongs at {CORPUS}"
    assert set(captures()) == set(PROFILE_OF)


@pytest.mark.parametrize("capture", sorted(PROFILE_OF))
def test_both_engines_read_the_same(readings_by_engine, capture):
    fast, reference = (readings_by_engine[e][capture] for e in ENGINES)
    assert fast[0] == reference[0] and fast[2] == reference[2]
    assert fast[3] == reference[3]  # every object read, with its value
    assert fast[1] == reference[1]  # every source OID, metric, labels, value and quality


@pytest.mark.parametrize("capture", sorted(PROFILE_OF))
def test_capture_is_identified(corpus, capture):
    name, readings, refused, _answers = corpus[capture]
    assert name == PROFILE_OF[capture]
    assert refused == 0
    assert readings, "nothing decoded"


@pytest.mark.parametrize(("capture", "sensor"), sensor_cases())
def test_sensor_decodes_to_the_reference(corpus, capture, sensor):
    _name, readings, _refused, _answers = corpus[capture]
    oid = sensor["oid"].lstrip(".")
    unit = sensor.get("mib_unit", sensor["unit"])
    if unit in NOT_READ or (capture, oid) in NOT_READ_HERE:
        assert oid not in readings, \
            f"read although {NOT_READ.get(unit) or NOT_READ_HERE[capture, oid]}"
        return
    reading = readings.get(SAME_AS.get((capture, oid), oid))
    assert reading is not None, f"{oid} ({sensor['descr']}) not decoded"
    assert reading.metric == METRIC_OF_UNIT[unit]
    if "sentinel" in sensor.get("note", ""):
        # LibreNMS graphs the card's "not available" marker as a value; it is no reading.
        assert (reading.value, reading.quality) == (None, Quality.NOT_AVAILABLE)
        return
    want = sensor.get("mib_expected", sensor["expected"])
    assert reading.quality == Quality.OK
    assert reading.value == pytest.approx(want, rel=1e-9, abs=1e-9)
