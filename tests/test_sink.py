"""One fan-out sink per collector service: every poll result reaches the store and each
destination the composition root passed in, through the sink the pollers were built with."""

from __future__ import annotations

import asyncio

from pue_monitor.collectors.service import CollectorService
from pue_monitor.collectors.sink import FanOutSink
from pue_monitor.store.model import PollResult, Reading
from pue_monitor.store.sqlite import Store
from tests.web_fixtures import demo_config

RESULTS = [PollResult("prov-incomer", "bn-provincial", 1_000.0 + i, 0.01,
                      (Reading(1_000.0 + i, "prov-incomer", "active_power_w", 50.0 * i),))
           for i in range(3)]


def test_the_pollers_share_one_fan_out_sink_to_the_store_and_the_destinations(tmp_path):
    config = demo_config()
    seen: list[PollResult] = []
    store = Store.open(tmp_path)
    try:
        service = CollectorService(config, store, destinations=[seen.append])
        try:
            assert isinstance(service.sink, FanOutSink)
            assert {id(p.sink) for p in service.pollers} == {id(service.sink)}

            async def deliver() -> None:
                for result in RESULTS:
                    await service.pollers[0].sink(result)
                await service.store_sink.flush()
            asyncio.run(deliver())
        finally:
            for poller in service.pollers:
                poller.client.close()
        stored = store.latest(0.0, ["prov-incomer"])
    finally:
        store.close()
    assert seen == RESULTS
    # the newest of the three readings: 50 W x 2 at 1002 s
    assert stored[["device", "ts", "value"]].values.tolist() == [["prov-incomer", 1002.0, 100.0]]


def test_without_destinations_results_go_to_the_store_only(tmp_path):
    store = Store.open(tmp_path)
    try:
        service = CollectorService(demo_config(), store)
        try:
            assert service.sink.others == ()
        finally:
            for poller in service.pollers:
                poller.client.close()
    finally:
        store.close()
