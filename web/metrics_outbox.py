"""/metrics for the InfluxDB writer: its outbox and write counters, read at every scrape
(the writer that ships to the central service has the same, under its own prefix)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pue_monitor.store.outbox import OutboxStateFn

PREFIX = "pue_monitor_influx"
CENTRAL_PREFIX = "pue_monitor_central_link"


class OutboxCollector(Collector):
    """Exports one OutboxState snapshot per scrape."""

    def __init__(self, state: OutboxStateFn, clock: Callable[[], float] = time.time,
                 prefix: str = PREFIX) -> None:
        self._state, self._clock, self._prefix = state, clock, prefix

    def describe(self) -> list:
        return []  # the snapshot reads SQLite; not at registration time

    def collect(self) -> Iterator:
        s, PREFIX = self._state(), self._prefix  # noqa: N806
        yield GaugeMetricFamily(f"{PREFIX}_queued_points",
                                "Points waiting to be written to InfluxDB.", s.queued_points)
        # 0 when nothing waits, so "age above N" alerts need no absent() special case.
        age = 0.0 if s.oldest_queued_ts is None else max(0.0, self._clock() - s.oldest_queued_ts)
        yield GaugeMetricFamily(f"{PREFIX}_oldest_queued_age_seconds",
                                "Age of the oldest point waiting on disk (0 when none).", age)
        yield CounterMetricFamily(f"{PREFIX}_points_written",
                                  "Points the InfluxDB server confirmed.", s.points_written_total)
        yield CounterMetricFamily(f"{PREFIX}_write_errors",
                                  "Failed write requests (the points stay queued).",
                                  s.write_errors_total)
        dropped = CounterMetricFamily(f"{PREFIX}_points_dropped",
                                      "Points given up: buffer full (oldest first) or refused "
                                      "as malformed (by the server, or by the encoder for "
                                      "a label it cannot carry).", labels=["reason"])
        dropped.add_metric(["buffer_full"], s.points_dropped_total)
        dropped.add_metric(["rejected"], s.points_rejected_total)
        yield dropped
        if s.last_success_ts is not None:
            yield GaugeMetricFamily(f"{PREFIX}_last_success_timestamp_seconds",
                                    "When InfluxDB last confirmed a write.", s.last_success_ts)
