"""Retention of raw readings (``retention.readings_days``): what may go, deleted on both
store backends, and a settings change that would need pruned readings keeps its blocks."""

from __future__ import annotations

import logging

import pytest

from pue_monitor.config import load_config_text
from pue_monitor.figures.retention import prune, prune_before
from pue_monitor.figures.settings import fingerprint, block_settings, refresh_settings
from pue_monitor.store.model import PollResult, Reading

DAY = 86_400.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC, a block boundary
CONFIG = """
polling: {{interval_s: 60}}
{retention}
sites:
  - id: s
    name: {{vi: "S", en: "S"}}
    devices:
      - {{id: inc, profile: eastron_sdm630, role: facility,
         modbus: {{host: 127.0.0.1, port: 1502, unit: 1}}}}
      - {{id: ups, profile: eastron_sdm630, role: it, measurement_point: ups_output,
         modbus: {{host: 127.0.0.1, port: 1502, unit: 2}}}}
      - {{id: temp, profile: eastron_sdm630, role: monitor,
         modbus: {{host: 127.0.0.1, port: 1502, unit: 3}}}}
"""


def config(days: int | None):
    retention = "" if days is None else f"retention: {{readings_days: {days}}}"
    return load_config_text(CONFIG.format(retention=retention), env={})


def polls(devices, first: float, n: int, step: float = 3600.0) -> list[PollResult]:
    """n hourly polls of each device, one energy reading each."""
    return [PollResult(d, "s", first + i * step, 0.01, (
        Reading(first + i * step, d, "active_energy_kwh", 100.0 + i),)) for d in devices
            for i in range(n)]


def block(device: str, start: float) -> tuple:
    return (device, start, start + 900.0, 0.25, 900.0, "counter")


@pytest.fixture()
def store(store_factory):
    s = store_factory.open("data", config(1))
    yield s
    s.close()


# (readings days, blocks closed up to, per device; "-" none) -> prune_before, with
# now = T0 + 10 days: retention's cutoff is T0 + 9 days for 1 day, T0 + 7 for 3.
PRUNE_CASES = [
    (None, {"inc": 9.5, "ups": 9.5}, None),  # retention off
    (1, {"inc": 9.5, "ups": 9.5}, T0 + 9 * DAY),
    (3, {"inc": 9.5, "ups": 9.5}, T0 + 7 * DAY),
    (1, {"inc": 9.5, "ups": 5.0}, T0 + 5 * DAY),  # a meter behind holds the rest back
    (1, {"inc": 9.5, "ups": "-"}, None),  # read, never closed: nothing may go
]


@pytest.mark.parametrize(("days", "closed", "want"), PRUNE_CASES)
def test_what_retention_lets_go(store, days, closed, want):
    store.write_polls(polls(["inc", "ups", "temp"], T0, 3))
    store.write_interval_energy([block(d, T0 + c * DAY - 900.0) for d, c in closed.items()
                                 if c != "-"])
    assert prune_before(store, config(days), T0 + 10 * DAY) == want


def test_a_meter_never_read_does_not_hold_retention_back(store):
    store.write_polls(polls(["inc", "temp"], T0, 3))
    store.write_interval_energy([block("inc", T0 + 9.5 * DAY - 900.0)])
    assert prune_before(store, config(1), T0 + 10 * DAY) == T0 + 9 * DAY


def test_pruning_deletes_older_readings_a_day_at_a_time(store):
    # 3 devices x 72 hourly readings from T0; everything before T0 + 50 h goes.
    store.write_polls(polls(["inc", "ups", "temp"], T0, 72))
    assert store.prune_readings(T0 + 50 * 3600) == 3 * 50
    assert store.prune_readings(T0 + 50 * 3600) == 0
    assert store.first_reading_ts("inc") == T0 + 50 * 3600
    store.write_interval_energy([block(d, T0 + 100 * 3600) for d in ("inc", "ups")])
    # now = T0 + 4 days with 1 day kept: cutoff T0 + 3 days = 72 h, after every reading
    assert prune(store, config(1), T0 + 4 * DAY) == 3 * 22
    assert store.first_reading_ts("ups") is None


