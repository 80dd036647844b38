"""The 59 captures of tests/corpus/snmp-more, served by snmpsim on 127.0.0.1, identified
and decoded through the real client, plan and profile: one test per capture (which profile,
by which rule) and one per power or energy sensor LibreNMS reads from it.

These captures carry LibreNMS's values unreviewed. Where a sensor is not a power or
energy reading per the MIB (a rating, reactive power, thermal power, an estimate), or is
the same quantity read from another object, the tables below say so and why.
"""

from __future__ import annotations

import asyncio

import pytest

from pue_monitor.cli import main
from pue_monitor.collectors.decode import derive_totals
from pue_monitor.collectors.snmp_client import PysnmpClient
from pue_monitor.collectors.snmp_decode import decode_points
from pue_monitor.collectors.snmp_identify import NoProfileMatches, identify_device
from pue_monitor.collectors.snmp_plan import plan_for
from pue_monitor.collectors.snmp_read import read_answers
from pue_monitor.config.profiles import load_profiles
from pue_monitor.store.model import Quality
from tests.snmp_support import CORPUS_MORE, captures, expected, snmpsim, snmpsim_command

pytestmark = pytest.mark.integration
PROFILES = load_profiles()
TIMEOUT_S = 2.0
ENTERPRISES = "1.3.6.1.4.1."

