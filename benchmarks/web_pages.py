"""How fast the web view answers over a year of data: the overview, a site page, its chart
data and a device page (a benchmark, not a test; asserts nothing).

    python benchmarks/web_pages.py [--sites 10] [--days 365] [--repeat 30] [--data-dir DIR]
                                   [--no-fill] [--stuck-power]

The pages read the 15-minute blocks and their day summary, never a year of raw readings,
so the store gets what the rollup would have left after a year of 1-minute polling: a
year of whole blocks for each site's four meters (facility, two IT, cooling), written
straight into interval_energy, plus the last day of raw 1-minute readings (counter and
power) that the live windows and the device page read. Each request is timed through
Flask's test client (no network), ``--repeat`` times in four modes (see timed):
"cold" (everything computed from the store, as the first request after a block closes
pays for its series), "expired" (the status document recomputed, as a request pays once a
second when nothing refreshes it; the long figures and what comes from closed blocks
kept), "served" (the same expiry in an app that refreshes in the background, as the
running monitor does: every request starts a recomputation beside it) and "warm".
The raw power moves a little every minute, as a real load's does (``--stuck-power``: the
fault, every meter constant). Before that it times the start-up warm-up (web.app.warm,
as runner.run_monitor does it) and the first overview after it, and the first overview of
an app that was not warmed up. Prints p50 and p95 in ms, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pue_monitor.config.metrics import JOULES_PER_KWH  # noqa: E402
from pue_monitor.config.model import Config  # noqa: E402
from pue_monitor.figures.periods import align_store  # noqa: E402
from pue_monitor.pue.periods import BLOCK_S  # noqa: E402
from pue_monitor.store.model import PollResult, Reading  # noqa: E402
from pue_monitor.store.sqlite import Store  # noqa: E402
from pue_monitor.web import create_app, warm as warm_up  # noqa: E402
from pue_monitor.web.app import CACHE_S  # noqa: E402

NOW = 1_795_579_200.0  # 2026-11-25 10:00 in Asia/Ho_Chi_Minh, on a block boundary
# meter -> (role, kW); the facility draws 140 kW, so every site's PUE is 1.40.
METERS = {"incomer": ("facility", 140.0), "ups-a": ("it", 50.0), "ups-b": ("it", 50.0),
          "chiller": ("cooling", 30.0)}
RAW_STEP_S = 60.0
WRITE_BATCH = 50_000


def config(sites: int) -> Config:
    return Config.model_validate({
        "title": {"vi": "Bench", "en": "Bench"}, "polling": {"interval_s": 60},
        "web": {"login": False},  # pages without a session: what is timed is the figures
        "sites": [{"id": f"dc-{i:02d}", "name": {"vi": f"TTDL {i}", "en": f"DC {i}"},
                   "devices": [{"id": f"dc-{i:02d}-{m}", "profile": "ups_mib", "role": role,
                                **({"measurement_point": "ups_output"} if role == "it"
                                   else {}),
                                "snmp": {"host": "127.0.0.1", "port": 16100 + n}}
                               for n, (m, (role, _)) in enumerate(METERS.items())]}
                  for i in range(sites)]})


def fill(store: Store, cfg: Config, days: int, stuck: bool = False) -> None:
    align_store(store, cfg)
    start = NOW - days * 86400
    rows = []
    for site in cfg.sites:
        for device in site.devices:
            kw = METERS[device.id.split("-", 2)[2]][1]
            for block in range(int(start), int(NOW), BLOCK_S):
                rows.append((device.id, float(block), float(block + BLOCK_S),
                             kw * BLOCK_S / 3600, float(BLOCK_S), "counter"))
                if len(rows) >= WRITE_BATCH:
                    store.write_interval_energy(rows)
                    rows = []
    store.write_interval_energy(rows)
    polls = []
    for site in cfg.sites:
        for device in site.devices:
            kw = METERS[device.id.split("-", 2)[2]][1]
            kwh = kw * 1000 * 86400 * (days - 1) / JOULES_PER_KWH
            watts = 0.0
            for i in range(int(86400 / RAW_STEP_S) + 1):
                ts = NOW - 86400 + i * RAW_STEP_S
                before, watts = watts, power_w(kw, i, stuck)
                if i:  # the counter integrates the power it measured (trapezoids)
                    kwh += (before + watts) / 2 * RAW_STEP_S / JOULES_PER_KWH
                polls.append(PollResult(device.id, site.id, ts, 0.01, (
                    Reading(ts, device.id, "active_power_w", watts),
                    Reading(ts, device.id, "active_energy_kwh", kwh))))
        store.write_polls(polls)
        polls = []


def power_w(kw: float, i: int, stuck: bool = False) -> float:
    """The ``i``-th minute's power: around ``kw``, moving by a few tenths of a percent
    each poll as a real load's does. A power bit-identical over 30 polls is the
    stuck-power fault (pue.quality), whose evidence the live windows then read over the
    whole run; ``stuck`` (``--stuck-power``) makes every meter so, to time that case."""
    return kw * 1000 if stuck else kw * 1000 * (1 + 0.001 * ((7 * i) % 11 - 5))


def timed(client, app, url: str, repeat: int, mode: str) -> list[float]:
    """Each request's ms. ``mode``: "cold" keeps nothing (status document, long figures,
    series, overview body); "expired" drops what expires within seconds in production (the
    status document, kept CACHE_S, with the overview body rendered from it) and keeps the
    long figures; "served" is "expired" in an app that refreshes in the background, as the
    running monitor does (the request gets the previous document while a thread computes
    the next beside it); "warm" keeps everything."""
    out = []
    for _ in range(repeat):
        state = app.extensions["pue_monitor"]
        if mode == "served":  # expired, within STALE_MAX_S
            state._cached = (NOW - 2 * CACHE_S, state._cached[1]) if state._cached else None
        if mode in ("cold", "expired"):
            app.extensions.pop("pue_monitor_overview", None)
            state._cached = None
        if mode == "cold":
            state.blocks.clear()  # the series and the live windows' whole blocks
            state._long = None
        t0 = time.perf_counter()
        answer = client.get(url)
        out.append((time.perf_counter() - t0) * 1000)
        assert answer.status_code == 200, (url, answer.status_code)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--no-fill", action="store_true",
                        help="reuse the data a previous run left in --data-dir")
    parser.add_argument("--stuck-power", action="store_true",
                        help="every meter's power constant over the last day (the fault)")
    args = parser.parse_args()
    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="pue-bench-web-"))
    cfg = config(args.sites)
    store = Store.open(folder)
    t0 = time.perf_counter()
    if not args.no_fill:
        fill(store, cfg, args.days, args.stuck_power)
        print(f"filled {args.sites} sites x {len(METERS)} meters x {args.days} days of "
              f"blocks in {time.perf_counter() - t0:.1f} s ({folder})")
    # Start-up as the monitor does it (runner.run_monitor): the app, then its warm-up.
    app = create_app(cfg, store, clock=lambda: NOW, testing=True)
    print(f"warm-up at start-up (templates, status document): {warm_up(app) * 1000:.0f} ms")
    client = app.test_client()
    t0 = time.perf_counter()
    first = client.get("/")
    assert first.status_code == 200, ("/", first.status_code)
    print(f"first overview after start-up: {(time.perf_counter() - t0) * 1000:.0f} ms")
    # And without the warm-up: a fresh app whose first overview computes everything.
    cold_app = create_app(cfg, store, clock=lambda: NOW, testing=True)
    t0 = time.perf_counter()
    first = cold_app.test_client().get("/")
    assert first.status_code == 200, ("/", first.status_code)
    print(f"first overview of an app not warmed up: {(time.perf_counter() - t0) * 1000:.0f} ms")
    site, device = cfg.sites[0].id, cfg.sites[0].devices[0].id
    urls = ["/", f"/sites/{site}", *(f"/api/v1/sites/{site}/pue?range={r}"
                                     for r in ("day", "week", "month", "year")),
            f"/api/v1/sites/{site}/power?range=year", f"/api/v1/sites/{site}/months",
            f"/devices/{device}"]
    served = create_app(cfg, store, clock=lambda: NOW, testing=True, background=True)
    warm_up(served)
    modes = ("cold", "expired", "served", "warm")
    print(f"{'request':44}" + "".join(f"{m + ' p50':>12}{m + ' p95':>12}" for m in modes))
    p95 = lambda xs: statistics.quantiles(xs, n=20)[18]  # noqa: E731
    for url in urls:
        row = f"{url:44}"
        # The served app computes each series once per closed block, on the first request
        # for it (the cold column times that); its rows time the requests after it.
        served.test_client().get(url)
        for mode in modes:
            times = timed(*((served.test_client(), served) if mode == "served"
                            else (client, app)), url, args.repeat, mode)
            row += f"{statistics.median(times):12.1f}{p95(times):12.1f}"
        print(row)
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    store.close()


if __name__ == "__main__":
    main()
