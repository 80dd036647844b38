"""How many readings per second one process stores, in batches, on SQLite or PostgreSQL.

Each batch is one ``write_polls`` call (one transaction, as the collectors and a central
ingest write): ``--batch`` readings from 100 meters of 10 sites (counter and power, one
poll a minute each), later batches later in time, so PostgreSQL creates the partitions
of new months as the data reaches them.

    python benchmarks/store_ingest.py [--store-url postgresql://...] [--data-dir DIR]
                                      [--batch 5000] [--batches 200]

Prints figures; asserts nothing (speed is measured here, never in the test suite).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pue_monitor.store.model import PollResult, Reading  # noqa: E402

T0 = 1_735_664_400.0  # 2025-01-01 00:00 in Hà Nội
SITES, METERS_PER_SITE = 10, 10


def batches(size: int, count: int):
    """``count`` lists of PollResult holding ``size`` readings together."""
    polls_per_batch = max(1, size // 2)
    minute = 0
    meters = [(f"site-{s:02d}", f"s{s:02d}-m{m:02d}") for s in range(SITES)
              for m in range(METERS_PER_SITE)]
    for _ in range(count):
        batch = []
        while len(batch) < polls_per_batch:
            t = T0 + minute * 60.0
            for site, meter in meters[:polls_per_batch - len(batch)]:
                batch.append(PollResult(meter, site, t, 0.05, (
                    Reading(t, meter, "active_energy_kwh", 1000.0 + minute * 0.5),
                    Reading(t, meter, "active_power_w", 30_000.0 + minute % 17))))
            minute += 1
        yield batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-url", help="PostgreSQL (postgresql://...); else SQLite")
    parser.add_argument("--data-dir", type=Path, help="the SQLite store's folder")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.store_url:
            from pue_monitor.store.postgres import PostgresStore
            store = PostgresStore(args.store_url)
        else:
            from pue_monitor.store.sqlite import Store
            store = Store.open(args.data_dir or Path(tmp))
        work = list(batches(args.batch, args.batches))
        n = sum(len(p.readings) for b in work for p in b)
        began = time.perf_counter()
        for batch in work:
            store.write_polls(batch)
        if not args.store_url:  # the SQLite store's readings waiting in recent moved
            store.move_recent()
        seconds = time.perf_counter() - began
        store.close()
    print(f"{'PostgreSQL' if args.store_url else 'SQLite'}: {n:,} readings in "
          f"{args.batches} batches of {args.batch:,}: {seconds:.1f} s, "
          f"{n / seconds:,.0f} readings/s (one process, one writer)")


if __name__ == "__main__":
    main()
