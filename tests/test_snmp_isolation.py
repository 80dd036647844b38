"""Isolation: an SNMP agent that never answers, or answers after 9 s (the simulator's `down`
and `slow` fault knobs), never delays another device's poll beyond its own schedule, with
either SNMP engine."""

from __future__ import annotations

import asyncio

import pytest

from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.service import make_client
from pue_monitor.config.model import Polling
from pue_monitor.store.model import ErrorKind, PollResult
from tests.simulator_support import demo_config, running
from tests.snmp_support import ENGINES

pytestmark = pytest.mark.integration

INTERVAL_S = 1.0
POLLING = Polling(interval_s=INTERVAL_S, timeout_s=0.5, retries=1)
# The faulty device waits 2 x 1.5 s for its answer: healthy polls fall well inside.
FAULTY_POLLING = Polling(interval_s=INTERVAL_S, timeout_s=1.5, retries=1)
FAULTY, HEALTHY = "prov-ups-a", ("prov-ups-b", "prov-pdu-01", "prov-pdu-02")
WATCH_S = 3.6
# Judged by order and slots, not by how late a poll started: a loaded machine may start a
# poll late within its slot, while a poll waiting for the faulty device would lose slots
# (the faulty poll's timeout budget is three intervals).


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fault", [{"kind": "down"}, {"kind": "slow", "seconds": 9}],
                         ids=["down", "slow-9s"])
async def test_a_dead_or_slow_agent_never_delays_the_others(tmp_path, fault, engine):
    config = demo_config(tmp_path)
    polling = {d: (FAULTY_POLLING if d == FAULTY else POLLING).model_copy(
        update={"snmp_engine": engine}) for d in (FAULTY, *HEALTHY)}
    results: dict[str, list[PollResult]] = {d: [] for d in (FAULTY, *HEALTHY)}

    async def sink(result: PollResult) -> None:
        results[result.device].append(result)

    async with running(config) as sim:
        sim.devices[FAULTY].faults.set(fault["kind"], seconds=fault.get("seconds"))
        pollers = [DevicePoller(sim.devices[d].site_id, sim.devices[d].device,
                                sim.devices[d].profile, polling[d],
                                make_client(sim.devices[d].device, polling[d]), sink)
                   for d in results]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(p.run(stop)) for p in pollers]
        try:
            await asyncio.sleep(WATCH_S)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 15.0)
            for poller in pollers:
                poller.client.close()
    faulty = [(r.started, r.started + r.duration_s) for r in results[FAULTY]]
    assert faulty and not any(r.ok for r in results[FAULTY])
    assert all(r.error_kind == ErrorKind.TIMEOUT for r in results[FAULTY])
    for device in HEALTHY:
        got = results[device]
        assert len(got) >= int(WATCH_S / INTERVAL_S) - 1, device
        assert all(r.ok for r in got), [r.error for r in got]
        # One poll in each slot, none skipped: no poll waited for the faulty device. Slots
        # are counted from the device's first poll (they sit at its phase on the monotonic
        # clock, so a whole second of the wall clock may fall anywhere inside one).
        slots = [round((r.started - got[0].started) / INTERVAL_S) for r in got]
        assert slots == list(range(slots[0], slots[0] + len(slots))), (device, slots)
        # And polls ran to completion while a faulty poll was waiting for its answer.
        inside = [r for r in got for start, end in faulty
                  if start < r.started and r.started + r.duration_s < end]
        assert inside, (device, faulty, [(r.started, r.duration_s) for r in got])
