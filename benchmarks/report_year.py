"""How long a `--site all` yearly report takes for a province of 10 sites x 30 meters.

A year of 1-minute data for 300 meters is 157 million raw readings per metric; writing
them would take this script hours and the report never reads them: it reads the
15-minute blocks the rollup closes as data arrives. So the benchmark has two parts:

(a) the rollup of raw 1-minute readings (counter and power) for one meter over one
    month, timed, and extrapolated (linearly, and labelled as such) to 300 meters x 12
    months: the work the monitor spreads over a year, or an import does once;
(b) a year of blocks for 300 meters written straight into interval_energy, the way the
    rollup writes them (plus each meter's first and last raw reading, so the report's
    "are the blocks there?" check runs as in production; and, around the 8 blocks per
    site where one power-only IT meter missed polls, every meter's raw 1-minute readings,
    which the report recomputes those blocks from), then
    `pue-monitor report --site all --period <year> --format json` timed end to end, in
    process and as a fresh process;
(c) the upkeep of the per-meter day summary the report reads (store.days): building it
    for a store of blocks written before it existed, and bringing it up to date after
    one rollup cycle has written a block for every meter;
(d) with ``--growth``: what grows with the number of sites, measured without a store of
    that size (start-up, and the configuration of 10, 50 and 100 sites).

The report is timed cold (the exact results of partial blocks that reports keep,
figures.keptparts, deleted before each run: the first report after their blocks changed)
and warm (the usual case: the results kept by an earlier report).

    python benchmarks/report_year.py [--sites 10] [--meters 30] [--year 2025]
                                     [--data-dir DIR] [--store-url URL] [--profile]
                                     [--repeat N] [--skip-rollup] [--blocks-from DIR]
                                     [--growth]

``--store-url postgresql://...`` runs (b) and (c) on that PostgreSQL database (the
config's ``store: {url}``, as a deployment sets it) instead of SQLite under --data-dir;
(a) stays on a SQLite scratch store (one meter-month of raw readings, not the province's).
With ``--blocks-from DIR`` the blocks are copied from the SQLite store a previous run kept
in DIR (``--data-dir``) with COPY: the same rows, in minutes instead of an hour.

Prints figures; asserts nothing (speed is measured here, never in the test suite).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from pue_monitor.config import load_config  # noqa: E402
from pue_monitor.figures.rollup import rollup_range  # noqa: E402
from pue_monitor.pue.periods import BLOCK_S  # noqa: E402
from pue_monitor.storage import open_store  # noqa: E402
from pue_monitor.store.base import StoreProtocol  # noqa: E402
from pue_monitor.store.model import Reading  # noqa: E402
from pue_monitor.store.sqlite import DB_FILE, Store  # noqa: E402

TZ = "Asia/Ho_Chi_Minh"
TARGET_S = 1.0  # issue 13
# Per site: what each of its meters is (role, measurement point, mean kW).
LAYOUT = ([("facility", None, 450.0)] * 2 + [("it", "pdu_output", 30.0)] * 20
          + [("cooling", None, 40.0)] * 6 + [("power_distribution", None, 12.0)]
          + [("lighting", None, 4.0)])


def write_config(folder: Path, sites: int, meters: int, store_url: str | None = None) -> Path:
    port = 20000
    out = []
    for s in range(sites):
        devices = []
        for m, (role, point, _) in enumerate((LAYOUT * 2)[:meters]):
            port += 1
            dev = {"id": f"s{s:02d}-m{m:02d}", "role": role}
            if role == "it":
                dev |= {"profile": "apc_rpdu2", "measurement_point": point,
                        "snmp": {"host": "127.0.0.1", "port": port}}
            else:
                dev |= {"profile": "eastron_sdm630", "modbus": {"host": "127.0.0.1",
                                                                "port": port}}
            devices.append(dev)
        out.append({"id": f"site-{s:02d}", "name": {"vi": f"TTDL {s}", "en": f"DC {s}"},
                    "devices": devices})
    path = folder / "province.yaml"
    raw = {"polling": {"interval_s": 60}, "sites": out}
    if store_url:
        raw["store"] = {"url": store_url}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def local(year: int, month: int = 1) -> float:
    return datetime(year, month, 1, tzinfo=ZoneInfo(TZ)).timestamp()


# ---- (a) rollup of raw 1-minute data ----------------------------------------------------

def time_rollup(folder: Path, config_path: Path, year: int) -> float:
    config = load_config(config_path)
    site = config.sites[0]
    device = site.devices[0]
    store = Store.open(folder / "raw")
    start, end = local(year, 3), local(year, 4)  # a 31-day month
    rng = random.Random(1)
    readings, kwh = [], 1000.0
    for i in range(int((end - start) / 60) + 1):
        t = start + i * 60 + rng.uniform(-2, 2)  # polls are never exactly on the minute
        watts = 450_000 + 30_000 * math.sin(i / 720)
        kwh += watts * 60 / 3.6e6
        readings += [Reading(t, device.id, "active_energy_kwh", round(kwh, 1)),
                     Reading(t, device.id, "active_power_w", watts)]
    store.import_readings(readings)
    began = time.perf_counter()
    blocks = rollup_range(store, config, site, device, start, end)
    seconds = time.perf_counter() - began
    store.close()
    print(f"(a) rollup of one meter-month: {len(readings):,} raw readings -> {blocks} blocks "
          f"in {seconds:.2f} s")
    year_s = seconds * 12 * len(list(config.devices()))
    print(f"    extrapolated linearly to {len(list(config.devices()))} meters x 12 months: "
          f"{year_s:.0f} s of rollup ({year_s / 3600:.2f} h), spread over the year as "
          "blocks close (or once, for an import of a whole year); not measured directly")
    return seconds


# ---- (b) a year of blocks, then the report -------------------------------------------------

# Each site's third meter (an IT PDU) reports power only: where it missed polls, its blocks
# are partly covered and the report recomputes them from the raw readings around them.
POWER_ONLY = 2
RAW_AROUND_S = (1800, 2700)  # raw 1-minute readings kept before / after a partial block
SILENT_S = (300, 600)  # where in the partial block the power-only meter was silent


def partial_blocks(year: int, sites: int) -> list[set[float]]:
    """Per site, the 8 blocks where the power-only meter measured only part of the time."""
    start, end = local(year), local(year + 1)
    rng = random.Random(2)
    return [{start + BLOCK_S * rng.randrange(int((end - start) / BLOCK_S)) for _ in range(8)}
            for _ in range(sites)]


def write_blocks(store: StoreProtocol, config_path: Path, year: int) -> int:
    config = load_config(config_path)
    start, end = local(year), local(year + 1)
    rows_written = 0
    for site, partial in zip(config.sites, partial_blocks(year, len(config.sites))):
        for d, device in enumerate(site.devices):
            kw = (LAYOUT * 2)[d][2]
            rows = []
            for b in range(int(start), int(end), BLOCK_S):
                covered = 600.0 if (d == POWER_ONLY and b in partial) else float(BLOCK_S)
                energy = kw * covered / 3600 * (1 + 0.05 * math.sin(b / 86400))
                rows.append((device.id, float(b), float(b + BLOCK_S), energy, covered,
                             "power_integration" if d == POWER_ONLY else "counter"))
            store.write_interval_energy(rows)
            rows_written += len(rows)
            if d != POWER_ONLY:
                total = sum(r[3] for r in rows)
                store.import_readings([
                    Reading(start, device.id, "active_energy_kwh", 10_000.0),
                    Reading(end, device.id, "active_energy_kwh", 10_000.0 + total)])
    write_raw_around(store, config, year)
    return rows_written


def wobble(t: float, meter: int) -> float:
    """A meter's power as a share of its mean at ``t``: within +-2 %, never the same two
    minutes running (real loads move; a power value repeated for 30 polls is a stuck
    meter, which the stuck-power rule judges against the site's other meters)."""
    return 1 + 0.02 * math.sin(t / 97 + meter) * math.cos(t / 1013)


def write_raw_around(store: StoreProtocol, config, year: int) -> int:
    """The raw 1-minute readings (counter and power) of every meter around each partial
    block, as a real store has them all year; the exact path reads these."""
    readings = []
    for site, partial in zip(config.sites, partial_blocks(year, len(config.sites))):
        for b in sorted(partial):
            for d, device in enumerate(site.devices):
                kw = (LAYOUT * 2)[d][2]
                for t in range(int(b - RAW_AROUND_S[0]), int(b + BLOCK_S + RAW_AROUND_S[1]), 60):
                    if d == POWER_ONLY and b + SILENT_S[0] < t < b + SILENT_S[1]:
                        continue
                    readings.append(Reading(float(t), device.id, "active_power_w",
                                            kw * 1000 * wobble(t, d)))
                    if d != POWER_ONLY:
                        readings.append(Reading(float(t), device.id, "active_energy_kwh",
                                                10_000.0 + kw * (t - local(year)) / 3600))
    store.import_readings(readings)
    return len(readings)


def copy_blocks(source: Path, store_url: str, config_path: Path, year: int) -> int:
    """(b) on PostgreSQL without an hour of `write_interval_energy` here: the blocks of a
    SQLite benchmark store made with the same --sites, --meters and --year (read through
    the store) go in with COPY; the first and last readings and the raw readings around
    the partial blocks (the same as write_blocks makes) through the store, and the day
    summary is rebuilt through it."""
    import psycopg

    from pue_monitor.store import pg_days

    config = load_config(config_path)
    target = open_store(source, config)  # the config's store: the PostgreSQL one
    sqlite = Store.open(source)
    start, end = local(year), local(year + 1)
    target._ensure_blocks([local(year, m) for m in range(1, 13)] + [end - BLOCK_S])
    with target._write() as conn:
        pg_days.set_complete(conn, False)  # rebuilt below, from the copied blocks
    copied = 0
    with psycopg.connect(store_url) as conn, conn.cursor().copy(
            'COPY interval_energy (site, device, start, "end", energy_kwh, covered_s, '
            "method) FROM STDIN") as copy:
        for site in config.sites:
            for d, device in enumerate(site.devices):
                frame = sqlite.interval_energy([device.id], start, end)
                for row in frame.itertuples(index=False):
                    copy.write_row((site.id, *row))
                copied += len(frame)
                if d != POWER_ONLY:  # as write_blocks: the first and last raw reading
                    total = sum(float(e) for e in frame["energy_kwh"])
                    target.import_readings([
                        Reading(start, device.id, "active_energy_kwh", 10_000.0),
                        Reading(end, device.id, "active_energy_kwh", 10_000.0 + total)])
    sqlite.close()
    write_raw_around(target, config, year)
    target.rebuild_days()
    target.close()
    return copied


def time_summary(config_path: Path, data_dir: Path, year: int) -> None:
    """(c): the day summary's one-off build and its cost per rollup cycle."""
    config = load_config(config_path)
    began = time.perf_counter()
    store = open_store(data_dir, config)  # aligns the days to the sites' local midnight
    built = time.perf_counter() - began
    rows = len(store.day_rows([d.id for _, d in config.devices()], 0, 2**31))
    # One rollup cycle: every meter closes a block (rewritten here: same values).
    block = local(year, 7) + 6 * 3600
    cycle = [row for site in config.sites for row in store.interval_energy(
        [d.id for d in site.devices], block, block + BLOCK_S).itertuples(index=False)]
    began = time.perf_counter()
    store.write_interval_energy([tuple(r) for r in cycle])
    written = time.perf_counter() - began
    store.close()
    print(f"(c) day summary: {rows:,} day rows; opening the store took {built:.1f} s "
          "(a rebuild, device by device, only for a store written by an older version or "
          "after the day offset changed; 0 otherwise)")
    print(f"    one rollup cycle ({len(cycle)} blocks) written with its {len(cycle)} days "
          f"recomputed, in one transaction: {written * 1000:.1f} ms")


def report_argv(config_path: Path, data_dir: Path, year: int, out: Path) -> list[str]:
    return ["report", "-c", str(config_path), "--data-dir", str(data_dir), "--site", "all",
            "--period", str(year), "--format", "json", "-o", str(out)]


def forget_kept(data_dir: Path, store_url: str | None) -> None:
    """Delete the results reports keep (figures.keptparts): the next report is cold, as
    the first one after the blocks changed. Benchmark only: the monitor drops them with
    the blocks they rest on."""
    if store_url:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as conn:
            conn.execute("DELETE FROM kept_parts")
    else:
        import sqlite3

        with sqlite3.connect(data_dir / DB_FILE) as conn:
            conn.execute("DELETE FROM kept_parts")
        conn.close()


def bytecode_env(folder: Path) -> dict[str, str]:
    """The environment of the timed new processes: with a bytecode cache (in ``folder``),
    as an installed package has (pip compiles it at install). Without one, as under
    PYTHONDONTWRITEBYTECODE, every run would compile every module it imports again
    (about 0.15 s here), which no deployment pays."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    return env


def fresh_runs(argv: list[str], repeat: int, env: dict[str, str], before=None
               ) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (the forked workers included) of ``repeat`` new processes."""
    walls, cpus = [], []
    for _ in range(repeat):
        if before is not None:
            before()
        was = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pue_monitor", *argv], check=True, env=env,
                       cwd=Path(__file__).resolve().parent.parent)
        walls.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the forked workers too
        cpus.append(after.ru_utime + after.ru_stime - was.ru_utime - was.ru_stime)
    return walls, cpus


