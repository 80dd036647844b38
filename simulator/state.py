"""The simulator's device state on disk, so energy registers outlive a restart.

A real meter keeps counting while nobody reads it and never starts again from a made-up
value. The simulator therefore saves every energy register (with the time it was saved
and the counter resets faults injected) to one JSON file, atomically, every few seconds
and on a clean stop. On start it continues from that file and adds the energy of the time
it was stopped, integrated over the same deterministic physics in coarse steps.

Why a kill -9 never makes a register step back: a save holds each register's value, last
sample time and last power at a tick already served. On restart the gap from that tick to
now is integrated again by the same physics, so the seconds lost after the last save are
counted once more (plus the time the restart took): the continued register is at or above
every value served before the kill. Saves therefore need not be made before serving.

Encoding and decoding are pure (text in, state out); only load_state and save_state touch
the file system.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

STATE_FILE = "simulator-state.json"
STATE_VERSION = 1
SAVE_EVERY_S = 5.0  # a kill -9 loses at most this much state (re-integrated on restart)
MAX_CATCH_UP_S = 3 * 86_400.0  # a longer stop is counted as if the meters were off before
CATCH_UP_STEP_S = 300.0  # coarse: the physics is smooth over minutes


class StateError(ValueError):
    """A state file that cannot be used, with its path and the bad value."""


@dataclass(frozen=True)
class RegisterState:
    """One energy register: its reading and where its integration stood."""

    kwh: float
    last_t: float | None = None
    last_w: float = 0.0
    resets: int = 0  # counter resets injected by faults so far


@dataclass(frozen=True)
class SimulatorState:
    """Every register of a running simulator at ``saved_at`` (its last tick)."""

    saved_at: float
    seed: int
    devices: dict[str, RegisterState] = field(default_factory=dict)
    # site id -> {"facility": ..., "it": ...}: the ground-truth totals /truth serves
    sites: dict[str, dict[str, RegisterState]] = field(default_factory=dict)


def encode_state(state: SimulatorState) -> str:
    return json.dumps({"version": STATE_VERSION, **asdict(state)}, indent=1, sort_keys=True)


def _number(value: object, where: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise StateError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _register(raw: object, where: str) -> RegisterState:
    if not isinstance(raw, dict):
        raise StateError(f"{where}: expected an object, got {raw!r}")
    kwh = _number(raw.get("kwh"), f"{where}.kwh")
    assert kwh is not None
    if kwh < 0:
        raise StateError(f"{where}.kwh: a register cannot be negative, got {kwh!r}")
    resets = raw.get("resets", 0)
    if isinstance(resets, bool) or not isinstance(resets, int) or resets < 0:
        raise StateError(f"{where}.resets: expected a count, got {resets!r}")
    return RegisterState(kwh, _number(raw.get("last_t"), f"{where}.last_t", optional=True),
                         _number(raw.get("last_w", 0.0), f"{where}.last_w") or 0.0, resets)


def decode_state(text: str, source: str = "<state>") -> SimulatorState:
    """Parse a state file's text.

    :raises StateError: not JSON, another version, or a missing or bad value (named).
    """
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise StateError(f"{source}: not JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise StateError(f"{source}: expected an object, got {type(raw).__name__}")
    if raw.get("version") != STATE_VERSION:
        raise StateError(f"{source}: version {raw.get('version')!r}, expected {STATE_VERSION}")
    saved_at = _number(raw.get("saved_at"), f"{source}: saved_at")
    seed = raw.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise StateError(f"{source}: seed: expected an integer, got {seed!r}")
    devices, sites = raw.get("devices", {}), raw.get("sites", {})
    if not isinstance(devices, dict) or not isinstance(sites, dict):
        raise StateError(f"{source}: devices and sites must be objects")
    out_sites = {}
    for site_id, totals in sites.items():
        if not isinstance(totals, dict) or set(totals) != {"facility", "it"}:
            raise StateError(f"{source}: sites.{site_id}: expected facility and it")
        out_sites[site_id] = {k: _register(v, f"{source}: sites.{site_id}.{k}")
                              for k, v in totals.items()}
    assert saved_at is not None
    return SimulatorState(saved_at, seed, {
        did: _register(reg, f"{source}: devices.{did}") for did, reg in devices.items()},
        out_sites)


def load_state(path: Path) -> SimulatorState | None:
    """The saved state, or None (logged) when there is none or it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        log.info("no simulator state at %s: the energy registers start fresh", path)
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read simulator state %s (%s): the energy registers start fresh",
                    path, exc)
        return None
    try:
        return decode_state(text, str(path))
    except StateError as exc:
        log.warning("unusable simulator state (%s): the energy registers start fresh", exc)
        return None


def save_state(path: Path, state: SimulatorState) -> None:
    """Write the state atomically: a reader sees the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(encode_state(state))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def catch_up_times(saved_at: float, now: float, step_s: float = CATCH_UP_STEP_S,
                   max_gap_s: float = MAX_CATCH_UP_S) -> tuple[float, list[float]]:
    """Where integration over a stop starts, and the sample times after it (all < now).

    The tick at ``now`` closes the last step. A stop longer than max_gap_s is integrated
    over its last max_gap_s only (bounded work); a clock that went back integrates nothing.
    """
    if now <= saved_at:
        return saved_at, []
    start = max(saved_at, now - max_gap_s)
    count = math.ceil((now - start) / step_s) - 1
    return start, [start + step_s * i for i in range(1, count + 1)]
