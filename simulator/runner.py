"""The simulator: physics on a tick, every device served as a real SNMP/Modbus endpoint.

The command around it (ports, state dir, signals) is simulator/serve.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pue_monitor.config.metrics import MeasurementPoint, Role
from pue_monitor.config.model import AUTO_PROFILE, Config, Device, Simulation, Site, SiteSimulation
from pue_monitor.config.profiles import Profile
from pue_monitor.simulator.control import ControlServer, NotFound
from pue_monitor.simulator.encode import modbus_image, snmp_table
from pue_monitor.simulator.faults import DeviceFaults
from pue_monitor.simulator.modbus_server import ModbusEndpoint
from pue_monitor.simulator.physics import (
    DeviceTraits,
    EnergyCounter,
    SiteLayout,
    SitePower,
    build_layout,
    canonical_values,
    device_traits,
    initial_energy_kwh,
    site_power,
)
from pue_monitor.simulator.snmp_agent import SnmpAgent
from pue_monitor.simulator.state import (
    SAVE_EVERY_S,
    RegisterState,
    SimulatorState,
    catch_up_times,
    load_state,
    save_state,
)

log = logging.getLogger(__name__)
DEVICE_LISTS = ("incomers", "ups", "pdus", "cooling")  # fixed once the simulator runs
READY_LINE = "simulator ready"  # printed once every endpoint listens (the demo waits for it)


@dataclass
class DeviceRuntime:
    """One simulated device: its endpoint, faults and energy register."""

    site_id: str
    device: Device
    profile: Profile
    faults: DeviceFaults
    counter: EnergyCounter
    traits: DeviceTraits
    agent: SnmpAgent | None = None
    modbus: ModbusEndpoint | None = None
    power_w: float = 0.0
    resets: int = 0  # counter resets injected by faults (kept in the state file)

    @property
    def endpoint(self) -> str:
        if self.agent is not None:
            return f"snmp://{self.agent.host}:{self.agent.port}"
        assert self.modbus is not None and self.device.modbus is not None
        return f"modbus://{self.modbus.host}:{self.modbus.port}/unit{self.device.modbus.unit}"


def derive_site_simulation(site: Site) -> SiteSimulation:
    """Defaults for a site the config's simulation section does not describe."""
    of = lambda pred: [d.id for d in site.devices if pred(d)]  # noqa: E731
    return SiteSimulation(
        incomers=of(lambda d: d.role == Role.FACILITY),
        ups=of(lambda d: d.measurement_point == MeasurementPoint.UPS_OUTPUT),
        pdus=of(lambda d: d.role == Role.IT and d.measurement_point != MeasurementPoint.UPS_OUTPUT),
        cooling=of(lambda d: d.role == Role.COOLING))


@contextmanager
def _where(what: str) -> Iterator[None]:
    """Name the endpoint in a bind error ("address already in use" alone helps nobody)."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {what}: {exc.strerror or exc}") from exc


def auto_profile_problem(config: Config) -> str | None:
    """Why the simulator cannot serve this config's `profile: auto` devices, if it has any:
    an agent must answer as some model, so the simulator needs each device's profile named."""
    auto = [d.id for _, d in config.devices() if d.profile == AUTO_PROFILE]
    if not auto:
        return None
    return (f"the simulator needs a named profile for every device (profile auto is for "
            f"the monitor, which identifies real agents): {', '.join(auto)}")


