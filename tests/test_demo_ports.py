"""Free ports for the simulated province, the demo's web port, its data-dir lock and when
it says the energy figures appear (pure parts as data, the rest on 127.0.0.1)."""

from __future__ import annotations

import errno
import itertools
import socket
from pathlib import Path

import pytest
import yaml

from pue_monitor import demo as demo_module
from pue_monitor.config import load_config_text
from pue_monitor.demo import first_figures_at, run_demo, web_port
from pue_monitor.lockfile import FolderInUse, folder_lock
from pue_monitor.simulator.ports import distinct_ports, free_port, on_free_ports, read_raw
from pue_monitor.simulator.serve import LOCK_FILE, run_simulator
from tests.conftest import DEMO, demo_on_free_ports

RAW = {
    "profiles_dir": "my-profiles",
    "sites": [{"id": "s", "devices": [
        {"id": "gw-1", "modbus": {"host": "10.0.0.9", "port": 502, "unit": 1}},
        {"id": "gw-2", "modbus": {"host": "10.0.0.9", "port": 502, "unit": 2}},
        {"id": "ups", "snmp": {"host": "10.0.0.9", "port": 502,
                               "community": "${COMMUNITY}"}},
        {"id": "rtu", "modbus": {"serial": "/dev/ttyUSB0", "unit": 3}},
        {"id": "pdu", "snmp": {"host": "127.0.0.1", "port": 16101}},
    ]}],
    "simulation": {"seed": 1, "control_port": 18080},
}
# Hand-worked: ports handed out 40001, 40002, ... in the order the endpoints appear; the
# two gateway units share one; SNMP on the same number is another endpoint (udp, not tcp).
EXPECTED = {
    "profiles_dir": "/base/my-profiles",
    "sites": [{"id": "s", "devices": [
        {"id": "gw-1", "modbus": {"host": "127.0.0.1", "port": 40001, "unit": 1}},
        {"id": "gw-2", "modbus": {"host": "127.0.0.1", "port": 40001, "unit": 2}},
        {"id": "ups", "snmp": {"host": "127.0.0.1", "port": 40002,
                               "community": "${COMMUNITY}"}},
        {"id": "rtu", "modbus": {"serial": "/dev/ttyUSB0", "unit": 3}},
        {"id": "pdu", "snmp": {"host": "127.0.0.1", "port": 40003}},
    ]}],
    "simulation": {"seed": 1, "control_port": 40004},
}


def test_a_province_is_moved_onto_the_ports_handed_out():
    ports = itertools.count(40001)
    assert on_free_ports(RAW, lambda: next(ports), Path("/base")) == EXPECTED
    assert RAW["simulation"]["control_port"] == 18080  # the original is left alone


def test_the_demo_province_on_free_ports_loads_with_every_port_distinct():
    raw = read_raw(DEMO)
    moved = on_free_ports(raw, distinct_ports(), DEMO.parent)
    config = load_config_text(yaml.safe_dump(moved), base_dir=DEMO.parent, env={})
    ports = [(d.snmp or d.modbus).port for _, d in config.devices()]
    assert len(ports) == sum(len(site["devices"]) for site in raw["sites"]) == 18
    assert len({*ports, config.simulation.control_port}) == 19  # one endpoint each here


@pytest.fixture()
def busy_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_the_demo_web_port(busy_port):
    free = free_port()
    said: list[str] = []
    assert web_port("127.0.0.1", None, said.append, default=free) == free
    assert said == []
    assert web_port("127.0.0.1", None, said.append, default=busy_port) == 0  # a free one
    assert said == [f"pue-monitor: port {busy_port} is busy; the web view takes a free port "
                    "(printed below; choose one with --port)"]
    # --port given: used as is, busy or not (the server then says it cannot listen)
    assert web_port("127.0.0.1", busy_port, said.append, default=free) == busy_port


# now -> end of the first whole 15-minute block after it (epoch seconds, hand-computed)
FIGURES = [(0.0, 1800.0), (1.0, 1800.0), (899.0, 1800.0), (900.0, 2700.0),
           (1_796_185_949.5, 1_796_187_600.0)]


@pytest.mark.parametrize(("now", "expected"), FIGURES)
def test_when_the_first_energy_figures_appear(now, expected):
    assert first_figures_at(now) == expected


def test_a_folder_lock_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    lock = tmp_path / "data" / "demo.lock"
    with folder_lock(lock, "the data dir"):
        with pytest.raises(FolderInUse, match=r"the data dir .*data is in use by another "
                           r"process \(pid \d+, lock file .*demo\.lock\)"):
            with folder_lock(lock, "the data dir"):
                pass
    with folder_lock(lock, "the data dir"):  # released: the next run takes it
        pass


class FakeSimulator:
    """What run_demo needs of the simulator's process, without one."""

    def __init__(self) -> None:
        self.stopped = False

    def terminate(self) -> None:
        self.stopped = True

    def wait(self, _timeout: float) -> int:
        return 0


def _demo_parts(calls: list, taken: int):
    """start_simulator writing the province as served, and run_monitor whose first bind
    finds its port ``taken`` (as when another demo took 8080 a moment earlier)."""
    sim = FakeSimulator()

    def start_simulator(_config, *, state_dir, free_ports, config_out):
        assert free_ports
        path, _ = demo_on_free_ports(config_out.parent)
        path.rename(config_out)
        return sim

    def run_monitor(_config, _data_dir, _host, port):
        calls.append(port)
        if port == taken:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        return 0
    return sim, start_simulator, run_monitor


def test_a_default_port_taken_meanwhile_falls_back_to_a_free_one(tmp_path, monkeypatch, capsys):
    port = free_port()
    monkeypatch.setattr(demo_module, "DEMO_WEB_PORT", port)  # free when checked, then taken
    calls: list = []
    sim, start_simulator, run_monitor = _demo_parts(calls, taken=port)
    assert run_demo(DEMO, tmp_path, "127.0.0.1", None, run_monitor, start_simulator) == 0
    assert calls == [port, 0] and sim.stopped
    assert f"port {port} was taken meanwhile; the web view takes a free port" in \
        capsys.readouterr().out


def test_a_port_given_is_used_as_is_even_when_taken(tmp_path):
    port = free_port()
    calls: list = []
    sim, start_simulator, run_monitor = _demo_parts(calls, taken=port)
    with pytest.raises(OSError):
        run_demo(DEMO, tmp_path, "127.0.0.1", port, run_monitor, start_simulator)
    assert calls == [port] and sim.stopped


def test_free_ports_need_somewhere_to_write_the_province(capsys):
    assert run_simulator(DEMO, free_ports=True) == 1
    assert capsys.readouterr().err == (
        "simulator: --free-ports needs --state-dir or --config-out: the monitor reads the "
        "ports picked from the configuration written there\n")


def test_a_simulator_state_dir_in_use_is_refused(tmp_path, capsys):
    with folder_lock(tmp_path / LOCK_FILE, "the simulator state dir"):
        assert run_simulator(DEMO, state_dir=tmp_path, free_ports=True) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"simulator: the simulator state dir {tmp_path} is in use by "
                          "another process (pid ")
    assert not (tmp_path / "province.yaml").exists()  # refused before picking or binding
