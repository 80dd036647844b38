"""Pollers with recording fake clients: batching, retries, isolation, logging once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pue_monitor.collectors.errors import DeviceError, PollTimeout
from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.config import load_config_text
from pue_monitor.config.model import Polling
from pue_monitor.store.model import ErrorKind

CONFIG = """
polling: {interval_s: 0.5, timeout_s: 0.3, retries: 1}
sites:
  - id: s1
    name: {vi: "TTDL", en: "DC"}
    devices:
      - {id: meter, profile: eastron_sdm630, role: facility, modbus: {host: 127.0.0.1, port: 1502}}
      - {id: ups, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {host: 127.0.0.1, port: 1161}}
      - {id: ups2, profile: ups_mib, role: monitor, snmp: {host: 127.0.0.1, port: 1162}}
"""


class FakeSnmp:
    """Answers GETs from a dict and records every call; may hang or fail."""

    def __init__(self, values, delay=0.0, fail=None):
        self.values, self.delay, self.fail, self.calls = values, delay, fail, []

    async def get(self, oids):
        self.calls.append(tuple(oids))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise self.fail
        return {o: self.values[o] for o in oids if o in self.values}

    async def walk(self, columns, max_repetitions):
        self.calls.append(("walk", *columns))
        if self.fail:
            raise self.fail
        return {o: v for o, v in self.values.items()
                if any(o.startswith(c + ".") for c in columns)}

    def close(self):
        pass


class FakeModbus:
    def __init__(self, image, refuse=()):
        self.image, self.refuse, self.calls = image, refuse, []

    async def read(self, function, address, count, unit):
        self.calls.append((function, address, count, unit))
        if address in self.refuse:
            raise DeviceError("exception 2 (illegal data address)", 2)
        return [self.image.get(address + i, 0) for i in range(count)]

    def close(self):
        pass


@pytest.fixture()
def config():
    return load_config_text(CONFIG, env={})


def make(config, device_id, client, sink=None, polling=None):
    for site, device in config.devices():
        if device.id == device_id:
            async def discard(result):
                pass
            return DevicePoller(site.id, device, config.profile_of(device),
                                polling or config.polling_for(site, device), client,
                                sink or discard)
    raise KeyError(device_id)


POWER_OID = "1.3.6.1.2.1.33.1.4.4.1.4.1"


async def test_snmp_poll_batches_and_decodes(config):
    client = FakeSnmp({POWER_OID: 42000})
    result = await make(config, "ups", client).poll_once()
    assert result.ok
    # The 5 scalars in one GET, then the output, input and bypass table columns walked
    # side by side.
    assert [len(c) for c in client.calls] == [5, 1 + 11]
    assert client.calls[1][0] == "walk"
    totals = [r for r in result.readings if r.metric == "active_power_w" and not r.labels]
    assert [r.value for r in totals] == [42000]


async def test_timeout_is_retried_then_reported(config):
    client = FakeSnmp({}, fail=PollTimeout("no answer"))
    result = await make(config, "ups", client).poll_once()
    assert (result.ok, result.error_kind) == (False, ErrorKind.TIMEOUT)
    assert len(client.calls) == 2  # retries: 1 -> two attempts of the first GET


async def test_modbus_refused_block_loses_that_block_only(config):
    # The voltage/current block at 0 is refused; the power block at 0x34 still decodes.
    poller = make(config, "meter", FakeModbus({0x34: 0x4640, 0x35: 0xE600}, refuse={0}))
    result = await poller.poll_once()
    assert result.ok
    assert result.point_errors == {"modbus_exception_2": 1}  # counted by exception code
    assert not [r for r in result.readings if r.metric == "voltage_v"]
    total = [r for r in result.readings if r.metric == "active_power_w" and not r.labels]
    assert total[0].value == 12345.5


async def test_modbus_unit_id_and_plan(config):
    client = FakeModbus({})
    await make(config, "meter", client).poll_once()
    # SDM630 profile, FC4, unit 1: the profile allows no read across unmapped registers
    # (modbus_max_gap 0), so only contiguous fields share a read: 0x00-0x11 (phases),
    # then each total on its own, the energy (0x46) with the frequency (0x48) before it.
    assert client.calls == [(4, 0, 18, 1), (4, 52, 2, 1), (4, 56, 2, 1), (4, 62, 2, 1),
                            (4, 70, 4, 1)]


async def test_all_blocks_refused_is_a_device_error(config):
    result = await make(config, "meter", FakeModbus({}, refuse={0, 52, 56, 62, 70})).poll_once()
    assert result.error_kind == ErrorKind.DEVICE


async def test_a_hanging_device_never_delays_the_others(config):
    # ups2 answers after 9 s (far beyond its timeout); ups answers at once. Over 2.2 s with
    # a 0.5 s interval, ups must be polled at every slot.
    results = []

    async def sink(result):
        results.append(result)
    good = make(config, "ups", FakeSnmp({POWER_OID: 1000}), sink)
    bad = make(config, "ups2", FakeSnmp({}, delay=9.0), sink)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(p.run(stop)) for p in (good, bad)]
    await asyncio.sleep(2.2)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    good_polls = [r for r in results if r.device == "ups"]
    assert len(good_polls) >= 4 and all(r.ok for r in good_polls)
    assert all(r.duration_s < 0.2 for r in good_polls)
    bad_polls = [r for r in results if r.device == "ups2"]
    assert bad_polls and all(r.error_kind == ErrorKind.TIMEOUT for r in bad_polls)


async def test_first_failure_logged_once_then_counted(config, caplog):
    results = []

    async def sink(result):
        results.append(result)
    poller = make(config, "ups", FakeSnmp({}, fail=PollTimeout("no answer")), sink)
    caplog.set_level(logging.WARNING, logger="pue_monitor.collectors.poller")
    for _ in range(3):
        poller._note(await poller.poll_once())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ups" in warnings[0].getMessage()
    # Backing off: after 2 failures the next slot is further away than one interval.
    assert poller.next_delay(1000.0) > 0.5


EPDU_CONFIG = """
sites:
  - id: s1
    name: {vi: "TTDL", en: "DC"}
    devices:
      - {id: pdu, profile: eaton_epdu, role: it, measurement_point: pdu_output,
         snmp: {host: 127.0.0.1, port: 1161}}
      - {id: meter, profile: eastron_sdm630, role: facility, modbus: {host: 127.0.0.1, port: 1502}}