def _runs_line(walls: list[float], cpus: list[float]) -> str:
    return (f"{min(walls):.2f} s at best of {len(walls)} ({', '.join(f'{w:.2f}' for w in walls)}"
            f" s; CPU, workers included: {', '.join(f'{c:.2f}' for c in cpus)} s; load "
            f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs); target "
            f"{TARGET_S:.1f} s: {'met' if min(walls) < TARGET_S else 'NOT met'}")


def time_report(config_path: Path, data_dir: Path, year: int, profile: bool,
                repeat: int = 3, store_url: str | None = None) -> None:
    from pue_monitor.cli import main
    from pue_monitor.figures.report import site_report

    out = data_dir.parent / "report.json"
    argv = report_argv(config_path, data_dir, year, out)
    forget_kept(data_dir, store_url)
    began = time.perf_counter()
    assert main(argv) == 0
    in_process = time.perf_counter() - began
    cold = out.read_bytes()
    began = time.perf_counter()
    assert main(argv) == 0
    in_process_warm = time.perf_counter() - began
    same = out.read_bytes() == cold
    # The cache in a folder of its own, gone afterwards (--data-dir may be the user's).
    with tempfile.TemporaryDirectory() as cache:
        env = bytecode_env(Path(cache))
        fresh_runs(argv, 1, env)  # untimed: writes the bytecode cache
        cold_walls, cold_cpus = fresh_runs(argv, repeat, env,
                                           lambda: forget_kept(data_dir, store_url))
        walls, cpus = fresh_runs(argv, repeat, env)
    same = same and out.read_bytes() == cold
    config = load_config(config_path)
    store = open_store(data_dir, config)
    start, end = local(year), local(year + 1)
    per_site = []
    for site in config.sites:
        t0 = time.perf_counter()
        site_report(store, config, site, start, end, time.time(), str(year))
        per_site.append(time.perf_counter() - t0)
    store.close()
    n = len(config.sites)
    print(f"(b) report --site all --period {year} --format json ({n} sites, "
          f"{len(config.devices())} meters, {out.stat().st_size / 1024:.0f} KiB of JSON):")
    print(f"    in process {in_process:.2f} s cold (no kept results), {in_process_warm:.2f} s "
          f"warm; the same document cold and warm: {'yes' if same else 'NO'}")
    print("    as a new process (Python start-up and imports included, with a bytecode "
          "cache as an installed package has), cold (kept results deleted before each run): "
          f"{_runs_line(cold_walls, cold_cpus)}")
    print(f"    as a new process, warm (the usual case): {_runs_line(walls, cpus)}")
    print(f"    per site, warm: mean {sum(per_site) / n:.3f} s, max {max(per_site):.3f} s "
          "(one site's report with its 12 months)")
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        assert main(argv) == 0
        prof.disable()
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(25)
        print(text.getvalue())


