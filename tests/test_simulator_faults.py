"""Fault injection and the control endpoint: what a collector sees when a device is down,
slow, stuck, reset or talking garbage, and how the HTTP control changes the simulation."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from pue_monitor.collectors.errors import DeviceError, PollConnectionError, PollTimeout
from pue_monitor.collectors.modbus_client import PymodbusTcpClient
from pue_monitor.collectors.snmp_client import PysnmpClient
from pue_monitor.store.model import ErrorKind, Quality
from tests.simulator_support import (
    START,
    UNITS,
    FakeClock,
    advance,
    demo_config,
    gateway_config,
    http,
    poll,
    running,
)
from tests.simulator_support import values as read_values

pytestmark = pytest.mark.integration

PDU_POWER_OID = "1.3.6.1.4.1.318.1.1.26.4.3.1.5.1"  # rPDU2DeviceStatusPower.1, 0.01 kW
SLOW_S = 1.5


@pytest.fixture()
def demo(tmp_path):
    return demo_config(tmp_path)


def power(result) -> float:
    assert result.ok, result.error
    return read_values(result)[("active_power_w", ())]


def energy(result) -> float:
    assert result.ok, result.error
    return read_values(result)[("active_energy_kwh", ())]


async def test_down_silences_snmp_until_cleared(demo):
    async with running(demo) as sim:
        assert (await poll(sim, "prov-pdu-01")).ok
        await sim.set_fault("prov-pdu-01", "down")
        failed = await poll(sim, "prov-pdu-01", timeout_s=0.5)
        assert (await poll(sim, "prov-pdu-02")).ok  # only that device
        await sim.clear_faults("prov-pdu-01")
        back = await poll(sim, "prov-pdu-01")
    assert failed.error_kind == ErrorKind.TIMEOUT
    assert back.ok


async def test_down_closes_the_modbus_port_until_cleared(demo):
    async with running(demo) as sim:
        port = sim.port_of("prov-chiller")
        connected = PymodbusTcpClient("127.0.0.1", port, timeout_s=1.0)
        fresh = PymodbusTcpClient("127.0.0.1", port, timeout_s=1.0)
        try:
            assert await connected.read(4, 52, 2, 1)
            await sim.set_fault("prov-chiller", "down")
            # An open connection is dropped (the client may only notice by its timeout).
            with pytest.raises((PollConnectionError, PollTimeout)):
                await connected.read(4, 52, 2, 1)
            with pytest.raises(PollConnectionError):  # and new ones are refused
                await fresh.read(4, 52, 2, 1)
        finally:
            connected.close()
            fresh.close()
        failed = await poll(sim, "prov-chiller", timeout_s=0.5)
        await sim.clear_faults("prov-chiller")
        back = await poll(sim, "prov-chiller")
        assert sim.port_of("prov-chiller") == port  # listening again where it was
    assert failed.error_kind == ErrorKind.CONNECTION
    assert back.ok


async def test_one_dead_unit_behind_a_gateway_leaves_the_others_answering():
    async with running(gateway_config()) as sim:
        await sim.set_fault("gw-chiller", "down")
        partial = {d: await poll(sim, d, timeout_s=0.5) for d in UNITS}
        for device_id in UNITS:
            await sim.set_fault(device_id, "down")
        client = PymodbusTcpClient("127.0.0.1", sim.port_of("gw-crah"), timeout_s=0.5)
        try:
            with pytest.raises(PollConnectionError):  # nobody left: the gateway is gone
                await client.read(4, 52, 2, UNITS["gw-crah"])
        finally:
            client.close()
        await sim.clear_faults("gw-crah")
        back = await poll(sim, "gw-crah")
    # The port stays open for the others, so the dead unit is silence, not a refusal.
    assert partial["gw-chiller"].error_kind == ErrorKind.TIMEOUT
    assert partial["gw-incomer"].ok and partial["gw-crah"].ok
    assert back.ok


async def test_a_timed_down_fault_ends_by_itself(demo):
    # Real clock and a fast tick: the background loop must reopen the Modbus port.
    async with running(demo, clock=time.time, tick_s=0.1) as sim:
        await sim.set_fault("qv-cooling", "down", seconds=1.5)
        assert (await poll(sim, "qv-cooling", timeout_s=0.5)).error_kind == ErrorKind.CONNECTION
        deadline = time.monotonic() + 10
        result = await poll(sim, "qv-cooling", timeout_s=0.5)
        while not result.ok and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            result = await poll(sim, "qv-cooling", timeout_s=0.5)
        assert sim.devices["qv-cooling"].faults.snapshot() == {}
    assert result.ok, result.error


@pytest.mark.parametrize("device_id", ["prov-pdu-01", "prov-chiller", "yp-cooling"])
async def test_stuck_freezes_served_values_while_truth_moves_on(demo, device_id):
    async with running(demo) as sim:
        dev = sim.devices[device_id]
        before = await poll(sim, device_id)
        await sim.set_fault(device_id, "stuck")
        true_power, true_kwh = dev.power_w, dev.counter.kwh
        advance(sim, 3 * 3600)  # 14:00 -> 17:00: load and temperature both change
        frozen = await poll(sim, device_id)
        assert abs(dev.power_w - true_power) > 20 and dev.counter.kwh > true_kwh + 1
        await sim.clear_faults(device_id, "stuck")
        advance(sim, 5)
        live = await poll(sim, device_id)
    assert (power(frozen), energy(frozen)) == (power(before), energy(before))
    assert power(live) == pytest.approx(dev.power_w, abs=5.001, rel=1e-6)
    assert energy(live) == pytest.approx(dev.counter.kwh, abs=0.0501, rel=1e-6)


@pytest.mark.parametrize("device_id", ["prov-pdu-01", "prov-chiller", "prov-incomer"])
async def test_counter_reset_restarts_served_energy_near_zero(demo, device_id):
    async with running(demo) as sim:
        before = energy(await poll(sim, device_id))
        await sim.set_fault(device_id, "counter_reset")
        advance(sim, 10)
        reset = energy(await poll(sim, device_id))
        assert sim.devices[device_id].faults.snapshot() == {}  # one-shot, done
        advance(sim, 3600)
        hour_later = energy(await poll(sim, device_id))
        kw = sim.devices[device_id].power_w / 1000
    assert before > 1000
    assert 0 <= reset < 0.5
    # It keeps integrating from zero: about one hour of the device's load.
    assert hour_later - reset == pytest.approx(kw, rel=0.25)


async def test_slow_snmp_answers_after_the_delay(demo):
    async with running(demo) as sim:
        port = sim.port_of("qv-pdu-01")
        community = sim.devices["qv-pdu-01"].device.snmp.community.get_secret_value()
        await sim.set_fault("qv-pdu-01", "slow", seconds=SLOW_S)
        patient = PysnmpClient("127.0.0.1", port, community, timeout_s=SLOW_S + 3, retries=0)
        hasty = PysnmpClient("127.0.0.1", port, community, timeout_s=0.5, retries=0)
        try:
            started = time.monotonic()
            got = await patient.get([PDU_POWER_OID])
            waited = time.monotonic() - started
            with pytest.raises(PollTimeout):
                await hasty.get([PDU_POWER_OID])
        finally:
            patient.close()
            hasty.close()
    assert got[PDU_POWER_OID] == round(sim.devices["qv-pdu-01"].power_w / 10)
    assert waited >= SLOW_S - 0.01  # timer granularity only


async def test_slow_modbus_answers_after_the_delay(demo):
    async with running(demo) as sim:
        port = sim.port_of("qv-cooling")
        await sim.set_fault("qv-cooling", "slow", seconds=SLOW_S)
        patient = PymodbusTcpClient("127.0.0.1", port, timeout_s=SLOW_S + 3)
        hasty = PymodbusTcpClient("127.0.0.1", port, timeout_s=0.5)
        try:
            started = time.monotonic()
            words = await patient.read(4, 52, 2, 1)
            waited = time.monotonic() - started
            with pytest.raises(PollTimeout):
                await hasty.read(4, 52, 2, 1)
        finally:
            patient.close()
            hasty.close()
    assert words != [0, 0]
    assert waited >= SLOW_S - 0.01


async def test_garbage_snmp_values_fail_to_decode(demo):
    async with running(demo) as sim:
        await sim.set_fault("prov-ups-a", "garbage")
        result = await poll(sim, "prov-ups-a")
    assert result.ok  # the agent answered; the values are what is wrong
    quality = {(r.metric, r.labels): r.quality for r in result.readings}
    assert quality.pop(("active_power_w", ())) == Quality.NOT_AVAILABLE  # sum of bad lines
    assert quality and set(quality.values()) == {Quality.DECODE_ERROR}


async def test_garbage_modbus_answers_device_failure(demo):
    async with running(demo) as sim:
        await sim.set_fault("yp-incomer", "garbage")
        result = await poll(sim, "yp-incomer")
        client = PymodbusTcpClient("127.0.0.1", sim.port_of("yp-incomer"), timeout_s=1.0)
        try:
            with pytest.raises(DeviceError) as failure:
                await client.read(4, 52, 2, 1)
        finally:
            client.close()
    assert result.error_kind == ErrorKind.DEVICE
    assert failure.value.code == 4


# ---- the HTTP control endpoint -----------------------------------------------------------

async def test_truth_over_http_is_the_simulators_truth(demo):
    async with running(demo) as sim:
        assert await http("GET", f"{sim.control_url}/healthz") == (200, {"ok": True})
        status, truth = await http("GET", f"{sim.control_url}/truth")
        expected = json.loads(json.dumps(sim.truth()))
    assert status == 200 and truth == expected
    assert truth["ts"] == START and set(truth["devices"]) == set(sim.devices)


async def test_faults_over_http(demo):
    async with running(demo) as sim:
        url = f"{sim.control_url}/faults/prov-pdu-03"
        status, body = await http("POST", url, {"kind": "down"})
        assert (status, body["faults"]) == (200, {"down": {"kind": "down"}})
        assert (await poll(sim, "prov-pdu-03", timeout_s=0.5)).error_kind == ErrorKind.TIMEOUT
        await http("POST", url, {"kind": "slow", "seconds": 2})
        status, body = await http("DELETE", f"{url}?kind=down")
        assert (status, list(body["faults"])) == (200, ["slow"])  # only the kind named
        assert (await http("DELETE", url))[1]["faults"] == {}
        assert (await poll(sim, "prov-pdu-03")).ok


@pytest.mark.parametrize("method, path, body, expected_status", [
    ("POST", "/faults/no-such-device", {"kind": "down"}, 404),
    ("DELETE", "/faults/no-such-device", None, 404),
    ("POST", "/faults/prov-pdu-01", {"kind": "melted"}, 400),
    ("POST", "/faults/prov-pdu-01", {}, 400),
    ("POST", "/faults/prov-pdu-01", {"kind": "down", "colour": "red"}, 400),
    ("POST", "/faults/prov-pdu-01", {"kind": "slow", "seconds": "two"}, 400),
    ("POST", "/faults/prov-pdu-01", {"kind": "slow", "seconds": -1}, 400),
    ("DELETE", "/faults/prov-pdu-01?kind=melted", None, 400),
    ("PATCH", "/sites/no-such-site", {"cooling_cop": 2.0}, 404),
    ("PATCH", "/sites/que-vo-dc", {"cooling_cop": -1}, 400),
    ("PATCH", "/sites/que-vo-dc", {"incomers": []}, 400),  # fixed while running
    ("PATCH", "/sites/que-vo-dc", {"boiler_kw": 3}, 400),
    ("GET", "/nowhere", None, 404),
])
async def test_control_rejects_bad_requests(demo, method, path, body, expected_status):
    async with running(demo) as sim:
        before = sim.truth(), dict(sim.site_sims)
        status, answer = await http(method, sim.control_url + path, body)
        assert (sim.truth(), sim.site_sims) == before  # nothing changed
    assert status == expected_status and "error" in answer


async def test_malformed_content_length_is_refused_not_hung(demo):
    async with running(demo) as sim:
        def send() -> bytes:
            with socket.create_connection(("127.0.0.1", sim.control_port), timeout=3) as s:
                s.sendall(b"POST /faults/prov-pdu-01 HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: -1\r\n\r\n{\"kind\": \"down\"}")
                return s.recv(200)
        answer = await asyncio.to_thread(send)
        assert sim.devices["prov-pdu-01"].faults.snapshot() == {}
    assert answer.startswith(b"HTTP/1.0 400")


async def test_patching_cooling_cop_raises_that_sites_pue(demo):
    async with running(demo, clock=FakeClock()) as sim:
        before = sim.truth()["sites"]
        status, body = await http("PATCH", f"{sim.control_url}/sites/que-vo-dc",
                                  {"cooling_cop": 1.2})
        assert status == 200 and body["simulation"]["cooling_cop"] == 1.2
        advance(sim, 5)
        after = sim.truth()["sites"]
    assert after["que-vo-dc"]["cop"] == 1.5  # the plant model's floor
    assert after["que-vo-dc"]["pue"] > before["que-vo-dc"]["pue"] + 0.2
    for other in ("bn-provincial", "yen-phong-dc"):
        assert after[other]["pue"] == pytest.approx(before[other]["pue"], abs=0.01)


async def test_the_background_tick_moves_physics_on(demo):
    async with running(demo, clock=time.time, tick_s=0.1) as sim:
        first, energy_before = sim.last_tick, sim.devices["prov-incomer"].counter.kwh
        deadline = time.monotonic() + 10
        while sim.last_tick == first and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert sim.last_tick > first
        assert sim.devices["prov-incomer"].counter.kwh > energy_before
