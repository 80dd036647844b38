"""Every shipped Modbus profile: register images written by hand, decoded to engineering values.

The words are spelled out here from IEEE-754 and two's complement, never produced by the
project's encoder, so an encoder and decoder that agree on a wrong convention cannot pass.
Addresses are 0-based protocol addresses; the comments give the manual's numbers.
"""

from __future__ import annotations

import pytest

from pue_monitor.collectors.decode import decode_modbus
from pue_monitor.collectors.modbus_plan import plan_modbus, plan_profile
from pue_monitor.config.profiles import load_profiles
from pue_monitor.store.model import Quality

PROFILES = load_profiles()
MODBUS_PROFILES = sorted(n for n, p in PROFILES.items() if p.protocol == "modbus")
NA = "not available"
# A SunSpec device's chain around a meter model at 40070: "SunS", common model 1 (L 66),
# model 203 (L 105), end marker, as the SunSpec Information Model lays it out.
SUNSPEC_CHAIN_40000 = {40000: 0x5375, 40001: 0x6E53, 40002: 1, 40003: 66, 40070: 203,
                       40071: 105, 40177: 0xFFFF, 40178: 0}

# (case, profile, {address: word}, {(metric, label value or ""): expected value or NA})
IMAGES = [
    ("pm5xxx", "schneider_pm5xxx", {
        2999: 0x4148, 3000: 0x0000,  # manual 3000, current A: 12.5 A
        3027: 0x4366, 3028: 0x0000,  # 3028, voltage A-N: 230.0 V
        3059: 0x42F7, 3060: 0x0000,  # 3060, active power total: 123.5 kW
        3075: 0x4302, 3076: 0x0000,  # 3076, apparent power total: 130.0 kVA
        3109: 0x4248, 3110: 0x0000,  # 3110, frequency: 50.0 Hz
        3203: 0x0000, 3204: 0x0000, 3205: 0x075B, 3206: 0xCD15,  # 3204, INT64 123456789 Wh
    }, {("current_a", "L1"): 12.5, ("voltage_v", "L1"): 230.0,
        ("active_power_w", ""): 123500.0, ("apparent_power_va", ""): 130000.0,
        ("frequency_hz", ""): 50.0, ("active_energy_kwh", ""): 123456.789}),
    ("iem3xxx", "schneider_iem3xxx", {
        3053: 0x4088, 3054: 0x0000,  # 3054, active power A: 4.25 kW
        3059: 0x414C, 3060: 0x0000,  # 3060, total: 12.75 kW
        3109: 0x4246, 3110: 0x0000,  # 49.5 Hz
        3203: 0, 3204: 0, 3205: 0x0001, 3206: 0x0000,  # 65536 Wh
    }, {("active_power_w", "L1"): 4250.0, ("active_power_w", ""): 12750.0,
        ("frequency_hz", ""): 49.5, ("active_energy_kwh", ""): 65.536}),
    ("sdm630", "eastron_sdm630", {
        0x00: 0x4367, 0x01: 0x8000,  # 30001, L1 voltage: 231.5 V
        0x34: 0x4533, 0x35: 0xB000,  # 30053, total system power: 2875.0 W
        0x3E: 0x3F73, 0x3F: 0x3333,  # 30063, total power factor: 0.95 (float32 0.94999999)
        0x48: 0x47C0, 0x49: 0xE6A0,  # 30073, import: 98765.25 kWh
    }, {("voltage_v", "L1"): 231.5, ("active_power_w", ""): 2875.0,
        ("power_factor", ""): pytest.approx(0.95, abs=1e-7),
        ("active_energy_kwh", ""): 98765.25}),
    ("umg96rm", "janitza_umg96rm", {
        19000: 0x4365, 19001: 0xCCCD,  # voltage L1-N: 229.8 V (float32 229.80000305)
        19026: 0x4587, 19027: 0x0800,  # total active power: 4321.0 W
        19050: 0x4248, 19051: 0x0000,  # 50.0 Hz
        19068: 0x47F1, 19069: 0x2040,  # energy consumed (import): 123456.5 Wh
    }, {("voltage_v", "L1"): pytest.approx(229.8, abs=1e-5), ("active_power_w", ""): 4321.0,
        ("frequency_hz", ""): 50.0, ("active_energy_kwh", ""): pytest.approx(123.4565)}),
    ("diris a-40", "socomec_diris_a40", {
        50520: 0x0000, 50521: 0x5A0A,  # V1: 23050 x 0.01 V
        50526: 0x0000, 50527: 0x1388,  # 5000 x 0.01 Hz
        50528: 0x0000, 50529: 0x30D4,  # I1: 12500 mA
        50536: 0xFFFF, 50537: 0xFB2E,  # sum P: INT32 -1234 x 10 W (exporting)
        50780: 0x0012, 50781: 0xD687,  # Ea+: 1234567 kWh
    }, {("voltage_v", "L1"): pytest.approx(230.5), ("frequency_hz", ""): pytest.approx(50.0),
        ("current_a", "L1"): pytest.approx(12.5), ("active_power_w", ""): -12340.0,
        ("active_energy_kwh", ""): 1234567.0}),
    ("b23", "abb_b2x", {
        0x5000: 0x0000, 0x5001: 0x0000, 0x5002: 0x075B, 0x5003: 0xCD15,  # U64 0.01 kWh
        0x5B00: 0x0000, 0x5B01: 0x08FD,  # U32 2301 x 0.1 V
        0x5B0C: 0xFFFF, 0x5B0D: 0xFFFF,  # current L1: all 0xFF = not available
        0x5B14: 0x0012, 0x5B15: 0xD687,  # I32 1234567 x 0.01 W
        0x5B2C: 0x1386,  # U16 4998 x 0.01 Hz
        0x5B3A: 0xFC4A,  # I16 -950 x 0.001
    }, {("active_energy_kwh", ""): pytest.approx(1234567.89), ("voltage_v", "L1"):
        pytest.approx(230.1), ("current_a", "L1"): NA, ("active_power_w", ""):
        pytest.approx(12345.67), ("frequency_hz", ""): pytest.approx(49.98),
        ("power_factor", ""): pytest.approx(-0.95)}),
    ("m4m", "abb_m4m", {
        0x5000: 0, 0x5001: 0, 0x5002: 0, 0x5003: 0x2710,  # 10000 x 0.01 kWh
        0x5B1A: 0xFFF8, 0x5B1B: 0x5EE0,  # I32 -500000 x 0.01 W
        0x5B32: 0x1388,  # 5000 x 0.01 Hz
        0x5B40: 0x7FFF,  # power factor: signed "not available"
    }, {("active_energy_kwh", ""): 100.0, ("active_power_w", ""): -5000.0,
        ("frequency_hz", ""): 50.0, ("power_factor", ""): NA}),
    ("em24", "carlo_gavazzi_em24", {
        0x00: 0x0901, 0x01: 0x0000,  # INT32 2305 low word first: 230.5 V
        0x12: 0xFC18, 0x13: 0xFFFF,  # INT32 -1000 low word first: -100.0 W on L1
        0x28: 0xE240, 0x29: 0x0001,  # INT32 123456: 12345.6 W
        0x35: 0x03DE,  # INT16 990: 0.99
        0x37: 0x01F4,  # INT16 500: 50.0 Hz
        0x3E: 0xD687, 0x3F: 0x0012,  # kWh(+) TOT, INT32 1234567: 123456.7 kWh
        0x42: 0x0005, 0x43: 0x0000,  # kWh(+) PAR (reset by the user): 0.5 kWh, not read
    }, {("voltage_v", "L1"): pytest.approx(230.5), ("active_power_w", "L1"): -100.0,
        ("active_power_w", ""): pytest.approx(12345.6), ("power_factor", ""):
        pytest.approx(0.99), ("frequency_hz", ""): 50.0, ("active_energy_kwh", ""):
        pytest.approx(123456.7)}),
    ("sunspec 203", "sunspec_meter", {
        **SUNSPEC_CHAIN_40000,
        40072: 0x0D05, 40073: 0x04D2, 40076: 0xFFFE,  # A 3333, AphA 1234, A_SF -2: 12.34 A
        40077: 0x08FC,  # PhV 2300, V_SF -1: 230.0 V (average line to neutral)
        40078: 0x08FD, 40085: 0xFFFF,  # PhVphA 2301, V_SF -1: 230.1 V
        40086: 0x1388, 40087: 0xFFFE,  # Hz 5000, Hz_SF -2: 50.00 Hz
        40088: 0x3039, 40092: 0xFFFF,  # W 12345, W_SF -1: 1234.5 W
        40089: 0x8000,  # WphA not implemented
        40093: 0x8000, 40097: 0x0000,  # VA not implemented
        40103: 0xFFA1, 40107: 0x0000,  # PF -95 %, PF_SF 0: -0.95
        40116: 0x0001, 40117: 0xE240, 40124: 0x0001,  # TotWhImp 123456, TotWh_SF 1
    }, {("current_a", ""): pytest.approx(33.33), ("voltage_v", ""): pytest.approx(230.0),
        ("current_a", "L1"): pytest.approx(12.34), ("voltage_v", "L1"): pytest.approx(230.1),
        ("frequency_hz", ""): pytest.approx(50.0), ("active_power_w", ""):
        pytest.approx(1234.5), ("active_power_w", "L1"): NA, ("apparent_power_va", ""): NA,
        ("power_factor", ""): pytest.approx(-0.95), ("active_energy_kwh", ""):
        pytest.approx(1234.56)}),
    ("sunspec unimplemented scale factor", "sunspec_meter", {
        **SUNSPEC_CHAIN_40000,
        40078: 0x08FD, 40085: 0x8000,  # V_SF not implemented: the voltage is missing too
        40088: 0x3039, 40092: 0x0063,  # W_SF 99: outside -10..10, unusable
    }, {("voltage_v", "L1"): NA, ("active_power_w", ""): NA}),
    # An acc32 of 0 is SunSpec's "not implemented" for accumulators (pysunspec's
    # SUNS_UNIMPL_ACC32): a meter without TotWhImp, not a counter standing at 0 kWh.
    ("sunspec accumulator not implemented", "sunspec_meter", {
        **SUNSPEC_CHAIN_40000,
        40116: 0x0000, 40117: 0x0000, 40124: 0x0001,
    }, {("active_energy_kwh", ""): NA}),
    ("pac4200", "siemens_pac", {
        1: 0x4366, 2: 0x8000,  # offset 1, voltage L1-N: 230.5 V
        13: 0x4144, 14: 0x0000,  # offset 13, current L1: 12.25 A
        19: 0x4489, 20: 0x8000, 21: 0x44C8, 22: 0x0000,  # apparent power L1, L2: 1100, 1600 VA
        23: 0x4396, 24: 0x0000,  # L3: 300 VA
        25: 0x447A, 26: 0x0000,  # offset 25, active power L1: 1000.0 W
        27: 0x44BB, 28: 0x8000,  # offset 27, L2: 1500.0 W
        29: 0xC37A, 30: 0x0000,  # offset 29, L3: -250.0 W (exporting)
        55: 0x4247, 56: 0x0000,  # offset 55, line frequency: 49.75 Hz
        801: 0x419D, 802: 0x6F34, 803: 0x5400, 804: 0x0000,  # double 123456789.0 Wh
    }, {("voltage_v", "L1"): 230.5, ("current_a", "L1"): 12.25,
        ("active_power_w", "L3"): -250.0,
        ("active_power_w", ""): 2250.0,  # no total register read: L1 + L2 + L3
        ("apparent_power_va", ""): 3000.0, ("frequency_hz", ""): 49.75,
        ("active_energy_kwh", ""): pytest.approx(123456.789)}),
    ("sdm230", "eastron_sdm230", {
        0: 0x4366, 1: 0x0000,  # 30001, line to neutral volts: 230.0 V
        6: 0x40B0, 7: 0x0000,  # 30007, current: 5.5 A
        12: 0x449E, 13: 0x2000,  # 30013, active power: 1265.0 W
        18: 0x44A2, 19: 0x8000,  # 30019, apparent power: 1300.0 VA
        30: 0xBF00, 31: 0x0000,  # 30031, power factor: -0.5 (reverse current)
        70: 0x4248, 71: 0x0000,  # 30071, frequency: 50.0 Hz
        72: 0x449A, 73: 0x5000,  # 30073, import active energy: 1234.5 kWh
    }, {("voltage_v", ""): 230.0, ("current_a", ""): 5.5, ("active_power_w", ""): 1265.0,
        ("apparent_power_va", ""): 1300.0, ("power_factor", ""): -0.5,
        ("frequency_hz", ""): 50.0, ("active_energy_kwh", ""): 1234.5}),
    ("sdm72", "eastron_sdm72", {
        0: 0x4367, 1: 0x0000,  # 30001, phase 1 volts: 231.0 V
        12: 0x4448, 13: 0x0000,  # 30013, phase 1 power: 800.0 W
        52: 0x4516, 53: 0x0000,  # 30053, total system power: 2400.0 W
        72: 0x475D, 73: 0xD580,  # 30073, total import: 56789.5 kWh
    }, {("voltage_v", "L1"): 231.0, ("active_power_w", "L1"): 800.0,
        ("active_power_w", ""): 2400.0, ("active_energy_kwh", ""): 56789.5}),
    ("countis m34", "socomec_countis_m34", {
        0: 0x4366, 1: 0x0000,  # V1: 230.0 V
        6: 0x4080, 7: 0x0000,  # I1: 4.0 A
        12: 0x4466, 13: 0x0000, 14: 0x43E6, 15: 0x0000, 16: 0xC2A0, 17: 0x0000,  # P 920/460/-80 W
        18: 0x447A, 19: 0x0000, 20: 0x43FA, 21: 0x0000, 22: 0x42C8, 23: 0x0000,  # S 1000/500/100
    }, {("voltage_v", "L1"): 230.0, ("current_a", "L1"): 4.0, ("active_power_w", "L3"): -80.0,
        ("active_power_w", ""): 1300.0, ("apparent_power_va", ""): 1600.0}),
    ("countis m34 phase not a number", "socomec_countis_m34", {
        12: 0x4466, 13: 0x0000, 14: 0x7FC0, 15: 0x0000,  # P2 is a quiet NaN
    }, {("active_power_w", "L1"): 920.0, ("active_power_w", "L2"): NA,
        ("active_power_w", ""): NA}),  # a total short of a phase is no total
    ("countis m04", "socomec_countis_m04", {
        0: 0x4366, 1: 0x0000,  # V1: 230.0 V
        6: 0x4020, 7: 0x0000,  # I1: 2.5 A
        12: 0x440F, 13: 0xC000,  # P1: 575.0 W
        18: 0x4416, 19: 0x0000,  # S1: 600.0 VA
        70: 0x4248, 71: 0x0000,  # F: 50.0 Hz
    }, {("voltage_v", ""): 230.0, ("current_a", ""): 2.5, ("active_power_w", ""): 575.0,
        ("apparent_power_va", ""): 600.0, ("frequency_hz", ""): 50.0}),
    ("socomec ups", "socomec_ups", {
        0x0040: 0x002D, 0x0041: 0x0030,  # M000 load 45 %, M001 L1 48 %
        0x0044: 0x0190,  # M004 400 x 0.1 kVA = 40.0 kVA
        0x0045: 0x0168,  # M005 360 x 0.1 kW = 36.0 kW
        0x0046: 0x0253,  # M006 I1 595 x 0.1 A
        0x004A: 0x00E6,  # M010 V1 230 V
        0x004D: 0x01F4,  # M013 500 x 0.1 Hz
        0x004F: 0x00EB,  # M015 ambient 235 x 0.1 degC
        0x005A: 0xFFF6,  # M026 battery temperature, int16 -10 x 0.1 degC
    }, {("load_pct", ""): 45.0, ("load_pct", "L1"): 48.0,
        ("apparent_power_va", ""): 40000.0, ("active_power_w", ""): 36000.0,
        ("current_a", "L1"): pytest.approx(59.5), ("voltage_v", "L1"): 230.0,
        ("frequency_hz", ""): pytest.approx(50.0), ("temperature_c", "ambient"):
        pytest.approx(23.5), ("temperature_c", "battery"): pytest.approx(-1.0)}),
    ("liebert apm", "liebert_apm", {
        418: 0x00E6,  # 30419, output voltage A-N: 230 V
        421: 0x0050,  # 30422, output current phase A: 80 A
        424: 0x01F4,  # 30425, output frequency 500 / 10 Hz
        428: 0x005F,  # 30429, power factor phase A 95 / 100
        431: 0x0041,  # 30432, pct power phase A: 65 %
        436: 0x0032,  # 30437, system output apparent power: 50 kVA
        437: 0x002D,  # 30438, system output power: 45 kW
    }, {("voltage_v", "L1"): 230.0, ("current_a", "L1"): 80.0,
        ("frequency_hz", ""): pytest.approx(50.0), ("power_factor", "L1"):
        pytest.approx(0.95), ("load_pct", "L1"): 65.0, ("apparent_power_va", ""): 50000.0,
        ("active_power_w", ""): 45000.0}),
    ("tripp lite modbuscard", "tripplite_modbuscard", {
        0x0426: 0x0019,  # battery temperature: 25 degC
        0x0443: 0x0258,  # output frequency 600 x 0.1 Hz
        0x0445: 0x04B0, 0x0446: 0x00FA,  # line 1: 1200 x 0.1 V, 250 x 0.1 A
        0x0447: 0x012C, 0x0448: 0x0032,  # line 1: 300 x 10 W, load 50 %
        0x044B: 0x00C8,  # line 2: 200 x 10 W
        0x044F: 0x0064,  # line 3: 100 x 10 W
    }, {("temperature_c", "battery"): 25.0, ("frequency_hz", ""): pytest.approx(60.0),
        ("voltage_v", "1"): pytest.approx(120.0), ("current_a", "1"): pytest.approx(25.0),
        ("active_power_w", "1"): 3000.0, ("load_pct", "1"): 50.0,
        ("active_power_w", ""): 6000.0}),  # no total register: lines 1 + 2 + 3
    ("tripp lite modbuscard line not supported", "tripplite_modbuscard", {
        0x0447: 0x012C,  # line 1: 3000 W
        0x044B: 0xFFFF, 0x044F: 0xFFFF,  # lines 2, 3: "field is not supported by UPS"
    }, {("active_power_w", "1"): 3000.0, ("active_power_w", "2"): NA,
        ("active_power_w", ""): NA}),
    ("chiller template", "chiller_plant_template", {
        0: 0x0002, 1: 0xD2A8,  # 40001, UINT32 185000 W
        2: 0x0096, 3: 0xB43F,  # 40003, UINT32 9876543 x 0.1 kWh
        4: 0x0048,  # 40005, INT16 72 x 0.1 degC
        5: 0x8000,  # 40006, sensor fault
        6: 0x0041,  # 40007, 65 %
    }, {("active_power_w", ""): 185000.0, ("active_energy_kwh", ""): pytest.approx(987654.3),
        ("temperature_c", "chw_supply"): pytest.approx(7.2), ("temperature_c", "chw_return"): NA,
        ("load_pct", ""): 65.0}),
]


