"""Identification rules as tables: hand-made agents (OID -> value) answered by an in-memory
client, and the profile and rule each must get; and rows chosen by name (`matches:`).
No network: the rules alone."""

from __future__ import annotations

import asyncio

import pytest

from pue_monitor.collectors.snmp_decode import MISSING, decode_points
from pue_monitor.collectors.snmp_identify import (
    SYS_DESCR,
    SYS_OBJECT_ID,
    NoProfileMatches,
    identify_device,
)
from pue_monitor.config.profiles import load_profiles

PROFILES = load_profiles()


class DictAgent:
    """The two client calls over a dict of OID -> value."""

    def __init__(self, objects: dict[str, object]) -> None:
        self.objects = objects

    async def get(self, oids):
        return {o: self.objects.get(o, MISSING) for o in oids}

    async def walk(self, columns, max_repetitions):
        return {o: v for o, v in self.objects.items()
                for c in columns if o.startswith(c + ".")}

    def close(self) -> None:
        pass


def agent(sys_object_id: str | None, descr: str = "", **objects: int) -> dict[str, object]:
    found: dict[str, object] = {SYS_DESCR: descr}
    if sys_object_id is not None:
        found[SYS_OBJECT_ID] = sys_object_id
    found.update({k.replace("_", "."): v for k, v in objects.items()})
    return found


APC = "1.3.6.1.4.1.318.1.3.4.6"
RPDU2_POWER = "1_3_6_1_4_1_318_1_1_26_4_3_1_5_1"
RPDU_POWER = "1_3_6_1_4_1_318_1_1_12_1_16_0"
UPS_OUT_POWER = "1_3_6_1_2_1_33_1_4_4_1_4_1"
LIEBERT = "1.3.6.1.4.1.476.1.42"
NET_SNMP = "1.3.6.1.4.1.8072.3.2.10"
ENTITY_TYPE = "1_3_6_1_2_1_99_1_1_1_1_1"

# (case, agent, expected profile, expected rule)
CASES = [
    ("rPDU2 unit", agent(APC, **{RPDU2_POWER: 27, RPDU_POWER: 270}), "apc_rpdu2", "sysObjectID"),
    ("first-generation rPDU: rPDU2 passed over", agent(APC, **{RPDU_POWER: 270}),
     "apc_rpdu", "sysObjectID"),
    ("APC UPS under the masterSwitch arc: PDUs passed over",
     agent(APC, **{"1_3_6_1_4_1_318_1_1_1_4_2_8_0": 169}), "apc_ups", "sysObjectID"),
    ("Smart-UPS", agent("1.3.6.1.4.1.318.1.3.27", **{"1_3_6_1_4_1_318_1_1_1_4_2_8_0": 169}),
     "apc_ups", "sysObjectID"),
    ("Liebert UPS", agent(LIEBERT, **{UPS_OUT_POWER: 900}), "liebert_gp", "sysObjectID"),
    ("Liebert MPH PDU",
     agent(LIEBERT, **{"1_3_6_1_4_1_476_1_42_3_8_30_20_1_65_1_1": 2411}),
     "liebert_pdu", "sysObjectID"),
    ("Eaton XUPS", agent("1.3.6.1.4.1.534.1", **{"1_3_6_1_4_1_534_1_4_4_1_4_1": 246}),
     "eaton_xups", "sysObjectID"),
    ("Eaton card serving UPS-MIB only", agent("1.3.6.1.4.1.534.1", **{UPS_OUT_POWER: 20}),
     "ups_mib", "probe"),
    ("Generex upsMIB root", agent("1.3.6.1.2.1.33", **{UPS_OUT_POWER: 432}), "ups_mib",
     "sysObjectID"),
    ("net-snmp UPS", agent(NET_SNMP, "Linux", **{UPS_OUT_POWER: 100}), "ups_mib", "probe"),
    ("net-snmp with UPS-MIB and ENTITY-SENSOR", agent(NET_SNMP, **{UPS_OUT_POWER: 1,
                                                                   ENTITY_TYPE: 6}),
     "ups_mib", "probe"),
    ("net-snmp with ENTITY-SENSOR only", agent(NET_SNMP, **{ENTITY_TYPE: 6}), "entity_sensor",
     "probe"),
    ("Tripp Lite PDU", agent("1.3.6.1.4.1.850.1.1.1",
                             **{"1_3_6_1_4_1_850_1_1_3_2_3_2_1_1_8_1_1": 207}),
     "tripplite_pdu", "sysObjectID"),
    ("Tripp Lite UPS", agent("1.3.6.1.4.1.850.1", **{UPS_OUT_POWER: 357}), "ups_mib", "probe"),
    ("Cordex rectifiers", agent("1.3.6.1.4.1.7309.5", **{"1_3_6_1_4_1_7309_5_3_1_2_0": 1}),
     "cordex_cxc", "sysObjectID"),
    ("Cordex UPS", agent("1.3.6.1.4.1.7309.5", **{UPS_OUT_POWER: 0}), "ups_mib", "probe"),
    ("no sysObjectID, sysDescr", agent(None, "HP PDU Management Module, revision 1.00.A",
                                       **{"1_3_6_1_4_1_232_165_2_3_1_1_4_1": 1587}),
     "hpe_pdu", "sysDescr"),
    ("leading dot", agent(".1.3.6.1.4.1.17420"), "digipower_pdu", "sysObjectID"),
    ("longest prefix wins", agent("1.3.6.1.4.1.34278.8.6"), "janitza_umg96_snmp", "sysObjectID"),
    ("WTI console server: not a PDU", agent("1.3.6.1.4.1.2634.2.3", **{UPS_OUT_POWER: 1}),
     "ups_mib", "probe"),
    ("HPE UPS under the power arc: not a PDU",
     agent("1.3.6.1.4.1.232.165.3", **{UPS_OUT_POWER: 900}), "ups_mib", "probe"),
    ("prefix in whole arcs only", agent("1.3.6.1.4.1.318.1.3.41", **{UPS_OUT_POWER: 1}),
     "ups_mib", "probe"),
]


