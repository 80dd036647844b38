"""One SNMP read of a profile: its GETs, then its table walk, through the narrow client."""

from __future__ import annotations

from pue_monitor.collectors.errors import DeviceError
from pue_monitor.collectors.snmp_client import SnmpClient
from pue_monitor.collectors.snmp_plan import SnmpPlan


async def read_answers(client: SnmpClient, plan: SnmpPlan) -> tuple[dict[str, object], int]:
    """(answers by OID, requests the agent refused). A refused request loses its own
    objects only; if every request is refused the last refusal is raised."""
    answers: dict[str, object] = {}
    refused: list[DeviceError] = []
    calls = [(client.get, (oids,)) for oids in plan.gets]
    if plan.walks:
        calls.append((client.walk, (plan.walks, plan.max_repetitions)))  # type: ignore[arg-type]
    for call, args in calls:
        try:
            answers.update(await call(*args))  # type: ignore[operator]
        except DeviceError as exc:
            refused.append(exc)
    if refused and len(refused) == len(calls):
        raise refused[-1]
    return answers, len(refused)
