"""Builds one poller per configured device and runs them all on one event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from collectors.modbus_client import PymodbusTcpClient
from collectors.poller import DevicePoller
from collectors.sink import StoreSink
from collectors.snmp_client import PysnmpClient
from config.model import Config, Device, Polling
from store.sqlite import Store

log = logging.getLogger(__name__)


def make_client(device: Device, polling: Polling) -> PysnmpClient | PymodbusTcpClient:
    """The protocol client for one device (retries are the poller's, not the client's)."""
    if device.snmp is not None:
        return PysnmpClient(device.snmp.host, device.snmp.port,
                            device.snmp.community.get_secret_value(), device.snmp.version,
                            timeout_s=polling.timeout_s, retries=0)
    assert device.modbus is not None
    return PymodbusTcpClient(device.modbus.host, device.modbus.port, timeout_s=polling.timeout_s)


class CollectorService:
    """All pollers plus the store sink, until stopped."""

    def __init__(self, config: Config, store: Store,
                 clock: Callable[[], float] = time.time) -> None:
        self.config, self.store, self.clock = config, store, clock
        self.sink = StoreSink(store)
        self.pollers: list[DevicePoller] = []
        for site, device in config.devices():
            polling = config.polling_for(site, device)
            self.pollers.append(DevicePoller(site.id, device, config.profile_of(device), polling,
                                             make_client(device, polling), self.sink, clock))

    async def run(self, stop: asyncio.Event) -> None:
        log.info("polling %d devices in %d sites", len(self.pollers), len(self.config.sites))
        tasks = [asyncio.create_task(p.run(stop), name=f"poll:{p.device.id}")
                 for p in self.pollers]
        tasks.append(asyncio.create_task(self.sink.run(stop), name="store-sink"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for poller in self.pollers:
                poller.client.close()
