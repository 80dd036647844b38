"""Which profile fits an SNMP agent, and why: by sysObjectID, then sysDescr, then
standard-MIB probes (UPS-MIB before ENTITY-SENSOR-MIB), else "unknown device" with what
was found.

A vendor may give one sysObjectID to many products (a UPS card and a PDU card, a generic
Linux agent): a profile that says so lists ``confirm_oids``, and is chosen only when one
of them answers; the next candidate is tried otherwise. The rule that matched is kept in
the answer, so `probe` and the status page can show it.

A device identified before (the store's record, handed over as a ``Known``) is confirmed
rather than identified again: the same sysObjectID, and one of its profile's confirmation
OIDs (else its probe OIDs) answering, keep the profile at the cost of two requests; any
other answer means the device may have changed model, and it is identified from scratch.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pue_monitor.collectors.snmp_client import SnmpClient
from pue_monitor.collectors.snmp_decode import Missing
from pue_monitor.config.profiles import Profile

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
# Rows asked when checking that a table column or subtree has anything: one is enough.
PRESENCE_REPETITIONS = 1


class NoProfileMatches(LookupError):
    """No shipped profile claims this agent."""


@dataclass(frozen=True)
class Identification:
    """The profile chosen for an agent, the agent's identity, and the rule that chose it."""

    profile: Profile
    sys_object_id: str
    sys_descr: str
    rule: str  # "sysObjectID", "sysDescr" or "probe"
    why: str
    passed_over: tuple[str, ...] = field(default=())  # candidates whose confirmation failed


@dataclass(frozen=True)
class Known:
    """What a device was identified as before: its profile and the sysObjectID then
    (None: not recorded, as by a store written before it was kept)."""

    profile: str
    sys_object_id: str | None


def _arcs(oid: str) -> tuple[str, ...]:
    return tuple(str(oid).strip().lstrip(".").split("."))


def by_object_id(profiles: Iterable[Profile], sys_object_id: str) -> list[tuple[str, Profile]]:
    """(matched prefix, profile) of every SNMP profile whose sysObjectID prefix (whole arcs)
    the agent's has: longest prefix first, then probe order, then name."""
    arcs = _arcs(sys_object_id)
    found: list[tuple[int, int, str, str, Profile]] = []
    for profile in profiles:
        if profile.protocol != "snmp":
            continue
        matching = [p for p in profile.sys_object_ids if arcs[:len(_arcs(p))] == _arcs(p)]
        if matching and sys_object_id:
            prefix = max(matching, key=lambda p: len(_arcs(p)))
            found.append((-len(_arcs(prefix)), profile.probe_order, profile.name, prefix, profile))
    return [(prefix, profile) for *_key, prefix, profile in sorted(found, key=lambda f: f[:3])]


def by_descr(profiles: Iterable[Profile], sys_descr: str) -> list[tuple[str, Profile]]:
    """(matched pattern, profile) of every SNMP profile whose sysDescr pattern matches."""
    out = []
    for profile in sorted((p for p in profiles if p.protocol == "snmp"),
                          key=lambda p: (p.probe_order, p.name)):
        for pattern in profile.sys_descr_patterns:
            if re.search(pattern, sys_descr):
                out.append((pattern, profile))
                break
    return out


def by_identity(profiles: Iterable[Profile], sys_object_id: str,
                sys_descr: str) -> Profile | None:
    """The first candidate by sysObjectID, else by sysDescr, ignoring confirmations (the
    agent is not asked): what the identity alone says."""
    profiles = list(profiles)
    found = by_object_id(profiles, sys_object_id) or by_descr(profiles, sys_descr)
    return found[0][1] if found else None


def probe_candidates(profiles: Iterable[Profile]) -> list[tuple[str, Profile]]:
    """(probe OID, profile) to try, in the profiles' probe order."""
    pairs = [(oid, p) for p in profiles if p.protocol == "snmp" for oid in p.probe_oids]
    return sorted(pairs, key=lambda pair: (pair[1].probe_order, pair[1].name))


async def answers(client: SnmpClient, oid: str) -> bool:
    """Whether the agent has the object (a scalar ending in .0) or anything under it."""
    if oid.endswith(".0"):
        got = await client.get([oid])
        return oid in got and not isinstance(got[oid], Missing)
    return bool(await client.walk([oid], PRESENCE_REPETITIONS))


async def _confirmed(client: SnmpClient, profile: Profile) -> str | None:
    """'' when the profile needs no confirmation, the OID that answered, or None."""
    if not profile.confirm_oids:
        return ""
    for oid in profile.confirm_oids:
        if await answers(client, oid):
            return oid
    return None


