"""Which profile fits an SNMP agent: by sysObjectID, then sysDescr, then standard-MIB probes."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pue_monitor.collectors.snmp_client import SnmpClient
from pue_monitor.collectors.snmp_decode import Missing
from pue_monitor.config.profiles import Profile

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"


class NoProfileMatches(LookupError):
    """No shipped profile claims this agent."""


def _arcs(oid: str) -> tuple[str, ...]:
    return tuple(str(oid).strip().lstrip(".").split("."))


def by_identity(profiles: Iterable[Profile], sys_object_id: str,
                sys_descr: str) -> Profile | None:
    """The profile with the longest sysObjectID prefix (whole arcs), else the first whose
    sysDescr pattern matches."""
    arcs = _arcs(sys_object_id)
    best: tuple[int, str, Profile] | None = None
    snmp = [p for p in profiles if p.protocol == "snmp"]
    for profile in snmp:
        for prefix in profile.sys_object_ids:
            want = _arcs(prefix)
            if arcs[:len(want)] == want and (best is None or len(want) > best[0]):
                best = (len(want), profile.name, profile)
    if best is not None:
        return best[2]
    for profile in sorted(snmp, key=lambda p: p.name):
        if any(re.search(p, sys_descr) for p in profile.sys_descr_patterns):
            return profile
    return None


def probe_candidates(profiles: Iterable[Profile]) -> list[tuple[str, Profile]]:
    """(probe OID, profile) to try, in the profiles' probe order."""
    pairs = [(oid, p) for p in profiles if p.protocol == "snmp" for oid in p.probe_oids]
    return sorted(pairs, key=lambda pair: (pair[1].probe_order, pair[1].name))


async def identify(client: SnmpClient, profiles: Iterable[Profile],
                   hint: str = "choose one with --profile") -> tuple[Profile, str, str]:
    """(profile, sysObjectID, sysDescr) of the agent behind ``client``; ``hint`` ends the
    no-match message (what the operator can do about it).

    :raises NoProfileMatches: with the agent's identity, so the operator can pick one.
    :raises PollError: the agent did not answer.
    """
    profiles = list(profiles)
    system = await client.get([SYS_OBJECT_ID, SYS_DESCR])
    sys_object_id = "" if isinstance(system.get(SYS_OBJECT_ID), Missing) else str(
        system.get(SYS_OBJECT_ID, ""))
    sys_descr = "" if isinstance(system.get(SYS_DESCR), Missing) else str(
        system.get(SYS_DESCR, ""))
    found = by_identity(profiles, sys_object_id, sys_descr)
    if found is not None:
        return found, sys_object_id, sys_descr
    for oid, profile in probe_candidates(profiles):
        if oid.endswith(".0"):
            got = await client.get([oid])
            present = not isinstance(got.get(oid), Missing) and oid in got
        else:
            present = bool(await client.walk([oid], 1))
        if present:
            return profile, sys_object_id, sys_descr
    raise NoProfileMatches(
        f"no profile matches sysObjectID {sys_object_id or '?'} (sysDescr {sys_descr!r}); "
        f"{hint}")
