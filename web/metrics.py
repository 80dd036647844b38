"""/metrics: a prometheus-client custom collector over the live status document.

Every scrape reads the current state (no module-level gauges that go stale), so a
series disappears when its figure does: a PUE that cannot be computed is absent, not 0.
Names follow the Prometheus conventions: base units, ``_total`` on counters, one prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from pue_monitor.config.metrics import JOULES_PER_KWH
from pue_monitor.store.model import HealthState

PREFIX = "pue_monitor"
INSTANT_WINDOW = "instantaneous"
STATUSES = ("ok", "incomplete", "invalid", "no_data", "stale")
DEVICE_STATES = tuple(s.value for s in HealthState)


def _category(label: str | None) -> str:
    # "PUE2" -> "2": the label value is the bare number, easier to match in rules.
    return (label or "").removeprefix("PUE")


class StatusCollector(Collector):
    """Exports one status document (web.document) per scrape."""

    def __init__(self, document: Callable[[], dict], version: str) -> None:
        self._document = document
        self._version = version

    def describe(self) -> list:
        # Describing would compute a whole document at registration time; the families
        # are fixed anyway, so skip the check (prometheus_client allows an empty list).
        return []

    def collect(self) -> Iterator:
        doc = self._document()
        g = {name: GaugeMetricFamily(f"{PREFIX}_{name}", help_, labels=labels)
             for name, help_, labels in _GAUGES}
        errors = CounterMetricFamily(
            f"{PREFIX}_device_poll_errors", "Failed polls of a device, by kind of failure.",
            labels=["site", "device", "kind"])
        energy = CounterMetricFamily(
            f"{PREFIX}_energy_joules", "Energy metered at a site by meter role since the "
            "site's first reading (share applied).", labels=["site", "role"])
        for site in doc["sites"]:
            sid = site["id"]
            g["pue_threshold"].add_metric([sid], site["threshold"])
            if site.get("coverage_threshold") is not None:
                g["pue_coverage_threshold_ratio"].add_metric([sid], site["coverage_threshold"])
            # Newer document fields are read with .get: a document without them (an older
            # store, a site with no readings yet) simply has no such series.
            for role, kwh in (site.get("energy_kwh_total") or {}).items():
                if kwh is not None:
                    energy.add_metric([sid, role], kwh * JOULES_PER_KWH)
            risk = site.get("year_at_risk") or {}
            if risk.get("at_risk") is not None:
                g["year_at_risk"].add_metric([sid], 1.0 if risk["at_risk"] else 0.0)
            if risk.get("projected_pue") is not None:
                g["year_projected_pue"].add_metric([sid], risk["projected_pue"])
            figures = {INSTANT_WINDOW: site["instant"], **site["windows"]}
            for window, fig in figures.items():
                if fig["pue"] is not None:
                    g["pue"].add_metric([sid, window, _category(fig["category"])], fig["pue"])
                if fig["compliant"] is not None:
                    g["pue_compliant"].add_metric([sid, window], 1.0 if fig["compliant"] else 0.0)
                for status in STATUSES:
                    g["pue_status"].add_metric([sid, window, status],
                                               1.0 if fig["status"] == status else 0.0)
                if window != INSTANT_WINDOW:
                    g["pue_coverage_ratio"].add_metric([sid, window], fig["coverage"] or 0.0)
                    for side in ("facility", "it"):
                        kwh = fig[f"{side}_energy_kwh"]
                        if kwh is not None and fig["status"] != "no_data":
                            g["pue_energy_joules"].add_metric([sid, window, side],
                                                              kwh * JOULES_PER_KWH)
            for role, watts in site["power_w"].items():
                if watts is not None:
                    g["power_watts"].add_metric([sid, role], watts)
            for dev in site["devices"]:
                ids = [sid, dev["id"]]
                if dev["up"] is not None:
                    g["device_up"].add_metric([*ids, dev["role"]], 1.0 if dev["up"] else 0.0)
                state = dev.get("state")
                if state is not None:
                    for name in DEVICE_STATES:
                        g["device_state"].add_metric([*ids, dev["role"], name],
                                                     1.0 if state == name else 0.0)
                if dev["last_success_unix"] is not None:
                    g["device_last_success_timestamp_seconds"].add_metric(
                        ids, dev["last_success_unix"])
                if dev["poll_duration_s"] is not None:
                    g["device_poll_duration_seconds"].add_metric(ids, dev["poll_duration_s"])
                if dev.get("poll_interval_s") is not None:
                    g["device_poll_interval_seconds"].add_metric(ids, dev["poll_interval_s"])
                for kind, count in (dev.get("quality_flags") or {}).items():
                    g["meter_flags"].add_metric([*ids, dev["role"], kind], count)
                for kind, count in dev["errors"].items():
                    errors.add_metric([*ids, kind], count)
        yield from g.values()
        yield errors
        yield energy
        info = InfoMetricFamily(f"{PREFIX}_build", "pue-monitor version and PUE method.")
        info.add_metric([], {"version": self._version, "method": doc["method"]})
        yield info


# (name, help, labels) of every gauge family, in exposition order.
_GAUGES = (
    ("pue", "PUE of a site: total facility energy / IT energy over the window "
            "(window=instantaneous: power ratio now, not an audit figure).",
     ["site", "window", "category"]),
    ("pue_threshold", "Green data center PUE threshold of the site.", ["site"]),
    ("pue_compliant", "1 if the window's PUE meets the threshold, 0 if not; absent when "
                      "the figure is not judged (status other than ok).", ["site", "window"]),
    ("pue_status", "1 for the current status of the figure (ok, incomplete, invalid, "
                   "no_data, stale), 0 for the others.", ["site", "window", "status"]),
    ("pue_coverage_ratio", "Share of the window measured by every facility and IT meter.",
     ["site", "window"]),
    ("pue_coverage_threshold_ratio", "Coverage a window needs for its PUE to be judged "
                                     "(status ok).", ["site"]),
    ("year_at_risk", "1 if the calendar year's PUE is projected not to meet the threshold, "
                     "0 if not; absent when there is no projection.", ["site"]),
    ("year_projected_pue", "Projected PUE of the current calendar year.", ["site"]),
    ("pue_energy_joules", "Energy behind the window's PUE, over the spans used (side=facility "
                       "net of excluded loads, or it).", ["site", "window", "side"]),
    ("power_watts", "Latest active power of a site by meter role (share applied).",
     ["site", "role"]),
    ("device_up", "1 if the last poll of the device succeeded (the device answered).",
     ["site", "device", "role"]),
    ("device_state", "1 for the device's health state (up, degraded: answers but readings "
                     "fail to decode, are stuck or implausible, or its counter was reset "
                     "or stepped back in 15 min; down; unknown: never "
                     "polled), 0 for the others. Degraded is an error as down is.",
     ["site", "device", "role", "state"]),
    ("meter_flags", "Data-quality flags of a meter in the live 15-minute window, by kind "
                    "(method pue-monitor/4: reset, step_back, wrap, stuck_counter, "
                    "stuck_power, implausible_counter, implausible_power); absent for a "
                    "device that meters nothing.", ["site", "device", "role", "kind"]),
    ("device_last_success_timestamp_seconds", "Unix time of the last successful poll.",
     ["site", "device"]),
    ("device_poll_duration_seconds", "Duration of the device's last poll.", ["site", "device"]),
    ("device_poll_interval_seconds", "Configured interval between polls of the device.",
     ["site", "device"]),
)
