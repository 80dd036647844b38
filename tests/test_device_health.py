"""Device health has four states (issue 11): up, degraded, down, unknown.

A device that answers but whose readings cannot be decoded is degraded: it counts each
undecodable reading as a ``decode`` error and is an error in the status document and
/metrics, where PueDeviceDegraded (alerts/) watches it. Tables by hand, then the
simulator's ``garbage`` fault end to end through the real poller, store, document and
/metrics.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pue_monitor.figures.service import device_flags, device_state, meter_flags
from pue_monitor.pue.kpi import MeterFigure, PueResult
from pue_monitor.pue.quality import KINDS, Flag, MeterQuality
from pue_monitor.store.model import ErrorKind, HealthState, PollResult, Quality, Reading
from pue_monitor.store.sqlite import Store
from tests.simulator_support import demo_config, poll, running

OK, BAD, NA = Quality.OK, Quality.DECODE_ERROR, Quality.NOT_AVAILABLE


def result(*qualities: Quality, error_kind: ErrorKind | None = None,
           point_errors: dict[str, int] | None = None, started: float = 1000.0) -> PollResult:
    readings = tuple(Reading(started, "d", f"m{i}", 1.0 if q == OK else None, (), q)
                     for i, q in enumerate(qualities))
    return PollResult("d", "s", started, 0.5, readings, error_kind=error_kind,
                      error=None if error_kind is None else "x",
                      point_errors=point_errors or {})


# (name, poll, state, error counts added by the poll)
POLLS = [
    ("all-good", result(OK, OK), HealthState.UP, {}),
    ("not-available-is-the-device-speaking", result(OK, NA), HealthState.UP, {}),
    ("every-reading-garbage", result(BAD, BAD, BAD), HealthState.DEGRADED, {"decode": 3}),
    ("one-of-three", result(OK, BAD, OK), HealthState.DEGRADED, {"decode": 1}),
    ("garbage-and-a-refused-point", result(BAD, OK, point_errors={"device_error": 2}),
     HealthState.DEGRADED, {"device_error": 2, "decode": 1}),
    ("timeout", result(error_kind=ErrorKind.TIMEOUT), HealthState.DOWN, {"timeout": 1}),
    ("undecodable-poll", result(error_kind=ErrorKind.DECODE), HealthState.DOWN,
     {"decode": 1}),
]


@pytest.mark.parametrize(("poll_result", "state", "counts"), [p[1:] for p in POLLS],
                         ids=[p[0] for p in POLLS])
def test_poll_state_and_error_counts(poll_result, state, counts):
    assert poll_result.state == state
    assert poll_result.error_counts() == counts


# (name, polls in order, stored state, consecutive failures, error counts, last answered
# poll's end: an answered poll is a success for last_ok, whatever its readings)
SEQUENCES = [
    ("garbage-then-good", [result(BAD, BAD), result(OK, OK, started=1010.0)],
     HealthState.UP, 0, {"decode": 2}, 1010.5),
    ("good-then-garbage", [result(OK, OK), result(BAD, OK, started=1010.0)],
     HealthState.DEGRADED, 0, {"decode": 1}, 1010.5),
    ("garbage-then-timeout", [result(BAD, BAD, BAD),
                              result(error_kind=ErrorKind.TIMEOUT, started=1010.0)],
     HealthState.DOWN, 1, {"decode": 3, "timeout": 1}, 1000.5),
    ("garbage-twice", [result(BAD), result(BAD, BAD, started=1010.0)],
     HealthState.DEGRADED, 0, {"decode": 3}, 1010.5),
]


@pytest.mark.parametrize("batch", ["a write per poll", "one write"])
@pytest.mark.parametrize(("polls", "state", "failures", "counts", "last_ok"),
                         [s[1:] for s in SEQUENCES], ids=[s[0] for s in SEQUENCES])
def test_store_keeps_the_state(store_factory, polls, state, failures, counts, last_ok,
                               batch):
    # One write of all polls (a device polled twice before the store's batch is written)
    # must keep what a write per poll keeps.
    store = store_factory.open()
    try:
        for written in ([[p] for p in polls] if batch == "a write per poll" else [polls]):
            store.write_polls(written)
        health = store.health()["d"]
        errors = store.error_counts()
    finally:
        store.close()
    assert health.state == state
    assert health.consecutive_failures == failures
    assert health.last_ok_ts == last_ok
    assert health.polls_total == len(polls)
    assert {k: n for (d, k), n in errors.items() if d == "d"} == counts


# (name, state from the last poll, stuck / implausible flags in the live window, state)
STATES = [
    ("never-polled", None, {}, HealthState.UNKNOWN),
    ("up", HealthState.UP, {}, HealthState.UP),
    ("up-but-stuck-counter", HealthState.UP, {"stuck_counter": 1}, HealthState.DEGRADED),
    ("up-but-implausible-power", HealthState.UP, {"implausible_power": 2},
     HealthState.DEGRADED),
    ("up-but-reset", HealthState.UP, {"reset": 1}, HealthState.DEGRADED),
    ("up-but-step-back", HealthState.UP, {"step_back": 3}, HealthState.DEGRADED),
    ("down-stays-down", HealthState.DOWN, {"stuck_power": 1}, HealthState.DOWN),
    ("degraded-poll", HealthState.DEGRADED, {}, HealthState.DEGRADED),
]


@pytest.mark.parametrize(("polled", "flags", "state"), [s[1:] for s in STATES],
                         ids=[s[0] for s in STATES])
def test_device_state(polled, flags, state):
    assert device_state(polled, flags) == state


def test_live_window_flags_by_meter():
    # Stuck, implausible, reset and step-back flags make an answering meter degraded (each
    # leaves an interval unmeasured); a wrap is the counter's declared width, not a fault.
    def meter(device, *kinds):
        flags = tuple(Flag(100.0 + i, 160.0 + i, k) for i, k in enumerate(kinds))
        return MeterFigure(device, "it", 1.0, "counter", 1.0, 900.0,
                           quality=MeterQuality(flags))
    figure = PueResult("s", 0.0, 900.0, "15m", 1, None, 0.0, 0.0, 0.0, "no_data", 1.4, "<=",
                       None, meters=(meter("a", "stuck_counter", "wrap"),
                                     meter("b", "wrap", "step_back", "reset"),
                                     meter("c", "implausible_power", "implausible_power",
                                           "stuck_power")))
    assert device_flags(figure) == {"a": {"stuck_counter": 1},
                                    "b": {"step_back": 1, "reset": 1},
                                    "c": {"stuck_power": 1, "implausible_power": 2}}
    assert device_flags(None) == {}
    # Every kind of every meter, zeros included: what the document's quality_flags and
    # /metrics' pue_monitor_meter_flags show (resets and step-backs too).
    none = dict.fromkeys(KINDS, 0)
    assert meter_flags(figure) == {
        "a": {**none, "stuck_counter": 1, "wrap": 1},
        "b": {**none, "wrap": 1, "step_back": 1, "reset": 1},
        "c": {**none, "implausible_power": 2, "stuck_power": 1}}
    assert meter_flags(None) == {}


def metric_samples(text: str, name: str) -> dict[tuple, float]:
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name}


@pytest.mark.integration
async def test_garbage_fault_makes_the_device_degraded_in_document_and_metrics(tmp_path):
    from pue_monitor.web import create_app

    config = demo_config(tmp_path)
    async with running(config) as sim:
        await sim.set_fault("prov-ups-a", "garbage")
        garbage = await poll(sim, "prov-ups-a")
        clean = await poll(sim, "prov-ups-b")
    assert garbage.ok and clean.ok  # both answered
    undecoded = sum(1 for r in garbage.readings if r.quality == Quality.DECODE_ERROR)
    assert undecoded > 0 and not clean.undecoded
    now = max(garbage.started + garbage.duration_s, clean.started + clean.duration_s) + 1
    store = Store.open(tmp_path / "data")
    try:
        store.write_polls([garbage, clean])
        app = create_app(config, store, clock=lambda: now, testing=True)
        doc = app.extensions["pue_monitor"].document()
        text = app.test_client().get("/metrics").get_data(as_text=True)
    finally:
        store.close()
    site = next(s for s in doc["sites"] if any(d["id"] == "prov-ups-a" for d in s["devices"]))
    devices = {d["id"]: d for d in site["devices"]}
    bad, good = devices["prov-ups-a"], devices["prov-ups-b"]
    assert (bad["up"], bad["state"]) == (True, "degraded")
    assert bad["errors"]["decode"] == undecoded and bad["errors_total"] == undecoded
    assert (good["state"], good["errors_total"]) == ("up", 0)
    assert site["devices_degraded"] == 1
    never = [d for d in site["devices"] if d["id"] not in ("prov-ups-a", "prov-ups-b")]
    assert never and all(d["state"] == "unknown" for d in never)
    assert site["devices_up"] == 1  # only prov-ups-b is healthy
    states = metric_samples(text, "pue_monitor_device_state")
    key = {"site": site["id"], "device": "prov-ups-a", "role": "it"}
    assert states[tuple(sorted({**key, "state": "degraded"}.items()))] == 1.0
    assert states[tuple(sorted({**key, "state": "up"}.items()))] == 0.0
    errors = metric_samples(text, "pue_monitor_device_poll_errors_total")
    assert errors[tuple(sorted({"site": site["id"], "device": "prov-ups-a",
                                "kind": "decode"}.items()))] == undecoded
