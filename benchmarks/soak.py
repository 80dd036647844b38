"""The soak run, long variant: the demo province for weeks of simulated time, polled over
real SNMP and Modbus on a stepped clock shared with the simulator (tests/soak_support.py;
tests/test_soak.py is the short variant CI runs). Prints memory, open files, CPU, store
size and each site's PUE against the simulator's ground truth.

    .venv/bin/python benchmarks/soak.py --days 28            # four weeks, 15-minute polls
    .venv/bin/python benchmarks/soak.py --days 7 --step 300  # a week, 5-minute polls
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.soak_support import describe, soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=28.0, help="simulated days (28)")
    parser.add_argument("--step", type=float, default=900.0,
                        help="simulated seconds between polls; divides 900 (900)")
    parser.add_argument("--readings-days", type=int, default=None,
                        help="retention of raw readings, days (default: kept for ever)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this folder and keep the store (default: a temporary one)")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        figures = asyncio.run(soak(args.keep, args.days, args.step, args.readings_days))
    else:
        with tempfile.TemporaryDirectory(prefix="pue-soak-") as folder:
            figures = asyncio.run(soak(Path(folder), args.days, args.step,
                                        args.readings_days))
    for what, text in describe(figures):
        print(f"{what}: {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
