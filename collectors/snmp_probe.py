"""`pue-monitor probe` for SNMP: one poll of one agent from a URL, its profile given or
identified by sysObjectID.

URLs: ``snmp://[user@]host[:port]?version=2c&community=...`` and for v3
``snmp://user@host?version=3&auth_protocol=sha256&auth_key=...&priv_protocol=aes128&priv_key=...&context=...``;
``engine=fast|reference`` picks the SNMP engine as ``polling.snmp_engine`` does.
A value written ``${VAR}`` is taken from the environment, so secrets stay out of shell
history; the URL is never echoed with its query.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ValidationError

from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.snmp_engine import choose_engine, snmp_client_for
from pue_monitor.collectors.snmp_identify import identify_device
from pue_monitor.config.model import (DEFAULT_TIMEOUT_S, SNMP_ENGINES, SNMP_PORT, Device, Polling,
                                      SnmpTarget)
from pue_monitor.config.profiles import Profile
from pue_monitor.store.model import PollResult

SCHEME = "snmp"
QUERY_KEYS = ("version", "community", "auth_protocol", "auth_key", "priv_protocol",
              "priv_key", "context", "engine")
ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class SnmpUrlError(ValueError):
    """A probe URL that does not name an SNMP target."""


@dataclass(frozen=True)
class Probed:
    profile: str
    result: PollResult
    note: str = ""


def _value(raw: str, env: Mapping[str, str]) -> str:
    match = ENV_REF.match(raw)
    if match is None:
        return raw
    if match.group(1) not in env:
        raise SnmpUrlError(f"environment variable {match.group(1)} is not set")
    return env[match.group(1)]


def parse_snmp_url(url: str, env: Mapping[str, str] | None = None) -> SnmpTarget:
    """The target a probe URL names.

    :raises SnmpUrlError: naming what is wrong (never echoing secrets).
    """
    env = os.environ if env is None else env
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname or ''}"
    if parts.scheme.lower() != SCHEME:
        raise SnmpUrlError(f"{shown}: scheme must be {SCHEME}")
    if not parts.hostname:
        raise SnmpUrlError(f"{shown}: no host")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(QUERY_KEYS))
    if unknown:
        raise SnmpUrlError(f"{shown}: unknown parameter(s) {', '.join(unknown)} "
                           f"(known: {', '.join(QUERY_KEYS)})")
    fields: dict[str, object] = {k: _value(v[-1], env) for k, v in query.items()
                                 if k != "engine"}
    if parts.username:
        fields["user"] = unquote(parts.username)
        fields.setdefault("version", "3")
    try:
        fields.update(host=parts.hostname, port=parts.port or SNMP_PORT)
        return SnmpTarget.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'target'}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        raise SnmpUrlError(f"{shown}: {problems}") from None
    except ValueError as exc:  # a port that is not a number
        raise SnmpUrlError(f"{shown}: {exc}") from None


def snmp_engine_of(url: str) -> str | None:
    """The URL's ``engine`` parameter (None: the default choice).

    :raises SnmpUrlError: an unknown engine.
    """
    parts = urlsplit(url)
    engine = (parse_qs(parts.query).get("engine") or [None])[-1]
    if engine is not None and engine not in SNMP_ENGINES:
        raise SnmpUrlError(f"{parts.scheme}://{parts.hostname or ''}: engine must be one of "
                           f"{', '.join(SNMP_ENGINES)}, not {engine!r}")
    return engine


async def probe_snmp(url: str, profile: Profile | None, profiles: Mapping[str, Profile],
                     timeout_s: float = DEFAULT_TIMEOUT_S) -> Probed:
    """Poll the agent a URL names once, as the monitor would.

    :raises SnmpUrlError, NoProfileMatches, PollError: the operator is told which.
    """
    target = parse_snmp_url(url)
    engine = snmp_engine_of(url)
    try:
        choose_engine(target, engine)
    except ValueError as exc:
        raise SnmpUrlError(f"{SCHEME}://{target.host}: {exc}") from None
    client = snmp_client_for(target, timeout_s, retries=0, engine=engine)
    try:
        note = ""
        if profile is None:
            found = await identify_device(client, profiles.values())
            profile = found.profile
            passed = f"; passed over: {'; '.join(found.passed_over)}" if found.passed_over else ""
            note = f"profile {profile.name} (by {found.rule}: {found.why}{passed})"
        elif profile.protocol != "snmp":
            raise SnmpUrlError(f"profile {profile.name!r} is a {profile.protocol} profile")
        device = Device(id="probe", profile=profile.name, snmp=target)

        async def keep(_result: PollResult) -> None:
            pass

        result = await DevicePoller("probe", device, profile,
                                    Polling(timeout_s=timeout_s, retries=0), client,
                                    keep).poll_once()
        return Probed(profile.name, result, note)
    finally:
        client.close()
