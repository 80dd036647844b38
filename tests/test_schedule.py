"""When devices are polled: phases spread over the interval and survive a restart, slots and
late polls on a fake monotonic clock, the in-flight limit holding back a flood."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.schedule import Schedule, late_tolerance, phase_of, slot_at_or_after
from pue_monitor.collectors.service import CollectorService
from pue_monitor.collectors.stats import CollectionStats
from pue_monitor.config import load_config_text
from pue_monitor.config.model import Polling
from pue_monitor.store.sqlite import Store
from tests.test_poller import POWER_OID, FakeSnmp

IDS = ["ups-1", "ups-2", "pdu-a01-l", "pdu-a01-r", "crac-7", "meter-incomer",
       "rack-pdu-0001", "rack-pdu-0002", "rack-pdu-4999"]


def test_phases_survive_a_restart():
    # A new interpreter with another hash seed (Python's hash() would differ) gives the
    # same phase for every id and interval.
    here = {f"{i}@{iv}": phase_of(i, iv) for i in IDS for iv in (10.0, 60.0, 0.5)}
    code = ("import json; from pue_monitor.collectors.schedule import phase_of; "
            f"print(json.dumps({{f'{{i}}@{{iv}}': phase_of(i, iv) for i in {IDS!r} "
            "for iv in (10.0, 60.0, 0.5)}))")
    for seed in ("1", "4242"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, timeout=60, env={"PYTHONHASHSEED": seed})
        assert json.loads(out.stdout) == here


@pytest.mark.parametrize("device_id", IDS)
@pytest.mark.parametrize("interval", [0.5, 10.0, 60.0, 3600.0])
def test_a_phase_lies_in_its_interval_and_scales_with_it(device_id, interval):
    phase = phase_of(device_id, interval)
    assert 0.0 <= phase < interval
    # The same fraction of every interval (exact: the fraction is k / 2^32).
    assert phase_of(device_id, 2 * interval) == 2 * phase


def test_phases_spread_polls_across_the_interval():
    # 5,000 rack PDUs at 10 s: every second of the interval gets about a tenth of them.
    # Binomial(5000, 0.1): mean 500, standard deviation 21; 400..600 is over 4.7 sd.
    counts = [0] * 10
    for n in range(5000):
        counts[int(phase_of(f"rack-pdu-{n:04d}", 10.0))] += 1
    assert sum(counts) == 5000
    assert all(400 <= c <= 600 for c in counts), counts
    # ... and no two of a handful share an instant.
    assert len({phase_of(i, 10.0) for i in IDS}) == len(IDS)


@pytest.mark.parametrize(("t", "interval", "phase", "slot"), [
    (100.0, 10.0, 3.0, 103.0),
    (103.0, 10.0, 3.0, 103.0),  # on a slot: that slot
    (103.5, 10.0, 3.0, 113.0),
    (0.0, 10.0, 0.0, 0.0),
    (-4.0, 10.0, 3.0, 3.0),
    (7.25, 0.5, 0.25, 7.25),
])
def test_slot_at_or_after(t, interval, phase, slot):
    assert slot_at_or_after(t, interval, phase) == slot


@pytest.mark.parametrize(("interval", "tolerance"), [(10.0, 1.0), (60.0, 1.0), (2.0, 0.2),
                                                     (0.5, 0.05)])
def test_late_tolerance(interval, tolerance):
    assert late_tolerance(interval) == pytest.approx(tolerance)


def schedule(phase: float, interval: float = 10.0) -> Schedule:
    s = Schedule("any", interval)
    s.phase_s = phase  # a round phase, so the expected slots can be read off by hand
    return s


@pytest.mark.parametrize(("slot", "now", "rest", "expected"), [
    (103.0, 104.0, 10.0, (113.0, 0)),  # the poll took 1 s: the next slot as usual
    (103.0, 113.5, 10.0, (113.0, 0)),  # 0.5 s past it, within the 1 s tolerance: keep it
    (103.0, 115.0, 10.0, (123.0, 1)),  # overran 113: skipped, on to 123
    (103.0, 135.0, 10.0, (143.0, 3)),  # 113, 123, 133 passed unpolled
    (103.0, 104.0, 40.0, (143.0, 0)),  # backing off: rest 40 s
    (103.0, 104.0, 25.0, (133.0, 0)),  # a rest that is not a multiple: back on the grid
])
def test_next_slot(slot, now, rest, expected):
    assert schedule(3.0).next(slot, now, rest) == expected


def test_the_first_slot_is_after_start_up():
    s = schedule(3.0)
    assert (s.first(100.0), s.first(103.0), s.first(103.5)) == (103.0, 113.0, 113.0)


CONFIG = """
polling: {interval_s: 10, timeout_s: 0.3, retries: 1}
collection: {max_in_flight: 7}
sites:
  - id: s1
    name: {vi: "TTDL", en: "DC"}
    devices:
      - {id: meter, profile: eastron_sdm630, role: facility, modbus: {host: 127.0.0.1, port: 1502}}
      - {id: ups, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {host: 127.0.0.1, port: 1161}}