# capture -> (profile it must be identified as, the rule that must choose it).
# "probe": no vendor profile claims the sysObjectID, the standard UPS-MIB answers.
PROFILE_OF = {
    "abbups_abbups": ("ups_mib", "probe"),  # net-snmp's generic sysObjectID
    "apc_ap8959eu3": ("apc_rpdu2", "sysObjectID"),
    "apc_apdu9959eu3": ("apc_rpdu2", "sysObjectID"),
    "apc_isx-pdu": ("apc_isx_pdu", "sysObjectID"),
    "atenpdu": ("aten_pdu", "sysObjectID"),
    "cetpower": ("cet_tsi", "sysObjectID"),
    "cxc": ("cordex_cxc", "sysObjectID"),
    "cxc_e3": ("cordex_cxc", "sysObjectID"),
    "cxc_ups": ("ups_mib", "probe"),  # same sysObjectID, no rectifier objects
    "dell-ups_rack3750w": ("dell_ups", "sysObjectID"),
    "dell-ups_tower1000w": ("dell_ups", "sysObjectID"),
    "deltaups": ("ups_mib", "probe"),
    "deltaups_rfc1628string": ("ups_mib", "probe"),
    "digipower": ("digipower_pdu", "sysObjectID"),
    "e3meter": ("e3meter", "sysObjectID"),
    "e3meterdc": ("e3meter", "sysObjectID"),
    "eaton-matrix": ("eaton_matrix", "sysObjectID"),
    "eaton-mgeups_5px": ("ups_mib", "probe"),
    "eaton-mgeups_9pxle": ("ups_mib", "probe"),
    "eaton-sc200": ("eaton_sc200", "sysObjectID"),
    "eatonups_eaton-connectups": ("eaton_xups", "sysObjectID"),
    "eatonupsm2_9px+empg2": ("eaton_xups", "sysObjectID"),
    "eatonupsm2_9px": ("ups_mib", "probe"),  # XUPS identity only: eaton_xups passed over
    "edgeos-ep": ("ubiquiti_edgepower", "sysObjectID"),
    "enlogic-pdu_v2": ("enlogic_pdu", "sysObjectID"),
    "generex-ups_cs141-v22036": ("ups_mib", "sysObjectID"),  # sysObjectID = upsMIB root
    "generex-ups_cs141": ("ups_mib", "sysObjectID"),
    "gude-epc_1202": ("gude_epc", "sysObjectID"),
    "hpe-mapdu_pdu2": ("hpe_pdu", "sysObjectID"),
    "hpe-pdumm": ("hpe_pdu", "sysDescr"),  # the agent sends no sysObjectID
    "imcopower-big": ("imco_power", "sysObjectID"),
    "ipoman": ("ingrasys_ipoman", "sysObjectID"),
    "istars": ("istars_ups", "sysObjectID"),
    "janitza-umg96_umg96": ("janitza_umg96_snmp", "sysObjectID"),
    "liebert": ("liebert_pdu", "sysObjectID"),  # shared Liebert sysObjectID: a PDU
    "netmanplus_208": ("ups_mib", "probe"),
    "netmanplus_mct20": ("ups_mib", "probe"),
    "orvaldi-ups": ("ups_mib", "probe"),
    "panduit_2": ("panduit_pdu", "sysObjectID"),
    "panduit_g5-p32g13m": ("panduit_pdu", "sysObjectID"),
    "planet-pdu": ("planet_pdu", "sysObjectID"),
    "poweralert_2": ("ups_mib", "probe"),  # Tripp Lite UPS: tripplite_pdu passed over
    "poweralert_pdu": ("tripplite_pdu", "sysObjectID"),
    "poweralert_pdumh20atnet": ("tripplite_pdu", "sysObjectID"),
    "powerwalker-vfi_20kcpgpf133": ("ups_mib", "probe"),
    "powerwalker-vfi_500r1u": ("ups_mib", "probe"),
    "raritan-pdu": ("raritan_px1", "sysObjectID"),
    "raritan-pdu_px2-temp": ("raritan_pdu2", "sysObjectID"),
    "raritan-pdu_px2": ("raritan_pdu2", "sysObjectID"),
    "rittal-lcp_cmciii-pu-lcp": ("rittal_cmc3", "sysObjectID"),
    "rnx-updu_rn3214": ("rnx_updu", "sysObjectID"),
    "samlex_psr-1200-48": ("samlex_psr", "sysObjectID"),
    "schleifenbauer": ("schleifenbauer_pdu", "sysObjectID"),
    "sentry4_switched8i": ("sentry4", "sysObjectID"),
    "sinetica": ("sinetica_ups", "sysObjectID"),
    "siteboss571_siteboss571-2": ("asentria_siteboss", "sysObjectID"),
    "siteboss571_siteboss571": ("asentria_siteboss", "sysObjectID"),
    "siteboss572": ("asentria_siteboss", "sysObjectID"),
    "wti-power": ("wti_power", "sysObjectID"),
}
# Captures no shipped profile reads, and why (told "unknown device" with what was found).
UNREAD: dict[str, str] = {}
# LibreNMS "power"/"power_consumed" sensors that are no electrical power or energy reading
# per the MIB: they must not be read as one.
NOT_POWER = {
    ("cetpower", "12551.4.1.2.2.1.14.1"): "tsiPhaseInstalledPowerInW: installed capacity, a rating",
    ("cxc", "7309.5.3.1.4.0"): "rectSysTotalCapacityInstalled: a rating",
    ("cxc_e3", "7309.5.3.1.4.0"): "rectSysTotalCapacityInstalled: a rating",
    ("digipower", "17420.1.2.9.1.11.0"): "pdu01Value is a current (0.1 A); LibreNMS multiplies "
                                        "it by the voltage, an estimate without power factor",
    ("janitza-umg96_umg96", "34278.1.16.0"): "reactive power L1 (var), negative",
    ("janitza-umg96_umg96", "34278.1.17.0"): "reactive power L2 (var), negative",
    ("janitza-umg96_umg96", "34278.1.18.0"): "reactive power L3 (var), negative",
    ("janitza-umg96_umg96", "34278.2.2.0"): "reactive power L1-L3 (var), negative",
    ("janitza-umg96_umg96", "34278.4.2.0"): "reactive energy (kvarh)",
    ("rittal-lcp_cmciii-pu-lcp", "2606.7.4.2.2.1.11.2.173"): "LCP 'Cooling Capacity': heat "
                                                             "removed, not electrical power",
}
# Captures whose profile reads no power: their other sensors are checked instead.
OTHER_SENSORS = {"rittal-lcp_cmciii-pu-lcp": ("temperature", "temperature_c")}
# The quantity LibreNMS reads from UPS-MIB, read by the profile from the vendor MIB.
SAME_AS = {
    ("eatonupsm2_9px+empg2", "1.3.6.1.2.1.33.1.4.4.1.4.1"): "1.3.6.1.4.1.534.1.4.4.1.4.1",
}
# Where the MIB disagrees with LibreNMS's value: (value per the MIB or None for "not
# available", why).
PER_MIB = {
    ("generex-ups_cs141", "1.3.6.1.2.1.33.1.4.4.1.4.1"):
        (None, "upsOutputPower is NonNegativeInteger (RFC 1628): -4 W is out of range"),
    ("generex-ups_cs141", "1.3.6.1.2.1.33.1.4.4.1.4.3"):
        (None, "upsOutputPower is NonNegativeInteger (RFC 1628): -26 W is out of range"),
}
# Where LibreNMS's unit is not the object's: (unit, why).
UNIT_IS = {
    **{("janitza-umg96_umg96", f"1.3.6.1.4.1.34278.1.{n}.0"): (
        "VA", "apparent power: each exceeds sqrt(P^2 + Q^2) of its phase (UMG 96 MIB text not "
              "found: UNCONFIRMED, see janitza_umg96_snmp.yaml)") for n in (19, 20, 21)},
    ("janitza-umg96_umg96", "1.3.6.1.4.1.34278.2.3.0"): (
        "VA", "apparent power L1-L3: 10971 >= sqrt(10041^2 + 4365^2) = 10949 (UNCONFIRMED)"),
    **{("schleifenbauer", f"1.3.6.1.4.1.31034.12.1.1.2.6.1.1.9.210.{n}"): (
        "VA", "sdbDevInPowerVoltAmpere, UNITS \"VA\" (SCHLEIFENBAUER-DATABUS-MIB 2023-02-07); "
              "active power is column 10, sdbDevInPowerWatt") for n in (1, 2, 3)},
}
# Power and energy objects of a profile LibreNMS does not read: value by hand from the raw
# number and the MIB's unit.
MIB_ONLY = [
    # lgpPduPsEntryEnergyAccum.1.1 = 959375, UNITS "0.1 Kilowatt-Hour"
    ("liebert", "1.3.6.1.4.1.476.1.42.3.8.30.20.1.50.1.1", "active_energy_kwh", 95937.5),
    # lgpPduPsEntryPwrTotal summed over power sources: one source, 2411 W
    ("liebert", "total", "active_power_w", 2411.0),
    # pduUnitStatusActivePower.1 = 1120 W, its phases' 521 + 599 W; apparent 1222 VA
    ("enlogic-pdu_v2", "1.3.6.1.4.1.38446.1.2.4.1.4.1", "active_power_w", 1120.0),
    ("enlogic-pdu_v2", "1.3.6.1.4.1.38446.1.3.4.1.7.1.2", "active_power_w", 599.0),
    ("enlogic-pdu_v2", "1.3.6.1.4.1.38446.1.2.4.1.5.1", "apparent_power_va", 1222.0),
    ("enlogic-pdu_v2", "total", "active_power_w", 1120.0),
    # pdug5InputTotalEnergy.1 = 801, UNITS KWh per PANDUIT-MIB ("accumulated since PDU in
    # service"); the device total is its one PDU's
    ("panduit_2", "1.3.6.1.4.1.19536.10.1.2.1.1.6.1", "active_energy_kwh", 801.0),
    ("panduit_2", "total", "active_energy_kwh", 801.0),
]
METRIC_OF_UNIT = {"W": "active_power_w", "VA": "apparent_power_va", "kWh": "active_energy_kwh"}
POWER_CLASSES = ("power", "power_consumed")


