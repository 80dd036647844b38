"""`profile: auto`: the loader's rules, and identification by the poller against the
simulator's agents (the simulator serves named profiles, the monitor's copy says auto)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.service import CollectorService, make_client
from pue_monitor.config import ConfigError, load_config_text
from pue_monitor.config.model import Polling
from pue_monitor.simulator.runner import Simulator
from pue_monitor.simulator.serve import run_simulator
from pue_monitor.simulator.snmp_agent import SnmpAgent
from pue_monitor.store.model import ErrorKind, PollResult
from pue_monitor.figures.service import DeviceStatus, meter_energy
from pue_monitor.store.sqlite import Store
from tests.conftest import free_port
from tests.simulator_support import FakeClock, advance, running
from pue_monitor.web.document import device_document

SITE = """
polling: {{interval_s: 10, timeout_s: 2, retries: 0}}
sites:
  - id: auto
    name: {{vi: "Tự nhận dạng", en: "Identified"}}
    devices:
      - {{id: incomer, profile: schneider_pm5xxx, role: facility,
         modbus: {{host: 127.0.0.1, port: {modbus}, unit: 1}}}}
      - {{id: pdu, profile: {pdu}, role: it, measurement_point: pdu_output,
         snmp: {{host: 127.0.0.1, port: {pdu_port}}}}}
      - {{id: ups, profile: {ups}, role: it, measurement_point: ups_output,
         snmp: {{host: 127.0.0.1, port: {ups_port}}}}}
