"""/metrics for the collectors themselves, like snmp_exporter's own: polls, answers, retries,
time per poll, late polls, skipped slots, polls in flight, results stored, the SNMP
socket's buffer and drops, and the worker processes (up, restarts) when there are any;
per device and in total, read from one snapshot per scrape.

web/ never imports collectors/: the composition root hands in a function returning the
snapshot (collectors.stats.Snapshot), read here by its attribute names only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, SummaryMetricFamily)
from prometheus_client.registry import Collector

PREFIX = "pue_monitor_collector"
DEVICE_PREFIX = "pue_monitor_device"
# (attribute of the counts, name after the prefix, help): counters, per device and total.
_COUNTS = (
    ("polls", "polls", "Polls started (each may send several requests and retries)."),
    ("answers", "poll_answers", "Polls the device answered, with data or with an error."),
    ("retries", "poll_retries", "Poll attempts beyond the first."),
    ("late", "polls_late", "Polls that started after their slot by more than the tolerance "
                           "(the event loop was busy or the in-flight limit held them back)."),
    ("skipped", "poll_slots_skipped", "Slots that passed unpolled because the previous poll "
                                      "of the device was still running."),
)


class CollectionCollector(Collector):
    """Exports one collection-stats snapshot per scrape."""

    def __init__(self, snapshot: Callable[[], Any]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        s = self._snapshot()
        for attr, name, help_ in _COUNTS:
            yield CounterMetricFamily(f"{PREFIX}_{name}", help_ + " All devices.",
                                      getattr(s.total, attr))
            per_device = CounterMetricFamily(f"{DEVICE_PREFIX}_{name}", help_,
                                             labels=["site", "device"])
            for device, counts in sorted(s.devices.items()):
                per_device.add_metric([counts.site, device], getattr(counts, attr))
            yield per_device
        # The total as a histogram (where the time goes); per device only sum and count,
        # so thousands of devices do not multiply into tens of thousands of bucket series.
        cumulative, running = [], 0
        for bound, count in zip((*s.buckets_s, float("inf")), s.bucket_counts):
            running += count
            cumulative.append((_bound(bound), running))
        yield HistogramMetricFamily(f"{PREFIX}_poll_duration_seconds",
                                    "Time per poll, all devices.", buckets=cumulative,
                                    sum_value=s.total.duration_sum_s)
        seconds = SummaryMetricFamily(f"{DEVICE_PREFIX}_poll_seconds",
                                      "Time per poll of the device.", labels=["site", "device"])
        for device, counts in sorted(s.devices.items()):
            seconds.add_metric([counts.site, device], counts.duration_count,
                               counts.duration_sum_s)
        yield seconds
        yield GaugeMetricFamily(f"{PREFIX}_polls_in_flight", "Polls running now.", s.in_flight)
        yield GaugeMetricFamily(f"{PREFIX}_polls_in_flight_limit",
                                "Most polls allowed in flight at once (collection.max_in_flight).",
                                s.in_flight_limit)
        yield CounterMetricFamily(f"{PREFIX}_results_stored",
                                  "Poll results whose store transaction committed.", s.stored)
        yield GaugeMetricFamily(f"{PREFIX}_store_backlog_results",
                                "Poll results waiting in memory for the store.", s.backlog)
        yield CounterMetricFamily(f"{PREFIX}_store_write_errors",
                                  "Failed store writes (the results stay in memory).",
                                  s.store_write_errors)
        yield CounterMetricFamily(f"{PREFIX}_store_backlog_dropped",
                                  "Poll results dropped because the store backlog was full "
                                  "(collection.store_backlog).", s.backlog_dropped)
        if s.receive_buffers:
            asked = GaugeMetricFamily(f"{PREFIX}_snmp_receive_buffer_bytes",
                                      "Receive buffer of the shared SNMP socket (asked: for "
                                      "the answers in flight; granted: read back from the "
                                      "kernel).", labels=["socket", "kind"])
            for i, (want, got) in enumerate(s.receive_buffers):
                asked.add_metric([str(i), "asked"], want)
                asked.add_metric([str(i), "granted"], got)
            yield asked
        if s.receive_drops is not None:
            yield CounterMetricFamily(f"{PREFIX}_snmp_answers_dropped",
                                      "Datagrams the kernel dropped on the SNMP sockets "
                                      "(receive buffer full).", s.receive_drops)
        if s.workers:
            up = GaugeMetricFamily(f"{PREFIX}_worker_up", "1 while the collector worker "
                                   "process runs, 0 while it is being restarted.",
                                   labels=["worker"])
            restarts = CounterMetricFamily(f"{PREFIX}_worker_restarts",
                                           "Times the collector worker process died and was "
                                           "started again with its sites.", labels=["worker"])
            for w in s.workers:
                up.add_metric([w.worker], int(w.up))
                restarts.add_metric([w.worker], w.restarts)
            yield up
            yield restarts


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)