def decode_image(profile_name: str, image: dict[int, int]) -> dict:
    profile = PROFILES[profile_name]
    plan = plan_modbus(profile.modbus_resolved, max_gap=profile.modbus_max_gap)
    blocks = {i: [image.get(r.address + k, 0) for k in range(r.count)]
              for i, r in enumerate(plan)}
    return {(r.metric, next(iter(dict(r.labels).values()), "")): r
            for r in decode_modbus(plan, blocks, "dev", 1.0, profile.totals)}


@pytest.mark.parametrize(("case", "profile", "image", "expected"), IMAGES,
                         ids=[i[0] for i in IMAGES])
def test_hand_written_register_image(case, profile, image, expected):
    got = decode_image(profile, image)
    for key, value in expected.items():
        reading = got[key]
        if value == NA:
            assert (reading.value, reading.quality) == (None, Quality.NOT_AVAILABLE), key
        else:
            assert reading.quality == Quality.OK, key
            assert reading.value == value, key


@pytest.mark.integration
@pytest.mark.parametrize(("case", "profile", "image", "expected"), IMAGES,
                         ids=[i[0] for i in IMAGES])
async def test_hand_written_image_over_the_wire(case, profile, image, expected):
    """The same image served by a real pymodbus server on 127.0.0.1, read by the
    collector's own connection and poller (a SunSpec profile walks the chain first)."""
    from pue_monitor.collectors.modbus_client import ModbusConnection
    from pue_monitor.collectors.poller import DevicePoller
    from pue_monitor.config.model import Device, Polling
    from pue_monitor.simulator.faults import DeviceFaults
    from pue_monitor.simulator.modbus_server import ModbusEndpoint

    served = PROFILES[profile]
    endpoint = ModbusEndpoint("127.0.0.1", 0)
    endpoint.add_unit(1, served, DeviceFaults())
    endpoint.update(1, {fc: dict(image) for fc in {p.function for p in served.modbus_resolved}})
    await endpoint.start()
    conn = ModbusConnection("127.0.0.1", endpoint.port, timeout_s=2.0)
    try:
        device = Device(id="dut", profile=profile,
                        modbus={"host": "127.0.0.1", "port": endpoint.port, "unit": 1})

        async def keep(_result) -> None:
            pass

        result = await DevicePoller("site", device, served, Polling(timeout_s=2.0, retries=0),
                                    conn, keep).poll_once()
    finally:
        conn.close()
        await endpoint.stop()
    assert result.ok, result.error
    assert result.point_errors == {}
    got = {(r.metric, next(iter(dict(r.labels).values()), "")): r for r in result.readings}
    for key, value in expected.items():
        if value == NA:
            assert (got[key].value, got[key].quality) == (None, Quality.NOT_AVAILABLE), key
        else:
            assert (got[key].value, got[key].quality) == (value, Quality.OK), key


