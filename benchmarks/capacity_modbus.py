"""Collection capacity for Modbus TCP: gateways with several units each, against pymodbus
servers (a benchmark, not a test).

Run: ``.venv/bin/python benchmarks/capacity_modbus.py [--gateways 64] [--units 8]``

The devices are served by the project's simulator (``pue-monitor simulate``: one
pymodbus server per gateway port, a unit id per meter behind it) in its own process, so
the servers' CPU is not counted. The monitor's collector service runs in a fresh process
on the same configuration, one connection per gateway shared by its units, and is
measured exactly as benchmarks/capacity.py measures SNMP devices (one interval of
warm-up, then the window; the same columns).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from capacity import HEADER, INTERVAL_S, free_ports, measure_into, print_row  # noqa: E402

from pue_monitor.config import load_config_text  # noqa: E402
from pue_monitor.simulator.runner import READY_LINE  # noqa: E402

# A three-phase meter (energy, power, voltages, currents, frequency), in one block read.
PROFILE = "schneider_iem3xxx"
READY_TIMEOUT_S = 120.0


def config_text(ports: list[int], units: int, control_port: int, max_in_flight: int) -> str:
    lines = [f"polling: {{interval_s: {INTERVAL_S}, timeout_s: 2, retries: 1}}",
             f"collection: {{max_in_flight: {max_in_flight}}}",
             f"simulation: {{control_port: {control_port}, sites: {{}}}}", "sites:"]
    for g, port in enumerate(ports):
        lines += [f"  - id: gw-{g:03d}", f"    name: {{vi: g{g}, en: g{g}}}", "    devices:"]
        for unit in range(1, units + 1):
            role = {1: "facility", 2: "it"}.get(unit, "monitor")
            extra = ", measurement_point: pdu_output" if role == "it" else ""
            lines.append(f"      - {{id: m-{g:03d}-{unit}, profile: {PROFILE}, role: {role}"
                         f"{extra}, modbus: {{host: 127.0.0.1, port: {port}, unit: {unit}}}}}")
    return "\n".join(lines) + "\n"


def one(gateways: int, units: int, seconds: float, max_in_flight: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        *ports, control = free_ports(gateways + 1)
        path = work / "province.yaml"
        path.write_text(config_text(ports, units, control, max_in_flight))
        sim = subprocess.Popen([sys.executable, "-m", "pue_monitor", "simulate", "-c",
                                str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            assert sim.stdout is not None
            while READY_LINE not in (line := sim.stdout.readline()):
                if not line or time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start")
            config = load_config_text(path.read_text(), env={})
            return measure_into(config, work / "data", seconds)
        finally:
            sim.terminate()
            sim.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateways", type=int, default=64)
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window")
    parser.add_argument("--max-in-flight", type=int, default=128)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.gateways, args.units, args.seconds, args.max_in_flight)))
        return 0
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.gateways} "
          f"Modbus TCP gateways x {args.units} units ({PROFILE}), interval {INTERVAL_S:g} s, "
          f"{args.seconds:g} s measured after one interval of warm-up, at most "
          f"{args.max_in_flight} polls in flight\n")
    print(HEADER)
    out = subprocess.run([sys.executable, __file__, "--one", "--gateways", str(args.gateways),
                          "--units", str(args.units), "--seconds", str(args.seconds),
                          "--max-in-flight", str(args.max_in_flight)],
                         capture_output=True, text=True, timeout=args.seconds + 300)
    if out.returncode != 0:
        print(f"failed: {out.stderr.strip()[-800:]}")
        return 1
    print_row(args.gateways * args.units, json.loads(out.stdout.strip().splitlines()[-1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
