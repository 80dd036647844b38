"""SNMP collection speed: device-polls per second per core and client CPU per poll
(a benchmark, not a test).

Run: ``.venv/bin/python benchmarks/snmp_poll.py [--seconds 5] [--devices 128]``

The agents are net-snmp's ``snmpd`` (Debian package snmpd) on 127.0.0.1, in their own
processes: the Python simulators spend ~1.7 ms per answer and would measure themselves.
CPU is the polling process's own (``time.process_time``; ``clock()`` in C; the exporter's
/proc utime+stime), so the agents' cost is never counted. Scenarios:

* ``10-OID GET`` (v2c), ``25-row walk`` (v2c GETBULK of one 25-row column), ``4x25 walk``
  (four columns of one table, 25 rows each) and ``10-OID GET v3`` (authPriv SHA-256 +
  AES-128) through each of the monitor's SNMP engines, ``fast`` (GufoClient, gufo-snmp)
  and ``reference`` (PysnmpClient, pysnmp), with ``--devices`` clients and at most
  ``--inflight`` requests in flight;
* ``whole poll``: the monitor's whole path for 10 OIDs with each engine: DevicePoller
  (plan, request, decode) into the StoreSink, written to a real sqlite store;
* ``net-snmp (C)``: a few lines of C against libnetsnmp (Debian libsnmp-dev), built here
  with cc, sequential synchronous GETs of the same 10 OIDs;
* ``snmp_exporter``: Prometheus snmp_exporter (Debian prometheus-snmp-exporter) scraped
  for the same 10 OIDs, its process's CPU per scrape;
* a cProfile of the 10-OID GET run of each engine, by package, to show where the time goes;
* ``corpus walks`` (when snmpsim, a test extra, is installed): one poll of every capture of
  tests/corpus with its profile, requests and client CPU per poll with each engine: gufo-snmp
  asks one OID per GETBULK, so its walks take one walk per table, not all columns at once.

A missing tool skips its scenario with a note. Whole run: two to five minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pue_monitor.collectors.gc_tuning import polling_gc  # noqa: E402
from pue_monitor.collectors.poller import DevicePoller  # noqa: E402
from pue_monitor.collectors.sink import StoreSink  # noqa: E402
from pue_monitor.collectors.snmp_client import PysnmpClient  # noqa: E402
from pue_monitor.collectors.snmp_gufo import GufoClient  # noqa: E402
from pue_monitor.config.model import Device, Polling, SnmpTarget  # noqa: E402
from pue_monitor.config.profiles import parse_profile  # noqa: E402
from pue_monitor.store.sqlite import Store  # noqa: E402

BASE = "1.3.6.1.4.1.99999"
SCALARS = [f"{BASE}.1.{i}.0" for i in range(1, 11)]
COLUMN = f"{BASE}.2.1.2"
COLUMNS = [f"{BASE}.2.1.{c}" for c in (2, 3, 4, 5)]  # four columns of one table entry
ROWS = 25
ENGINES = {"fast": GufoClient, "reference": PysnmpClient}
COMMUNITY, USER, AUTH_KEY, PRIV_KEY = "bench", "bench", "bench-auth-key", "bench-priv-key"
AGENTS = 2  # snmpd is single-threaded: two keep the client, not the agent, the bottleneck
TIMEOUT_S = 5.0

C_SOURCE = r"""
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    int n = atoi(argv[2]), ok = 0;
    netsnmp_session s, *ss;
    init_snmp("bench");
    snmp_sess_init(&s);
    s.peername = argv[1];
    s.version = SNMP_VERSION_2c;
    s.community = (u_char *)"bench";
    s.community_len = 5;
    ss = snmp_open(&s);
    if (!ss) return 2;
    clock_t c0 = clock();
    for (int k = 0; k < n; k++) {
        netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET), *resp = NULL;
        for (int i = 1; i <= 10; i++) {
            oid name[MAX_OID_LEN]; size_t len = MAX_OID_LEN; char text[64];
            snprintf(text, sizeof text, ".1.3.6.1.4.1.99999.1.%d.0", i);
            read_objid(text, name, &len);
            snmp_add_null_var(pdu, name, len);
        }
        if (snmp_synch_response(ss, pdu, &resp) == STAT_SUCCESS && resp->errstat == 0) ok++;
        if (resp) snmp_free_pdu(resp);
    }
    printf("%d %f\n", ok, (double)(clock() - c0) / CLOCKS_PER_SEC);
    return 0;
}
"""

# snmp_exporter 0.21 (Debian bookworm): modules at the top level, auth inside them.
EXPORTER_CONFIG = """\
bench:
  version: 2
  auth: {{community: {community}}}
  timeout: 5s
  get: [{oids}]
  metrics:
{metrics}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_agent(snmpd: str, work: Path, index: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    folder = work / f"agent{index}"
    (folder / "persist").mkdir(parents=True)
    lines = [f"agentAddress udp:127.0.0.1:{port}", f"rocommunity {COMMUNITY} 127.0.0.1",
             f'createUser {USER} SHA-256 "{AUTH_KEY}" AES "{PRIV_KEY}"', f"rouser {USER} priv"]
    lines += [f"override .{oid} integer {1000 + i}" for i, oid in enumerate(SCALARS)]
    lines += [f"override .{column}.{row} integer {row * 10}" for column in COLUMNS
              for row in range(1, ROWS + 1)]
    (folder / "snmpd.conf").write_text("\n".join(lines) + "\n")
    log = folder / "log"
    log.touch()
    proc = subprocess.Popen(
        [snmpd, "-f", "-C", "-c", str(folder / "snmpd.conf"), "-Lf", str(log),
         f"--persistentDir={folder / 'persist'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SNMP_PERSISTENT_DIR": str(folder / "persist"), "MIBS": ""})
    deadline = time.monotonic() + 15
    while "NET-SNMP version" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, port


def client_for(port: int, v3: bool, engine: str) -> GufoClient | PysnmpClient:
    cls = ENGINES[engine]
    if v3:
        return cls("127.0.0.1", port, version="3", timeout_s=TIMEOUT_S, retries=1,
                   user=USER, auth_protocol="sha256", auth_key=AUTH_KEY,
                   priv_protocol="aes128", priv_key=PRIV_KEY)
    return cls("127.0.0.1", port, COMMUNITY, "2c", timeout_s=TIMEOUT_S, retries=1)


async def drive(make_call, devices: int, inflight: int, seconds: float,
                clients: list | None = None) -> dict:
    """Poll `devices` round-robin with at most `inflight` outstanding, for `seconds`."""
    calls = [make_call(i) for i in range(devices)]
    for call in calls:  # open sockets, discover v3 engine ids: not part of the figure
        await call()
    sent0 = sum(c.requests for c in clients or [])
    done = failed = 0
    gate = asyncio.Semaphore(inflight)
    stop_at = time.monotonic() + seconds
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def worker(call) -> None:
        nonlocal done, failed
        while time.monotonic() < stop_at:
            async with gate:
                try:
                    await call()
                    done += 1
                except Exception:  # noqa: BLE001 - counted: a benchmark must finish
                    failed += 1
    await asyncio.gather(*(worker(c) for c in calls))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    sent = sum(c.requests for c in clients or []) - sent0
    return {"polls": done, "failed": failed, "cpu": cpu, "wall": wall,
            "requests": sent / max(1, done + failed) if clients else None}


def report(name: str, r: dict) -> float:
    per_poll_ms = 1000 * r["cpu"] / max(1, r["polls"])
    requests = "" if r.get("requests") is None else f"{r['requests']:.1f}"
    print(f"{name:<34} {r['polls'] / max(r['cpu'], 1e-9):>10,.0f} {per_poll_ms:>10.3f} "
          f"{r['polls'] / r['wall']:>10,.0f} {r['failed']:>7} {requests:>9}")
    return per_poll_ms


def bench_profile() -> object:
    points = "\n".join(f"  - {{metric: voltage_v, oid: {oid}, labels: {{line: '{i}'}}}}"
                       for i, oid in enumerate(SCALARS, 1))
    import yaml
    text = f"name: bench\nprotocol: snmp\ndescription: b\nsource: b\nsnmp_points:\n{points}\n"
    profile, issues = parse_profile(yaml.safe_load(text), "bench")
    assert profile is not None, issues
    return profile


async def ours(ports: list[int], args, profilers: dict[str, cProfile.Profile]
               ) -> dict[tuple[str, str], float]:
    figures = {}
    scenarios = [("10-OID GET", False, lambda c: (lambda: c.get(SCALARS))),
                 ("25-row walk", False, lambda c: (lambda: c.walk([COLUMN], ROWS))),
                 ("4x25 walk", False, lambda c: (lambda: c.walk(COLUMNS, ROWS))),
                 ("10-OID GET v3", True, lambda c: (lambda: c.get(SCALARS)))]
    for name, v3, call_of in scenarios:
        if args.whole_only:
            break
        for engine in ENGINES:
            clients = [client_for(ports[i % len(ports)], v3, engine)
                       for i in range(args.devices)]
            try:
                result = await drive(lambda i, cl=clients, co=call_of: co(cl[i]), args.devices,
                                     args.inflight, args.seconds, clients)
                if name == "10-OID GET":
                    # A separate, shorter run: the profiler's own cost must not reach the
                    # figures.
                    profilers[engine].enable()
                    await drive(lambda i, cl=clients, co=call_of: co(cl[i]), args.devices,
                                args.inflight, min(2.0, args.seconds))
                    profilers[engine].disable()
            finally:
                for c in clients:
                    c.close()
            figures[(name, engine)] = report(f"{name} [{engine}]", result)
    profile = bench_profile()
    polling = Polling(interval_s=60, timeout_s=TIMEOUT_S, retries=0)
    for engine in ENGINES:
        with tempfile.TemporaryDirectory() as data:
            store = Store.open(data)
            # No backlog limit: polls come faster here than in any deployment, and a
            # dropped result would leave its write out of the CPU per poll.
            sink = StoreSink(store, max_backlog=10**9)
            pollers = []
            for i in range(args.devices):
                target = SnmpTarget(host="127.0.0.1", port=ports[i % len(ports)],
                                    community=COMMUNITY)
                device = Device(id=f"d{i}", profile="bench", snmp=target)
                # One set of counters for all, as in the service; drive()'s gate stands
                # for the service's in-flight limiter.
                pollers.append(DevicePoller("s", device, profile, polling,
                                            client_for(target.port, False, engine), sink,
                                            stats=sink.stats))
            stop = asyncio.Event()
            writer = asyncio.create_task(sink.run(stop))
            try:
                # What the service does for each due slot (DevicePoller.poll_slot: poll,
                # count, note, hand to the sink), not poll_once alone, which stores
                # nothing. The store's writes (a worker thread) count: process_time covers
                # threads.
                stored0 = sink.stats.stored
                with polling_gc():  # as run_pollers polls
                    result = await drive(lambda i, ps=pollers: (lambda p=ps[i]: p.poll_slot(
                                             p.monotonic())), args.devices, args.inflight,
                                         args.seconds, [p.client for p in pollers])
                cpu0 = time.process_time()
                stop.set()
                await writer
                # The readings waiting in the store's recent table moved into readings,
                # as the store does when due (store.recent): part of their cost.
                store.move_recent()
                result["cpu"] += time.process_time() - cpu0  # the last batch, the move
                # Every poll of the warm-up and the measured run must have been stored.
                stored = sink.stats.stored - stored0
                if stored != result["polls"] + result["failed"] + args.devices:
                    print(f"whole poll [{engine}]: {stored} results stored for "
                          f"{result['polls'] + result['failed'] + args.devices} polls")
            finally:
                for p in pollers:
                    p.client.close()
                store.close()
        figures[("whole poll", engine)] = report(f"whole poll, 10 OIDs [{engine}]", result)
    return figures


def corpus_walks() -> None:
    """Requests and client CPU per poll of every corpus capture, with each engine."""
    try:
        from pue_monitor.collectors.snmp_plan import plan_for
        from pue_monitor.collectors.snmp_read import read_answers
        from pue_monitor.config.profiles import load_profiles
        from tests.snmp_support import captures, snmpsim, snmpsim_command
        from tests.test_snmp_corpus import PROFILE_OF
    except ImportError as exc:
        print(f"corpus walks skipped: {exc}")
        return
    if not snmpsim_command():
        print("corpus walks skipped: needs snmpsim (pip install -e '.[test]')")
        return
    profiles = load_profiles()
    print("\ncorpus: one poll of each capture (snmpsim), per poll:")
    print(f"{'capture':<22} {'walks':>5} {'requests fast':>13} {'reference':>9} "
          f"{'CPU ms fast':>11} {'reference':>9}")
    total = {e: [0.0, 0.0] for e in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        with snmpsim(Path(tmp)) as port:  # it runs its own event loop: not inside ours
            asyncio.run(_corpus_polls(port, captures(), PROFILE_OF, profiles, plan_for,
                                      read_answers, total))
    print(f"{'all captures':<22} {'':>5} {total['fast'][0]:>13.1f} "
          f"{total['reference'][0]:>9.1f} {total['fast'][1]:>11.2f} "
          f"{total['reference'][1]:>9.2f}")


async def _corpus_polls(port, names, profile_of, profiles, plan_for, read_answers,
                        total) -> None:
    polls = 5
    for capture in names:
        plan = plan_for(profiles[profile_of[capture]])
        row = {}
        for engine, cls in ENGINES.items():
            client = cls("127.0.0.1", port, capture, "2c", timeout_s=TIMEOUT_S, retries=1)

            def sent(c=client) -> int:
                # The fast client's empty answers asked again through pysnmp count too.
                reference = getattr(c, "_reference", None)
                return c.requests + (reference.requests if reference is not None else 0)
            try:
                await read_answers(client, plan)  # opens sockets, learns empty answers
                sent0, cpu0 = sent(), time.process_time()
                for _ in range(polls):
                    await read_answers(client, plan)
                cpu = (time.process_time() - cpu0) / polls
                row[engine] = ((sent() - sent0) / polls, 1000 * cpu)
            finally:
                client.close()
            total[engine][0] += row[engine][0]
            total[engine][1] += row[engine][1]
        print(f"{capture:<22} {len(plan.walks):>5} {row['fast'][0]:>13.1f} "
              f"{row['reference'][0]:>9.1f} {row['fast'][1]:>11.2f} "
              f"{row['reference'][1]:>9.2f}")


def net_snmp_c(port: int, work: Path, n: int) -> float | None:
    cc = shutil.which("cc")
    if cc is None or not Path("/usr/include/net-snmp/net-snmp-includes.h").exists():
        print(f"{'net-snmp (C)':<28} skipped: needs cc and libsnmp-dev")
        return None
    src, exe = work / "bench.c", work / "bench"
    src.write_text(C_SOURCE)
    built = subprocess.run([cc, "-O2", "-o", str(exe), str(src), "-lnetsnmp"],
                           capture_output=True, text=True)
    if built.returncode != 0:
        print(f"{'net-snmp (C)':<28} skipped: build failed: {built.stderr[:200]}")
        return None
    out = subprocess.run([str(exe), f"127.0.0.1:{port}", str(n)], capture_output=True,
                         text=True, env={**os.environ, "MIBS": "", "SNMPCONFPATH": str(work)},
                         timeout=60)
    ok, cpu = out.stdout.split()
    per_ms = 1000 * float(cpu) / max(1, int(ok))
    print(f"{'net-snmp (C) 10-OID GET':<28} {int(ok) / max(float(cpu), 1e-9):>10,.0f} "
          f"{per_ms:>10.3f} {'':>10} {n - int(ok):>7}")
    return per_ms


def snmp_exporter(port: int, work: Path, n: int) -> float | None:
    exe = shutil.which("prometheus-snmp-exporter") or shutil.which("snmp_exporter")
    if exe is None:
        print(f"{'snmp_exporter':<28} skipped: needs prometheus-snmp-exporter")
        return None
    metrics = "\n".join(f"    - {{name: v{i}, oid: {oid.removesuffix('.0')}, type: gauge}}"
                        for i, oid in enumerate(SCALARS))
    config = work / "snmp.yml"
    config.write_text(EXPORTER_CONFIG.format(community=COMMUNITY, metrics=metrics,
                                             oids=", ".join(SCALARS)))
    web = free_port()
    proc = subprocess.Popen([exe, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{web}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{web}/snmp?module=bench&target=127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                body = urllib.request.urlopen(url, timeout=5).read().decode()  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline:
                    print(f"{'snmp_exporter':<28} skipped: did not start")
                    return None
                time.sleep(0.1)
        if "v9 " not in body:
            print(f"{'snmp_exporter':<28} skipped: scrape lacks the values")
            return None

        def cpu() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        c0 = cpu()
        for _ in range(n):
            urllib.request.urlopen(url, timeout=5).read()  # noqa: S310
        used = cpu() - c0
    finally:
        proc.terminate()
        proc.wait(5)
    per_ms = 1000 * used / n
    print(f"{'snmp_exporter 10-OID scrape':<28} {n / max(used, 1e-9):>10,.0f} {per_ms:>10.3f} "
          f"{'':>10} {0:>7}")
    return per_ms


def where_time_goes(profiler: cProfile.Profile, engine: str) -> None:
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = {}
    for (path, _line, _fn), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        for key in ("pyasn1", "pysnmp", "gufo", "asyncio", "collectors"):
            if f"/{key}/" in path:
                break
        else:
            key = "other (stdlib, interpreter)"
        if key == "other (stdlib, interpreter)" and "builtins" in path and "Snmp" in _fn:
            key = "gufo"  # its Rust socket methods
        by_package[key] = by_package.get(key, 0.0) + tottime
    total = sum(by_package.values()) or 1.0
    print(f"\nwhere a 10-OID GET's client time goes [{engine}] (cProfile, own time by "
          "package):")
    for key, t in sorted(by_package.items(), key=lambda kv: -kv[1]):
        print(f"  {key:<30} {100 * t / total:5.1f} %")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario")
    parser.add_argument("--devices", type=int, default=128)
    parser.add_argument("--inflight", type=int, default=64)
    parser.add_argument("--compare", type=int, default=3000, help="polls for C and exporter")
    parser.add_argument("--no-corpus", action="store_true", help="skip the corpus walks")
    parser.add_argument("--whole-only", action="store_true",
                        help="only the whole poll path (with each engine) and the ratios")
    args = parser.parse_args()
    snmpd = shutil.which("snmpd") or ("/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None)
    if snmpd is None:
        print("snmpd (Debian package snmpd) is needed as the agent", file=sys.stderr)
        return 2
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        agents = [start_agent(snmpd, work, i) for i in range(AGENTS)]
        ports = [port for _p, port in agents]
        try:
            print(f"{os.cpu_count()} cores; {args.devices} devices on {AGENTS} snmpd agents, "
                  f"{args.inflight} requests in flight, {args.seconds:g} s per scenario\n")
            print(f"{'scenario':<34} {'polls/s/core':>10} {'CPU ms/poll':>10} "
                  f"{'polls/s':>10} {'failed':>7} {'req/poll':>9}")
            profilers = {engine: cProfile.Profile() for engine in ENGINES}
            figures = asyncio.run(ours(ports, args, profilers))
            c_ms = net_snmp_c(ports[0], work, args.compare)
            exporter_ms = snmp_exporter(ports[0], work, max(200, args.compare // 10))
            for engine, profiler in profilers.items():
                if not args.whole_only:
                    where_time_goes(profiler, engine)
            print("\nratios, client CPU per poll (lower is cheaper):")
            for scenario in ("10-OID GET", "25-row walk", "4x25 walk", "10-OID GET v3",
                             "whole poll"):
                if (scenario, "fast") not in figures:
                    continue
                fast, reference = figures[(scenario, "fast")], figures[(scenario, "reference")]
                print(f"  {scenario + ', fast / reference':<40} {fast / reference:8.3f} x")
            for engine in ENGINES:
                whole = figures[("whole poll", engine)]
                if c_ms:
                    print(f"  {f'whole poll [{engine}] / net-snmp C GET':<40} "
                          f"{whole / c_ms:8.1f} x")
                if exporter_ms:
                    print(f"  {f'whole poll [{engine}] / snmp_exporter':<40} "
                          f"{whole / exporter_ms:8.3f} x")
            budget = 10_000 / 30
            for engine in ENGINES:
                whole = figures[("whole poll", engine)]
                print(f"10,000 devices every 30 s = {budget:,.0f} polls/s [{engine}]: "
                      f"{budget * whole / 1000:.2f} of one core at {whole:.3f} ms per poll")
            if not (args.no_corpus or args.whole_only):
                corpus_walks()
        finally:
            for proc, _port in agents:
                proc.terminate()
                proc.wait(5)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
