"""`pue-monitor probe` for Modbus: one poll of one unit from a URL, decoded with a profile.

URLs: ``modbus://host[:port]?unit=1`` (Modbus TCP), ``modbus+rtu://host[:port]?unit=1``
(RTU frames through a serial gateway), ``modbus+serial:///dev/ttyUSB0?baud=9600&unit=1``
(with optional ``parity=N|E|O``, ``stopbits=1|2``, ``gap_s=0.01``).
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import ValidationError

from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.service import modbus_connection
from pue_monitor.config.datatypes import MODBUS_TCP_PORT
from pue_monitor.config.model import DEFAULT_TIMEOUT_S, Device, ModbusTarget, Polling
from pue_monitor.config.profiles import Profile
from pue_monitor.store.model import PollResult

SCHEMES = {"modbus": "tcp", "modbus+tcp": "tcp", "modbus+rtu": "rtu_over_tcp",
           "modbus+serial": "serial"}
QUERY_KEYS = {"unit": "unit", "baud": "baud", "parity": "parity", "stopbits": "stopbits",
              "bytesize": "bytesize", "gap_s": "frame_gap_s", "busy_retries": "busy_retries"}


class ProbeUrlError(ValueError):
    """A probe URL that does not name a Modbus target."""


def parse_modbus_url(url: str) -> ModbusTarget:
    """The target a probe URL names.

    :raises ProbeUrlError: naming what is wrong.
    """
    parts = urlsplit(url)
    transport = SCHEMES.get(parts.scheme.lower())
    if transport is None:
        raise ProbeUrlError(f"{url}: scheme must be one of {', '.join(SCHEMES)}")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - set(QUERY_KEYS))
    if unknown:
        raise ProbeUrlError(f"{url}: unknown parameter(s) {', '.join(unknown)} "
                            f"(known: {', '.join(QUERY_KEYS)})")
    fields: dict[str, object] = {"transport": transport}
    fields.update({QUERY_KEYS[k]: v[-1] for k, v in query.items()})
    if transport == "serial":
        fields["device"] = unquote(parts.path) or None
    else:
        if not parts.hostname:
            raise ProbeUrlError(f"{url}: no host")
        try:
            fields.update(host=parts.hostname, port=parts.port or MODBUS_TCP_PORT)
        except ValueError as exc:  # a port that is not a number
            raise ProbeUrlError(f"{url}: {exc}") from None
    try:
        return ModbusTarget.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'target'}: {e['msg']}"
                             for e in exc.errors())
        raise ProbeUrlError(f"{url}: {problems}") from None


async def probe_modbus(url: str, profile: Profile, timeout_s: float = DEFAULT_TIMEOUT_S,
                       retries: int = 0) -> PollResult:
    """Poll the unit a URL names once, as the monitor would, and return what it read."""
    if profile.protocol != "modbus":
        raise ProbeUrlError(f"profile {profile.name!r} is an {profile.protocol} profile")
    target = parse_modbus_url(url)
    device = Device(id="probe", profile=profile.name, modbus=target)
    polling = Polling(timeout_s=timeout_s, retries=retries)
    connection = modbus_connection(target, timeout_s)

    async def keep(_result: PollResult) -> None:
        pass

    try:
        return await DevicePoller("probe", device, profile, polling, connection,
                                  keep).poll_once()
    finally:
        connection.close()


def reading_rows(result: PollResult) -> list[dict]:
    """Each reading as {metric, value, labels, quality} (the probe's --json objects)."""
    return [{"metric": r.metric, "value": r.value, "labels": dict(r.labels),
             "quality": r.quality.value} for r in result.readings]