class Simulator:
    """Every device of a configuration as a live endpoint, driven by site physics."""

    def __init__(self, config: Config, *, control_port: int | None = None,
                 control_host: str = "127.0.0.1", tick_s: float | None = None,
                 clock: Callable[[], float] = time.time,
                 state_path: Path | None = None) -> None:
        problem = auto_profile_problem(config)
        if problem:
            raise ValueError(problem)
        self.config = config
        sim = config.simulation or Simulation(sites={})
        self.seed = sim.seed
        self.tick_s = sim.tick_s if tick_s is None else tick_s
        self.clock = clock
        self.state_path = state_path  # None: registers start fresh and are never saved
        self._saved_at: float | None = None
        self._control_port = sim.control_port if control_port is None else control_port
        self._control_host = control_host
        self.site_sims: dict[str, SiteSimulation] = {
            s.id: sim.sites.get(s.id) or derive_site_simulation(s) for s in config.sites}
        self.layouts: dict[str, SiteLayout] = {
            s.id: build_layout(s, self.site_sims[s.id], self.seed) for s in config.sites}
        self.power: dict[str, SitePower] = {}
        self.true_energy = {s.id: (EnergyCounter(), EnergyCounter()) for s in config.sites}
        self.devices: dict[str, DeviceRuntime] = {}
        self.modbus_endpoints: dict[tuple[str, int], ModbusEndpoint] = {}
        for site, device in config.devices():
            self._add_device(site, device)
        self.last_tick: float | None = None
        self.control: ControlServer | None = None
        self._task: asyncio.Task | None = None

    def _add_device(self, site: Site, device: Device) -> None:
        profile = self.config.profile_of(device)
        is_rack = device.id in self.layouts[site.id].racks
        dev = DeviceRuntime(site.id, device, profile, DeviceFaults(self.clock),
                        EnergyCounter(initial_energy_kwh(self.seed, device.id, is_rack)),
                        device_traits(self.seed, device.id))
        if device.snmp is not None:
            dev.agent = SnmpAgent(
                device.snmp.host, device.snmp.port, device.snmp.community.get_secret_value(),
                sys_descr=f"{profile.description} (pue-monitor simulator, {device.id})",
                sys_object_id=(profile.sys_object_ids or [None])[0],
                faults=dev.faults, clock=self.clock)
        else:
            assert device.modbus is not None
            where = (device.modbus.host, device.modbus.port)
            endpoint = self.modbus_endpoints.setdefault(where, ModbusEndpoint(*where))
            endpoint.add_unit(device.modbus.unit, profile, dev.faults)
            dev.modbus = endpoint
        self.devices[device.id] = dev

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Continue the saved registers, compute the first tick, open every endpoint and
        the control port, start ticking."""
        now = self.clock()
        if self.state_path is not None:
            state = load_state(self.state_path)
            if state is not None:
                self.resume(state, now)
        self.tick(now)
        try:
            for dev in self.devices.values():
                if dev.agent is not None:
                    with _where(f"{dev.device.id}: SNMP udp/{dev.agent.host}:{dev.agent.port}"):
                        await dev.agent.start()
            for (host, port), endpoint in self.modbus_endpoints.items():
                with _where(f"Modbus tcp/{host}:{port}"):
                    await endpoint.start()
            with _where(f"control http/{self._control_host}:{self._control_port}"):
                self.control = ControlServer(self, asyncio.get_running_loop(),
                                             self._control_host, self._control_port)
            self.control.start()
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._run(), name="simulator-tick")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self.control is not None:
            # shutdown() waits for the HTTP thread, which may be waiting for this loop.
            await asyncio.to_thread(self.control.stop)
            self.control = None
        for dev in self.devices.values():
            if dev.agent is not None:
                dev.agent.close()
        for endpoint in self.modbus_endpoints.values():
            await endpoint.stop()
        if self.last_tick is not None:
            self.save()

    def save(self, state: SimulatorState | None = None) -> None:
        """Write the state file (if there is one) with ``state`` (default: the registers
        now); a failure is logged, not raised."""
        if self.state_path is None:
            return
        state = self.snapshot_state() if state is None else state
        try:
            save_state(self.state_path, state)
        except OSError as exc:
            log.warning("cannot save simulator state to %s: %s", self.state_path,
                        exc.strerror or exc)
            return
        self._saved_at = state.saved_at

    async def _run(self) -> None:
        delay = self.tick_s
        while True:
            await asyncio.sleep(delay)
            started = time.monotonic()
            try:
                self.tick()
                for endpoint in self.modbus_endpoints.values():
                    await endpoint.sync_down()  # timed 'down' faults end here
                if self._save_due():  # taken here, between ticks; written off the loop
                    await asyncio.to_thread(self.save, self.snapshot_state())
            except Exception:  # noqa: BLE001 - one bad tick must not stop the simulator
                log.exception("simulator tick failed")
            delay = max(0.0, self.tick_s - (time.monotonic() - started))

    def _save_due(self) -> bool:
        return (self.state_path is not None and self.last_tick is not None
                and (self._saved_at is None or self.last_tick - self._saved_at >= SAVE_EVERY_S))

    # ---- state across restarts (the file format and why it never steps back: state.py) --

    def snapshot_state(self) -> SimulatorState:
        """Every register as of the last tick."""
        def reg(counter: EnergyCounter, resets: int = 0) -> RegisterState:
            return RegisterState(counter.kwh, counter.last_t, counter.last_w, resets)

        return SimulatorState(
            self.last_tick if self.last_tick is not None else self.clock(), self.seed,
            {did: reg(d.counter, d.resets) for did, d in self.devices.items()},
            {sid: {"facility": reg(f), "it": reg(i)} for sid, (f, i) in self.true_energy.items()})

    def _samples(self, t: float) -> Iterator[tuple[EnergyCounter, float]]:
        """Every register with the power it integrates at time t."""
        for site in self.config.sites:
            power = site_power(self.site_sims[site.id], self.layouts[site.id], t, self.seed)
            facility, it = self.true_energy[site.id]
            yield facility, power.facility_w
            yield it, power.it_w
            for device in site.devices:
                yield self.devices[device.id].counter, power.devices[device.id].power_w

    def resume(self, state: SimulatorState, now: float) -> None:
        """Continue the saved registers and add the energy of the time the simulator was
        stopped, as a real meter would have counted it."""
        restored: set[int] = set()

        def restore(counter: EnergyCounter, saved: RegisterState) -> None:
            counter.kwh, counter.last_t, counter.last_w = saved.kwh, saved.last_t, saved.last_w
            restored.add(id(counter))

        for did, saved in state.devices.items():
            if did in self.devices:
                restore(self.devices[did].counter, saved)
                self.devices[did].resets = saved.resets
        for sid, totals in state.sites.items():
            if sid in self.true_energy:
                facility, it = self.true_energy[sid]
                restore(facility, totals["facility"])
                restore(it, totals["it"])
        start, times = catch_up_times(state.saved_at, now)
        if start > state.saved_at:
            log.info("the simulator was stopped for %.1f days; its meters count the last "
                     "%.1f only", (now - state.saved_at) / 86_400, (now - start) / 86_400)
            for counter, watts in self._samples(start):
                if id(counter) in restored:
                    counter.last_t, counter.last_w = start, watts
        for t in times:
            for counter, watts in self._samples(t):
                if id(counter) in restored:
                    counter.advance(t, watts)
        log.info("simulator registers continued from %s (saved %.0f s ago, %d of %d devices)",
                 self.state_path or "a saved state", now - state.saved_at,
                 sum(did in self.devices for did in state.devices), len(self.devices))

    # ---- physics ---------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Advance physics to now (default: the clock) and refresh every served image."""
        now = self.clock() if now is None else now
        for site in self.config.sites:
            power = site_power(self.site_sims[site.id], self.layouts[site.id], now, self.seed)
            self.power[site.id] = power
            facility, it = self.true_energy[site.id]
            facility.advance(now, power.facility_w)
            it.advance(now, power.it_w)
            for device in site.devices:
                self._tick_device(self.devices[device.id], power, now)
        self.last_tick = now

    def _tick_device(self, dev: DeviceRuntime, power: SitePower, now: float) -> None:
        load = power.devices[dev.device.id]
        dev.power_w = load.power_w
        if dev.faults.take_counter_reset():
            dev.counter.reset()
            dev.resets += 1
        energy = dev.counter.advance(now, load.power_w)
        if dev.faults.active("stuck"):
            return  # the image keeps its last raw values; physics goes on underneath
        values = canonical_values(load, energy, dev.traits, now)
        if dev.agent is not None:
            dev.agent.update(snmp_table(dev.profile, values))
        elif dev.modbus is not None and dev.device.modbus is not None:
            dev.modbus.update(dev.device.modbus.unit, modbus_image(dev.profile, values))

    # ---- control (called on the event loop's thread) ---------------------------------

    def truth(self) -> dict:
        """Ground truth as the control endpoint serves it."""
        sites = {}
        for site_id, p in self.power.items():
            facility, it = self.true_energy[site_id]
            sites[site_id] = {
                "facility_power_w": p.facility_w, "it_power_w": p.it_w, "pue": p.pue,
                "facility_energy_kwh": facility.kwh, "it_energy_kwh": it.kwh,
                "cooling_power_w": p.cooling_w, "outdoor_c": p.outdoor_c,
                "cop": p.cop, "ups_loss_w": p.ups_loss_w,
            }
        devices = {did: {"site": d.site_id, "endpoint": d.endpoint, "power_w": d.power_w,
                         "energy_kwh": d.counter.kwh, "counter_resets": d.resets,
                         "faults": d.faults.snapshot()} for did, d in self.devices.items()}
        return {"ts": self.last_tick, "sites": sites, "devices": devices}

    def physics_snapshot(self) -> tuple[dict, dict, int]:
        """The sites' settings and layouts now, and the seed: what the energy truth
        (simulator/truth.py) integrates, handed out of the loop's thread."""
        return dict(self.site_sims), dict(self.layouts), self.seed

    def _device(self, device_id: str) -> DeviceRuntime:
        if device_id not in self.devices:
            raise NotFound(f"unknown device {device_id!r}")
        return self.devices[device_id]

    async def set_fault(self, device_id: str, kind: str, seconds: Any = None,
                        duration: Any = None) -> dict:
        dev = self._device(device_id)
        dev.faults.set(kind, seconds, duration)
        if dev.modbus is not None:
            await dev.modbus.sync_down()
        return {"device": device_id, "faults": dev.faults.snapshot()}

    async def clear_faults(self, device_id: str, kind: str | None = None) -> dict:
        dev = self._device(device_id)
        dev.faults.clear(kind)
        if dev.modbus is not None:
            await dev.modbus.sync_down()
        return {"device": device_id, "faults": dev.faults.snapshot()}

    def patch_site(self, site_id: str, changes: dict) -> dict:
        """Change a site's physics at runtime; it takes effect on the next tick."""
        if site_id not in self.site_sims:
            raise NotFound(f"unknown site {site_id!r}")
        fixed = sorted(set(changes) & set(DEVICE_LISTS))
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change while the simulator runs")
        updated = SiteSimulation.model_validate({**self.site_sims[site_id].model_dump(),
                                                 **changes})
        self.site_sims[site_id] = updated
        return {"site": site_id, "simulation": updated.model_dump()}

    # ---- addresses -------------------------------------------------------------------

    @property
    def control_port(self) -> int:
        return self.control.port if self.control is not None else self._control_port

    @property
    def control_url(self) -> str:
        return f"http://{self._control_host}:{self.control_port}"

    def endpoints(self) -> dict[str, str]:
        """device id -> endpoint URL as actually bound."""
        return {did: d.endpoint for did, d in self.devices.items()}

    def port_of(self, device_id: str) -> int:
        dev = self._device(device_id)
        return dev.agent.port if dev.agent is not None else dev.modbus.port  # type: ignore[union-attr]

    def describe(self) -> list[str]:
        """One line per endpoint, then the control URL (what the CLI prints)."""
        lines = [f"{did:<20} {d.endpoint:<36} {d.profile.name:<18} {d.device.role.value}"
                 for did, d in self.devices.items()]
        return [*lines, f"{'control':<20} {self.control_url}"]
