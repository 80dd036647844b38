"""Stored 15-minute blocks over months for the chart and page tests, at web_fixtures.NOW.

bn-provincial, from 2026-09-01 00:00 local to HISTORY_END (09:30 on 2026-11-25, before the
live polls of web_fixtures.fill start), every block whole:
  prov-ups-a, prov-ups-b  50 kW each  -> 12.5 kWh a block each (IT 100 kW)
  prov-chiller            30 kW       ->  7.5 kWh a block (cooling)
  prov-incomer            140 kW on even days of the month, 150 kW on odd days
                                      -> 35 / 37.5 kWh a block: PUE 1.40 / 1.50 a day
  except GAP_DAY (2026-11-10): prov-ups-b has no block at all, so that day has no PUE.
que-vo-dc and yen-phong-dc have no blocks.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pue_monitor.figures.periods import align_store
from pue_monitor.config.model import Config
from pue_monitor.pue.periods import BLOCK_S
from pue_monitor.store.sqlite import Store

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
HISTORY_START = datetime(2026, 9, 1, tzinfo=TZ).timestamp()
HISTORY_END = datetime(2026, 11, 25, 9, 30, tzinfo=TZ).timestamp()
GAP_DAY = datetime(2026, 11, 10, tzinfo=TZ)
IT_KW, COOLING_KW = {"prov-ups-a": 50.0, "prov-ups-b": 50.0}, 30.0


def facility_kw(local: datetime) -> float:
    return 150.0 if local.day % 2 else 140.0


def day_pue(local: datetime) -> float | None:
    """The PUE of a whole local day, by hand."""
    if local.date() == GAP_DAY.date():
        return None
    return facility_kw(local) / sum(IT_KW.values())


def fill_history(store: Store, config: Config) -> None:
    align_store(store, config)
    rows = []
    hours = BLOCK_S / 3600
    for start in range(int(HISTORY_START), int(HISTORY_END), BLOCK_S):
        local = datetime.fromtimestamp(start, TZ)
        a, b = float(start), float(start + BLOCK_S)
        rows.append(("prov-incomer", a, b, facility_kw(local) * hours, BLOCK_S, "counter"))
        rows.append(("prov-chiller", a, b, COOLING_KW * hours, BLOCK_S, "counter"))
        for device, kw in IT_KW.items():
            if device == "prov-ups-b" and local.date() == GAP_DAY.date():
                continue
            rows.append((device, a, b, kw * hours, BLOCK_S, "power_integration"))
    store.write_interval_energy(rows)


def local_days(first: datetime, n: int) -> list[datetime]:
    return [first + timedelta(days=i) for i in range(n)]
