"""The alert history (figures.alerts): a device's state changes and a site's PUE crossing
its threshold are recorded once, against the state last recorded."""

from __future__ import annotations

import pytest

from pue_monitor.figures.alerts import device_events, pue_events, record_alerts
from pue_monitor.pue.kpi import PueResult
from pue_monitor.store.base import DeviceHealth, SiteEvent
from pue_monitor.store.model import ErrorKind, PollResult, Reading
from tests.web_fixtures import demo_config

SITE, DEV = "que-vo-dc", "qv-ups-1"


def health(up: bool, at: float, degraded: bool = False, kind: str | None = None
           ) -> DeviceHealth:
    return DeviceHealth(DEV, SITE, up, at, at if up else None, 0.1, kind,
                        None if kind is None else "no answer", 0 if up else 1, 5, degraded)


def recorded(state: str, at: float) -> dict:
    return {(SITE, "device", DEV): SiteEvent(SITE, at, "device", DEV, state)}


# (polled health, last recorded, expected (state, ts, detail) or None)
DEVICE_CASES = [
    (health(True, 100.0), {}, None),  # first seen up: nothing to tell
    (health(False, 100.0, kind="timeout"), {}, ("down", 100.0, "timeout")),
    (health(False, 160.0, kind="timeout"), recorded("down", 100.0), None),  # still down
    (health(True, 220.0), recorded("down", 100.0), ("up", 220.0, None)),
    (health(True, 220.0, degraded=True, kind="decode"), recorded("up", 100.0),
     ("degraded", 220.0, "decode")),
    (health(True, 90.0), recorded("down", 100.0), None),  # older than the record
]


@pytest.mark.parametrize(("polled", "last", "expected"), DEVICE_CASES)
def test_device_state_changes(polled, last, expected):
    got = device_events(demo_config(), {DEV: polled}, last)
    assert [(e.state, e.ts, e.detail) for e in got] == ([expected] if expected else [])
    assert all((e.site, e.kind, e.subject) == (SITE, "device", DEV) for e in got)


def figure(pue: float | None, compliant: bool | None, end: float = 1000.0) -> PueResult:
    return PueResult(site=SITE, start=end - 86400, end=end, window="24h", pue=pue,
                     facility_energy_kwh=0.0, it_energy_kwh=0.0, coverage=1.0,
                     status="ok" if compliant is not None else "incomplete",
                     threshold=1.4, operator="<=", compliant=compliant, category=1,
                     meters=())


def pue_recorded(state: str, at: float) -> dict:
    return {(SITE, "pue", "24h"): SiteEvent(SITE, at, "pue", "24h", state, 1.5)}


# (figure, last recorded, expected (state, ts, value) or None)
PUE_CASES = [
    (figure(1.38, True), {}, None),  # within, as assumed
    (figure(1.52, False), {}, ("over", 1000.0, 1.52)),
    (figure(1.52, False, 1900.0), pue_recorded("over", 1000.0), None),
    (figure(1.39, True, 1900.0), pue_recorded("over", 1000.0), ("within", 1900.0, 1.39)),
    (figure(None, None, 1900.0), pue_recorded("over", 1000.0), None),  # not judged
]


@pytest.mark.parametrize(("fig", "last", "expected"), PUE_CASES)
def test_pue_threshold_crossings(fig, last, expected):
    got = pue_events({SITE: fig}, last)
    assert [(e.state, e.ts, e.value) for e in got] == ([expected] if expected else [])
    assert all(e.detail == "<= 1.4" for e in got)


def test_record_alerts_records_each_change_once(store_factory):
    config = demo_config()
    store = store_factory.open()
    try:
        store.write_polls([PollResult(DEV, SITE, 100.0, 0.1, (), error="no answer",
                                      error_kind=ErrorKind.TIMEOUT)])
        assert [(e.subject, e.state) for e in record_alerts(store, config, 200.0)] == [
            (DEV, "down")]
        assert record_alerts(store, config, 260.0) == []  # nothing new
        store.write_polls([PollResult(DEV, SITE, 300.0, 0.1, (
            Reading(300.0, DEV, "active_power_w", 50_000.0),))])
        assert [(e.subject, e.state) for e in record_alerts(store, config, 360.0)] == [
            (DEV, "up")]
        # each at the end of the poll that showed it (started + 0.1 s)
        assert [(e.state, e.ts) for e in store.events(SITE, 0.0, 1000.0)] == [
            ("up", pytest.approx(300.1)), ("down", pytest.approx(100.1))]
    finally:
        store.close()