"""
UNKNOWN_SYS_OBJECT_ID = "1.3.6.1.4.1.99999.7.1"


def site(pdu: str = "auto", ups: str = "auto", ports: dict | None = None) -> str:
    ports = ports or {"modbus": 1502, "pdu_port": 1161, "ups_port": 1162}
    return SITE.format(pdu=pdu, ups=ups, **ports)


def modbus_auto() -> str:
    return site().replace("profile: schneider_pm5xxx", "profile: auto")


# -- the loader ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "problem"), [
    (site(), None),  # SNMP auto, even for roles whose energy check needs the model
    (site(pdu="apc_rpdu2"), None),
    (modbus_auto(), ("sites[0].devices[0].profile", "Modbus devices cannot identify")),
    (site(pdu="apc_smx"), ("sites[0].devices[1].profile", 'unknown profile "apc_smx"')),
    (site(pdu="schneider_pm5xxx"), ("sites[0].devices[1].snmp", "speaks modbus")),
], ids=["snmp-auto", "named", "modbus-auto", "unknown", "wrong-protocol"])
def test_loader_auto(text, problem):
    if problem is None:
        config = load_config_text(text, env={})
        assert {d.id: d.profile for _, d in config.devices()}["pdu"] in ("auto", "apc_rpdu2")
        return
    with pytest.raises(ConfigError) as err:
        load_config_text(text, env={})
    found = [(i.path, i.message) for i in err.value.issues]
    assert any(path == problem[0] and problem[1] in message for path, message in found), found


def test_profile_helpers():
    config = load_config_text(site(ups="ups_mib"), env={})
    pdu = next(d for _, d in config.devices() if d.id == "pdu")
    ups = next(d for _, d in config.devices() if d.id == "ups")
    assert config.known_profile(pdu) is None
    assert config.known_profile(ups).name == "ups_mib"
    assert config.profile_of(ups).name == "ups_mib"
    with pytest.raises(LookupError, match="profile auto"):
        config.profile_of(pdu)


def test_simulator_refuses_auto(capsys):
    config = load_config_text(site(), env={})
    with pytest.raises(ValueError, match="named profile"):
        Simulator(config, control_port=0, clock=FakeClock())
    assert run_simulator(config) == 1
    assert "profile auto" in capsys.readouterr().err


def test_meter_energy_and_document_follow_identification(tmp_path):
    config = load_config_text(site(), env={})
    the_site = config.sites[0]
    pdu = next(d for d in the_site.devices if d.id == "pdu")
    store = Store.open(tmp_path)
    try:
        # Unidentified: no model, so no register step; identified: apc_rpdu2's 0.1 kWh.
        assert meter_energy(store, config, the_site, pdu, 0.0, 3600.0).counter.resolution_kwh == 0
        status = DeviceStatus(pdu, the_site.id, None, None, None, None, None, None, {}, {})
        doc = device_document(status, 0.0, the_site.timezone, 10.0, store.device_profiles())
        assert (doc["profile"], doc["profile_identified"]) == (None, False)
        store.set_device_profile("pdu", "apc_rpdu2")
        assert store.device_profiles() == {"pdu": "apc_rpdu2"}
        energy = meter_energy(store, config, the_site, pdu, 0.0, 3600.0)
        assert energy.counter.resolution_kwh == pytest.approx(0.1)
        doc = device_document(status, 0.0, the_site.timezone, 10.0, store.device_profiles())
        assert (doc["profile"], doc["profile_identified"]) == ("apc_rpdu2", True)
    finally:
        store.close()


# -- identification against live agents -------------------------------------------------

def _ports() -> dict:
    used: set[int] = set()
    out = {}
    for key in ("modbus", "pdu_port", "ups_port"):
        out[key] = free_port(avoid=used)
        used.add(out[key])
    return out


async def test_auto_devices_identified_and_read(tmp_path):
    ports = _ports()
    served = load_config_text(site(pdu="apc_rpdu2", ups="ups_mib", ports=ports), env={})
    monitored = load_config_text(site(ports=ports), env={})
    store = Store.open(tmp_path)
    try:
        async with running(served) as sim:
            advance(sim, 10)
            service = CollectorService(monitored, store)
            try:
                results = {p.device.id: await p.poll_once() for p in service.pollers}
            finally:
                for poller in service.pollers:
                    poller.client.close()
        identified = {p.device.id: p.profile.name for p in service.pollers}
    finally:
        names = store.device_profiles()
        store.close()
    # apc_rpdu2 by its sysObjectID; ups_mib (no sysObjectID of its own) by the UPS-MIB probe.
    assert identified == {"incomer": "schneider_pm5xxx", "pdu": "apc_rpdu2", "ups": "ups_mib"}
    assert names == {"pdu": "apc_rpdu2", "ups": "ups_mib"}
    for device in ("pdu", "ups"):
        result = results[device]
        assert result.ok, (device, result.error)
        metrics = {r.metric for r in result.readings if r.value is not None}
        assert "active_power_w" in metrics, (device, metrics)


async def _unknown_agent() -> SnmpAgent:
    agent = SnmpAgent("127.0.0.1", 0, "public", sys_descr="Mystery box 1.0",
                      sys_object_id=UNKNOWN_SYS_OBJECT_ID)
    await agent.start()
    return agent


async def test_unknown_agent_is_a_decode_error_logged_once(caplog):
    agent = await _unknown_agent()
    config = load_config_text(site(ports={"modbus": 1502, "pdu_port": agent.port,
                                          "ups_port": 1162}), env={})
    device = next(d for _, d in config.devices() if d.id == "pdu")
    # A short interval so the poller's own schedule runs a few backed-off polls quickly.
    polling = Polling(interval_s=0.1, timeout_s=1.0, retries=1)
    client = make_client(device, polling)
    seen: list[PollResult] = []
    stop = asyncio.Event()

    async def sink(result: PollResult) -> None:
        seen.append(result)
        if len(seen) >= 3:
            stop.set()

    poller = DevicePoller("auto", device, None, polling, client, sink,
                          candidates=config.profiles.values())
    caplog.set_level(logging.DEBUG, logger="pue_monitor.collectors.poller")
    try:
        await asyncio.wait_for(poller.run(stop), 20)
    finally:
        client.close()
        agent.close()
    assert len(seen) == 3
    assert all(r.error_kind is ErrorKind.DECODE for r in seen), [r.error for r in seen]
    assert UNKNOWN_SYS_OBJECT_ID in seen[0].error and "Mystery box" in seen[0].error
    assert poller.profile is None
    assert poller.next_delay(0.0) > polling.interval_s  # backed off like any failing device
    told = [r for r in caplog.records if "no profile matches" in r.getMessage()
            and r.levelno >= logging.WARNING]
    assert len(told) == 1, [r.getMessage() for r in told]


async def test_unknown_agent_then_matching_profile_without_restart():
    agent = await _unknown_agent()
    config = load_config_text(site(ports={"modbus": 1502, "pdu_port": agent.port,
                                          "ups_port": 1162}), env={})
    device = next(d for _, d in config.devices() if d.id == "pdu")
    polling = Polling(interval_s=10, timeout_s=1.0, retries=0)
    client = make_client(device, polling)
    recorded: list[tuple[str, str]] = []

    async def discard(_result: PollResult) -> None:
        pass

    # The candidates are read at each attempt: a profile that claims the agent later wins.
    candidates = [p for p in config.profiles.values() if p.name != "apc_rpdu2"]
    poller = DevicePoller("auto", device, None, polling, client, discard,
                          candidates=candidates,
                          on_identified=lambda d, n, *_why: recorded.append((d, n)))
    # The mystery agent has none of the rPDU2 tables apc_rpdu2 confirms its shared
    # sysObjectID with: the copy claims the agent by sysObjectID alone.
    rpdu = config.profiles["apc_rpdu2"].model_copy(
        update={"sys_object_ids": [UNKNOWN_SYS_OBJECT_ID], "confirm_oids": []})
    try:
        first = await poller.poll_once()
        poller.candidates.append(rpdu)
        second = await poller.poll_once()
    finally:
        client.close()
        agent.close()
    assert first.error_kind is ErrorKind.DECODE
    assert second.ok, second.error
    assert recorded == [("pdu", "apc_rpdu2")]


async def test_silent_auto_device_is_a_timeout():
    port = free_port()
    config = load_config_text(site(ports={"modbus": 1502, "pdu_port": port,
                                          "ups_port": 1162}), env={})
    device = next(d for _, d in config.devices() if d.id == "pdu")
    polling = Polling(interval_s=10, timeout_s=0.3, retries=0)
    client = make_client(device, polling)

    async def discard(_result: PollResult) -> None:
        pass

    poller = DevicePoller("auto", device, None, polling, client, discard,
                          candidates=config.profiles.values())
    try:
        result = await poller.poll_once()
    finally:
        client.close()
    assert result.error_kind is ErrorKind.TIMEOUT
    assert poller.profile is None
