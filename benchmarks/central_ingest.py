"""How many readings per second one central process accepts and stores (issue 14's
target: >= 50,000 readings/s on PostgreSQL, batches of 5,000).

One `pue-monitor central` process (its web server, ingest and store, in this process)
on 127.0.0.1; ``--clients`` edges POST gzip line protocol to /api/v2/write as the edge's
writer does, each batch ``--batch`` readings of 100 meters of 10 sites (counter and
power, one poll a minute), each batch answered 204 before the next. Every reading is new
(the dedupe check still runs for each).

    python benchmarks/central_ingest.py [--store-url postgresql://... | --postgres]
                                        [--batch 5000] [--batches 40] [--clients 1]

``--postgres`` starts a throwaway PostgreSQL server as the tests do (tests/pg_server.py).
Prints figures; asserts nothing (speed is measured here, never in the test suite).

Besides the wall clock it prints the CPU time spent per batch by this process (the
central, and the posting threads: a small share) and, with ``--postgres``, by the
server's processes (read from /proc): on a shared machine the wall clock depends on
the others' load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pue_monitor.central.service import build  # noqa: E402
from pue_monitor.central.tokens import token_hash  # noqa: E402
from pue_monitor.config import load_config_text  # noqa: E402
from pue_monitor.exchange.influx import reading_lines  # noqa: E402
from pue_monitor.store.model import PollResult, Reading  # noqa: E402
from pue_monitor.web.server import WebServer  # noqa: E402

T0 = 1_735_664_400.0  # 2025-01-01 00:00 in Hà Nội
SITES, METERS_PER_SITE = 10, 10
TOKEN = "benchmark-token"
# Each client's backlog starts this many minutes after the previous one's (about 69
# days: far more than its batches cover, and still in the past for a few clients).
CLIENT_MINUTES = 100_000
CONFIG = """
web: {{login: false}}
sites: []
ingest:
  max_body_bytes: 67108864
  data_centers:
    - {{id: dc, name: {{vi: DC, en: DC}}, sites: [{sites}]}}
"""


def bodies(size: int, count: int, client: int, live: bool = False) -> list[bytes]:
    """``count`` gzip bodies of ``size`` readings each; client ``client``'s own minutes.
    ``live``: as a live province sends them: size / 2 meters each polled once per batch,
    a second apart, ending now (no block closed under them yet)."""
    per_site = size // 2 // SITES if live else METERS_PER_SITE
    if per_site < 1:
        raise SystemExit(f"--live needs --batch of at least {2 * SITES}")
    meters = [(f"site-{s:02d}", f"c{client}-s{s:02d}-m{m:03d}") for s in range(SITES)
              for m in range(per_site)]
    out, lines, minute = [], [], client * CLIENT_MINUTES
    while len(out) < count:
        t = (time.time() - count + len(out)) if live else T0 + minute * 60.0
        for site, meter in meters:
            result = PollResult(meter, site, t, 0.05, (
                Reading(t, meter, "active_energy_kwh", 1000.0 + minute * 0.5),
                Reading(t, meter, "active_power_w", 30_000.0 + minute % 17)))
            lines += reading_lines(result, {meter: "facility"})
            if len(lines) >= size:
                out.append(gzip.compress("\n".join(lines[:size]).encode(), 5))
                lines = lines[size:]
        minute += 1
    return out[:count]


def post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Authorization": f"Token {TOKEN}", "Content-Encoding": "gzip",
        "X-Pue-Edge-Time": f"{time.time():.3f}"})
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 (loopback)
        if answer.status != 204:
            raise RuntimeError(f"HTTP {answer.status}")


def _readings_bytes(url: str | None, folder: Path) -> int:
    """Bytes the readings take: their partitions and indexes (PostgreSQL), or the whole
    store file (SQLite, which also holds the blocks: none here)."""
    if url is None:
        return sum(p.stat().st_size for p in folder.glob("pue-monitor.sqlite3*"))
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT COALESCE(sum(pg_total_relation_size(inhrelid)), 0) "
                                "FROM pg_inherits WHERE inhparent = 'readings'::regclass"
                                ).fetchone()[0])


def _cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) of a process and its children now running (a
    PostgreSQL server: the postmaster and its backends), from /proc; 0 without one."""
    if pid is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-url", help="PostgreSQL (postgresql://...); else SQLite")
    parser.add_argument("--postgres", action="store_true",
                        help="start a throwaway PostgreSQL server (tests/pg_server.py)")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=40, help="per client")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--live", action="store_true",
                        help="readings of now, as a live province sends them (default: a "
                        "backlog of 2025, every block closed)")
    args = parser.parse_args()
    server = None
    url = args.store_url
    if args.postgres:
        from tests.pg_server import PgServer
        server = PgServer()
        url = server.url(server.create())
    text = CONFIG.format(sites=", ".join(f"site-{s:02d}" for s in range(SITES)))
    if url:
        text += f"store: {{url: '{url}', pool_max: {max(4, args.clients + 2)}}}\n"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = load_config_text(text, env={})
            store, _central, app = build(config, Path(tmp))
            store.add_central_token(token_hash(TOKEN), "dc", "bench", time.time())
            web = WebServer(app, "127.0.0.1", 0)
            web.start()
            target = f"http://127.0.0.1:{web.port}/api/v2/write?precision=ns"
            work = [bodies(args.batch, args.batches, c, args.live)
                    for c in range(args.clients)]
            # warm-up: partitions, pool, first statements, each meter's first readings
            for w in work:
                post(target, w.pop(0))
                post(target, w.pop(0))
            pg_pid = server.proc.pid if server is not None else None
            pg_cpu, own_cpu = _cpu_s(pg_pid), time.process_time()
            started = time.perf_counter()
            threads = [threading.Thread(target=lambda w=w: [post(target, b) for b in w])
                       for w in work]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            own_cpu, pg_cpu = time.process_time() - own_cpu, _cpu_s(pg_pid) - pg_cpu
            sent = sum(len(w) for w in work) * args.batch
            print(f"backend {'postgresql' if url else 'sqlite'}, {args.clients} client(s), "
                  f"{'live' if args.live else 'backlog'}, "
                  f"batches of {args.batch}: {sent} readings in {elapsed:.1f} s = "
                  f"{sent / elapsed:,.0f} readings/s "
                  f"({elapsed / (sent / args.batch) * 1000:.0f} ms per batch)")
            batches = sent / args.batch
            print(f"CPU per batch: central process {own_cpu / batches * 1000:.0f} ms"
                  + (f", PostgreSQL {pg_cpu / batches * 1000:.0f} ms" if pg_pid else ""))
            print(f"load average during the run: {os.getloadavg()[0]:.1f} (1 min), "
                  f"{os.cpu_count()} cores")
            web.stop()
            store.close()
            stored = sent + 2 * args.clients * args.batch  # and the warm-up batches
            size = _readings_bytes(url, Path(tmp))
            if size:
                print(f"readings stored: {stored}, {size / stored:.0f} bytes each on disk "
                      "(table and indexes)")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
