"""Monitor outages are visible (issue 11): the monitor's run log (start, heartbeats, stop)
in the store, the spans it was not collecting by hand, the runner's loop, and a report
over a counter-only site whose coverage stays 1.0 across the outages yet lists them."""

from __future__ import annotations

import asyncio
import json

import pytest

from pue_monitor.pue.runlog import HEARTBEAT_S, Run, collecting, outages
from pue_monitor.store.sqlite import Store

H = HEARTBEAT_S  # 60 s

# (name, runs, period start, end, now, outage spans)
CASES = [
    ("no-run-at-all", [], 0.0, 1000.0, 5000.0, [(0.0, 1000.0)]),
    ("one-clean-run", [Run(100.0, 900.0, True)], 0.0, 1000.0, 5000.0,
     [(0.0, 100.0), (900.0, 1000.0)]),
    # A crash: the last heartbeat at 500, nothing after; the next start at 800.
    ("crash-then-restart", [Run(0.0, 500.0), Run(800.0, 2000.0, True)], 0.0, 1000.0, 5000.0,
     [(500.0, 800.0)]),
    # Four restarts of 30 s each (the counter-only site).
    ("four-30s-restarts", [Run(0.0, 100.0, True), Run(130.0, 300.0, True),
                           Run(330.0, 500.0, True), Run(530.0, 700.0, True),
                           Run(730.0, 1000.0, True)], 0.0, 1000.0, 5000.0,
     [(100.0, 130.0), (300.0, 330.0), (500.0, 530.0), (700.0, 730.0)]),
    # Still running: last heartbeat 90 s before now (within 2 heartbeats): collecting up
    # to now; the period's future (after now) is no outage.
    ("running-now", [Run(0.0, 910.0)], 0.0, 2000.0, 1000.0, []),
    # Not stopped, last heartbeat 200 s before now (over 2 heartbeats): it died at 800.
    ("silent-too-long", [Run(0.0, 800.0)], 0.0, 2000.0, 1000.0, [(800.0, 1000.0)]),
    # Overlapping runs (two monitors on one store) merge.
    ("overlapping", [Run(0.0, 600.0, True), Run(400.0, 1000.0, True)], 0.0, 1000.0, 5000.0,
     []),
]