"""
EPDU_WH = "1.3.6.1.4.1.534.6.6.7.3.5.1.5"


async def test_a_poller_remembers_a_totals_parts_and_warns_when_one_joins(caplog):
    # Unit 1 of the daisy chain drops out for a poll and comes back; later unit 2 joins.
    # The poller's memory of the parts makes the total not available while unit 1 is
    # away; each change is told once (INFO when unit 1 is back), the unit that joins
    # (its whole register counted into the total at once) with what to do about it.
    # (Only the energy column answers here: the power total has no parts to remember.)
    config = load_config_text(EPDU_CONFIG, env={})
    values = {f"{EPDU_WH}.0.1": 1000, f"{EPDU_WH}.1.1": 2000}
    client = FakeSnmp(values)
    poller = make(config, "pdu", client)
    caplog.set_level(logging.INFO, logger="pue_monitor.collectors.poller")
    totals = []
    for change in [{}, {"drop": f"{EPDU_WH}.1.1"}, {f"{EPDU_WH}.1.1": 2100},
                   {f"{EPDU_WH}.2.1": 7000}, {}]:
        values.pop(change.pop("drop", ""), None)
        values.update(change)
        result = await poller.poll_once()
        assert result.ok
        totals += [r.value for r in result.readings
                   if r.metric == "active_energy_kwh" and not r.labels]
    assert totals == [3.0, None, pytest.approx(3.1), pytest.approx(10.1),
                      pytest.approx(10.1)]
    said = [(r.levelname, r.getMessage().split(" (")[0].split(";")[0])
            for r in caplog.records]
    assert said == [
        ("WARNING", "device pdu: its active_energy_kwh total is not available: part(s) "
                    "inlet=1 unit=1 seen before do not answer"),
        ("INFO", "device pdu: part(s) inlet=1 unit=1 of its active_energy_kwh total "
                 "answer again"),
        ("WARNING", "device pdu: part(s) inlet=1 unit=2 joined its active_energy_kwh total"),
    ]


async def test_snmp_budget_comes_from_the_plan_the_poll_reads_with(config):
    # ups_mib: its 5 scalars in one GET (0.3 s + 0.5 s), then its 11 table columns walked
    # side by side (0.3 s per column + 0.5 s).
    client = FakeSnmp({POWER_OID: 42000})
    poller = make(config, "ups", client)
    await poller.poll_once()
    assert [len(c) for c in client.calls] == [5, 1 + 11]
    assert poller._poll_budget() == pytest.approx((0.3 + 0.5) + (0.3 * 11 + 0.5))


class SlowWalk(FakeSnmp):
    """GETs at once, a walk that takes ``walk_s``."""

    def __init__(self, values, walk_s):
        super().__init__(values)
        self.walk_s = walk_s

    async def walk(self, columns, max_repetitions):
        await asyncio.sleep(self.walk_s)
        return await super().walk(columns, max_repetitions)


@pytest.mark.parametrize(("walk_s", "ok"), [
    # Beyond 2 requests' time (0.3 s each + 0.5 s), within 11 columns x 0.3 s + 0.5 s.
    (1.5, True),
    (9.0, False),  # beyond the walk's 3.8 s: a timeout, the GETs' answers dropped with it
])
async def test_a_long_walk_has_its_own_budget(config, walk_s, ok):
    once = Polling(interval_s=0.5, timeout_s=0.3, retries=0)
    poller = make(config, "ups", SlowWalk({POWER_OID: 42000}, walk_s), polling=once)
    result = await poller.poll_once()
    assert (result.ok, result.error_kind) == (ok, None if ok else ErrorKind.TIMEOUT)


def test_modbus_polls_have_no_overall_budget(config):
    # Each Modbus request is bounded by its connection (which other units may share).
    assert make(config, "meter", FakeModbus({}))._poll_budget() is None


# Wall-clock times of successive polls -> whether each poll's readings are flagged
# clock_back: a poll at or before the device's latest good poll is flagged, until the
# clock passes that poll's time again.
CLOCK_STEPS = [
    ([100.0, 110.0, 120.0], [False, False, False]),
    ([100.0, 3700.0, 3710.0], [False, False, False]),  # forward: a gap, not a fault
    ([100.0, 110.0, 50.0, 60.0, 110.0, 111.0], [False, False, True, True, True, False]),
    ([100.0, 3700.0, 110.0, 3600.0, 3710.0], [False, False, True, True, False]),
]


@pytest.mark.parametrize(("times", "flagged"), CLOCK_STEPS)
async def test_readings_read_while_the_clock_is_behind_are_flagged(config, times, flagged,
                                                                    caplog):
    caplog.set_level(logging.INFO)
    clock = iter(times)  # read once per poll: the duration is on the monotonic clock
    poller = make(config, "meter", FakeModbus({0x34: 0x4640, 0x35: 0xE600}))
    poller.clock = lambda: next(clock)
    results = [await poller.poll_once() for _ in times]
    assert [r.ok for r in results] == [True] * len(times)
    assert [r.readings[0].ts for r in results] == times
    assert min(r.duration_s for r in results) >= 0
    qualities = [{x.quality.value for x in r.readings if x.metric == "active_power_w"}
                 for r in results]
    assert qualities == [{"clock_back"} if f else {"ok"} for f in flagged]
    assert all(x.value is None for r, f in zip(results, flagged) if f for x in r.readings)
    warnings = [r for r in caplog.records if "went back" in r.getMessage()]
    assert len(warnings) == (1 if any(flagged) else 0)  # once per episode


async def test_a_unit_away_when_the_monitor_starts_is_missing_not_joining(tmp_path, caplog):
    # Before this start the store had both units of the chain (an hour ago); the monitor
    # starts while unit 1 is away: its total is not available (not unit 0's count alone,
    # which would rise by unit 1's whole register when it answers), and when unit 1
    # answers it is back, not a part joining. A unit last read longer before the start
    # than PARTS_LOOKBACK_S (15 minutes) is not waited for.
    from pue_monitor.collectors.service import parts_before
    from pue_monitor.store.model import PollResult, Reading
    from pue_monitor.store.sqlite import Store

    config = load_config_text(EPDU_CONFIG, env={})
    now = 1_767_225_600.0
    store = Store.open(tmp_path)
    try:
        def energy(ts, unit, kwh):
            return Reading(ts, "pdu", "active_energy_kwh", kwh,
                           (("inlet", "1"), ("unit", str(unit))))
        store.write_polls([
            PollResult("pdu", "s1", now - 1800, 0.01, (energy(now - 1800, 2, 9.0),)),
            PollResult("pdu", "s1", now - 600, 0.01,
                       (energy(now - 600, 0, 1.0), energy(now - 600, 1, 2.0),
                        Reading(now - 600, "pdu", "active_energy_kwh", 0.5,
                                (("outlet", "1"), ("unit", "0")))))])
        before = parts_before(config, store, ["pdu", "meter"], now)
    finally:
        store.close()
    # The outlet's counter is no part of a total: not kept. The meter has no totals.
    assert before == {"pdu": [("active_energy_kwh", (("inlet", "1"), ("unit", "0"))),
                              ("active_energy_kwh", (("inlet", "1"), ("unit", "1")))]}
    values = {f"{EPDU_WH}.0.1": 1100}
    site, device = config.devices()[0]
    times = iter([now, now + 10])
    poller = DevicePoller(site.id, device, config.profile_of(device),
                          config.polling_for(site, device), FakeSnmp(values), None,
                          clock=lambda: next(times), parts_before=before["pdu"])
    caplog.set_level(logging.INFO, logger="pue_monitor.collectors.poller")
    totals = []
    for change in [{}, {f"{EPDU_WH}.1.1": 2100}]:
        values.update(change)
        result = await poller.poll_once()
        totals += [r.value for r in result.readings
                   if r.metric == "active_energy_kwh" and not r.labels]
    assert totals == [None, pytest.approx(3.2)]
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "device pdu: its active_energy_kwh total is not available: part(s) inlet=1 unit=1 "
        "seen before do not answer",
        "device pdu: part(s) inlet=1 unit=1 of its active_energy_kwh total answer again"]


@pytest.mark.parametrize("store_fails", [False, True], ids=["seeded", "store-fails"])
def test_the_collector_service_seeds_its_pollers_and_starts_without(tmp_path, caplog,
                                                                     store_fails):
    # The service reads the parts before its pollers exist; a store that cannot give
    # them is logged and the monitor starts all the same, its pollers learning the parts
    # from their first polls.
    from pue_monitor.collectors.service import CollectorService
    from pue_monitor.store.model import PollResult, Reading
    from pue_monitor.store.sqlite import Store

    config = load_config_text(EPDU_CONFIG, env={})
    now = 1_767_225_600.0
    store = Store.open(tmp_path)
    try:
        store.write_polls([PollResult("pdu", "s1", now - 60, 0.01, (
            Reading(now - 60, "pdu", "active_energy_kwh", 2.0, (("inlet", "1"), ("unit", "1"))),))])
        if store_fails:
            def broken(*args, **kwargs):
                raise OSError("disk I/O error")
            store.latest = broken
        caplog.set_level(logging.ERROR)
        service = CollectorService(config, store, clock=lambda: now)
        pdu = next(p for p in service.pollers if p.device.id == "pdu")
        seeded = {key: sorted(parts) for key, parts in pdu._parts.parts.items()}
    finally:
        store.close()
    if store_fails:
        assert seeded == {}
        assert [r.getMessage() for r in caplog.records] == [
            "cannot read the devices' recent parts from the store: disk I/O error"]
    else:
        assert seeded == {("active_energy_kwh", "inlet", ("unit",)): [(("inlet", "1"),
                                                                        ("unit", "1"))]}
        assert caplog.records == []
