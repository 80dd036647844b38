"""End to end: simulator and monitor as real processes, real SNMP and Modbus polls,
checked against the simulator's ground truth through /metrics and the JSON endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import STORE_BACKENDS, free_port

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 30
SETTLE_TIMEOUT_S = 45
TOLERANCE = 0.01  # the acceptance: within 1 % of ground truth


def get(url: str, timeout: float = 3.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 (loopback only)
        return answer.read()


def get_json(url: str) -> dict:
    return json.loads(get(url))


def wait_for(url: str, proc: subprocess.Popen, timeout: float = START_TIMEOUT_S,
             log_path=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            # What the process said last: a start-up failure is then diagnosable from the
            # test report alone (the temporary folder is gone by the time one looks).
            said = "" if log_path is None else "\n" + "\n".join(
                log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-20:])
            raise AssertionError(f"process exited with {proc.returncode}: {proc.args}{said}")
        try:
            get(url, 1.0)
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@contextmanager
def process(*args: str, log_path):
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pue_monitor", *args], stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def metric_samples(text: str, name: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


@contextmanager
def monitor_running(demo_config, tmp_path, store_url: str | None = None):
    """Simulator and monitor running on free ports (the store in PostgreSQL at
    ``store_url`` if given); yields (monitor URL, truth URL, raw, sim, mon)."""
    path, raw = demo_config
    if store_url is not None:
        raw = {**raw, "store": {"url": store_url}}
        path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
    control = raw["simulation"]["control_port"]
    port = free_port()
    with process("simulate", "-c", str(path), log_path=tmp_path / "sim.log") as sim:
        wait_for(f"http://127.0.0.1:{control}/healthz", sim, log_path=tmp_path / "sim.log")
        with process("run", "-c", str(path), "--port", str(port), "--data-dir",
                     str(tmp_path / "data"), log_path=tmp_path / "monitor.log") as mon:
            wait_for(f"http://127.0.0.1:{port}/healthz", mon,
                     log_path=tmp_path / "monitor.log")
            yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{control}", raw, sim, mon


@pytest.fixture()
def running(demo_config, tmp_path):
    """Simulator and monitor running on free ports; yields (monitor URL, truth URL, raw)."""
    with monitor_running(demo_config, tmp_path) as found:
        yield found


@pytest.fixture(params=STORE_BACKENDS)
def running_on_each_store(request, demo_config, tmp_path):
    """As ``running``, once on SQLite and once on PostgreSQL (the config's store url)."""
    url = None
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        url = server.url(server.create())
    with monitor_running(demo_config, tmp_path, url) as found:
        yield found


def all_sites_have_figures(status: dict) -> bool:
    return all(site["instant"]["pue"] is not None and site["windows"]["15m"]["pue"] is not None
               for site in status["sites"])


def test_pue_matches_ground_truth_over_real_snmp_and_modbus(running_on_each_store):
    monitor, control, raw, _sim, _mon = running_on_each_store
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    status = get_json(f"{monitor}/api/v1/status")
    while not all_sites_have_figures(status) and time.monotonic() < deadline:
        time.sleep(0.5)
        status = get_json(f"{monitor}/api/v1/status")
    assert all_sites_have_figures(status), json.dumps(status, indent=1)[:3000]
    time.sleep(2.5)  # at least two more poll cycles (1 s interval)

    # Truth and figures read together. On a loaded machine a 1 s poll can come late and an
    # instant figure be stale for a moment (its freshness is three intervals): read again,
    # within a bound, until every site has its figures at the same moment.
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        truth = get_json(f"{control}/truth")
        status = get_json(f"{monitor}/api/v1/status")
        metrics = get(f"{monitor}/metrics").decode()
        if all_sites_have_figures(status) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    pue = metric_samples(metrics, "pue_monitor_pue")
    up = metric_samples(metrics, "pue_monitor_device_up")

    assert {s["id"] for s in status["sites"]} == set(truth["sites"]) == {
        s["id"] for s in raw["sites"]}
    for site in status["sites"]:
        true_pue = truth["sites"][site["id"]]["pue"]
        assert site["instant"]["pue"] == pytest.approx(true_pue, rel=TOLERANCE), site["id"]
        assert site["windows"]["15m"]["pue"] == pytest.approx(true_pue, rel=TOLERANCE)
        exported = {labels: v for labels, v in pue.items()
                    if dict(labels)["site"] == site["id"]}
        by_window = {dict(labels)["window"]: v for labels, v in exported.items()}
        assert by_window["instantaneous"] == pytest.approx(true_pue, rel=TOLERANCE)
        assert by_window["15m"] == pytest.approx(true_pue, rel=TOLERANCE)
    # Category follows the IT metering point: UPS output (1) or rack PDUs (2).
    categories = {dict(k)["site"]: dict(k)["category"] for k in pue}
    assert categories == {"bn-provincial": "1", "que-vo-dc": "1", "yen-phong-dc": "2"}
    # Every device of every site answered over its own protocol.
    devices = [d["id"] for s in raw["sites"] for d in s["devices"]]
    assert {dict(k)["device"]: v for k, v in up.items()} == {d: 1.0 for d in devices}


def test_a_dead_device_is_reported_and_the_rest_goes_on(running):
    monitor, control, _raw, _sim, _mon = running
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        if all_sites_have_figures(get_json(f"{monitor}/api/v1/status")):
            break
        time.sleep(0.5)
    request = urllib.request.Request(f"{control}/faults/qv-pdu-02", method="POST",
                                     data=json.dumps({"kind": "down"}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=3).read()  # noqa: S310 (loopback only)
    deadline = time.monotonic() + 15
    up = {}
    while time.monotonic() < deadline:
        up = {dict(k)["device"]: v for k, v in metric_samples(
            get(f"{monitor}/metrics").decode(), "pue_monitor_device_up").items()}
        if up.get("qv-pdu-02") == 0.0:
            break
        time.sleep(0.5)
    assert up["qv-pdu-02"] == 0.0
    assert all(v == 1.0 for d, v in up.items() if d != "qv-pdu-02")
    errors = metric_samples(get(f"{monitor}/metrics").decode(),
                            "pue_monitor_device_poll_errors_total")
    timeouts = {dict(k)["device"]: v for k, v in errors.items() if dict(k)["kind"] == "timeout"}
    assert timeouts["qv-pdu-02"] >= 1
    # The site's PUE does not depend on that PDU (monitor role) and is still computed. On
    # a loaded machine a 1 s poll can come late and the instant figure be briefly stale
    # (its freshness is a few intervals), so it is read until it shows, within a bound.
    deadline = time.monotonic() + 15
    while True:
        status = get_json(f"{monitor}/api/v1/status")
        que_vo = next(s for s in status["sites"] if s["id"] == "que-vo-dc")
        if que_vo["instant"]["pue"] is not None or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert que_vo["instant"]["pue"] is not None, que_vo["instant"]
    assert {d["id"]: d["up"] for d in que_vo["devices"]}["qv-pdu-02"] is False