def made_with(store, conf, record) -> None:
    """48 hourly readings of inc and ups from T0, 40 hours of their blocks, and the record
    ``record(site, device)`` of what each meter's blocks were made with."""
    store.write_polls(polls(["inc", "ups"], T0, 48))
    store.write_interval_energy([block(d, T0 + k * 900.0) for d in ("inc", "ups")
                                 for k in range(4 * 40)])
    store.replace_settings({d.id: record(s, d) for s, d in conf.devices() if d.id != "temp"},
                           drop_blocks=False)


def test_a_settings_change_keeps_the_blocks_of_pruned_readings(store_factory, caplog):
    store = store_factory.open("data", config(1))
    try:
        before = config(1)
        made_with(store, before, lambda s, d: fingerprint(block_settings(before, s, d)))
        store.prune_readings(T0 + 24 * 3600)
        changed = load_config_text(CONFIG.format(retention="retention: {readings_days: 1}")
                                   .replace("interval_s: 60", "interval_s: 30"), env={})
        caplog.set_level(logging.ERROR)
        spans = refresh_settings(store, changed)
        kept = store.block_starts(["inc", "ups"], T0, T0 + 40 * 3600)
    finally:
        store.close()
    assert spans == {}
    assert len(kept) == 4 * 40  # every block start is still there
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["device inc", "device ups"]
    assert "deleted by retention" in caplog.records[0].getMessage()


def test_blocks_of_an_earlier_pue_method_over_pruned_readings_are_kept(store_factory,
                                                                       caplog):
    # The blocks (40 hours of them) were computed by another PUE method, and the readings
    # of the first day are gone: those blocks stay the earlier method's, on record as
    # such and told once; from an hour after the oldest reading on they are dropped, to
    # be computed again by this one.
    import json

    from pue_monitor.figures.settings import METHOD, block_timeline
    store = store_factory.open("data", config(1))
    try:
        now = config(1)
        made_with(store, now, lambda s, d: json.dumps({"method": "pue-monitor/3",
                                                       "timeline": block_timeline(now, s, d)}))
        store.prune_readings(T0 + 24 * 3600)
        caplog.set_level(logging.WARNING)
        cut = T0 + 25 * 3600  # the oldest reading, T0 + 24 h, and an hour
        assert refresh_settings(store, now) == {"inc": (cut, T0 + 40 * 3600),
                                                "ups": (cut, T0 + 40 * 3600)}
        assert refresh_settings(store, now) == {}  # on record: nothing more to do
        kept = store.block_starts(["inc", "ups"], T0, T0 + 40 * 3600)
        records = {d: json.loads(r) for d, r in store.settings_fingerprints().items()}
    finally:
        store.close()
    assert len(kept) == 4 * 25 and max(kept) == cut - 900.0  # the earlier method's
    assert {d: (r["method"], r["earlier"]) for d, r in records.items()} == {
        d: (METHOD, [["pue-monitor/3", cut]]) for d in ("inc", "ups")}
    said = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in said] == ["device inc", "device ups"]
    assert all(f"the PUE method is now {METHOD}" in m and "2026-01-02 01:00 UTC" in m
               and "computed by pue-monitor/3" in m for m in said), said


CUT = T0 + 25 * 3600  # the cut of the test above: 2026-01-02 08:00 at the site
CUT_TEXT = "2026-01-02T08:00:00+07:00"


# (case, period in hours from T0, an earlier record before pue-monitor/3's, the report's
# earlier_methods: (device, method, from, until) with the times as the site's clock)
NAMED = [
    ("the period holds them", 0, 48, None,
     [(d, "pue-monitor/3", None, CUT_TEXT) for d in ("inc", "ups")]),
    ("it starts before the cut", 20, 30, None,
     [(d, "pue-monitor/3", None, CUT_TEXT) for d in ("inc", "ups")]),
    ("it starts at the cut", 25, 48, None, []),
    ("before any block", -240, -120, None, []),
    ("two earlier methods", 0, 48, ["pue-monitor/2", T0 + 10 * 3600],
     [(d, m, f, CUT_TEXT if m == "pue-monitor/3" else "2026-01-01T17:00:00+07:00")
      for d in ("inc", "ups") for m, f in (("pue-monitor/2", None),
                                           ("pue-monitor/3", "2026-01-01T17:00:00+07:00"))]),
    ("two earlier methods, the second's span only", 12, 48, ["pue-monitor/2", T0 + 10 * 3600],
     [(d, "pue-monitor/3", "2026-01-01T17:00:00+07:00", CUT_TEXT) for d in ("inc", "ups")]),
]


