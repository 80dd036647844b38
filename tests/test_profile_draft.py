"""`pue-monitor profile draft`: a profile proposed from a walk and the device's MIB, saved,
then used by `probe` against the same device served by snmpsim on 127.0.0.1; every
reference power, energy, current, voltage and frequency sensor of the capture reads the
reference value.

The three captures' families all have shipped profiles now (gude_epc, janitza_umg,
ups_mib); the test names the draft with `--profile`, so the shipped profile takes no part
(it is neither chosen nor loaded under the draft's name). The MIBs are excerpts of the
vendor modules (tests/corpus/mibs/README.md).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil

import pytest
import yaml

from pue_monitor.cli import main
from pue_monitor.collectors.mib_text import MibObject
from pue_monitor.collectors.profile_draft import guess
from pue_monitor.config.profiles import load_profiles
from tests.snmp_support import CORPUS, CORPUS_MORE, expected, snmpsim, snmpsim_command

MIBS = CORPUS.parent / "mibs"
# capture -> (its corpus folder, the MIB given to the draft)
CASES = {
    "gude-epc_1202": (CORPUS_MORE, "GUDEADS-EPC1202-MIB"),
    "janitza_generic": (CORPUS, "JANITZA-MIB"),
    "deltaups": (CORPUS_MORE, "UPS-MIB"),
}
# The reference's unit -> the metric a draft reads it as.
METRIC_OF_UNIT = {"W": "active_power_w", "VA": "apparent_power_va", "kWh": "active_energy_kwh",
                  "A": "current_a", "V": "voltage_v", "Hz": "frequency_hz"}
NOT_READ_UNITS = {"var", "kvarh"}  # reactive: a draft must leave them out
# Where the MIB's words and the reviewed reference disagree on the metric (the value is
# still the reference's): the operator fixes it when reviewing the draft.
MIB_SAYS = {
    ("janitza_generic", "1.3.6.1.4.1.34278.2.3.0"): (
        "active_power_w", 'JANITZA-MIB s3: "Power Summe L1..L3  in Watt"; the capture\'s '
        "review and the shipped profile read it as apparent power (VA)"),
}


def _name(capture: str) -> str:
    return "draft_" + re.sub(r"[^a-z0-9]+", "_", capture)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """snmpsim serving the three captures; yields (port, folder of the saved drafts)."""
    if not snmpsim_command():
        pytest.fail("snmpsim is part of the test extra: pip install -e '.[test]'")
    corpus = tmp_path_factory.mktemp("corpus")
    for capture, (folder, _mib) in CASES.items():
        for suffix in (".snmprec", ".expected.json"):
            shutil.copy(folder / f"{capture}{suffix}", corpus / f"{capture}{suffix}")
    drafts = tmp_path_factory.mktemp("drafts")
    with snmpsim(tmp_path_factory.mktemp("snmpsim"), corpus) as port:
        yield port, drafts


def _draft(source: str, mib: str, out) -> int:
    return main(["profile", "draft", source, "--mib", str(MIBS / mib), "--name", out.stem,
                 "-o", str(out)])


def _point_of(profile, oid: str):
    """(draft point, its labels for this OID) whose OID pattern matches ``oid``."""
    for point in profile.snmp_points:
        pattern = "^" + re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>\\d+)",
                               re.escape(point.oid)) + "$"
        match = re.match(pattern.replace("(?P<_>", "(?:"), oid)
        if match:
            labels = {k: v for k, v in point.labels.items() if v != "*"}
            labels.update(match.groupdict())
            return point, labels
    return None, None


@pytest.mark.integration
@pytest.mark.parametrize("capture", sorted(CASES))
def test_draft_save_probe_reads_the_reference(served, capture, capsys):
    port, drafts = served
    folder, mib = CASES[capture]
    out = drafts / f"{_name(capture)}.yaml"
    assert _draft(str(folder / f"{capture}.snmprec"), mib, out) == 0
    capsys.readouterr()
    profile = load_profiles(drafts)[_name(capture)]  # the saved draft is a valid profile
    url = f"snmp://127.0.0.1:{port}?version=2c&community={capture}"
    code = main(["probe", url, "--profile", _name(capture), "--profiles-dir", str(drafts),
                 "--json", "--timeout", "2"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows = {(r["metric"], tuple(sorted(r["labels"].items()))): r for r in json.loads(printed)}
    checked = 0
    for sensor in expected(capture, folder)["sensors"]:
        oid = sensor["oid"].lstrip(".")
        unit = sensor.get("mib_unit", sensor["unit"])
        point, labels = _point_of(profile, oid)
        if unit in NOT_READ_UNITS:
            assert point is None, f"{oid} ({sensor['descr']}) is {unit}: must not be drafted"
            continue
        if unit not in METRIC_OF_UNIT:
            continue
        assert point is not None, f"{oid} ({sensor['descr']}, {unit}) not drafted"
        metric = MIB_SAYS.get((capture, oid), (METRIC_OF_UNIT[unit], ""))[0]
        assert point.metric == metric, oid
        row = rows[(point.metric, tuple(sorted(labels.items())))]
        assert row["quality"] == "ok", oid
        assert row["value"] == pytest.approx(sensor["expected"], rel=1e-9, abs=1e-9), oid
        checked += 1
    assert checked >= 5


@pytest.mark.integration
def test_draft_from_the_live_device_equals_the_draft_from_its_capture(served, capsys):
    port, drafts = served
    folder, mib = CASES["gude-epc_1202"]
    saved, live = drafts / "draft_saved.yaml", drafts / "draft_live.yaml"
    assert _draft(str(folder / "gude-epc_1202.snmprec"), mib, saved) == 0
    url = f"snmp://127.0.0.1:{port}?version=2c&community=gude-epc_1202"
    assert _draft(url, mib, live) == 0
    capsys.readouterr()
    points = [yaml.safe_load(p.read_text())["snmp_points"] for p in (saved, live)]
    assert points[0] == points[1] and len(points[0]) == 7


def _obj(units: str = "", description: str = "", name: str = "x", syntax: str = "Integer32",
         hint: str = "") -> MibObject:
    return MibObject(name=name, oid="1.3.6.1.4.1.1.1", module="M", syntax=syntax, units=units,
                     access="read-only", description=description, hint=hint)


# (MIB clauses, expected (metric, scale) or None)
GUESSES = [
    (_obj("W", "Active Power"), ("active_power_w", 1.0)),
    (_obj("0.1 kW"), ("active_power_w", 100.0)),
    (_obj("Wh", "Absolute Active Energy counter."), ("active_energy_kwh", 0.001)),
    (_obj("0.01 kWh"), ("active_energy_kwh", 0.01)),
    (_obj("mA"), ("current_a", 0.001)),
    (_obj("0.1 RMS Amp"), ("current_a", 0.1)),
    (_obj("RMS Volts"), ("voltage_v", 1.0)),
    (_obj("0.1 Volt DC"), ("voltage_v", 0.1)),
    (_obj("0.1 Hertz"), ("frequency_hz", 0.1)),
    (_obj("degrees Centigrade"), ("temperature_c", 1.0)),
    (_obj("percent", "The percentage of the UPS power capacity presently being used on this "
          "output line", "upsOutputPercentLoad"),
     ("load_pct", 1.0)),
    (_obj("", "Voltage Phase L1 in 100mV"), ("voltage_v", 0.1)),
    (_obj("", "Active Energie  Phase L1 in 0.1 KWh"), ("active_energy_kwh", 0.1)),
    (_obj("", "Frequenz* 0.01 Hz"), ("frequency_hz", 0.01)),
    (_obj("", "Cos(Phi) L1 * 0.001"), ("power_factor", 0.001)),
    (_obj("", "Voltage", syntax="Tenths", hint="d-1"), None),  # no unit named: not guessed
    (_obj("VA", "L Line Mean Apparent Power"), ("apparent_power_va", 1.0)),
    (_obj("VAR", "L Line Mean Reactive Power"), None),
    (_obj("", "Reaktiv Power L1  in VAr"), None),
    (_obj("percent", "battery charge remaining expressed as a percent"), None),
    (_obj("0.1 degree", "Phase Angle"), None),
    (_obj("seconds"), None),
    (_obj("W", "Rated output power"), None),
    (_obj("", "An estimate expressed as a percent of full charge"), None),
]


@pytest.mark.parametrize(("obj", "want"), GUESSES, ids=[f"{g[0].units}|{g[0].description}"
                                                        for g in GUESSES])
def test_guess_from_mib_clauses(obj, want):
    got = guess(obj)
    assert (None if got is None else (got.metric, pytest.approx(got.scale))) == \
        (None if want is None else (want[0], pytest.approx(want[1])))


def test_draft_without_a_usable_object_says_so(tmp_path, capsys):
    walk = tmp_path / "dev.snmprec"
    walk.write_text("1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.99\n1.3.6.1.4.1.99.1.0|2|5\n")
    code = main(["profile", "draft", str(walk)])
    assert code == 2 and "give the device's MIB with --mib" in capsys.readouterr().err


def test_bad_walk_and_mib_files_are_named(tmp_path, capsys):
    assert main(["profile", "draft", str(tmp_path / "missing.snmprec")]) == 2
    assert "missing.snmprec: cannot read" in capsys.readouterr().err
    walk = tmp_path / "dev.snmprec"
    walk.write_text("1.3.6.1.4.1.99.1.0|2|five\n")
    assert main(["profile", "draft", str(walk)]) == 2
    assert "dev.snmprec:1: not a walk line" in capsys.readouterr().err
    mib = tmp_path / "EMPTY-MIB"
    mib.write_text("EMPTY-MIB DEFINITIONS ::= BEGIN END\n")
    walk.write_text("1.3.6.1.4.1.99.1.0|2|5\n")
    assert main(["profile", "draft", str(walk), "--mib", str(mib)]) == 2
    assert "EMPTY-MIB: no OBJECT-TYPE" in capsys.readouterr().err


# A register list as an integrator types it from the Eastron SDM230 protocol table
# (input registers, 0-based addresses): and the words the meter would serve.
SDM230_CSV = """address,type,order,scale,unit,metric,function,label,name
0,float32,ABCD,1,V,,4,,Line to neutral volts (30001)
12,float32,ABCD,1,W,active_power_w,4,,Active power (30013)
72,float32,ABCD,1,kWh,,4,,Import active energy (30073)
"""
SDM230_WORDS = {0: 0x4366, 1: 0x0000, 12: 0x449E, 13: 0x2000, 72: 0x449A, 73: 0x5000}


@pytest.mark.integration
def test_modbus_draft_from_a_register_list_probes_the_meter(tmp_path, capsys):
    from pue_monitor.simulator.faults import DeviceFaults
    from pue_monitor.simulator.modbus_server import ModbusEndpoint

    (tmp_path / "sdm230.csv").write_text(SDM230_CSV)
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    out = drafts / "draft_sdm230.yaml"
    assert main(["profile", "draft", str(tmp_path / "sdm230.csv"), "-o", str(out)]) == 0
    profile = load_profiles(drafts)["draft_sdm230"]
    shown = tmp_path / "shown.yaml"

    async def serve_and_probe() -> tuple[int, str]:
        endpoint = ModbusEndpoint("127.0.0.1", 0)
        endpoint.add_unit(1, profile, DeviceFaults())
        endpoint.update(1, {4: dict(SDM230_WORDS)})
        await endpoint.start()
        try:
            url = f"modbus://127.0.0.1:{endpoint.port}?unit=1"
            code = await asyncio.to_thread(main, [
                "probe", url, "--profile", "draft_sdm230", "--profiles-dir", str(drafts),
                "--json", "--timeout", "2"])
            printed = capsys.readouterr().out
            # The draft can also show what it reads now, before it is saved anywhere.
            drafted = await asyncio.to_thread(main, [
                "profile", "draft", str(tmp_path / "sdm230.csv"), "--modbus", url,
                "--timeout", "2", "-o", str(shown)])
        finally:
            await endpoint.stop()
        return code + drafted, printed

    capsys.readouterr()
    code, printed = asyncio.run(serve_and_probe())
    assert code == 0
    assert re.search(r"active_power_w\s+1265\s+ok", capsys.readouterr().err)
    got = {r["metric"]: r["value"] for r in json.loads(printed)}
    assert got == {"voltage_v": 230.0, "active_power_w": 1265.0, "active_energy_kwh": 1234.5}


@pytest.mark.parametrize(("row", "says"), [
    ("x,float32,ABCD,1,W,,3,,", "address 'x' is not a number"),
    ("0,float16,ABCD,1,W,,3,,", "type 'float16'"),
    ("0,float32,ABCD,1,furlong,,3,,", "unit 'furlong'"),
    ("0,float32,ABCD,1,W,voltage_v,3,,", "unit 'W' is not a unit of voltage_v"),
    ("0,float32,ABCD,1,W,,3,colour=red,", "label 'colour=red'"),
])
def test_bad_register_list_rows_are_named(tmp_path, capsys, row, says):
    path = tmp_path / "regs.csv"
    path.write_text("address,type,order,scale,unit,metric,function,label,name\n" + row + "\n")
    assert main(["profile", "draft", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"regs.csv:2: {says}" in err


# (snmpwalk -On's text after "= ", the raw value the agent sent)
SNMPWALK_VALUES = [
    ("INTEGER: 53", 53),
    ("INTEGER: -7", -7),
    ("INTEGER: up(1)", 1),  # a named value: the number in brackets
    ("INTEGER: l1l2(12)", 12),  # digits in the name are not the value
    ("INTEGER: 53.500", 53500),  # DISPLAY-HINT "d-3": the raw value has every digit
    ("INTEGER: -1.25", -125),
    # net-snmp 5.9 writes no 0 before the point (raw -5, 0 and 5 through "d-1", "d-2")
    ("INTEGER: -.5 Volts", -5),
    ("INTEGER: .00", 0),
    ("INTEGER: .05", 5),
    ("INTEGER: -", "-"),  # no digit at all: text
    # an answer of another type than the MIB says: read as sent
    ("Wrong Type (should be INTEGER): Gauge32: 7", 7),
    ("Gauge32: 0.5 %", 5),  # "d-1" with the object's UNITS
    ("Gauge32: 2300 0.1 Volts", 2300),  # UNITS holding a number
    ("Timeticks: (12345) 0:02:03.45", 12345),
    ("Counter64: 18446744073709551615", 18446744073709551615),
    ('STRING: "Smart-UPS 3000"', "Smart-UPS 3000"),
    ("INTEGER: unknown", "unknown"),  # no number: kept as text (a decode error later)
]


@pytest.mark.parametrize(("text", "raw"), SNMPWALK_VALUES, ids=[v[0] for v in SNMPWALK_VALUES])
def test_snmpwalk_values_read_as_the_agent_sent_them(tmp_path, text, raw):
    from pue_monitor.collectors.snmp_walkfile import read_walk
    walk = tmp_path / "dev.walk"
    walk.write_text(f".1.3.6.1.4.1.99.1.0 = {text}\n")
    assert read_walk(walk) == {"1.3.6.1.4.1.99.1.0": raw}
