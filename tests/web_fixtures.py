"""A store filled with hand-made polls of the demo province, at a fixed clock.

bn-provincial: facility 140 kW, IT 2 x 50 kW  -> PUE 1.40, exactly at the threshold (ok)
que-vo-dc:     facility 150 kW, IT 100 kW     -> PUE 1.50, over the threshold
yen-phong-dc:  never polled                   -> no data
qv-pdu-02 timed out on its last poll.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pue_monitor.config.loader import load_config
from pue_monitor.config.metrics import JOULES_PER_KWH
from pue_monitor.config.model import Config
from pue_monitor.store.model import ErrorKind, PollResult, Reading
from pue_monitor.store.sqlite import Store

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 25, 10, 0, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).timestamp()
START = NOW - 20 * 60  # 20 minutes of polls: the 15-minute window is fully covered
STEP_S = 5.0

# device -> (site, active power W, has an energy counter)
POWER = {
    "prov-incomer": ("bn-provincial", 140_000.0, True),
    "prov-ups-a": ("bn-provincial", 50_000.0, False),
    "prov-ups-b": ("bn-provincial", 50_000.0, False),
    "prov-chiller": ("bn-provincial", 30_000.0, True),
    "qv-incomer": ("que-vo-dc", 150_000.0, True),
    "qv-ups-1": ("que-vo-dc", 100_000.0, False),
    "qv-pdu-01": ("que-vo-dc", 4_000.0, True),
}
E0_KWH = 1000.0
# A ripple of 1 W on the power readings, by poll index mod 4: a steady value repeated
# for 30 polls while the site moves is stuck power (method 3, rule 6). Over every 4
# steps the trapezoids add to the steady power exactly (+0.5, +0.5, -0.5, -0.5 W), the
# windows and blocks span whole multiples of 4 steps, and the last poll reads the
# steady value.
RIPPLE_W = (0.0, 1.0, 0.0, -1.0)


def demo_config() -> Config:
    return load_config(ROOT / "config" / "demo.yaml")


def fill(store: Store) -> None:
    """Write every poll from START to NOW, then one timeout of qv-pdu-02."""
    polls = []
    n = int((NOW - START) / STEP_S)
    for i in range(n + 1):
        ts = START + i * STEP_S
        for device, (site, watts, counter) in POWER.items():
            readings = [Reading(ts, device, "active_power_w", watts + RIPPLE_W[(n - i) % 4])]
            if counter:
                kwh = E0_KWH + watts * (ts - START) / JOULES_PER_KWH
                readings.append(Reading(ts, device, "active_energy_kwh", kwh))
            polls.append(PollResult(device, site, ts, 0.012, tuple(readings)))
    polls.append(PollResult("qv-pdu-02", "que-vo-dc", NOW - 2, 1.0,
                            error_kind=ErrorKind.TIMEOUT, error="no answer within 1 s"))
    store.write_polls(polls)
