"""What collectors hand to the store: canonical readings and poll outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Quality(str, Enum):
    """How far a reading can be trusted."""

    OK = "ok"
    NOT_AVAILABLE = "not_available"  # the device said so (sentinel, noSuchInstance)
    DECODE_ERROR = "decode_error"  # the answer could not be turned into a number


class ErrorKind(str, Enum):
    """Why a poll failed, for per-device error counters."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    DECODE = "decode"
    DEVICE = "device_error"  # the device answered with an error (SNMP errorStatus, Modbus exception)


Labels = tuple[tuple[str, str], ...]


def labels_key(labels: dict[str, str] | Labels) -> str:
    """Canonical text form of labels: ``k=v,k2=v2`` sorted by key; '' for a device total."""
    items = labels.items() if isinstance(labels, dict) else labels
    return ",".join(f"{k}={v}" for k, v in sorted(items))


def parse_labels(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",")) if text else {}


@dataclass(frozen=True)
class Reading:
    """One canonical value from one device at one time."""

    ts: float  # unix seconds, when the answer arrived
    device: str
    metric: str
    value: float | None
    labels: Labels = ()
    quality: Quality = Quality.OK


@dataclass(frozen=True)
class PollResult:
    """Everything one poll of one device produced."""

    device: str
    site: str
    started: float
    duration_s: float
    readings: tuple[Reading, ...] = ()
    error_kind: ErrorKind | None = None
    error: str | None = None
    # Per-point problems in an otherwise successful poll (e.g. one OID missing).
    point_errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_kind is None