"""


class FakeMonotonic:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ups_poller(client, polling=None, **kw) -> DevicePoller:
    config = load_config_text(CONFIG, env={})
    site, device = config.devices()[1]

    async def discard(result):
        pass
    return DevicePoller(site.id, device, config.profile_of(device),
                        polling or config.polling_for(site, device), client, discard, **kw)


@pytest.mark.parametrize(("interval", "started_after", "late"), [
    (10.0, 0.0, 0),
    (10.0, 0.9, 0),
    (10.0, 1.1, 1),  # tolerance 1 s
    (2.0, 0.15, 0),
    (2.0, 0.25, 1),  # tolerance 10 % of 2 s
])
async def test_late_polls_are_counted_on_a_fake_clock(interval, started_after, late):
    stats = CollectionStats()
    clock = FakeMonotonic(1000.0)
    poller = ups_poller(FakeSnmp({POWER_OID: 1}), Polling(interval_s=interval, timeout_s=0.3),
                        stats=stats, monotonic=clock)
    clock.now = 1000.0 + started_after
    result = await poller._poll_at(1000.0)
    assert result.ok
    d = stats.devices["ups"]
    assert (d.polls, d.late, d.answers, d.retries) == (1, late, 1, 0)
    assert (stats.total.polls, stats.total.late) == (1, late)


class StallClock:
    """The event loop's clock plus an offset a poll can move on (a stall)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return asyncio.get_running_loop().time() + self.offset


class Stalling(FakeSnmp):
    """Every GET moves the clock on by ``stall_s``: as if the poll had taken that long."""

    def __init__(self, clock: StallClock, stall_s: float) -> None:
        super().__init__({POWER_OID: 1})
        self.clock, self.stall_s = clock, stall_s

    async def get(self, oids):
        self.clock.offset += self.stall_s
        return await super().get(oids)


async def test_an_overrunning_poll_skips_slots():
    # Interval 2 s, each poll seen as taking 5 s: after the poll of slot s the clock reads
    # s + 5, so s + 2 and s + 4 passed unpolled and the next poll is at s + 6; the same
    # after that one. Two polls, four skipped slots.
    stats = CollectionStats()
    clock = StallClock()
    stop = asyncio.Event()

    async def sink(result):
        if stats.total.polls == 2:
            stop.set()
    poller = ups_poller(Stalling(clock, 5.0), Polling(interval_s=2.0, timeout_s=0.3, retries=0),
                        stats=stats, monotonic=clock)
    poller.sink = sink
    await asyncio.wait_for(poller.run(stop), 20)
    d = stats.devices["ups"]
    assert (d.polls, d.answers, d.skipped) == (2, 2, 4)
    assert (stats.total.polls, stats.total.skipped) == (2, 4)


async def test_the_limiter_holds_back_a_flood_and_loses_nothing():
    # 120 devices every 0.2 s, each GET taking 20 ms: about 12 polls would run at once;
    # the limit is 4. Every poll started ends in a result; never more than 4 at a time.
    running = peak = 0
    results = []

    class Counting(FakeSnmp):
        async def get(self, oids):
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            try:
                await asyncio.sleep(0.02)
                return await super().get(oids)
            finally:
                running -= 1

        async def walk(self, columns, max_repetitions):
            return {}

    config = load_config_text(CONFIG, env={})
    site, template = config.devices()[1]
    stats = CollectionStats()
    limiter = asyncio.Semaphore(4)

    async def sink(result):
        results.append(result)
    pollers = []
    for n in range(120):
        device = template.model_copy(update={"id": f"ups-{n:03d}"})
        pollers.append(DevicePoller(site.id, device, config.profile_of(device),
                                    Polling(interval_s=0.2, timeout_s=5.0, retries=0),
                                    Counting({POWER_OID: n}), sink, limiter=limiter,
                                    stats=stats))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop)) for p in pollers]
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert peak == 4  # reached (the flood was real) and never passed
    assert stats.in_flight == 0
    assert len(results) == stats.total.polls == stats.total.answers > 0
    assert all(r.ok for r in results)
    powers = {r.device: r.readings for r in results}
    assert len(powers) > 4  # many devices got their turn, not only the first four


def test_the_service_takes_its_limit_from_the_configuration(tmp_path):
    # The reference engine: its v1/v2c devices share one socket, sized for the answers in
    # flight (the fast engine has a socket per device).
    config = load_config_text(CONFIG.replace("retries: 1}", "retries: 1, snmp_engine: reference}"),
                              env={})
    store = Store.open(tmp_path)
    try:
        service = CollectorService(config, store)
        try:
            assert service.stats.in_flight_limit == 7
            assert {id(p.limiter) for p in service.pollers} == {id(service.limiter)}
            assert {id(p.stats) for p in service.pollers} == {id(service.stats)}
            # Every device is counted from the start, at zero.
            assert service.stats.snapshot().devices["ups"].polls == 0
            # The shared SNMP socket is asked for a buffer for 7 answers of 4 KiB.
            assert service.pollers[1].client.receive_buffer_bytes == 7 * 4096
        finally:
            for poller in service.pollers:
                poller.client.close()
    finally:
        store.close()


@pytest.mark.parametrize(("spread", "phases"), [
    (True, {phase_of(i, 10.0) for i in IDS}),
    (False, {0.0}),  # collection.spread false: every device at the same instants
])
def test_spread_can_be_turned_off(spread, phases):
    assert {Schedule(i, 10.0, spread).phase_s for i in IDS} == phases


def test_the_service_passes_spread_on(tmp_path):
    config = load_config_text(CONFIG.replace("max_in_flight: 7", "max_in_flight: 7, "
                                             "spread: false"), env={})
    store = Store.open(tmp_path)
    try:
        service = CollectorService(config, store)
        try:
            assert [p.schedule.phase_s for p in service.pollers] == [0.0, 0.0]
        finally:
            for poller in service.pollers:
                poller.client.close()
    finally:
        store.close()
