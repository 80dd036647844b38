"""SNMP request planning, computed once per profile: pure functions, tested on their own.

Scalars are fetched by GET in batches of the profile's ``max_oids_per_get``; table columns
(OID patterns with index placeholders) are walked, all columns of a profile side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.collectors.snmp_decode import pattern
from pue_monitor.config.profiles import Profile, SnmpPoint


@dataclass(frozen=True)
class SnmpPlan:
    gets: tuple[tuple[str, ...], ...]  # each one GET request
    walks: tuple[str, ...]  # table columns, walked together
    max_repetitions: int

    @property
    def requests(self) -> int:
        """Requests of one poll, at least (a walk may take more)."""
        return len(self.gets) + (1 if self.walks else 0)


def point_oids(point: SnmpPoint) -> list[str]:
    """Every OID (pattern) a point reads: value, fallbacks, scale helpers, conditions."""
    oids = [point.oid, *(a.oid for a in point.fallback), *(c.oid for c in point.when)]
    return oids + [o for o in (point.decimals, point.entity_scale, point.entity_precision) if o]


def table_columns(oids: list[str]) -> tuple[str, ...]:
    """The distinct columns to walk, dropping any that lies inside another."""
    prefixes = sorted({pattern(o).prefix.rstrip(".") for o in oids},
                      key=lambda p: tuple(int(x) for x in p.split(".")))
    out: list[str] = []
    for prefix in prefixes:
        if not any(prefix.startswith(kept + ".") for kept in out):
            out.append(prefix)
    return tuple(out)


def plan_snmp(profile: Profile, max_oids: int | None = None) -> SnmpPlan:
    """GET batches and walk columns for a profile."""
    size = max_oids or profile.max_oids_per_get
    if size < 1:
        raise ValueError(f"max_oids must be >= 1, got {size}")
    scalars: list[str] = []
    tables: list[str] = []
    for point in profile.snmp_points:
        for oid in point_oids(point):
            (tables if pattern(oid).regex is not None else scalars).append(oid)
    scalars = list(dict.fromkeys(scalars))
    gets = tuple(tuple(scalars[i:i + size]) for i in range(0, len(scalars), size))
    return SnmpPlan(gets, table_columns(tables), profile.max_repetitions)


_PLANS: dict[int, tuple[Profile, SnmpPlan]] = {}


def plan_for(profile: Profile) -> SnmpPlan:
    """plan_snmp, computed once per profile object."""
    cached = _PLANS.get(id(profile))
    if cached is None or cached[0] is not profile:
        cached = _PLANS[id(profile)] = (profile, plan_snmp(profile))
    return cached[1]