def test_every_modbus_profile_has_a_hand_written_image():
    assert {i[1] for i in IMAGES} == set(MODBUS_PROFILES)


@pytest.mark.parametrize("name", MODBUS_PROFILES)
def test_profile_opens_with_its_model_and_manual(name):
    from pue_monitor.config.profiles import BUILTIN_PROFILE_DIR

    text = (BUILTIN_PROFILE_DIR / f"{name}.yaml").read_text(encoding="utf-8")
    header = text.split("\nname:")[0]
    assert header.startswith("# ") and len(header.splitlines()) >= 3
    profile = PROFILES[name]
    assert profile.numbering is not None and profile.models and profile.source


@pytest.mark.parametrize("name", sorted(n for n, p in PROFILES.items()
                                        if p.protocol == "modbus" and not p.sunspec))
def test_reads_stay_within_what_the_model_accepts(name):
    profile = PROFILES[name]
    reads = plan_profile(profile)
    assert reads and all(r.count <= profile.modbus_max_registers for r in reads)


def test_a_model_that_reads_fewer_registers_gets_shorter_reads():
    # EM24 DIN: "possible to read maximum 11 register (word) with a single request"; its
    # currents and phase powers (0x0C..0x17) are 12 registers: read in two.
    reads = plan_profile(PROFILES["carlo_gavazzi_em24"])
    assert [(r.address, r.count) for r in reads if 0x0C <= r.address <= 0x17] == [
        (0x0C, 10), (0x16, 2)]