def _full(oid: str) -> str:
    oid = oid.lstrip(".")
    return oid if oid.startswith("1.3.6.1.2.1.") or oid.startswith(ENTERPRISES) else \
        ENTERPRISES + oid


def sensor_cases() -> list:
    cases = []
    for capture in captures(CORPUS_MORE):
        if capture in UNREAD:
            continue
        for sensor in expected(capture, CORPUS_MORE)["sensors"]:
            if sensor["class"] not in POWER_CLASSES:
                continue
            oid = sensor["oid"].lstrip(".")
            short = oid.removeprefix(ENTERPRISES)
            follows = ("not-power" if (capture, short) in NOT_POWER else
                       "mib" if (capture, oid) in PER_MIB or (capture, oid) in UNIT_IS
                       else "librenms")
            cases.append(pytest.param(capture, sensor,
                                      id=f"{capture}:{sensor['class']}:{oid}:{follows}"))
    return cases


async def _read_all(port: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for capture in captures(CORPUS_MORE):
        client = PysnmpClient("127.0.0.1", port, capture, "2c", timeout_s=TIMEOUT_S, retries=1)
        try:
            try:
                found = await identify_device(client, PROFILES.values())
            except NoProfileMatches as exc:
                out[capture] = str(exc)
                continue
            answers, refused = await read_answers(client, plan_for(found.profile))
        finally:
            client.close()
        sourced = {s.oid: s.reading for s in
                   decode_points(found.profile, answers, capture, 0.0)}
        out[capture] = (found, sourced, refused)
    return out


@pytest.fixture(scope="module")
def agent_port(tmp_path_factory):
    if not snmpsim_command():
        pytest.fail("snmpsim is part of the test extra: pip install -e '.[test]'")
    with snmpsim(tmp_path_factory.mktemp("snmpsim-more"), CORPUS_MORE) as port:
        yield port


@pytest.fixture(scope="module")
def corpus(agent_port) -> dict[str, object]:
    """capture -> (Identification, {source OID: reading}, refused requests), or the
    "unknown device" message."""
    return asyncio.run(_read_all(agent_port))


def test_every_capture_has_a_row():
    assert set(captures(CORPUS_MORE)) == set(PROFILE_OF) | set(UNREAD)


def test_at_least_90_percent_of_all_captures_are_read():
    # 14 reviewed captures (tests/test_snmp_corpus.py) + these 59.
    assert (14 + len(PROFILE_OF)) / (14 + len(PROFILE_OF) + len(UNREAD)) >= 0.9


@pytest.mark.parametrize("capture", sorted(PROFILE_OF))
def test_capture_is_identified(corpus, capture):
    got = corpus[capture]
    assert not isinstance(got, str), got
    found, readings, refused = got
    assert (found.profile.name, found.rule) == PROFILE_OF[capture], found.why
    assert found.why, "the reason is given"
    assert refused == 0
    assert readings, "nothing decoded"


def other_cases() -> list:
    return [pytest.param(capture, sensor, id=f"{capture}:{cls}:{sensor['oid'].lstrip('.')}")
            for capture, (cls, _metric) in sorted(OTHER_SENSORS.items())
            for sensor in expected(capture, CORPUS_MORE)["sensors"] if sensor["class"] == cls]


@pytest.mark.parametrize(("capture", "sensor"), other_cases())
def test_other_sensor_decodes_to_the_reference(corpus, capture, sensor):
    _found, readings, _refused = corpus[capture]
    reading = readings[sensor["oid"].lstrip(".")]
    assert (reading.metric, reading.quality) == (OTHER_SENSORS[capture][1], Quality.OK)
    assert reading.value == pytest.approx(sensor["expected"], rel=1e-9)


@pytest.mark.parametrize(("capture", "sensor"), sensor_cases())
def test_power_sensor_decodes_to_the_reference(corpus, capture, sensor):
    _found, readings, _refused = corpus[capture]
    oid = sensor["oid"].lstrip(".")
    short = oid.removeprefix(ENTERPRISES)
    if (capture, short) in NOT_POWER:
        reading = readings.get(oid)
        assert reading is None or reading.metric not in METRIC_OF_UNIT.values(), \
            NOT_POWER[capture, short]
        return
    reading = readings.get(SAME_AS.get((capture, oid), oid))
    assert reading is not None, f"{oid} ({sensor['descr']}) not decoded"
    unit = UNIT_IS.get((capture, oid), (sensor["unit"], ""))[0]
    assert reading.metric == METRIC_OF_UNIT[unit]
    if (capture, oid) in PER_MIB:
        want, _why = PER_MIB[capture, oid]
        if want is None:
            assert (reading.value, reading.quality) == (None, Quality.NOT_AVAILABLE)
            return
    else:
        want = sensor["expected"]
    assert reading.quality == Quality.OK
    assert reading.value == pytest.approx(want, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("capture", "oid", "metric", "want"), MIB_ONLY,
                         ids=[f"{c}:{o}" for c, o, _m, _w in MIB_ONLY])
def test_objects_librenms_does_not_read(corpus, capture, oid, metric, want):
    found, readings, _refused = corpus[capture]
    if oid == "total":
        totals = derive_totals(found.profile.totals, list(readings.values()), capture, 0.0)
        values = [r.value for r in totals if r.metric == metric]
        assert values == [pytest.approx(want, rel=1e-9)]
        return
    reading = readings[oid]
    assert (reading.metric, reading.quality) == (metric, Quality.OK)
    assert reading.value == pytest.approx(want, rel=1e-9)


# Shared sysObjectIDs: what `probe` says about its choice (capture, words it must print).
PROBE_SAYS = [
    ("liebert", "profile liebert_pdu (by sysObjectID: sysObjectID 1.3.6.1.4.1.476.1.42 is under "
                "1.3.6.1.4.1.476.1.42 and 1.3.6.1.4.1.476.1.42.3.8.30.20.1.65 answers"),
    ("eatonupsm2_9px", "profile ups_mib (by probe: no vendor profile claims it; the standard "
                       "MIB object 1.3.6.1.2.1.33.1 answers; passed over: eaton_xups"),
    ("cxc_ups", "passed over: cordex_cxc (sysObjectID 1.3.6.1.4.1.7309.5 is under "
                "1.3.6.1.4.1.7309.5, but none of 1.3.6.1.4.1.7309.5.3.1.2.0 answers)"),
    ("generex-ups_cs141", "profile ups_mib (by sysObjectID: sysObjectID 1.3.6.1.2.1.33 is under "
                          "1.3.6.1.2.1.33 and 1.3.6.1.2.1.33.1 answers"),
    ("hpe-pdumm", "profile hpe_pdu (by sysDescr: sysDescr matches /^HP PDU Management Module/"),
    ("abbups_abbups", "profile ups_mib (by probe:"),
]


@pytest.mark.parametrize(("capture", "says"), PROBE_SAYS, ids=[c for c, _s in PROBE_SAYS])
def test_probe_tells_which_rule_chose_the_profile(agent_port, capture, says, capsys):
    url = f"snmp://127.0.0.1:{agent_port}?version=2c&community={capture}"
    assert main(["probe", url, "--json", "--timeout", "5"]) == 0
    _out, err = capsys.readouterr()
    assert says in err, err

