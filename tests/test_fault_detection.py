"""End to end, issue 11: the simulator's stuck, garbage and counter_reset faults and a
simulator restart, each detected by the monitor and by a real Prometheus, and every site's
PUE within 1 % of the simulator's energy truth over the time measured.

Simulator, monitor (1 s polls) and Prometheus (1 s scrapes and evaluations) run as
processes on 127.0.0.1. Prometheus evaluates the shipped alerts/pue-monitor.rules.yml
through a test copy whose only change is every rule's `for`, shortened to 1 s (the
shipped 5 minutes and 1 minute do not fit a test); the expressions are the shipped ones.

One fault at a time, each on a meter of its own:
  stuck          qv-incomer (facility, Modbus): the image freezes, counter and power alike.
                 Degraded with a stuck_counter flag, PueDeviceDegraded fires, and the
                 stall is not measured: que-vo-dc's measured time falls behind a site
                 without a fault.
  garbage        yp-pdu-01 (IT, SNMP): every value undecodable. Degraded with decode
                 errors, PueDeviceDegraded fires, the span is not measured.
  restart        the simulator stops and starts again without a state file, so every
                 register starts again from its first value, below what it served: a
                 step-back on every counter, not measured: each incomer degraded with a
                 step_back flag, PueMeterCounterEvent and PueDeviceDegraded fire.
  counter_reset  prov-incomer (facility, Modbus) restarts at 0: a reset flag; its own power
                 measures the step. Degraded with a reset flag while the reset lies in the
                 15-minute window; PueMeterCounterEvent fires with kind reset.
The restart comes before the reset: a register reset and then restarted from its first
value would jump up by tens of MWh, which no meter does.

The truth is /truth/energy over each site's 15-minute window: the physics integrated anew,
untouched by the faults and the restart. Its lowest and highest instantaneous PUE bound the
PUE over any part of the window, so the monitor's figure, over whatever time it measured,
is checked against both.
"""

from __future__ import annotations

import contextlib
import json
import time

import pytest
import yaml

from pue_monitor.simulator.ports import read_raw, write_raw
from pue_monitor.simulator.runner import READY_LINE
from tests.conftest import demo_on_free_ports
from tests.prometheus_support import (
    HTTP_TIMEOUT_S,
    RULES,
    fault,
    firing,
    ports_beside,
    prometheus_command,
    rules_loaded_and_healthy,
    spawn,
    stop,
    wait_until,
    write_prometheus_config,
)
from tests.test_end_to_end import START_TIMEOUT_S, get, process, wait_for
from tests.tools import require_tool

pytestmark = pytest.mark.integration

TOLERANCE = 0.01  # the acceptance: within 1 % of the ground truth
# The simulated meters refresh their registers every quarter second: a register read shows
# its value of up to one refresh ago, and over the few minutes of this test the ends of
# every measured span would carry up to a second of energy each at the default 1 s.
TICK_S = 0.25
STUCK, GARBLED, RESET = "qv-incomer", "yp-pdu-01", "prov-incomer"
INCOMERS = {"bn-provincial": "prov-incomer", "que-vo-dc": "qv-incomer",
            "yen-phong-dc": "yp-incomer"}
FAULT_S = 8.0  # how long stuck and garbage last once the monitor has seen them
WINDOW = "15m"
def get_json(url: str) -> dict:
    return json.loads(get(url, HTTP_TIMEOUT_S))


def start_simulator(stack: contextlib.ExitStack, source, served, log_path, *,
                    free_ports: bool):
    """The simulator as a process, held by ``stack``. With ``free_ports`` it picks free
    ports itself, retrying a port another process took first (this machine runs other
    tests), and writes the province as served to ``served``; without, it serves ``served``
    as written. Returns the process once every endpoint listens."""
    args = (["-c", str(source), "--free-ports", "--config-out", str(served)] if free_ports
            else ["-c", str(served)])
    proc = stack.enter_context(process("simulate", *args, log_path=log_path))
    deadline = time.monotonic() + START_TIMEOUT_S
    while READY_LINE not in log_path.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the simulator did not start:\n{log_path.read_text()[-2000:]}",
                        pytrace=False)
        time.sleep(0.2)
    return proc


