"""Line protocol of the InfluxDB export: escaping, field types, nanosecond timestamps, points."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pue_monitor.pue.instant import InstantPue
from pue_monitor.pue.kpi import PueResult
from pue_monitor.exchange.influx import encode, reading_lines, site_lines, to_ns
from pue_monitor.store.model import PollResult, Quality, Reading

T = 1_764_078_600.0  # 2026-11-25 13:50 UTC
T_NS = "1764078600000000000"
NOW_NS = "1764078602000000000"  # when the site's figures were evaluated


@pytest.mark.parametrize("ts, ns", [
    (0.0, 0),
    (1.5, 1_500_000_000),
    (1e-9, 1),
    (T, 1_764_078_600_000_000_000),
    # int(ts * 1e9) would give ...249999872: a float step at this epoch is 256 ns.
    (1_700_000_000.25, 1_700_000_000_250_000_000),
    # The float nearest to .123456 is .12345600128..., rounded to the nanosecond.
    (1_764_078_610.123456, 1_764_078_610_123_456_001),
])
def test_nanosecond_timestamps(ts, ns):
    assert to_ns(ts) == ns


@pytest.mark.parametrize("measurement, tags, fields, line", [
    ("m", {"site": "a"}, {"value": 1.5}, f"m,site=a value=1.5 {T_NS}"),
    # tags sorted by key; spaces, commas and equals signs escaped in keys and values
    ("m", {"site": "Quế Võ dc", "device": "x,y", "metric": "k=v", "a b": "1"}, {"value": 1.0},
     rf"m,a\ b=1,device=x\,y,metric=k\=v,site=Quế\ Võ\ dc value=1 {T_NS}"),
    # measurement: spaces and commas escaped, '=' is literal there
    ("m n,o=p", {}, {"value": 2.0}, rf"m\ n\,o=p value=2 {T_NS}"),
    # field types: float (whole numbers without '.0'), integer 'i', boolean, string
    ("m", {}, {"f": 2.0, "i": 3, "b": True, "c": False, "s": "ok"},
     f'm b=true,c=false,f=2,i=3i,s="ok" {T_NS}'),
    ("m", {}, {"small": 1e-7, "big": -1.5e21}, f"m big=-1.5e+21,small=1e-07 {T_NS}"),
    # string fields: quotes and backslashes escaped; field keys escaped like tag keys
    ("m", {}, {"note x": 'say "hi" \\'}, rf'm note\ x="say \"hi\" \\" {T_NS}'),
    # empty tags, None and non-finite fields are left out
    ("m", {"site": "a", "line": ""}, {"v": 1.25, "none": None, "nan": float("nan"),
                                      "inf": float("inf")}, f"m,site=a v=1.25 {T_NS}"),
])
def test_encode(measurement, tags, fields, line):
    assert encode(measurement, tags, fields, T) == line


def test_a_point_needs_a_field():
    with pytest.raises(ValueError, match="without a field"):
        encode("m", {"site": "a"}, {"v": None, "w": float("nan")}, T)


def test_reading_lines_keep_ok_readings_with_labels_as_tags():
    result = PollResult("qv-pdu-01", "que-vo-dc", T, 0.01, readings=(
        Reading(T, "qv-pdu-01", "active_power_w", 4000.0),
        Reading(T + 0.25, "qv-pdu-01", "current_a", 6.5, (("phase", "L1"),)),
        Reading(T, "qv-pdu-01", "current_a", 1.25, (("outlet", "3"), ("site", "rack 7"))),
        Reading(T, "qv-pdu-01", "voltage_v", None, (), Quality.NOT_AVAILABLE),
        Reading(T, "qv-pdu-01", "load_pct", None, (), Quality.DECODE_ERROR),
        Reading(T, "qv-pdu-01", "temperature_c", float("nan")),
    ))
    assert reading_lines(result, {"qv-pdu-01": "it"}) == [
        "pue_reading,device=qv-pdu-01,metric=active_power_w,role=it,site=que-vo-dc "
        f"value=4000 {T_NS}",
        "pue_reading,device=qv-pdu-01,metric=current_a,phase=L1,role=it,site=que-vo-dc "
        "value=6.5 1764078600250000000",
        # a label named like an identity tag cannot overwrite it
        r"pue_reading,device=qv-pdu-01,label_site=rack\ 7,metric=current_a,outlet=3,role=it,"
        f"site=que-vo-dc value=1.25 {T_NS}",
    ]


def test_reading_of_a_device_without_role_has_no_role_tag():
    result = PollResult("x", "s", T, 0.01, readings=(Reading(T, "x", "active_power_w", 1.0),))
    assert reading_lines(result, {}) == [
        f"pue_reading,device=x,metric=active_power_w,site=s value=1 {T_NS}"]


def _window(window: str, pue: float | None, status: str, compliant: bool | None) -> PueResult:
    return PueResult(site="bn-provincial", start=T - 900, end=T, window=window, category=2,
                     pue=pue, facility_energy_kwh=35.0, it_energy_kwh=25.0, coverage=1.0,
                     status=status, threshold=1.4, operator="<=", compliant=compliant)


def test_site_lines_one_point_per_window():
    status = SimpleNamespace(
        now=T + 2,
        instant=InstantPue(site="bn-provincial", ts=T, pue=1.4, facility_power_w=140000.0,
                           it_power_w=100000.0, category=2, status="ok", threshold=1.4,
                           operator="<=", compliant=True),
        windows={"15m": _window("15m", 1.4, "ok", True),
                 "24h": _window("24h", None, "no_data", None)})
    assert site_lines(status) == [
        "pue_site,category=2,site=bn-provincial,window=instantaneous compliant=true,"
        f'facility_power_w=140000,it_power_w=100000,pue=1.4,status="ok",threshold=1.4 {NOW_NS}',
        "pue_site,category=2,site=bn-provincial,window=15m compliant=true,coverage=1,"
        "end_s=1764078600,facility_energy_kwh=35,it_energy_kwh=25,pue=1.4,start_s=1764077700,"
        f'status="ok",threshold=1.4 {NOW_NS}',
        # no PUE and not judged: those fields are absent, the status says why
        "pue_site,category=2,site=bn-provincial,window=24h coverage=1,end_s=1764078600,"
        "facility_energy_kwh=35,it_energy_kwh=25,start_s=1764077700,status=\"no_data\","
        f"threshold=1.4 {NOW_NS}",
    ]


def test_site_lines_add_long_windows_stamped_with_the_evaluation_time():
    # A long window ends at the last closed block: its end is a field, not the timestamp,
    # so two evaluations within one block are two points, not one written twice.
    status = SimpleNamespace(now=T + 2, windows={}, instant=InstantPue(
        site="s", ts=T + 2, pue=None, facility_power_w=None, it_power_w=None, category=1,
        status="stale", threshold=1.4, operator="<=", compliant=None))
    lines = site_lines(status, {"12m": _window("12m", 1.38, "ok", True)})
    assert lines[1] == (
        "pue_site,category=2,site=bn-provincial,window=12m compliant=true,coverage=1,"
        "end_s=1764078600,facility_energy_kwh=35,it_energy_kwh=25,pue=1.38,"
        f'start_s=1764077700,status="ok",threshold=1.4 {NOW_NS}')
    assert lines[0] == ("pue_site,category=1,site=s,window=instantaneous "
                        f'status="stale",threshold=1.4 {NOW_NS}')