async def _system(client: SnmpClient) -> tuple[str, str]:
    """(sysObjectID without a leading dot, sysDescr), '' for what the agent lacks."""
    system = await client.get([SYS_OBJECT_ID, SYS_DESCR])
    sys_object_id = "" if isinstance(system.get(SYS_OBJECT_ID), Missing) else str(
        system.get(SYS_OBJECT_ID, "")).strip().lstrip(".")
    sys_descr = "" if isinstance(system.get(SYS_DESCR), Missing) else str(
        system.get(SYS_DESCR, ""))
    return sys_object_id, sys_descr


async def confirm_known(client: SnmpClient, profiles: Iterable[Profile],
                        known: Known) -> Identification | str:
    """The earlier identification, rule "kept", if the agent still fits it; otherwise why
    not (a str), and the caller identifies the agent anew.

    It fits when its sysObjectID is the one seen then, no other profile ahead of it in
    identify_device's order claims and confirms the agent, and one of the profile's
    ``confirm_oids`` (else its ``probe_oids``) answers; a profile with neither must still
    claim the agent by sysObjectID or sysDescr. One GET, then one request per OID tried.

    :raises PollError: the agent did not answer.
    """
    profiles = [p for p in profiles if p.protocol == "snmp"]
    profile = next((p for p in profiles if p.name == known.profile), None)
    if profile is None:
        return f"profile {known.profile} is not among the profiles any more"
    if known.sys_object_id is None:
        return "the sysObjectID it had then was not recorded"
    sys_object_id, sys_descr = await _system(client)
    if _arcs(sys_object_id) != _arcs(known.sys_object_id):
        return (f"sysObjectID was {known.sys_object_id or '(none)'}, "
                f"is now {sys_object_id or '(none)'}")
    # A profile now ahead of the record's in identify_device's order (one shipped or
    # narrowed since) that the agent confirms: identified anew, so a device keeps no
    # profile a better one has replaced.
    for _key, ahead in by_object_id(profiles, sys_object_id) + by_descr(profiles, sys_descr):
        if ahead.name == profile.name:
            break
        if await _confirmed(client, ahead) is not None:
            return f"profile {ahead.name} claims the agent now"
    why = f"identified before as {profile.name}; sysObjectID {sys_object_id or '(none)'} unchanged"
    oids = profile.confirm_oids or profile.probe_oids
    for oid in oids:
        if await answers(client, oid):
            return Identification(profile, sys_object_id, sys_descr, "kept",
                                  f"{why} and {oid} answers")
    if oids:
        return f"none of {', '.join(oids)} answers any more"
    claims = [p for _, p in by_object_id([profile], sys_object_id) + by_descr([profile],
                                                                              sys_descr)]
    if not claims:
        return f"{profile.name} no longer claims sysObjectID {sys_object_id or '(none)'}"
    return Identification(profile, sys_object_id, sys_descr, "kept", why)


async def identify_device(client: SnmpClient, profiles: Iterable[Profile],
                          hint: str = "choose one with --profile") -> Identification:
    """The profile of the agent behind ``client`` and why; ``hint`` ends the no-match
    message (what the operator can do about it).

    :raises NoProfileMatches: with the agent's identity and the candidates passed over.
    :raises PollError: the agent did not answer.
    """
    profiles = list(profiles)
    sys_object_id, sys_descr = await _system(client)
    passed: list[str] = []
    rules = (("sysObjectID", by_object_id(profiles, sys_object_id),
              f"sysObjectID {sys_object_id} is under {{key}}"),
             ("sysDescr", by_descr(profiles, sys_descr), "sysDescr matches /{key}/"))
    for rule, candidates, text in rules:
        for key, profile in candidates:
            confirm = await _confirmed(client, profile)
            reason = text.format(key=key)
            if confirm is None:
                passed.append(f"{profile.name} ({reason}, but none of "
                              f"{', '.join(profile.confirm_oids)} answers)")
                continue
            if confirm:
                reason += f" and {confirm} answers"
            return Identification(profile, sys_object_id, sys_descr, rule, reason, tuple(passed))
    for oid, profile in probe_candidates(profiles):
        if await answers(client, oid):
            reason = f"no vendor profile claims it; the standard MIB object {oid} answers"
            return Identification(profile, sys_object_id, sys_descr, "probe", reason,
                                  tuple(passed))
    tried = f"; passed over: {'; '.join(passed)}" if passed else ""
    raise NoProfileMatches(
        f"unknown device: no profile matches sysObjectID {sys_object_id or '?'} "
        f"(sysDescr {sys_descr!r}) and no standard MIB answers{tried}; {hint}")


async def identify(client: SnmpClient, profiles: Iterable[Profile],
                   hint: str = "choose one with --profile") -> tuple[Profile, str, str]:
    """(profile, sysObjectID, sysDescr): identify_device without the reason."""
    found = await identify_device(client, profiles, hint)
    return found.profile, found.sys_object_id, found.sys_descr
