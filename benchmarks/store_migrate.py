"""How long opening a store of schema version 1 takes: its readings copied to series ids
(store.series) in one transaction (a benchmark, not a test).

Run: ``.venv/bin/python benchmarks/store_migrate.py [--readings 10000000] [--devices 128]``

Writes a version-1 store (the old layout, as tests/test_store_series.py spells it) of
``--readings`` readings of ``--devices`` devices with 10 series each, 10 s apart in
time order as polls leave them, in a temporary folder (or ``--dir``); its indexes built
at the end (compact), or with ``--indexes-first`` as the rows go in (as a monitor
leaves them); then times
Store.open on it: wall and CPU time, and the file's size before and after.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pue_monitor.store.sqlite import DB_FILE, Store  # noqa: E402
from tests.test_store_series import V1_SCHEMA  # noqa: E402

SERIES = [("active_power_w", ""), ("active_energy_kwh", ""), ("frequency_hz", ""),
          ("load_pct", "")]
SERIES += [(m, f"line={n}") for m in ("voltage_v", "current_a") for n in (1, 2, 3)]


def old_store(folder: Path, readings: int, devices: int, indexes_first: bool) -> Path:
    path = folder / DB_FILE
    per_poll = len(SERIES)
    schema = V1_SCHEMA if indexes_first else V1_SCHEMA.replace("CREATE INDEX", "-- CREATE INDEX")
    with sqlite3.connect(path) as conn:
        conn.executescript(schema)
        conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, 'ok')", (
            (1_760_000_000.0 + 10.0 * (i // (per_poll * devices)),
             f"pdu-{i // per_poll % devices:05d}", *SERIES[i % per_poll], float(i % 997))
            for i in range(readings)))
        if not indexes_first:
            conn.executescript("\n".join(line for line in V1_SCHEMA.splitlines()
                                         if line.startswith("CREATE INDEX")))
    conn.close()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--devices", type=int, default=128)
    parser.add_argument("--indexes-first", action="store_true",
                        help="write the readings with the indexes in place, as a monitor does "
                             "(slower to build; the series index's pages end up scattered)")
    parser.add_argument("--dir", type=Path, help="folder for the store (default: a temporary one)")
    args = parser.parse_args()
    logging.basicConfig(level="INFO", format="%(asctime)s %(message)s")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        t0 = time.perf_counter()
        path = old_store(Path(tmp), args.readings, args.devices, args.indexes_first)
        size = path.stat().st_size
        print(f"version-1 store of {args.readings:,} readings written in "
              f"{time.perf_counter() - t0:.0f} s: {size / 2**20:,.0f} MiB")
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        t0, c0 = time.perf_counter(), time.process_time()
        Store.open(Path(tmp)).close()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"opened (migrated) in {wall:.1f} s wall, {cpu:.1f} s CPU; "
              f"{path.stat().st_size / 2**20:,.0f} MiB after; load average "
              f"{os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
