"""What storing a reading costs: Store.write_polls with batches of 1 to 2,000 polls of 10
readings each, as the collectors' StoreSink hands them over (a benchmark, not a test).

Run: ``.venv/bin/python benchmarks/store_writes.py [--polls 6000] [--devices 1000]``

Each batch is one transaction (readings, device health, error counts); the figures are
the CPU time (this process, ``time.process_time``) and the wall time per stored reading
and per poll, on a fresh store in a temporary folder, with ``--polls`` polls spread over
``--devices`` devices 10 s apart (the store's indexes see realistic keys). Wall time adds
the waits for the disk (WAL, synchronous=NORMAL) and, on a shared machine, for a core.
*Written* is what the process wrote to files per stored reading (``/proc/self/io``
``wchar``: the WAL's pages and the checkpoints' copies into the database file): the
series index takes each reading at its own place, so every transaction rewrites a page
per series it touches. That is the disk's wear: multiply by readings per day.

``--history`` (default 0 and 100): polls of every device written before the timed ones (not
timed). In an empty store many series share an index page; once a store has run a while
each series' newest readings sit on a page of their own, and a transaction that holds one
poll per device (as the sink's do at a 10 s interval) rewrites one page per reading: the
figures with history are the ones a running monitor sees.

Since schema version 3 a poll's readings wait in the ``recent`` table and are moved into
``readings`` in bulk every MOVE_EVERY_S (store.recent); the timed figures include those
moves, as many as the polls' times call for (the default is one move's worth: MOVE_EVERY_S
of polls of every device).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pue_monitor.collectors.sink import FLUSH_BATCH  # noqa: E402
from pue_monitor.store.model import PollResult, Reading  # noqa: E402
from pue_monitor.store.recent import MOVE_EVERY_S  # noqa: E402
from pue_monitor.store.sqlite import Store  # noqa: E402

METRICS = [("active_power_w", ()), ("active_energy_kwh", ()), ("frequency_hz", ()),
           ("load_pct", ())]
METRICS += [(m, (("line", str(n)),)) for m in ("voltage_v", "current_a") for n in (1, 2, 3)]


INTERVAL_S = 10.0  # between two polls of a device


def polls(n: int, devices: int, t0: float) -> list[PollResult]:
    out = []
    for i in range(n):
        device, ts = f"pdu-{i % devices:05d}", t0 + INTERVAL_S * (i // devices)
        readings = tuple(Reading(ts, device, m, 100.0 + k, labels)
                         for k, (m, labels) in enumerate(METRICS))
        out.append(PollResult(device, "site-000", ts, 0.004, readings))
    return out


def written() -> int | None:
    """Bytes this process has written to files so far (Linux), else None."""
    try:
        with open("/proc/self/io", encoding="ascii") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("wchar:"))
    except (OSError, StopIteration):
        return None


def move_polls(devices: int) -> int:
    """The polls of ``devices`` devices between two moves of the store (MOVE_EVERY_S)."""
    return max(1, round(devices * MOVE_EVERY_S / INTERVAL_S))


def checkpoint(path: Path) -> None:
    """Copy the WAL into the database file and empty it, so that the timed part does not
    pay for writing the history in (benchmark only: the monitor never does)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def run(batch: int, n: int, devices: int, history: int = 0
        ) -> tuple[float, float, float, float | None]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp))
        try:
            untimed = devices * (1 + history)  # first rows of every device, its history
            results = polls(n + untimed - devices, devices, 1_760_000_000.0)
            for i in range(0, untimed, 5000):
                store.write_polls(results[i:min(i + 5000, untimed)])
            store.move_recent()
            checkpoint(store.path)  # the timed part does not pay for writing the history
            timed = results[untimed:]
            # The store moves its recent readings every MOVE_EVERY_S: every that many
            # polls of every device here (the loop runs faster than the polls would
            # come), and the rest at the end, both timed.
            move_every = move_polls(devices)
            t0, c0, w0 = time.perf_counter(), time.process_time(), written()
            for i in range(0, len(timed), batch):
                store.write_polls(timed[i:i + batch])
                if (i + batch) // move_every > i // move_every:
                    store.move_recent()
            store.move_recent()
            wall, cpu, w1 = time.perf_counter() - t0, time.process_time() - c0, written()
        finally:
            store.close()
    rows = len(timed) * len(METRICS)
    per_row = None if w0 is None or w1 is None else (w1 - w0) / rows
    return 1e6 * cpu / rows, 1e6 * wall / rows, 1e6 * cpu / len(timed), per_row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int,
                        help="timed polls (default: MOVE_EVERY_S of polls of every device)")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--history", type=int, nargs="+", default=[0, 100],
                        help="polls of every device stored before the timed ones")
    args = parser.parse_args()
    if args.polls is None:
        args.polls = move_polls(args.devices)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.polls} polls "
          f"of {len(METRICS)} readings, {args.devices} devices; the sink flushes up to "
          f"{FLUSH_BATCH} polls (or every 0.5 s)\n")
    for history in args.history:
        print(f"\nthe store holding {history} polls of every device before the timed ones:")
        print(f"{'polls per transaction':>22} {'CPU µs/reading':>15} {'wall µs/reading':>16} "
              f"{'CPU µs/poll':>12} {'written B/reading':>18}")
        for batch in (1, 10, 100, FLUSH_BATCH, 2000):
            cpu_row, wall_row, cpu_poll, bytes_row = run(batch, args.polls + args.devices,
                                                         args.devices, history)
            wrote = "?" if bytes_row is None else f"{bytes_row:,.0f}"
            print(f"{batch:>22} {cpu_row:>15.1f} {wall_row:>16.1f} {cpu_poll:>12.0f} "
                  f"{wrote:>18}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
