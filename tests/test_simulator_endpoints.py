"""The simulator's endpoints read with the collector's own clients: every device's values
survive encode -> wire -> decode, and the SNMP agent and Modbus servers behave like
real ones (silence on a wrong community, ordered walks, exceptions, gateways)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess

import pytest
import pytest_asyncio
import yaml
from pymodbus.client import AsyncModbusTcpClient
from pysnmp.hlapi.v1arch.asyncio import (
    CommunityData,
    SnmpDispatcher,
    UdpTransportTarget,
    bulk_cmd,
    next_cmd,
    set_cmd,
)
from pysnmp.proto import rfc1902, rfc1905

from pue_monitor.collectors.errors import DeviceError, PollTimeout
from pue_monitor.collectors.modbus_client import PymodbusTcpClient
from pue_monitor.collectors.snmp_client import PysnmpClient
from pue_monitor.config.datatypes import DATA_TYPES
from pue_monitor.config.profiles import ANY_INDEX
from pue_monitor.simulator.physics import canonical_values
from pue_monitor.store.model import Quality
from tests.simulator_support import (
    DEMO,
    UNITS,
    demo_config,
    gateway_config,
    poll,
    running,
    values,
)

from tests.tools import require_tool

# One event loop for the module, so one simulator can serve every test that only reads.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

DEVICE_IDS = [d["id"] for s in yaml.safe_load(DEMO.read_text(encoding="utf-8"))["sites"]
              for d in s["devices"]]
SYS_DESCR, SYS_OBJECT_ID = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0"
UPS_VOLTAGE, UPS_CURRENT = "1.3.6.1.2.1.33.1.4.4.1.2", "1.3.6.1.2.1.33.1.4.4.1.3"

# Profile -> approx() bounds for (total active_power_w, active_energy_kwh): half a raw
# step for integers, float32 rounding for floats; None where the profile has no energy.
HEADLINE = {
    "apc_rpdu2": ({"abs": 5.001}, {"abs": 0.0501}),  # 0.01 kW and 0.1 kWh steps
    "ups_mib": ({"abs": 1.501}, None),  # three whole-watt lines summed; RFC 1628 has no kWh
    "eastron_sdm630": ({"rel": 1e-6}, {"rel": 1e-6}),  # float32 W, float32 kWh
    "schneider_pm5xxx": ({"rel": 1e-6}, {"abs": 0.000501}),  # float32 kW, int64 Wh
}


def point_bounds(profile, truth: dict) -> dict[tuple, dict]:
    """approx() bounds for every mapped point the simulator serves (one with a true value),
    from its type and scale; a table point has one per row (labels filling its index)."""
    out = {}
    for p in profile.snmp_points:
        bound = {"abs": abs(p.scale) / 2 * 1.001}
        fixed = {k: v for k, v in p.labels.items() if v != ANY_INDEX}
        for metric, labels in truth:
            given = dict(labels)
            if metric == p.metric and set(given) == set(p.labels) and all(
                    given[k] == v for k, v in fixed.items()):
                out[(p.metric, tuple(sorted(given.items())))] = bound
    for p in profile.modbus_resolved:
        exact = {"rel": 1e-6} if DATA_TYPES[p.type].is_float else {"abs": abs(p.scale) / 2 * 1.001}
        out[(p.metric, tuple(sorted(p.labels.items())))] = exact
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim(tmp_path_factory):
    """The demo province, started once: these tests never move its clock or set faults."""
    async with running(demo_config(tmp_path_factory.mktemp("demo"))) as simulator:
        yield simulator


@pytest.mark.parametrize("device_id", DEVICE_IDS)
async def test_device_reads_back_its_true_values(sim, device_id):
    result = await poll(sim, device_id)
    dev = sim.devices[device_id]
    truth = canonical_values(sim.power[dev.site_id].devices[device_id], dev.counter.kwh,
                             dev.traits, sim.last_tick)
    assert result.ok, result.error
    assert all(r.quality == Quality.OK for r in result.readings)
    got = values(result)
    power, energy = HEADLINE[dev.profile.name]
    assert got[("active_power_w", ())] == pytest.approx(dev.power_w, **power)
    if energy is None:
        assert ("active_energy_kwh", ()) not in got
    else:
        assert got[("active_energy_kwh", ())] == pytest.approx(dev.counter.kwh, **energy)
    bounds = point_bounds(dev.profile, truth)
    assert set(got) == set(bounds) | {("active_power_w", ())}
    for key, bound in bounds.items():
        assert got[key] == pytest.approx(truth[key], **bound), key


# ---- SNMP --------------------------------------------------------------------------------

async def snmp(command, port: int, community: str, *args, version: int = 1):
    """One raw pysnmp request (version: 0 = v1, 1 = v2c) -> (error, status, index, binds)."""
    dispatcher = SnmpDispatcher()
    try:
        target = await UdpTransportTarget.create(("127.0.0.1", port), timeout=1.0, retries=0)
        return await asyncio.wait_for(
            command(dispatcher, CommunityData(community, mpModel=version), target, *args), 5.0)
    finally:
        dispatcher.transport_dispatcher.close_dispatcher()


def community_of(sim, device_id: str) -> str:
    return sim.devices[device_id].device.snmp.community.get_secret_value()


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_wrong_community_gets_no_answer(sim, version):
    port, community = sim.port_of("prov-pdu-01"), community_of(sim, "prov-pdu-01")
    right = PysnmpClient("127.0.0.1", port, community, version, timeout_s=0.5, retries=0)
    wrong = PysnmpClient("127.0.0.1", port, community + "-x", version, timeout_s=0.5,
                         retries=0)
    try:
        assert "prov-pdu-01" in (await right.get([SYS_DESCR]))[SYS_DESCR]
        with pytest.raises(PollTimeout):
            await wrong.get([SYS_DESCR])
    finally:
        right.close()
        wrong.close()


@pytest.mark.parametrize("device_id", ["prov-ups-a", "prov-pdu-01"])
async def test_getnext_walk_visits_every_oid_in_order(sim, device_id):
    served = sorted(sim.devices[device_id].agent.table)
    port, community = sim.port_of(device_id), community_of(sim, device_id)
    walked, cursor = [], "1.3"
    for _ in range(len(served) + 2):  # bounded: a broken agent must not loop forever
        error, status, _, binds = await snmp(next_cmd, port, community,
                                             (cursor, rfc1902.Null("")))
        assert not error and not status
        (name, value), = binds
        if isinstance(value, rfc1905.EndOfMibView):
            break
        cursor = str(name)
        walked.append(tuple(name))
    assert walked == served


async def test_getbulk_follows_rfc3416_repetition_order(sim):
    port, community = sim.port_of("prov-ups-a"), community_of(sim, "prov-ups-a")
    null = rfc1902.Null("")
    # One non-repeater, then two columns three times over, interleaved row by row.
    _, status, _, binds = await snmp(bulk_cmd, port, community, 1, 3, (SYS_DESCR, null),
                                     (UPS_VOLTAGE, null), (UPS_CURRENT, null))
    assert not status
    assert [str(name) for name, _ in binds] == [
        SYS_OBJECT_ID, *(f"{column}.{line}" for line in (1, 2, 3)
                         for column in (UPS_VOLTAGE, UPS_CURRENT))]
    last = ".".join(map(str, max(sim.devices["prov-ups-a"].agent.table)))
    _, status, _, binds = await snmp(bulk_cmd, port, community, 0, 5, (last, null))
    assert not status
    assert [type(v) for _, v in binds] == [rfc1905.EndOfMibView]


@pytest.mark.parametrize("version, expected_status", [(0, "noSuchName"), (1, "notWritable")])
async def test_set_is_refused_and_changes_nothing(sim, version, expected_status):
    oid = "1.3.6.1.2.1.33.1.4.4.1.4.1"
    before = dict(sim.devices["prov-ups-a"].agent.table)
    _, status, index, _ = await snmp(set_cmd, sim.port_of("prov-ups-a"),
                                     community_of(sim, "prov-ups-a"),
                                     (oid, rfc1902.Integer(1)), version=version)
    assert status.prettyPrint() == expected_status and int(index) == 1
    assert sim.devices["prov-ups-a"].agent.table == before


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_a_missing_oid_reads_as_missing_beside_present_ones(sim, version):
    client = PysnmpClient("127.0.0.1", sim.port_of("qv-pdu-01"), community_of(sim, "qv-pdu-01"),
                          version, timeout_s=1.0, retries=0)
    try:
        got = await client.get(["1.3.6.1.4.1.318.1.1.26.4.3.1.5.1", "1.3.6.1.4.1.318.9.9.0"])
    finally:
        client.close()
    assert got["1.3.6.1.4.1.318.1.1.26.4.3.1.5.1"] == round(sim.devices["qv-pdu-01"].power_w / 10)
    assert repr(got["1.3.6.1.4.1.318.9.9.0"]) == "MISSING"


@pytest.mark.parametrize("command", [["snmpwalk", "-v1"], ["snmpwalk", "-v2c"],
                                     ["snmpbulkwalk", "-v2c", "-Cr4"]])
async def test_net_snmp_walks_the_agent(sim, tmp_path, command):
    require_tool(command[0])
    # Keep net-snmp's persistent state and config lookups inside the test's directory.
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(tmp_path), "SNMPCONFPATH": str(tmp_path),
           "MIBS": ""}
    served = [".".join(map(str, o)) for o in sorted(sim.devices["qv-ups-1"].agent.table)]
    argv = [*command, "-c", community_of(sim, "qv-ups-1"), "-On", "-t", "2", "-r", "0",
            f"127.0.0.1:{sim.port_of('qv-ups-1')}", ".1"]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True,
                                   env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    # v1 ends with "End of MIB", v2c repeats the last OID with endOfMibView's text.
    lines = [ln for ln in done.stdout.splitlines()
             if ln and ln != "End of MIB" and "No more variables left" not in ln]
    walked = [m.group(1) if (m := re.match(r"^\.([\d.]+) = ", ln)) else ln for ln in lines]
    assert walked == served


# ---- Modbus ------------------------------------------------------------------------------

@pytest.mark.parametrize("device_id, function, address, count", [
    ("prov-chiller", 4, 54, 2),  # the hole between total power (52) and VA (56)
    ("prov-chiller", 4, 52, 6),  # a read running across that hole
    ("prov-chiller", 4, 5000, 2),  # far past the map
    ("prov-chiller", 3, 0, 2),  # holding registers on an input-register meter
    ("prov-incomer", 3, 3010, 2),  # between current (2999..3004) and voltage (3027..)
    ("prov-incomer", 4, 3059, 2),  # input registers on a holding-register meter
])
async def test_unmapped_address_is_an_illegal_data_address(sim, device_id, function, address,
                                                           count):
    dev = sim.devices[device_id]
    mapped = {(p.function, a) for p in dev.profile.modbus_resolved
              for a in range(p.address, p.address + p.count)}
    assert any((function, a) not in mapped for a in range(address, address + count))
    total = next(p for p in dev.profile.modbus_resolved
                 if p.metric == "active_power_w" and not p.labels)
    client = PymodbusTcpClient("127.0.0.1", sim.port_of(device_id), timeout_s=2.0)
    try:
        with pytest.raises(DeviceError) as refused:
            await client.read(function, address, count, 1)
        # Not a crash: the same server answers the next, valid read.
        words = await client.read(total.function, total.address, total.count, 1)
    finally:
        client.close()
    assert refused.value.code == 2
    assert len(words) == total.count and any(words)


async def test_registers_are_read_only(sim):
    total = next(p for p in sim.devices["prov-incomer"].profile.modbus_resolved
                 if p.metric == "active_power_w" and not p.labels)
    client = AsyncModbusTcpClient("127.0.0.1", port=sim.port_of("prov-incomer"),
                                  timeout=2, retries=0)
    try:
        assert await client.connect()
        before = await client.read_holding_registers(total.address, count=2, device_id=1)
        written = await client.write_register(total.address, 1234, device_id=1)
        after = await client.read_holding_registers(total.address, count=2, device_id=1)
    finally:
        client.close()
    assert written.isError() and written.exception_code in (1, 2)
    assert after.registers == before.registers != [1234, 0]


async def test_gateway_serves_each_unit_separately():
    async with running(gateway_config()) as sim:
        assert len(sim.modbus_endpoints) == 1
        results = {d: await poll(sim, d) for d in UNITS}
        truth = {d: (sim.devices[d].power_w, sim.devices[d].counter.kwh) for d in UNITS}
        client = PymodbusTcpClient("127.0.0.1", sim.port_of("gw-chiller"), timeout_s=2.0)
        try:
            with pytest.raises(DeviceError) as nobody:  # no device behind unit 9
                await client.read(4, 52, 2, 9)
        finally:
            client.close()
    assert nobody.value.code == 11
    # The two identical meters share the cooling load but not their energy registers.
    assert len({round(kwh) for _, kwh in truth.values()}) == 3
    for device_id, result in results.items():
        assert result.ok, (device_id, result.error)
        got = values(result)
        power, energy = HEADLINE[sim.devices[device_id].profile.name]
        assert got[("active_power_w", ())] == pytest.approx(truth[device_id][0], **power)
        assert got[("active_energy_kwh", ())] == pytest.approx(truth[device_id][1], **energy)
