"""Which SNMP engine polls a target: gufo-snmp ("fast", the default) wherever it can,
pysnmp ("reference") for what it cannot do, chosen per device and said once in the log."""

from __future__ import annotations

import logging

from pue_monitor.collectors.snmp_client import PysnmpClient
from pue_monitor.collectors.snmp_gufo import GufoClient
from pue_monitor.config.model import SnmpTarget, fast_engine_gap

log = logging.getLogger(__name__)

FAST, REFERENCE = "fast", "reference"
# Devices whose fallback to the reference engine was already logged (once per device).
_TOLD: set[str] = set()


def choose_engine(target: SnmpTarget, setting: str | None) -> tuple[str, str | None]:
    """(engine, why the reference engine replaces the fast one, or None).

    :raises ValueError: ``setting`` is an explicit "fast" the target cannot have (the
        configuration loader refuses that before; this guards other callers).
    """
    if setting == REFERENCE:
        return REFERENCE, None
    reason = fast_engine_gap(target.version, target.context)
    if reason is None:
        return FAST, None
    if setting == FAST:
        raise ValueError(f"snmp_engine fast cannot poll this target: {reason}")
    return REFERENCE, reason


def snmp_client_for(target: SnmpTarget, timeout_s: float, retries: int = 0,
                    engine: str | None = None, device: str | None = None,
                    receive_buffer_bytes: int = 0) -> GufoClient | PysnmpClient:
    """The client for a configured SnmpTarget, secrets unwrapped only here.

    ``receive_buffer_bytes`` sizes the reference engine's shared v1/v2c socket (the fast
    engine has a socket per device)."""
    def secret(value) -> str | None:
        return None if value is None else value.get_secret_value()

    chosen, reason = choose_engine(target, engine)
    name = device or f"{target.host}:{target.port}"
    if reason is not None and name not in _TOLD:
        _TOLD.add(name)
        log.info("device %s: SNMP engine reference instead of fast: %s", name, reason)
    common = dict(timeout_s=timeout_s, retries=retries, user=target.user,
                  auth_protocol=target.auth_protocol, auth_key=secret(target.auth_key),
                  priv_protocol=target.priv_protocol, priv_key=secret(target.priv_key),
                  context=target.context)
    if chosen == FAST:
        return GufoClient(target.host, target.port, secret(target.community) or "",
                          target.version, **common)
    return PysnmpClient(target.host, target.port, secret(target.community) or "",
                        target.version, receive_buffer_bytes=receive_buffer_bytes, **common)
