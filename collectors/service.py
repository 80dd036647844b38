"""Builds one poller per configured device and runs them all on one event loop, under one
limit of polls in flight, counting what they do in one CollectionStats.

:func:`build_pollers` and :func:`run_pollers` also serve a worker process, which polls
only its sites' devices (collectors/workers.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from pue_monitor.collectors.fd_limit import fds_needed, raise_fd_limit
from pue_monitor.collectors.gc_tuning import polling_gc
from pue_monitor.collectors.modbus_client import ModbusConnection, SerialSettings
from pue_monitor.collectors.poller import DevicePoller, OnIdentified, Sink
from pue_monitor.collectors.sink import Destination, FanOutSink, StoreSink
from pue_monitor.collectors.snmp_client import PysnmpClient, receive_sockets
from pue_monitor.collectors.snmp_engine import snmp_client_for
from pue_monitor.collectors.snmp_gufo import GufoClient
from pue_monitor.collectors.snmp_identify import Known
from pue_monitor.collectors.stats import CollectionStats
from pue_monitor.collectors.totals import PartBefore, parts_of
from pue_monitor.collectors.udp_buffer import socket_drops, wanted_bytes
from pue_monitor.config.model import Config, Device, ModbusTarget, Polling, Site
from pue_monitor.store.base import StoreProtocol
from pue_monitor.store.model import Identified, parse_labels

log = logging.getLogger(__name__)


def modbus_connection(target: ModbusTarget, timeout_s: float) -> ModbusConnection:
    """A connection for a Modbus target (TCP, RTU over TCP, or a serial line)."""
    if target.transport == "serial":
        assert target.device is not None
        return ModbusConnection(
            framing="rtu", serial=SerialSettings(target.device, target.baud, target.parity,
                                                 target.stopbits, target.bytesize),
            timeout_s=timeout_s, frame_gap_s=target.frame_gap_s,
            busy_retries=target.busy_retries)
    framing = "rtu" if target.transport == "rtu_over_tcp" else "tcp"
    return ModbusConnection(target.host, target.port, framing=framing, timeout_s=timeout_s,
                            frame_gap_s=target.frame_gap_s, busy_retries=target.busy_retries)


def make_client(device: Device, polling: Polling,
                shared: dict[tuple, ModbusConnection] | None = None,
                receive_buffer_bytes: int = 0) -> GufoClient | PysnmpClient | ModbusConnection:
    """The protocol client for one device (retries are the poller's, not the client's).

    Modbus devices behind the same gateway or bus get the same connection from ``shared``;
    the first device's timeout and settings serve them all. ``receive_buffer_bytes``: the
    receive buffer the shared SNMP socket needs for the answers that may be in flight.
    """
    if device.snmp is not None:
        return snmp_client_for(device.snmp, polling.timeout_s, retries=0,
                               engine=polling.snmp_engine, device=device.id,
                               receive_buffer_bytes=receive_buffer_bytes)
    assert device.modbus is not None
    if shared is None:
        return modbus_connection(device.modbus, polling.timeout_s)
    key = device.modbus.connection_key
    if key not in shared:
        shared[key] = modbus_connection(device.modbus, polling.timeout_s)
    return shared[key]


# At a start, the parts a device's totals had in the store's readings this recent are
# waited for: a restart or an upgrade takes minutes. Further back would cost every start
# of a large PostgreSQL store a scan of that many readings (its `latest` reads the time
# range: about 30 s for 2,000 devices and an hour of minute readings).
PARTS_LOOKBACK_S = 900.0
PARTS_CHUNK = 500  # devices per store query (bound parameters)


def parts_before(config: Config, store: StoreProtocol, devices: Sequence[str],
                 now: float) -> dict[str, list[PartBefore]]:
    """{device: the parts of its totals it had before this start}: those read within
    PARTS_LOOKBACK_S (seeds each poller's memory of its totals' parts,
    collectors.totals). Only devices whose profile has totals, or is yet to be found
    (``profile: auto``: the parts of any profile's totals), are read."""
    every_total = tuple(t for p in config.profiles.values() for t in p.totals)
    asked = set(devices)
    totals_of: dict[str, tuple] = {}
    for _, device in config.devices():
        if device.id in asked:
            profile = config.known_profile(device)
            totals = every_total if profile is None else tuple(profile.totals)
            if totals:
                totals_of[device.id] = totals
    wanted = sorted(totals_of)
    out: dict[str, list[PartBefore]] = {}
    for first in range(0, len(wanted), PARTS_CHUNK):
        frame = store.latest(now - PARTS_LOOKBACK_S, wanted[first:first + PARTS_CHUNK])
        rows: dict[str, list[PartBefore]] = {}
        for device, metric, labels in zip(frame["device"], frame["metric"], frame["labels"],
                                          strict=True):
            if labels:
                rows.setdefault(device, []).append(
                    (metric, tuple(sorted(parse_labels(labels).items()))))
        for device, before in rows.items():
            parts = parts_of(totals_of[device], before)
            if parts:
                out[device] = parts
    return out


def build_pollers(config: Config, devices: Sequence[tuple[Site, Device]], sink: Sink,
                  stats: CollectionStats, limiter: asyncio.Semaphore,
                  identified: Mapping[str, Identified],
                  on_identified: OnIdentified | None,
                  clock: Callable[[], float] = time.time,
                  parts: Mapping[str, Sequence[PartBefore]] | None = None
                  ) -> list[DevicePoller]:
    """One poller per device of ``devices``, all under ``limiter``, counted in ``stats``.

    ``identified``: what auto devices were identified as before this start (the store's
    record): each poller confirms its device's (two requests) instead of identifying it
    from scratch. ``parts``: the parts of totals each device had before (parts_before).
    Modbus devices behind one gateway or bus share one connection.
    """
    parts = parts or {}
    shared: dict[tuple, ModbusConnection] = {}
    pollers = []
    for site, device in devices:
        # Counted from the start: a device never polled yet shows 0, and /metrics
        # (another thread) never sees the table grow under it.
        stats.device(site.id, device.id)
        polling = config.polling_for(site, device)
        client = make_client(device, polling, shared, wanted_bytes(stats.in_flight_limit))
        # profile auto: None here; the poller identifies the agent on first contact.
        profile = config.known_profile(device)
        before = identified.get(device.id) if profile is None else None
        pollers.append(DevicePoller(
            site.id, device, profile, polling, client, sink,
            clock, candidates=config.profiles.values(),
            on_identified=on_identified,
            known=None if before is None else Known(
                before.profile, None if before.ts is None else before.sys_object_id),
            limiter=limiter, stats=stats, spread=config.collection.spread,
            parts_before=parts.get(device.id, ())))
    return pollers


def raise_fd_limit_for(pollers: Sequence[DevicePoller]) -> int:
    """The process's open-file limit raised for ``pollers`` before any socket opens (they
    open at the first poll); a warning when even the hard limit is short. In every
    process that polls: the single one, or each worker."""
    fast = sum(isinstance(p.client, GufoClient) for p in pollers)
    limit, warning = raise_fd_limit(fds_needed(fast, len(pollers) - fast))
    if warning is not None:
        log.warning("%s", warning)
    return limit


async def run_pollers(pollers: Sequence[DevicePoller], stop: asyncio.Event) -> None:
    """Every poller until ``stop``; then their clients are closed."""
    tasks = [asyncio.create_task(p.run(stop), name=f"poll:{p.device.id}") for p in pollers]
    try:
        with polling_gc():
            await asyncio.gather(*tasks)
    finally:
        for poller in pollers:
            poller.client.close()


class CollectorService:
    """All pollers plus their sink, until stopped.

    ``destinations``: where each poll result goes besides the store (the runner passes
    the InfluxDB exporter's when configured); the pollers get one fan-out sink to all.
    ``stats``: the counters /metrics shows (the composition root hands them to web/).
    """

    def __init__(self, config: Config, store: StoreProtocol,
                 clock: Callable[[], float] = time.time,
                 destinations: Sequence[Destination] = (),
                 stats: CollectionStats | None = None) -> None:
        self.config, self.store, self.clock = config, store, clock
        limit = config.collection.max_in_flight
        self.stats = stats if stats is not None else CollectionStats()
        self.stats.in_flight_limit = limit
        self.store_sink = StoreSink(store, self.stats, config.collection.store_backlog)
        self.sink = FanOutSink(self.store_sink, destinations)
        self.stats.backlog = lambda: self.store_sink.backlog
        self.stats.store_write_errors = lambda: self.store_sink.write_errors
        self.stats.backlog_dropped = lambda: self.store_sink.dropped
        self.stats.receive_buffers = lambda: tuple((a, g) for _, a, g in receive_sockets())
        self.stats.receive_drops = lambda: socket_drops(
            [s for s, _, _ in receive_sockets()] + self._fast_sockets())
        # Created here, outside any event loop: asyncio primitives bind to a loop on use.
        self.limiter = asyncio.Semaphore(limit)
        devices = config.devices()
        try:
            parts = parts_before(config, store, [d.id for _, d in devices], clock())
        except Exception as exc:  # the totals' parts are then learnt from the first polls
            log.error("cannot read the devices' recent parts from the store: %s", exc)
            parts = {}
        self.pollers = build_pollers(config, devices, self.sink, self.stats,
                                     self.limiter, store.device_identifications(),
                                     store.set_device_profile, clock, parts)
        self.fd_limit = raise_fd_limit_for(self.pollers)

    def _fast_sockets(self) -> list:
        """The fast engine's open sockets (one per device), for their kernel drops."""
        return [sock for p in self.pollers if isinstance(p.client, GufoClient)
                and (sock := p.client.receive_socket) is not None]

    async def run(self, stop: asyncio.Event) -> None:
        log.info("polling %d devices in %d sites, at most %d polls in flight",
                 len(self.pollers), len(self.config.sites), self.stats.in_flight_limit)
        # The sink stops only after every poller has: a poll in flight at the stop still
        # hands its result over, and the sink's last flush writes it.
        sink_stop = asyncio.Event()
        sink = asyncio.create_task(self.store_sink.run(sink_stop), name="store-sink")
        try:
            await run_pollers(self.pollers, stop)
        finally:
            sink_stop.set()
            await sink
