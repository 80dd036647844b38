"""The site definition an edge sends the central service, as JSON, and the sites the
central rebuilds from it.

What it carries is what the figures are computed from: sites (name, kind, time zone,
thresholds, tolerances), devices (name, profile, protocol, role, measurement point, share,
effective polling, maximum gap, counter width, replacements, data-quality settings and
their dated ``changes``). It never carries an address, a community, a key or a token: the central polls nothing.

The document (format 1)::

    {"format": 1, "changed_ts": <edge clock when this definition was first seen>,
     "sites": [{"id", "name": {"vi", "en"}, "kind", "timezone", "pue_threshold",
                "threshold_operator", "coverage_threshold", "balance_tolerance",
                "counter_power_tolerance",
                "devices": [{"id", "name", "profile", "identified_profile",
                             "identification" (once identified: {"sys_object_id", "reason",
                             "ts"}), "protocol",
                             "role", "measurement_point", "share", "polling",
                             "max_gap_s", "counter_width_kwh", "replacements",
                             "reset_below_fraction", "rated_max_w", "stuck_power_polls",
                             "changes" (only when the device has any: [{"from", setting: value}])
                            }]}]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from pue_monitor.config.errors import join_path
from pue_monitor.config.model import AUTO_PROFILE, Config, Device, Site
from pue_monitor.figures.service import max_gap_s
from pue_monitor.store.model import Identified

FORMAT = 1
SITE_KEYS = ("id", "kind", "timezone", "pue_threshold", "threshold_operator",
             "coverage_threshold", "balance_tolerance", "counter_power_tolerance")
DEVICE_KEYS = ("id", "name", "profile", "role", "measurement_point", "share",
               "counter_width_kwh", "reset_below_fraction", "rated_max_w",
               "stuck_power_polls")


class DefinitionError(ValueError):
    """A site definition the central cannot take; the message names the path."""


def definition_sites(config: Config,
                     identified: Mapping[str, str | Identified] | None = None) -> list[dict]:
    """The edge's sites as the definition lists them (JSON-ready, no secrets).
    ``identified``: {device: profile, or what it was identified as and why} of its
    ``profile: auto`` devices identified so far."""
    out = []
    for site in config.sites:
        doc = site.model_dump(mode="json", include=set(SITE_KEYS))
        doc["name"] = {"vi": site.name.vi, "en": site.name.en}
        doc["devices"] = []
        for device in site.devices:
            dev = device.model_dump(mode="json", include=set(DEVICE_KEYS))
            found = ((identified or {}).get(device.id)
                     if device.profile == AUTO_PROFILE else None)
            if isinstance(found, Identified):
                dev["identified_profile"] = found.profile
                # Why, as the edge's device page shows it (only once identified, so the
                # definitions of other devices keep their fingerprints).
                dev["identification"] = {"sys_object_id": found.sys_object_id,
                                         "reason": found.reason, "ts": found.ts}
            else:
                dev["identified_profile"] = found
            dev["protocol"] = device.protocol
            dev["polling"] = config.polling_for(site, device).model_dump(mode="json")
            dev["max_gap_s"] = max_gap_s(config, site, device)
            dev["replacements"] = [r.model_dump(mode="json") for r in device.replacements]
            if device.changes:
                # Only the keys each change gives: a null returns a setting to its default,
                # an absent key leaves it as it was. Absent when there are none, so the
                # definitions of edges without history keep their fingerprints.
                dev["changes"] = [c.model_dump(mode="json", by_alias=True, exclude_unset=True)
                                  for c in device.changes]
            doc["devices"].append(dev)
        out.append(doc)
    return out


def fingerprint(sites: list[dict]) -> str:
    """Of one site's (or several sites') definition: equal definitions, equal prints."""
    canonical = json.dumps(sites, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


_STAND_IN = Device(id="stand-in", profile="auto", snmp={"host": "localhost"})


class RemoteDevice(Device):
    """A device as the central knows it: from an edge's definition, with no address (the
    edge polls it). ``protocol`` says how the edge reaches it."""

    via: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")  # the data center's id
    protocol_name: Literal["snmp", "modbus"]

    @model_validator(mode="after")
    def _one_target(self) -> RemoteDevice:  # overrides Device's: no target here
        if self.snmp is not None or self.modbus is not None:
            raise ValueError("a device at the central has no address")
        return self

    @property
    def protocol(self) -> str:
        return self.protocol_name

    @property
    def endpoint(self) -> str:
        return f"{self.protocol_name}, polled by the edge of {self.via}"


def site_from_definition(doc: object, data_center: str, path: str = "sites[0]") -> Site:
    """A site of a definition, as the central keeps it.

    :raises DefinitionError: naming the path of the first problem.
    """
    if not isinstance(doc, dict):
        raise DefinitionError(f"{path}: must be an object")
    devices = doc.get("devices")
    if not isinstance(devices, list) or not devices:
        raise DefinitionError(f"{path}.devices: must be a non-empty list")
    built = []
    for d, dev in enumerate(devices):
        dpath = f"{path}.devices[{d}]"
        if not isinstance(dev, dict):
            raise DefinitionError(f"{dpath}: must be an object")
        fields = {k: v for k, v in dev.items()
                  if k not in ("protocol", "identified_profile", "identification")}
        fields["protocol_name"] = dev.get("protocol")
        fields["via"] = data_center
        built.append(_validated(RemoteDevice, fields, dpath))
    # The site's own fields are validated with a stand-in device (Site revalidates its
    # devices as Device, which needs an address), then the devices go in.
    site = {k: v for k, v in doc.items() if k != "devices"}
    site["devices"] = [_STAND_IN]
    return _validated(Site, site, path).model_copy(update={"devices": built})


def _validated(model, fields: dict, path: str):
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = join_path((path, *err["loc"])) if err["loc"] else path
        raise DefinitionError(f"{where}: {err['msg']}"
                              + (f" (got {err['input']!r})" if err["loc"] else "")) from None


def identified_profiles(doc: dict) -> dict[str, Identified]:
    """{device: what it was identified as, and why} of the auto devices the edge has
    identified (the why left empty when the edge did not send it, or sent it malformed)."""
    out = {}
    for dev in doc.get("devices", []):
        if not (isinstance(dev, dict) and isinstance(dev.get("identified_profile"), str)
                and isinstance(dev.get("id"), str)):
            continue
        why = dev.get("identification")
        why = why if isinstance(why, dict) else {}
        ts = why.get("ts")
        out[dev["id"]] = Identified(
            dev["identified_profile"], str(why.get("sys_object_id") or ""),
            str(why.get("reason") or ""),
            float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None)
    return out


__all__ = ["DefinitionError", "FORMAT", "RemoteDevice", "definition_sites", "fingerprint",
           "identified_profiles", "site_from_definition"]
