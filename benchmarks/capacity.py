"""Collection capacity: how many SNMP devices one monitor process keeps on schedule
(a benchmark, not a test).

Run: ``.venv/bin/python benchmarks/capacity.py [--devices 500 1000] [--seconds 30]``

For each N, a fresh Python process runs the monitor's collector service (the pollers, the
in-flight limit, the store sink writing to SQLite; not the web server) for N devices at a
10 s interval against net-snmp ``snmpd`` agents on 127.0.0.1 (each agent listens on many
ports, every device has its own port-and-agent pair of 10 scalar OIDs). It reports:

* polls due (the devices' slots inside the measured window) against polls stored (results
  with readings whose store transaction committed), and those started late (after their
  slot by more than the tolerance of collectors/schedule.py);
* the mean time per poll (from sending to the decoded result, retries included);
* the monitor process's CPU share (``time.process_time`` over wall time: the agents are
  other processes and are not counted), the system (kernel) time within it ("sys %": on
  127.0.0.1 sending a datagram runs its delivery to the agent and the agent's wake-up),
  and its memory (resident set at the end, peak);
* answers the kernel dropped on the monitor's SNMP socket (/proc/net/udp "drops"), and the
  machine-wide UDP ``RcvbufErrors`` rise (other programs on the machine count there too);
* what the process wrote to files per second (``/proc/self/io`` ``wchar``: the store's
  WAL and checkpoints), the disk's wear.

The store starts with ``--history`` polls of every device already in it (default 100,
16 minutes at 10 s; written before the run, not timed; with the integer series ids a
series needs a few hundred polls before its newest readings fill a page of their own,
so use `--history 400` for that steady state): in a store that has run a while
each series' newest readings sit on an index page of their own, so a reading costs more
CPU and more bytes written than in an empty store, as in production. ``--history 0``
measures an empty store.

The first interval is warm-up (sockets open, every device's first slot comes round); the
window is the ``--seconds`` after it. The readings still waiting in the store's ``recent``
table at its end are moved and counted (store.recent): a move brings fewer readings per
series than a whole one, so it costs more per reading. With history, ``--seconds 230``
(240 s with the warm-up: two moves' worth) measures the steady state, every move the
window pays for a whole one (the second at its end, or forced just after it); with 30 s
the window pays for a move of 40 s of readings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.store_writes import checkpoint, written  # noqa: E402
from pue_monitor.collectors.schedule import slot_at_or_after  # noqa: E402
from pue_monitor.collectors.service import CollectorService  # noqa: E402
from pue_monitor.config import load_config_text  # noqa: E402
from pue_monitor.store.model import PollResult, Reading  # noqa: E402
from pue_monitor.store.sqlite import Store  # noqa: E402

INTERVAL_S = 10.0
# net-snmp 5.9 answers on at most 128 of the addresses one snmpd is given (the rest stay
# silent): 100 each, and as many agents as needed.
PORTS_PER_AGENT = 100
BASE = "1.3.6.1.4.1.99999"
COMMUNITY = "bench"
DEVICES_PER_SITE = 50
# Slots this close to the end of the window are not judged: their polls may still be
# starting when it closes.
GRACE_S = 2.0
# (metric, labels, value served) of the 10 scalars every device answers.
POINTS = [("active_power_w", {}, 4200), ("active_energy_kwh", {}, 123456),
          ("frequency_hz", {}, 500), ("load_pct", {}, 42)]
POINTS += [("voltage_v", {"line": str(n)}, 230) for n in (1, 2, 3)]
POINTS += [("current_a", {"line": str(n)}, 61) for n in (1, 2, 3)]
PROFILE = """\
# Benchmark device: 10 scalars under a private test arc, served by snmpd `override`s.
name: capacity_bench
protocol: snmp
description: capacity benchmark device
source: "benchmarks/capacity.py (synthetic)"
snmp_points:
{points}
"""


def free_ports(n: int) -> list[int]:
    import socket
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def start_agent(snmpd: str, work: Path, index: int, ports: list[int]) -> subprocess.Popen:
    folder = work / f"agent{index}"
    (folder / "persist").mkdir(parents=True)
    lines = ["agentAddress " + ",".join(f"udp:127.0.0.1:{p}" for p in ports),
             f"rocommunity {COMMUNITY} 127.0.0.1"]
    lines += [f"override .{BASE}.1.{i}.0 integer {value}"
              for i, (_m, _l, value) in enumerate(POINTS, 1)]
    (folder / "snmpd.conf").write_text("\n".join(lines) + "\n")
    log = folder / "log"
    log.touch()
    proc = subprocess.Popen(
        [snmpd, "-f", "-C", "-c", str(folder / "snmpd.conf"), "-Lf", str(log),
         f"--persistentDir={folder / 'persist'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "SNMP_PERSISTENT_DIR": str(folder / "persist"), "MIBS": ""})
    deadline = time.monotonic() + 30
    while "NET-SNMP version" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc


def config_text(ports: list[int], profiles_dir: Path, max_in_flight: int) -> str:
    lines = [f"polling: {{interval_s: {INTERVAL_S}, timeout_s: 2, retries: 1}}",
             f"collection: {{max_in_flight: {max_in_flight}}}",
             f"profiles_dir: {json.dumps(str(profiles_dir))}", "sites:"]
    for n, port in enumerate(ports):
        if n % DEVICES_PER_SITE == 0:
            site = n // DEVICES_PER_SITE
            lines += [f"  - id: site-{site:03d}", f"    name: {{vi: s{site}, en: s{site}}}",
                      "    devices:"]
        role = {0: "facility", 1: "it"}.get(n % DEVICES_PER_SITE, "monitor")
        extra = ", measurement_point: pdu_output" if role == "it" else ""
        lines.append(f"      - {{id: pdu-{n:05d}, profile: capacity_bench, role: {role}{extra},"
                     f" snmp: {{host: 127.0.0.1, port: {port}, community: {COMMUNITY}}}}}")
    return "\n".join(lines) + "\n"


def rcvbuf_errors() -> int:
    """Machine-wide UDP RcvbufErrors (/proc/net/snmp)."""
    rows = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
            if line.startswith("Udp:")]
    return int(dict(zip(rows[0], rows[1]))["RcvbufErrors"])


def fill_history(store: Store, devices: int, polls: int, now: float) -> float:
    """``polls`` polls of each of ``devices`` devices, 10 s apart and ending before
    ``now``, written as the sink writes them (batches of many polls); seconds taken."""
    began = time.perf_counter()
    readings = [(m, tuple(sorted(labels.items())), float(v)) for m, labels, v in POINTS]
    batch: list[PollResult] = []
    for k in range(polls):
        ts = now - (polls - k) * INTERVAL_S
        for n in range(devices):
            device = f"pdu-{n:05d}"
            batch.append(PollResult(device, f"site-{n // DEVICES_PER_SITE:03d}", ts, 0.003,
                                    tuple(Reading.made(ts, device, m, v, labels)
                                          for m, labels, v in readings)))
            if len(batch) >= 5000:
                store.write_polls(batch)
                batch.clear()
    if batch:
        store.write_polls(batch)
    store.move_recent()  # the history in readings, none of it waiting (store.recent)
    checkpoint(store.path)
    return time.perf_counter() - began


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(config, store, seconds: float) -> dict:
    seen: list[tuple[str, float, bool]] = []  # (device, wall-clock start, stored with readings)
    service = CollectorService(config, store, destinations=[
        lambda r: seen.append((r.device, r.started, bool(r.ok and r.readings)))])
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await asyncio.sleep(INTERVAL_S)  # warm-up: one whole interval
    s0, mono0, cpu0, wall0 = service.stats.snapshot(), time.monotonic(), time.process_time(), \
        time.perf_counter()
    times0 = os.times()  # user and system time apart (process_time is both)
    errors0, written0 = rcvbuf_errors(), written()
    await asyncio.sleep(seconds)
    mono1 = time.monotonic()
    wall = time.perf_counter() - wall0
    # The readings still waiting in the store's recent table are moved now and their move
    # counted (CPU and bytes, not wall time): the window then pays for moving all it wrote.
    # (Readings of the warm-up waiting at the start are in it too: a little more, never
    # less.)
    moved_s = time.perf_counter()
    store.move_recent()
    moved_s = time.perf_counter() - moved_s
    cpu = time.process_time() - cpu0
    written1 = written()
    system = os.times().system - times0.system
    live = service.stats.snapshot()  # while the SNMP socket is open: its buffer and drops
    stop.set()
    await asyncio.wait_for(task, 60)
    s1 = service.stats.snapshot()
    # Judged slot by slot: the slots in (mono0, mono1 - GRACE] are due; each stored result
    # belongs to the last slot of its device at or before its start (on the monotonic
    # clock, from the wall-clock start it carries), on time if within the tolerance.
    offset = time.time() - time.monotonic()
    schedules = {p.device.id: p.schedule for p in service.pollers}
    end = mono1 - GRACE_S
    due = 0
    for sch in schedules.values():
        first = slot_at_or_after(mono0, sch.interval_s, sch.phase_s)
        due += int((end - first) // sch.interval_s) + 1 if first <= end else 0
    stored: set[tuple[str, float]] = set()
    on_time = 0
    for device, started, ok in seen:
        sch = schedules[device]
        start = started - offset
        slot = slot_at_or_after(start + 1e-3, sch.interval_s, sch.phase_s) - sch.interval_s
        if ok and mono0 < slot <= end and (device, slot) not in stored:
            stored.add((device, slot))
            on_time += not sch.is_late(slot, start)
    return {
        "devices": len(service.pollers), "seconds": round(wall, 1), "due": due,
        "stored": len(stored), "on_time": on_time,
        "late": s1.total.late - s0.total.late, "skipped": s1.total.skipped - s0.total.skipped,
        "retries": s1.total.retries - s0.total.retries,
        "polls": s1.total.polls - s0.total.polls, "answers": s1.total.answers - s0.total.answers,
        "poll_ms": 1000 * (s1.total.duration_sum_s - s0.total.duration_sum_s)
        / max(1, s1.total.duration_count - s0.total.duration_count),
        "cpu_share": cpu / wall, "system_share": system / wall, "rss_mib": rss_mib(),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "socket_drops": live.receive_drops, "rcvbuf_errors": rcvbuf_errors() - errors0,
        "receive_buffers": list(live.receive_buffers), "limit": s1.in_flight_limit,
        "load": os.getloadavg()[0], "fd_limit": service.fd_limit, "final_move_s": moved_s,
        "write_mib_s": None if written0 is None or written1 is None
        else (written1 - written0) / wall / 2**20,
    }


def measure_into(config, data_dir: Path, seconds: float, history: int = 0) -> dict:
    """``measure`` with a fresh SQLite store in ``data_dir`` holding ``history`` polls of
    every device, closed afterwards."""
    store = Store.open(data_dir)
    try:
        devices = sum(len(site.devices) for site in config.sites)
        fill_s = fill_history(store, devices, history, time.time()) if history else 0.0
        return {**asyncio.run(measure(config, store, seconds)), "history": history,
                "fill_s": fill_s}
    finally:
        store.close()


def one(n: int, seconds: float, max_in_flight: int, history: int = 0) -> dict:
    snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "profiles").mkdir()
        points = "\n".join(
            f"  - {{metric: {m}, oid: {BASE}.1.{i}.0"
            + (f", labels: {json.dumps(labels)}" if labels else "")
            + (", scale: 0.1" if m in ("frequency_hz", "current_a", "active_energy_kwh") else "")
            + "}" for i, (m, labels, _v) in enumerate(POINTS, 1))
        (work / "profiles" / "capacity_bench.yaml").write_text(PROFILE.format(points=points))
        ports = free_ports(n)
        agents = [start_agent(snmpd, work, a, ports[i:i + PORTS_PER_AGENT])
                  for a, i in enumerate(range(0, n, PORTS_PER_AGENT))]
        try:
            config = load_config_text(config_text(ports, work / "profiles", max_in_flight),
                                      env={})
            return measure_into(config, work / "data", seconds, history)
        finally:
            for proc in agents:
                proc.terminate()
                proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per N")
    parser.add_argument("--max-in-flight", type=int, default=128)
    parser.add_argument("--history", type=int, default=100,
                        help="polls of every device in the store before the run")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.seconds, args.max_in_flight, args.history)))
        return 0
    if not (shutil.which("snmpd") or Path("/usr/sbin/snmpd").exists()):
        print("snmpd (Debian package snmpd) is needed as the agent", file=sys.stderr)
        return 2
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; interval "
          f"{INTERVAL_S:g} s, {args.seconds:g} s measured after one interval of warm-up, "
          f"at most {args.max_in_flight} polls in flight; the store holds {args.history} "
          "polls of every device before the run\n")
    print(HEADER)
    for n in args.devices:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--seconds",
                              str(args.seconds), "--max-in-flight", str(args.max_in_flight),
                              "--history", str(args.history)],
                             capture_output=True, text=True,
                             timeout=args.seconds + 300 + n * args.history / 2000)
        if out.returncode != 0:
            print(f"{n:>7} failed: {out.stderr.strip()[-500:]}")
            continue
        print_row(n, json.loads(out.stdout.strip().splitlines()[-1]))
    return 0


HEADER = (f"{'devices':>7} {'due':>6} {'stored':>6} {'stored %':>8} {'on time %':>9} "
          f"{'late':>5} {'skipped':>7} {'retries':>7} {'CPU %':>6} {'sys %':>6} {'RSS MiB':>7} "
          f"{'peak MiB':>8} {'poll ms':>7} {'drops':>5} {'RcvbufErr':>9} {'write MiB/s':>11} "
          f"{'load':>5} {'move s':>6}")


def print_row(n: int, r: dict) -> None:
    """One line of the table: a run's figures, and the machine's load average then."""
    due = max(1, r["due"])
    drops = "?" if r["socket_drops"] is None else r["socket_drops"]
    print(f"{n:>7} {r['due']:>6} {r['stored']:>6} {100 * r['stored'] / due:>7.2f}% "
          f"{100 * r['on_time'] / due:>8.2f}% {r['late']:>5} {r['skipped']:>7} "
          f"{r['retries']:>7} {100 * r['cpu_share']:>5.1f}% "
          f"{100 * r.get('system_share', float('nan')):>5.1f}% {r['rss_mib']:>7.0f} "
          f"{r['peak_rss_mib']:>8.0f} {r['poll_ms']:>7.1f} {drops:>5} "
          f"{r['rcvbuf_errors']:>9} {_rate(r.get('write_mib_s')):>11} {r['load']:>5.1f} "
          f"{r.get('final_move_s', float('nan')):>6.2f}",
          flush=True)


def _rate(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
