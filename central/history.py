"""A site's definitions over time, as an auditor reads them: when each was received, from
whom, when the edge changed it, and what changed (a meter moved from "cooling" to
"exclude" in June). The central adds them to its reports (``site_definitions``); an
edge's report has none. The two documents also differ where one store keeps blocks of an
earlier PUE method that the other computed again (``earlier_methods``: each names the
blocks in its own store)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone

from pue_monitor.store.base import SiteDefinitionRecord

REPORT_KEY = "site_definitions"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def changes(before: dict | None, after: dict) -> list[dict]:
    """What differs between two definitions of a site: site fields, then devices added,
    removed or changed (field, from, to), by device id."""
    if before is None:
        return [{"what": "first definition"}]
    out = []
    for key in sorted(set(before) | set(after) - {"devices"}):
        if key != "devices" and before.get(key) != after.get(key):
            out.append({"what": "site", "field": key, "from": before.get(key),
                        "to": after.get(key)})
    old = {d["id"]: d for d in before.get("devices", [])}
    new = {d["id"]: d for d in after.get("devices", [])}
    for device in sorted(set(old) | set(new)):
        if device not in old:
            out.append({"what": "device added", "device": device, "role": new[device]["role"]})
        elif device not in new:
            out.append({"what": "device removed", "device": device,
                        "role": old[device]["role"]})
        else:
            for key in sorted(set(old[device]) | set(new[device])):
                if old[device].get(key) != new[device].get(key):
                    out.append({"what": "device", "device": device, "field": key,
                                "from": old[device].get(key), "to": new[device].get(key)})
    return out


def definition_history(records: Sequence[SiteDefinitionRecord]) -> list[dict]:
    """Every definition kept, by site and time received, each with its changes."""
    out = []
    previous: dict[str, dict] = {}
    for r in sorted(records, key=lambda r: (r.site, r.received_ts)):
        doc = json.loads(r.definition)
        out.append({"site": r.site, "received": _iso(r.received_ts),
                    "changed_at_edge": _iso(r.changed_ts), "data_center": r.data_center,
                    "sender": r.sender, "fingerprint": r.fingerprint,
                    "changes": changes(previous.get(r.site), doc)})
        previous[r.site] = doc
    return out


def annotate_report(report: dict, records: Sequence[SiteDefinitionRecord]) -> dict:
    """The report with each site's definitions (all of them: which one was in force when
    is part of what an auditor checks)."""
    history = definition_history(records)

    def one(site_report: dict) -> dict:
        return {**site_report, REPORT_KEY: [h for h in history
                                            if h["site"] == site_report["site"]]}
    if "sites" in report and "site" not in report:
        return {**report, "sites": [one(s) for s in report["sites"]]}
    return one(report)
