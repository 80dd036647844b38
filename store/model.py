"""What collectors hand to the store: canonical readings and poll outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Quality(str, Enum):
    """How far a reading can be trusted."""

    OK = "ok"
    NOT_AVAILABLE = "not_available"  # the device said so (sentinel, noSuchInstance)
    DECODE_ERROR = "decode_error"  # the answer could not be turned into a number
    # Read while the wall clock stood behind a reading already taken from this device (a
    # clock stepped back): its time cannot be placed, so it is kept out of every figure.
    CLOCK_BACK = "clock_back"


class ErrorKind(str, Enum):
    """Why a poll failed, for per-device error counters."""

    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    DECODE = "decode"
    DEVICE = "device_error"  # the device answered with an error (SNMP errorStatus, Modbus exception)


class HealthState(str, Enum):
    """A device's health: answering with good readings, answering badly, silent, or not
    polled yet. Degraded counts as an error as down does (metrics, alerts)."""

    UP = "up"
    DEGRADED = "degraded"  # answers, but readings fail to decode (or, in the figures,
    #                        are stuck or implausible)
    DOWN = "down"
    UNKNOWN = "unknown"  # never polled


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

    @classmethod
    def made(cls, ts: float, device: str, metric: str, value: float | None,
             labels: Labels = (), quality: Quality = Quality.OK) -> Reading:
        """The same Reading as ``Reading(...)``, made at about a third of the cost: a
        frozen dataclass's __init__ sets each field through object.__setattr__, and the
        decoders make one per value of every poll. Fields only, as the class declares
        them (no __post_init__ to skip)."""
        reading = _new(cls)
        fields = reading.__dict__
        fields["ts"] = ts
        fields["device"] = device
        fields["metric"] = metric
        fields["value"] = value
        fields["labels"] = labels
        fields["quality"] = quality
        return reading


_new = object.__new__


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

    @property
    def undecoded(self) -> int:
        """Readings of this poll the device answered but that could not be decoded."""
        return sum(1 for r in self.readings if r.quality == Quality.DECODE_ERROR)

    @property
    def state(self) -> HealthState:
        """DOWN when the poll failed, DEGRADED when it answered with undecodable readings
        (a device answering garbage is not healthy), else UP."""
        if not self.ok:
            return HealthState.DOWN
        return HealthState.DEGRADED if self.undecoded else HealthState.UP

    def error_counts(self) -> dict[str, int]:
        """What this poll adds to the device's error counters, by kind: the per-point
        problems, each undecodable reading under ``decode``, and a failed poll's kind."""
        counts = dict(self.point_errors)
        undecoded = self.undecoded  # one pass over the readings
        if undecoded:
            kind = ErrorKind.DECODE.value
            counts[kind] = counts.get(kind, 0) + undecoded
        if self.error_kind is not None:
            counts[self.error_kind.value] = counts.get(self.error_kind.value, 0) + 1
        return counts


@dataclass(frozen=True)
class Identified:
    """What a `profile: auto` device was identified as, and why: kept by the store so the
    status page can say why, and handed back to the poller at the next start as a hint it
    confirms instead of identifying the device from scratch."""

    profile: str
    sys_object_id: str = ""  # the agent's, as seen then ('' if it had none)
    reason: str = ""  # the rule that chose the profile, e.g. "sysObjectID ... is under ..."
    ts: float | None = None  # unix seconds when it was identified (None: not recorded)