def time_growth(folder: Path, meters: int, counts: tuple[int, ...] = (10, 50, 100)) -> None:
    """(d): what of a report grows with the number of sites, measured without a store of
    that size: start-up (a new interpreter importing what `report` imports, with a
    bytecode cache) and the configuration (load_config as `report` calls it), best of a
    few runs, CPU seconds."""
    probe = ("import time; t = time.process_time(); import pue_monitor.cli, "
             "pue_monitor.audit_cli, pue_monitor.figures.report, pue_monitor.storage, "
             "pue_monitor.web.report_render; print(time.process_time() - t)")
    env = bytecode_env(folder)
    imports = min(float(subprocess.run([sys.executable, "-c", probe], check=True, env=env,
                                       capture_output=True, text=True).stdout)
                  for _ in range(4))  # the first writes the bytecode cache
    print(f"(d) start-up: imports {imports:.3f} s of CPU in a new interpreter (best of 4, "
          "with a bytecode cache)")
    for n in counts:
        where = folder / f"growth-{n}"
        where.mkdir(exist_ok=True)
        path = write_config(where, n, meters)
        best = math.inf
        for _ in range(3):
            began = time.process_time()
            load_config(path, all_profiles=False)
            best = min(best, time.process_time() - began)
        print(f"    configuration of {n} sites x {meters} meters: {best:.3f} s of CPU "
              f"({best / (n * meters) * 1000:.2f} ms a meter)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--meters", type=int, default=30)
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--data-dir", type=Path,
                        help="keep the benchmark store here (reused by the next run)")
    parser.add_argument("--store-url", help="run (b) and (c) on this PostgreSQL database "
                        "(postgresql://...) instead of SQLite")
    parser.add_argument("--blocks-from", type=Path, metavar="DIR",
                        help="with --store-url: copy the blocks of this SQLite benchmark "
                        "store (same --sites, --meters, --year) instead of writing them")
    parser.add_argument("--profile", action="store_true", help="cProfile the report")
    parser.add_argument("--repeat", type=int, default=3,
                        help="times the report runs as a new process (default 3)")
    parser.add_argument("--skip-rollup", action="store_true", help="skip part (a)")
    parser.add_argument("--growth", action="store_true",
                        help="also (d): start-up and configuration for 10, 50, 100 sites")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config_path = write_config(folder, args.sites, args.meters, args.store_url)
        print(f"machine: {sys.platform}, Python {sys.version.split()[0]}, "
              f"{os.cpu_count()} CPUs; store: "
              f"{'PostgreSQL' if args.store_url else 'SQLite'}")
        if not args.skip_rollup:
            time_rollup(folder, config_path, args.year)
        data_dir = args.data_dir or folder / "data"
        config = load_config(config_path)
        store = open_store(data_dir, config)  # days kept as written
        if store.last_interval_end(config.sites[-1].devices[-1].id) is not None:
            store.close()
            print("    (reusing the blocks already in the store)")
        elif args.blocks_from:
            store.close()
            began = time.perf_counter()
            rows = copy_blocks(args.blocks_from, args.store_url, config_path, args.year)
            print(f"    ({rows:,} blocks copied from {args.blocks_from} in "
                  f"{time.perf_counter() - began:.0f} s, not part of the report time)")
        else:
            began = time.perf_counter()
            rows = write_blocks(store, config_path, args.year)
            store.close()
            print(f"    ({rows:,} blocks written in {time.perf_counter() - began:.0f} s, "
                  "not part of the report time)")
        time_summary(config_path, data_dir, args.year)
        time_report(config_path, data_dir, args.year, args.profile, args.repeat,
                    args.store_url)
        if args.growth:
            time_growth(folder, args.meters)


if __name__ == "__main__":
    main()
