"""One SNMP read of a profile: its GETs, then its table walk, through the narrow client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from pue_monitor.collectors.errors import DeviceError, PollTimeout
from pue_monitor.collectors.snmp_client import SnmpClient
from pue_monitor.collectors.snmp_plan import SnmpPlan


async def read_answers(client: SnmpClient, plan: SnmpPlan,
                       timeout_s: float | None = None) -> tuple[dict[str, object], int]:
    """(answers by OID, requests the agent refused). A refused request loses its own
    objects only; if every request is refused the last refusal is raised.

    With ``timeout_s`` the GETs together, then the walk, must finish within the plan's
    budget for each (SnmpPlan.gets_budget_s, walk_budget_s); beyond it PollTimeout.
    """
    if timeout_s is None and not plan.walks and len(plan.gets) == 1:
        # The usual plan, one GET: its refusal is every request's (raised), its answer
        # the whole answer.
        return await client.get(plan.gets[0]), 0
    answers: dict[str, object] = {}
    refused: list[DeviceError] = []

    async def ask(call: Awaitable[dict[str, object]]) -> None:
        try:
            answers.update(await call)
        except DeviceError as exc:
            refused.append(exc)

    async def gets() -> None:
        for oids in plan.gets:
            await ask(client.get(oids))

    async def walk() -> None:
        await ask(client.walk(plan.walks, plan.max_repetitions))

    stages = [(gets, plan.gets_budget_s, "GETs")] if plan.gets else []
    stages += [(walk, plan.walk_budget_s, "walk")] if plan.walks else []
    for stage, budget, name in stages:
        if timeout_s is None:
            await stage()
            continue
        try:
            async with asyncio.timeout(budget(timeout_s)):  # no task per stage, unlike wait_for
                await stage()
        except TimeoutError:
            raise PollTimeout(f"{name} not done within {budget(timeout_s):.1f} s") from None
    if refused and len(refused) == len(plan.gets) + (1 if plan.walks else 0):
        raise refused[-1]
    return answers, len(refused)