def rules_with_short_for(tmp_path) -> str:
    """The shipped rule file with every `for` at 1 s and nothing else changed."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["for"] = "1s"
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


class Scene:
    """The running processes and how to ask them."""

    def __init__(self, monitor: str, control: str, prometheus: str, logs: list) -> None:
        self.monitor, self.control, self.prometheus, self.logs = (monitor, control,
                                                                  prometheus, logs)

    def status(self) -> dict:
        return get_json(f"{self.monitor}/api/v1/status")

    def device(self, device_id: str, status: dict | None = None) -> dict:
        status = status or self.status()
        return next(d for s in status["sites"] for d in s["devices"] if d["id"] == device_id)

    def site(self, site_id: str, status: dict) -> dict:
        return next(s for s in status["sites"] if s["id"] == site_id)

    def wait(self, what: str, check):
        return wait_until(what, check, logs=self.logs)

    def wait_firing(self, name: str, **labels: str) -> dict:
        return self.wait(f"{name} {labels} firing in Prometheus",
                         lambda: firing(self.prometheus, name, **labels))[0]

    def truth(self, start: float, end: float) -> dict:
        return get_json(f"{self.control}/truth/energy?start={start}&end={end}")


def measured_s(site: dict) -> float:
    """Seconds of the site's 15-minute window that every facility and IT meter measured."""
    return site["windows"][WINDOW]["coverage"] * 900.0


def test_faults_and_a_restart_are_detected_and_the_pue_stays_true(tmp_path):
    prometheus_bin = require_tool("prometheus")
    source, raw = demo_on_free_ports(tmp_path)
    raw["simulation"]["tick_s"] = TICK_S
    write_raw(raw, source)
    served = tmp_path / "served.yaml"
    logs = [tmp_path / n for n in ("sim.log", "monitor.log", "prometheus.log")]
    began = time.time()  # no reading of this test's monitor is older
    with contextlib.ExitStack() as simulator:
        sim = start_simulator(simulator, source, served, logs[0], free_ports=True)
        raw = read_raw(served)
        ports = ports_beside(raw, "monitor", "prometheus")
        scene = Scene(f"http://127.0.0.1:{ports['monitor']}",
                      f"http://127.0.0.1:{raw['simulation']['control_port']}",
                      f"http://127.0.0.1:{ports['prometheus']}", logs)
        write_prometheus_config(tmp_path, ports["monitor"], rules_with_short_for(tmp_path))
        server = spawn(prometheus_command(prometheus_bin, tmp_path, ports["prometheus"]),
                       logs[2])
        try:
            wait_for(f"{scene.control}/healthz", sim)
            with process("run", "-c", str(served), "--port", str(ports["monitor"]),
                         "--data-dir", str(tmp_path / "data"), log_path=scene.logs[1]) as mon:
                wait_for(f"{scene.monitor}/healthz", mon)
                wait_for(f"{scene.prometheus}/-/ready", server)
                scene.wait("every rule loaded and healthy",
                           lambda: rules_loaded_and_healthy(scene.prometheus))
                scene.wait("every site's figures", lambda: all(
                    s["instant"]["pue"] is not None and s["windows"][WINDOW]["pue"]
                    is not None for s in scene.status()["sites"]))
                nothing_is_flagged_without_a_fault(scene)
                stuck(scene)
                garbage(scene)
                # The restart: the same ports (just freed by the first), no state file.
                simulator.close()
                start_simulator(simulator, source, served, logs[0], free_ports=False)
                restart_steps_every_counter_back(scene)
                counter_reset(scene)
                pue_is_true_over_the_measured_time(scene, began)
        finally:
            stop(server)


def nothing_is_flagged_without_a_fault(scene: Scene) -> None:
    # Every device up and no meter flagged before any fault. (Meters read twice between two
    # refreshes of their registers once read stuck; at this test's 0.25 s refresh that is
    # rare, so tests/test_quality.py pins that rule by hand.)
    time.sleep(5)
    status = scene.status()
    for site in status["sites"]:
        for dev in site["devices"]:
            assert dev["state"] == "up", (dev["id"], dev["state"], dev["flags"])
            assert not any((dev["quality_flags"] or {}).values()), (dev["id"],
                                                                    dev["quality_flags"])