@pytest.mark.parametrize(("runs", "start", "end", "now", "spans"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_outages_by_hand(runs, start, end, now, spans):
    found = outages(runs, start, end, now)
    assert list(found.spans) == spans
    assert found.seconds == sum(b - a for a, b in spans)


def test_a_run_still_going_collects_up_to_now():
    assert collecting([Run(0.0, 1000.0 - 2 * H)], 1000.0) == [(0.0, 1000.0)]
    assert collecting([Run(0.0, 1000.0 - 2 * H - 1)], 1000.0) == [(0.0, 1000.0 - 2 * H - 1)]


def test_the_store_keeps_the_run_log(store_factory):
    store = store_factory.open()
    try:
        store.mark_run("a", 100.0)
        store.mark_run("a", 160.0)
        store.mark_run("a", 150.0)  # a late mark never moves the last sign of life back
        store.mark_run("b", 400.0)
        store.mark_run("b", 460.0, stopped=True)
        assert store.runs(0.0, 1000.0) == [(100.0, 160.0, False), (400.0, 460.0, True)]
        assert store.runs(170.0, 390.0) == []  # neither overlaps
        assert store.runs(160.0, 400.0) == [(100.0, 160.0, False)]  # half-open [start, end)
    finally:
        store.close()


async def test_the_runner_marks_start_heartbeats_and_stop(tmp_path):
    from pue_monitor.runner import _run_log_loop

    store = Store.open(tmp_path)
    ticks = iter([1000.0, 1000.5, 1001.0, 1001.5, 1002.0, 1002.5])
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(_run_log_loop(store, stop, lambda: next(ticks),
                                                 heartbeat_s=0.05))
        while len(store.runs(0.0, 2e9)) == 0 or store.runs(0.0, 2e9)[0][1] < 1001.0:
            await asyncio.sleep(0.01)  # the start and at least two heartbeats
        stop.set()
        await asyncio.wait_for(task, 5.0)
        ((started, last_seen, stopped),) = store.runs(0.0, 2e9)
    finally:
        store.close()
    assert started == 1000.0 and stopped is True and last_seen > 1001.0


def test_report_lists_outages_a_counter_bridges(tmp_path):
    """A counter-only site read every 10 s with the monitor down 4 x 30 s: coverage 1.0
    (the counter bridges each gap), but the report lists the four outages (120 s)."""
    from pue_monitor.cli import main as cli
    from pue_monitor.store.model import PollResult, Reading

    config = tmp_path / "site.yaml"
    config.write_text("""
polling: {interval_s: 10}
sites:
  - id: c
    name: {vi: "C", en: "C"}
    devices:
      - {id: c-in, profile: schneider_pm5xxx, role: facility,
         modbus: {host: 127.0.0.1, port: 15021}}
      - {id: c-it, profile: schneider_pm5xxx, role: it, measurement_point: ups_output,
         modbus: {host: 127.0.0.1, port: 15022}}
""", encoding="utf-8")
    from datetime import datetime
    from zoneinfo import ZoneInfo
    t0 = datetime(2026, 3, 1, 10, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).timestamp()
    down = [(t0 + 100 + 200 * k, t0 + 130 + 200 * k) for k in range(4)]  # 30 s each
    store = Store.open(tmp_path / "data")
    try:
        polls = []
        for i in range(91):  # 10:00 .. 10:15 every 10 s
            t = t0 + 10 * i
            if any(a < t < b for a, b in down):
                continue
            polls += [PollResult(d, "c", t, 0.01, (Reading(t, d, "active_energy_kwh",
                                                           1000.0 + kw * 10 * i / 3600),))
                      for d, kw in (("c-in", 150.0), ("c-it", 100.0))]
        store.write_polls(polls)
        edges = [t0, *(x for span in down for x in span), t0 + 900]
        for k, (a, b) in enumerate(zip(edges[::2], edges[1::2])):
            store.mark_run(f"run-{k}", a)
            store.mark_run(f"run-{k}", b, stopped=True)
    finally:
        store.close()
    out = tmp_path / "r.json"
    assert cli(["report", "-c", str(config), "--data-dir", str(tmp_path / "data"), "--site",
                "c", "--period", "2026-03-01T10:00..2026-03-01T10:15", "-o", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["coverage"] == 1.0 and doc["pue"] == pytest.approx(1.5, rel=1e-9)
    found = doc["monitor_outages"]
    assert (found["runs"], found["seconds"]) == (5, 120.0)
    assert found["share"] == pytest.approx(120 / 900, rel=1e-12)
    assert [(s["start"], s["end"]) for s in found["spans"]] == [
        ("2026-03-01T10:01:40+07:00", "2026-03-01T10:02:10+07:00"),
        ("2026-03-01T10:05:00+07:00", "2026-03-01T10:05:30+07:00"),
        ("2026-03-01T10:08:20+07:00", "2026-03-01T10:08:50+07:00"),
        ("2026-03-01T10:11:40+07:00", "2026-03-01T10:12:10+07:00")]
    # The printable page says it in both languages: 120 s = 0.03 h, 13.33 % of 900 s;
    # its times on the local clock as people write them, not as ISO strings.
    for lang, total, first in (
            ("en", "In all 0.03 h (13.33 %); runs of the monitor in the period: 5.",
             "<td>10:01:40 01/03/2026</td><td>10:02:10 01/03/2026</td>"),
            ("vi", "Tổng cộng 0,03 giờ (13,33 %); số lần chạy của monitor trong kỳ: 5.",
             "<td>10:01:40 01/03/2026</td><td>10:02:10 01/03/2026</td>")):
        page = tmp_path / f"r.{lang}.html"
        assert cli(["report", "-c", str(config), "--data-dir", str(tmp_path / "data"),
                    "--site", "c", "--period", "2026-03-01T10:00..2026-03-01T10:15",
                    "--format", "html", "--lang", lang, "-o", str(page)]) == 0
        html = page.read_text(encoding="utf-8")
        assert total in html and first in html


async def test_a_run_log_mark_that_fails_is_retried_at_the_next_heartbeat(tmp_path, caplog):
    """A store refusing writes (disk full) for the start and the first heartbeat: the
    heartbeats after it land, so the run is recorded from the first mark that did."""
    from pue_monitor.runner import _run_log_loop

    class Refusing(Store):
        refusals = 2

        def mark_run(self, run, ts, stopped=False):
            if self.refusals:
                self.refusals -= 1
                raise OSError(28, "No space left on device")
            super().mark_run(run, ts, stopped)

    store = Refusing(tmp_path / "store.sqlite3")
    ticks = iter(1000.0 + 0.5 * i for i in range(10_000))
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(_run_log_loop(store, stop, lambda: next(ticks),
                                                 heartbeat_s=0.05))
        while len(store.runs(0.0, 2e9)) == 0 or store.runs(0.0, 2e9)[0][1] < 1002.0:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5.0)
        ((started, last_seen, stopped),) = store.runs(0.0, 2e9)
    finally:
        store.close()
    # marks at 1000.0 and 1000.5 refused; 1001.0 is the first that landed
    assert (started, stopped) == (1001.0, True) and last_seen > 1002.0
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "cannot write the monitor's run log; collecting goes on and the heartbeat is "
        "retried"]