@pytest.mark.parametrize(("objects", "name", "rule"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_identification(objects, name, rule):
    found = asyncio.run(identify_device(DictAgent(objects), PROFILES.values()))
    assert (found.profile.name, found.rule) == (name, rule), found.why


@pytest.mark.parametrize(("objects", "passed"), [
    (agent(APC, **{RPDU_POWER: 270}), ["apc_rpdu2"]),
    (agent(APC, **{"1_3_6_1_4_1_318_1_1_1_4_2_8_0": 169}), ["apc_rpdu2", "apc_rpdu"]),
    (agent("1.3.6.1.4.1.534.1", **{UPS_OUT_POWER: 20}), ["eaton_xups"]),
    (agent(LIEBERT, **{UPS_OUT_POWER: 900}), ["liebert_pdu"]),
    (agent(LIEBERT, **{"1_3_6_1_4_1_476_1_42_3_8_30_20_1_65_1_1": 1}), []),
])
def test_candidates_passed_over_are_told(objects, passed):
    found = asyncio.run(identify_device(DictAgent(objects), PROFILES.values()))
    assert [p.split(" ")[0] for p in found.passed_over] == passed


@pytest.mark.parametrize(("objects", "words"), [
    (agent("1.3.6.1.4.1.99999.1", "Mystery"), ["unknown device", "1.3.6.1.4.1.99999.1",
                                               "'Mystery'", "no standard MIB answers"]),
    (agent(LIEBERT, "Liebert CRV"), ["unknown device", "passed over: liebert_pdu", "; liebert_gp"]),
    (agent(None), ["sysObjectID ?"]),
])
def test_unknown_device_says_what_was_found(objects, words):
    with pytest.raises(NoProfileMatches) as err:
        asyncio.run(identify_device(DictAgent(objects), PROFILES.values()))
    for word in words:
        assert word in str(err.value)


def test_rows_chosen_by_name_unit_and_scale():
    # Rittal CMC III variable rows: only measured values in degree C with scale -100.
    base = "1.3.6.1.4.1.2606.7.4.2.2.1"
    rows = {  # (device, variable): (name, unit, scale, raw value)
        (2, 17): ("Air Temp.Server In.Top.Value", "degree C", -100, 1880),
        (2, 18): ("Air Temp.Server In.Top.SetPtHigh", "degree C", -100, 3000),
        (2, 173): ("Cooling Capacity.Value", "W", 1, 1707),
        (1, 9): ("Temperature.Value", "degree C", -10, 236),
    }
    answers: dict[str, object] = {}
    for (device, var), (name, unit, scale, raw) in rows.items():
        answers.update({f"{base}.3.{device}.{var}": name, f"{base}.5.{device}.{var}": unit,
                        f"{base}.7.{device}.{var}": scale, f"{base}.11.{device}.{var}": raw})
    got = {r.oid: r.reading.value for r in
           decode_points(PROFILES["rittal_cmc3"], answers, "lcp", 0.0)}
    assert got == {f"{base}.11.2.17": pytest.approx(18.8)}