def stuck(scene: Scene) -> None:
    fault(scene.control, STUCK, {"kind": "stuck"})
    dev = scene.wait(f"{STUCK} degraded, stuck", lambda: (
        d := scene.device(STUCK))["state"] == "degraded" and d)
    assert dev["up"] is True and dev["flags"]["stuck_counter"] >= 1
    alert = scene.wait_firing("PueDeviceDegraded", device=STUCK)
    assert alert["labels"]["role"] == "facility"
    time.sleep(FAULT_S)
    fault(scene.control, STUCK, None)
    # The register catches up in one step, which is refused with the stall: que-vo-dc has
    # measured less of its window than bn-provincial (same polls, no fault yet) by about
    # the stall. Half of it is asked, for the seconds around its ends.
    def left_out():
        status = scene.status()
        behind = (measured_s(scene.site("bn-provincial", status))
                  - measured_s(scene.site("que-vo-dc", status)))
        return behind >= FAULT_S / 2 and behind
    scene.wait("the stall left out of que-vo-dc's measured time", left_out)
    assert scene.device(STUCK)["quality_flags"]["stuck_counter"] >= 1


def garbage(scene: Scene) -> None:
    before = scene.status()
    gap_before = (measured_s(scene.site("bn-provincial", before))
                  - measured_s(scene.site("yen-phong-dc", before)))
    fault(scene.control, GARBLED, {"kind": "garbage"})
    dev = scene.wait(f"{GARBLED} degraded, undecodable", lambda: (
        d := scene.device(GARBLED))["state"] == "degraded" and d)
    assert dev["up"] is True and dev["errors"]["decode"] >= 1
    alert = scene.wait_firing("PueDeviceDegraded", device=GARBLED)
    assert alert["labels"]["role"] == "it"
    time.sleep(FAULT_S)
    fault(scene.control, GARBLED, None)
    scene.wait(f"{GARBLED} up again", lambda: scene.device(GARBLED)["state"] == "up")

    def left_out():
        status = scene.status()
        behind = (measured_s(scene.site("bn-provincial", status))
                  - measured_s(scene.site("yen-phong-dc", status))) - gap_before
        return behind >= FAULT_S / 2 and behind
    scene.wait("the garbage left out of yen-phong-dc's measured time", left_out)


def restart_steps_every_counter_back(scene: Scene) -> None:
    for site, incomer in INCOMERS.items():
        dev = scene.wait(f"{incomer} degraded by its step-back", lambda i=incomer: (
            d := scene.device(i))["state"] == "degraded" and d["flags"].get("step_back")
            and d)
        assert dev["up"] is True and dev["quality_flags"]["step_back"] >= 1, dev
        alert = scene.wait_firing("PueMeterCounterEvent", device=incomer, kind="step_back")
        assert alert["labels"]["site"] == site
        alert = scene.wait_firing("PueDeviceDegraded", device=incomer)
        assert alert["labels"]["site"] == site


def counter_reset(scene: Scene) -> None:
    fault(scene.control, RESET, {"kind": "counter_reset"})
    # Degraded by the reset itself (the degrading flags name it), not only by the
    # restart's step-back that came before.
    dev = scene.wait(f"{RESET} degraded by its reset", lambda: (
        d := scene.device(RESET))["state"] == "degraded" and d["flags"].get("reset")
        and d)
    assert dev["up"] is True and dev["quality_flags"]["reset"] >= 1, dev
    alert = scene.wait_firing("PueMeterCounterEvent", device=RESET, kind="reset")
    assert alert["labels"]["role"] == "facility"
    scene.wait_firing("PueDeviceDegraded", device=RESET)


def pue_is_true_over_the_measured_time(scene: Scene, began: float) -> None:
    status = scene.wait("every site's figures after the faults", lambda: (
        s := scene.status()) and all(site["windows"][WINDOW]["pue"] is not None
                                     for site in s["sites"]) and s)
    # Whatever the monitor measured of its window lies after ``began``.
    now = status["generated_at_unix"]
    truth = scene.truth(began, now)
    for site in status["sites"]:
        figure, true = site["windows"][WINDOW], truth["sites"][site["id"]]
        low, high = true["pue_min"] * (1 - TOLERANCE), true["pue_max"] * (1 + TOLERANCE)
        assert low <= figure["pue"] <= high, (site["id"], figure, true)
