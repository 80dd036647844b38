"""SNMP request planning, computed once per profile: pure functions, tested on their own.

Scalars are fetched by GET in batches of the profile's ``max_oids_per_get``; table columns
(OID patterns with index placeholders) are walked, all columns of a profile side by side.
The plan also gives a poll its time: the timeout once per request, plus slack.
"""

from __future__ import annotations

from dataclasses import dataclass

from pue_monitor.collectors.snmp_decode import pattern
from pue_monitor.config.profiles import Profile, SnmpPoint

# Added to each stage's budget (the GETs, the walk): several requests in a row, the event
# loop serving other devices between them.
BUDGET_SLACK_S = 0.5


@dataclass(frozen=True)
class SnmpPlan:
    gets: tuple[tuple[str, ...], ...]  # each one GET request
    walks: tuple[str, ...]  # table columns, walked together
    max_repetitions: int

    @property
    def requests(self) -> int:
        """Requests of one poll, at least (a walk may take more)."""
        return len(self.gets) + (1 if self.walks else 0)

    @property
    def walk_requests(self) -> int:
        """Requests the walk is given time for: one per column walked.

        The rounds a walk takes depend on its tables' rows, unknown before it runs: on
        v2c/v3 each GETBULK round carries a few rows of every column, on v1 each GETNEXT
        round one row. This is an allowance, not a count; each round is also bounded by
        the client's own timeout, which is what catches an agent that stops answering.
        """
        return len(self.walks)

    def gets_budget_s(self, timeout_s: float) -> float:
        """Time for all the GETs together: the timeout once per GET, plus slack."""
        return timeout_s * len(self.gets) + BUDGET_SLACK_S

    def walk_budget_s(self, timeout_s: float) -> float:
        """Time for the walk: the timeout once per column walked, plus slack."""
        return timeout_s * self.walk_requests + BUDGET_SLACK_S

    def budget_s(self, timeout_s: float) -> float:
        """Time for one poll: its stages' budgets together (one request's if it has none)."""
        stages = [self.gets_budget_s(timeout_s)] if self.gets else []
        stages += [self.walk_budget_s(timeout_s)] if self.walks else []
        return sum(stages) if stages else timeout_s + BUDGET_SLACK_S


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