@pytest.mark.parametrize(("start_h", "end_h", "before", "want"), [n[1:] for n in NAMED],
                         ids=[n[0] for n in NAMED])
def test_a_report_names_the_blocks_an_earlier_method_computed(store_factory, start_h, end_h,
                                                              before, want):
    import json

    from pue_monitor.figures.report import digest, site_report
    from pue_monitor.figures.settings import block_timeline
    from pue_monitor.web.report_render import to_csv, to_html
    store = store_factory.open("data", config(1))
    try:
        now = config(1)
        made_with(store, now, lambda s, d: json.dumps({"method": "pue-monitor/3",
                                                       "timeline": block_timeline(now, s, d)}
                                                      | ({"earlier": [before]} if before
                                                         else {})))
        store.prune_readings(T0 + 24 * 3600)
        refresh_settings(store, now)
        report = site_report(store, now, now.sites[0], T0 + start_h * 3600,
                             T0 + end_h * 3600, now=T0 + 3 * DAY)
    finally:
        store.close()
    got = [(e["device"], e["method"], e["from"], e["until"]) for e in report["earlier_methods"]]
    assert got == want
    # Under the digest where there are any; absent (digests as before) where none.
    assert ("earlier_methods" in report["inputs"]) == bool(want)
    assert report["digest"]["value"] == digest(report["inputs"])
    html = {lang: to_html(report, lang, "2026-01-04T00:00:00+07:00") for lang in ("vi", "en")}
    csv_row = to_csv(report).splitlines()[1]
    if not want:
        assert not any(m in html["en"] + html["vi"] + csv_row
                       for m in ("pue-monitor/2", "pue-monitor/3"))
        assert "earlier method" not in html["en"]
        return
    assert "includes blocks of an earlier method" in html["en"]  # beside the verdict
    assert "có khối tính theo phương pháp trước đây" in html["vi"]
    for device, method, since, _ in want:
        if since is None:
            assert f"{device}: blocks before 08:00 02/01/2026 by {method}" in html["en"] \
                or f"{device}: blocks before 17:00 01/01/2026 by {method}" in html["en"]
        else:
            assert (f"{device}: blocks from 17:00 01/01/2026 until 08:00 02/01/2026 by "
                    f"{method}") in html["en"]
            assert (f"{device}: các khối từ 17:00 01/01/2026 đến trước 08:00 02/01/2026 "
                    f"theo {method}") in html["vi"]
    assert csv_row.endswith("; ".join(f"{d} {m} {f or ''}..{u}" for d, m, f, u in want))


def test_a_meter_whose_share_changed_in_the_period_is_named_once(store_factory):
    # Two rows of one meter in the figures (its share before and after noon): one entry.
    import json

    from pue_monitor.figures.report import site_report
    from pue_monitor.figures.settings import block_timeline
    text = CONFIG.format(retention="retention: {readings_days: 1}").replace(
        "measurement_point: ups_output,",
        "measurement_point: ups_output, share: 1.0,\n"
        "         changes: [{from: '2026-01-01T12:00:00+07:00', share: 0.5}],")
    changed = load_config_text(text, env={})
    store = store_factory.open("data", changed)
    try:
        made_with(store, changed, lambda s, d: json.dumps(
            {"method": "pue-monitor/3", "timeline": block_timeline(changed, s, d)}))
        store.prune_readings(T0 + 24 * 3600)
        refresh_settings(store, changed)
        report = site_report(store, changed, changed.sites[0], T0, T0 + 48 * 3600,
                             now=T0 + 3 * DAY)
    finally:
        store.close()
    assert [m["device"] for m in report["meters"]].count("ups") == 2
    assert [e["device"] for e in report["earlier_methods"]] == ["inc", "ups"]
