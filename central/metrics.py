"""/metrics of the central service: what it stored and refused, and each data center's
clock against its own (a skew beyond ingest.max_clock_skew_s is flagged)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pue_monitor.central.ingest import Central

PREFIX = "pue_monitor_central"


class CentralCollector(Collector):
    def __init__(self, central: Central) -> None:
        self._central = central

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        c = self._central
        n = c.counters
        yield CounterMetricFamily(f"{PREFIX}_readings_stored", "Readings stored from edges.",
                                  n.readings_stored)
        yield CounterMetricFamily(f"{PREFIX}_readings_duplicate",
                                  "Readings received again and not stored twice.",
                                  n.readings_duplicate)
        yield CounterMetricFamily(f"{PREFIX}_lines_refused",
                                  "Line-protocol lines refused (answered 400, named).",
                                  n.lines_refused)
        writes = CounterMetricFamily(f"{PREFIX}_writes", "Write requests by HTTP status.",
                                     labels=["status"])
        for status, count in sorted(n.batches.items()):
            writes.add_metric([str(status)], count)
        yield writes
        yield CounterMetricFamily(f"{PREFIX}_site_definitions_recorded",
                                  "Changed site definitions recorded.", n.definitions_recorded)
        skew = GaugeMetricFamily(f"{PREFIX}_edge_clock_skew_seconds",
                                 "Edge clock minus the central's, at its last batch.",
                                 labels=["data_center"])
        flagged = GaugeMetricFamily(f"{PREFIX}_edge_clock_skew_flagged",
                                    "1 when an edge's clock is further from the central's than "
                                    "allowed.", labels=["data_center"])
        last = GaugeMetricFamily(f"{PREFIX}_edge_last_batch_timestamp_seconds",
                                 "When the central last heard from an edge (for a configured "
                                 "data center not heard from since this process started: "
                                 "its start).", labels=["data_center"])
        for dc, seen in sorted(c.clocks.items()):
            if seen.skew_s is not None:
                skew.add_metric([dc], seen.skew_s)
            flagged.add_metric([dc], 1.0 if seen.flagged else 0.0)
        configured = {d.id for d in c.service.data_centers}
        for dc in sorted(configured | set(c.clocks)):
            seen = c.clocks.get(dc)
            last.add_metric([dc], seen.last_batch_ts if seen is not None else c.started_ts)
        yield skew
        yield flagged
        yield last
