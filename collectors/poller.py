"""One asyncio task per device: poll at its slots, decode, hand results to the sink.

Slots come from collectors/schedule.py (a phase per device, on the monotonic clock); a
poll waits for a place under the service's in-flight limit, then reads with the wall
clock's time, which is what its readings carry. A wall clock stepped back (by hand, or
NTP correcting a clock that ran ahead) would give readings older than ones already
stored: until the clock passes the device's latest reading again, its readings are
flagged ``clock_back`` (kept, never used in a figure), so energy never runs backwards nor
jumps when the clock steps. Stepped forward, readings simply skip ahead: the gap is a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from pue_monitor.collectors.decode import decode_modbus, decode_snmp
from pue_monitor.collectors.errors import DeviceError, PollDecodeError, PollError, PollTimeout
from pue_monitor.collectors.modbus_client import ModbusClient, exception_kind
from pue_monitor.collectors.modbus_plan import ModbusRead, plan_profile
from pue_monitor.collectors.schedule import Schedule
from pue_monitor.collectors.snmp_client import SnmpClient
from pue_monitor.collectors.snmp_identify import (
    Identification,
    Known,
    NoProfileMatches,
    confirm_known,
    identify_device,
    probe_candidates,
)
from pue_monitor.collectors.snmp_plan import BUDGET_SLACK_S, SnmpPlan, plan_for
from pue_monitor.collectors.snmp_read import read_answers
from pue_monitor.collectors.stats import CollectionStats
from pue_monitor.collectors.sunspec import locate_model, rebase
from pue_monitor.collectors.totals import (
    FORGET_PART_S,
    PART_BACK,
    PART_FORGOTTEN,
    PART_MISSING,
    PartBefore,
    PartsSeen,
    labels_text,
)
from pue_monitor.config.metrics import COUNTER_METRICS
from pue_monitor.config.model import Device, Polling
from pue_monitor.config.profiles import Profile
from pue_monitor.store.model import ErrorKind, PollResult, Quality

log = logging.getLogger(__name__)

# A device that keeps failing is polled less often: interval x 2^(failures-1), capped.
BACKOFF_AFTER_FAILURES = 2
BACKOFF_MAX_S = 300.0

Sink = Callable[[PollResult], Awaitable[None]]
# Told (device id, profile name, sysObjectID, reason, unix time) when a `profile: auto`
# device has been identified (not when an earlier identification is confirmed).
OnIdentified = Callable[[str, str, str, str, float], None]
NO_MATCH_HINT = ("name its profile in the configuration or add a profile file; "
                 "retried at the backed-off poll rate")


# A poller built without the service's limiter (tests, `probe`) polls without waiting.
_UNLIMITED = contextlib.nullcontext()


class Unidentified(PollDecodeError):
    """An auto device answered, but no profile claims it."""


@dataclass
class _Health:
    failures: int = 0
    # The error kinds of this run of failures already logged: each once, then counted.
    logged: set[str] = field(default_factory=set)
    unmatched_logged: bool = False  # "no profile matches" is told once per poller
    latest_ts: float | None = None  # wall-clock time of the latest poll that answered
    clock_back: bool = False  # polls are flagged until the clock passes latest_ts again


class DevicePoller:
    """Polls one device; never raises out of :meth:`run` for device trouble.

    With ``profile`` None (an SNMP device configured ``profile: auto``) the first poll that
    reaches the agent identifies it among ``candidates``, then polls with that profile.
    ``known``: what it was identified as before (the store's record, at a restart): the
    first poll confirms it cheaply and identifies from scratch only if that fails.
    """

    def __init__(self, site_id: str, device: Device, profile: Profile | None, polling: Polling,
                 client: SnmpClient | ModbusClient, sink: Sink,
                 clock: Callable[[], float] = time.time, *,
                 candidates: Iterable[Profile] = (),
                 on_identified: OnIdentified | None = None,
                 known: Known | None = None,
                 limiter: asyncio.Semaphore | None = None,
                 stats: CollectionStats | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 spread: bool = True, parts_before: Iterable[PartBefore] = ()) -> None:
        self.site_id, self.device, self.profile, self.polling = site_id, device, profile, polling
        self.client, self.sink, self.clock = client, sink, clock
        # Slots on ``monotonic`` (never jumps); timestamps from ``clock`` (the wall clock).
        self.monotonic, self.limiter = monotonic, limiter
        self.stats = stats if stats is not None else CollectionStats()
        self.schedule = Schedule(device.id, polling.interval_s, spread)
        self.attempts = 0  # of the last poll: 1 + its retries
        self.candidates = [p for p in candidates if p.protocol == "snmp"]
        self.on_identified = on_identified
        self.known = known if profile is None else None
        self.identification: Identification | None = None  # how the profile was chosen
        # ``known`` when it no longer fit, and why: told with the new choice, once.
        self._previous: Known | None = None
        self._why_changed = ""
        self._health = _Health()
        self._unmatched_now = False
        self._plan: SnmpPlan | None = None  # the SNMP reads, once the profile is known
        # The parts of each of the profile's totals seen so far (collectors.totals), the
        # store's of before this start included: one missing makes the total not
        # available rather than too small.
        before = tuple(parts_before)
        self._parts = PartsSeen.since_before(profile.totals if profile else (), before)
        # Kept only until an auto device's profile is found (then seeded as above).
        self._parts_before = () if profile is not None else before
        self._budget: tuple[SnmpPlan | None, float] = (None, 0.0)  # (plan, its budget)
        if profile is None:
            if device.protocol != "snmp":
                raise ValueError(f"device {device.id}: a Modbus device needs a named profile "
                                 "(it cannot identify itself)")
            self._probes = len(probe_candidates(self.candidates))
        elif device.protocol == "snmp":
            self._plan = plan_for(profile)
        else:
            # A SunSpec profile is planned once its model has been found on the device.
            self._reads: tuple[ModbusRead, ...] = () if profile.sunspec else plan_profile(
                profile)

    # -- one poll ---------------------------------------------------------------------

    async def poll_once(self) -> PollResult:
        """Poll with retries; the result says what happened, it never raises PollError."""
        started = self.clock()
        # How long it took, on the monotonic clock: a wall-clock step during a poll must
        # not make its duration negative or an hour long.
        began = self.monotonic()
        self._unmatched_now = False
        last: PollError | None = None
        self.attempts = 0
        for _attempt in range(self.polling.retries + 1):
            self.attempts += 1
            try:
                # asyncio.timeout, not wait_for: no task made per poll (wait_for wraps the
                # coroutine in one on Python 3.11).
                async with asyncio.timeout(self._poll_budget()):
                    readings, point_errors = await self._read(started)
            except TimeoutError:
                last = PollTimeout(f"poll exceeded {self._poll_budget() or 0:.1f} s")
                continue
            except PollError as exc:
                last = exc
                if isinstance(exc, DeviceError | Unidentified):
                    break  # the device answered; asking again will not change its mind
                continue
            return PollResult(self.device.id, self.site_id, started, self.monotonic() - began,
                              self._placed(started, readings), point_errors=point_errors)
        assert last is not None
        # A Modbus exception also counts under its code, as a refused block does.
        detail = (getattr(last, "refused", None) or {exception_kind(last.code): 1}
                  if self.device.protocol == "modbus" and isinstance(last, DeviceError) else {})
        return PollResult(self.device.id, self.site_id, started, self.monotonic() - began,
                          error_kind=last.kind, error=str(last) or last.__class__.__name__,
                          point_errors=detail)

    def _placed(self, started: float, readings: list) -> tuple:
        """The readings, flagged ``clock_back`` if the wall clock is behind the device's
        latest poll (told once per episode)."""
        h = self._health
        if h.latest_ts is None or started > h.latest_ts:
            if h.clock_back:
                log.info("device %s: the wall clock is past its latest reading again; "
                         "readings are used again", self.device.id)
                h.clock_back = False
            h.latest_ts = started
            return tuple(readings)
        if not h.clock_back:
            log.warning("device %s: the wall clock went back %.3f s behind its latest "
                        "reading; its readings are flagged clock_back until the clock "
                        "passes that time again", self.device.id, h.latest_ts - started)
            h.clock_back = True
        return tuple(dataclasses.replace(r, value=None, quality=Quality.CLOCK_BACK)
                     if r.quality == Quality.OK else r for r in readings)

    def _poll_budget(self) -> float | None:
        # Every request of one attempt together must fit in the timeout, plus slack for
        # several requests in a row. A Modbus connection bounds each request itself and
        # may be shared: time spent waiting for another unit's turn is not this poll's.
        if self.device.protocol == "modbus":
            return None
        # An SNMP poll's budget comes from the very plan it reads with (read_answers
        # holds the GETs and the walk to their own shares of it).
        if self._plan is None:  # system group, the standard-MIB probes, then one GET
            confirm = 0 if self.known is None else 1 + self._known_oids()
            return self.polling.timeout_s * (2 + self._probes + confirm) + BUDGET_SLACK_S
        if self._budget[0] is not self._plan:  # worked out once per plan
            self._budget = (self._plan, self._plan.budget_s(self.polling.timeout_s))
        return self._budget[1]

    def _known_oids(self) -> int:
        """How many OIDs confirming ``known`` may ask (for the poll's budget)."""
        profile = next((p for p in self.candidates if self.known is not None
                        and p.name == self.known.profile), None)
        return 0 if profile is None else len(profile.confirm_oids or profile.probe_oids)

    async def _identify(self) -> Profile:
        """Identify an auto device as `pue-monitor probe` does, or confirm what it was
        identified as before; a miss is a decode error."""
        if self.known is not None:
            kept = await confirm_known(self.client, self.candidates,  # type: ignore[arg-type]
                                       self.known)
            if isinstance(kept, Identification):
                log.info("device %s (%s) keeps profile %s: %s", self.device.id,
                         self.device.endpoint, kept.profile.name, kept.why)
                return self._adopt(kept)
            # Told once, when the new choice is known (the identification below may fail
            # and be retried at later polls: the previous model is kept to tell it then).
            self._previous, self._why_changed, self.known = self.known, kept, None
        try:
            found = await identify_device(self.client, self.candidates,  # type: ignore[arg-type]
                                          hint=NO_MATCH_HINT)
        except NoProfileMatches as exc:
            self._unmatched_now = True
            if not self._health.unmatched_logged:
                log.warning("device %s (%s): %s", self.device.id, self.device.endpoint, exc)
                self._health.unmatched_logged = True
            raise Unidentified(str(exc)) from None
        if (previous := self._previous) is not None:
            self._previous = None
            was = f"{previous.profile} (sysObjectID {previous.sys_object_id or '?'})"
            now = f"{found.profile.name} (sysObjectID {found.sys_object_id or '?'})"
            if previous.sys_object_id not in (None, found.sys_object_id):
                log.warning("device %s changed model: %s -> %s (%s)", self.device.id, was,
                            now, self._why_changed)
            elif previous.profile != found.profile.name:
                # The same agent, another profile (one shipped or narrowed since).
                log.warning("device %s changes profile: %s -> %s (%s)", self.device.id, was,
                            now, self._why_changed)
            else:
                log.info("device %s identified again as %s: %s", self.device.id,
                         found.profile.name, self._why_changed)
        log.info("device %s (%s) identified as profile %s (sysObjectID %s): %s",
                 self.device.id, self.device.endpoint, found.profile.name,
                 found.sys_object_id or "?", found.why)
        profile = self._adopt(found)
        if self.on_identified is not None:
            try:
                self.on_identified(self.device.id, profile.name, found.sys_object_id,
                                   found.why, self.clock())
            except Exception:  # recording the name must not stop the polling
                log.exception("device %s: could not record its profile", self.device.id)
        return profile

    def _adopt(self, found: Identification) -> Profile:
        self.identification = found
        self.profile, self._plan = found.profile, plan_for(found.profile)
        self._parts = PartsSeen.since_before(found.profile.totals, self._parts_before)
        self._parts_before = ()
        return found.profile

    def _tell_parts(self) -> None:
        """Tell what changed in the parts of the device's totals (collectors.totals)."""
        events, self._parts.events = self._parts.events, []
        device = self.device.id
        for kind, metric, labels in events:
            parts = labels_text(labels)
            if kind == PART_MISSING:
                log.warning("device %s: its %s total is not available: part(s) %s seen "
                            "before do not answer; it stays so until they do, or %d h "
                            "(then it sums the parts that answer)", device, metric, parts,
                            FORGET_PART_S // 3600)
            elif kind == PART_BACK:
                log.info("device %s: part(s) %s of its %s total answer again", device,
                         parts, metric)
            elif kind == PART_FORGOTTEN:
                log.warning("device %s: part(s) %s of its %s total have not answered for "
                            "%d h: forgotten, the total sums the parts that answer", device,
                            parts, metric, FORGET_PART_S // 3600)
            elif metric in COUNTER_METRICS:  # JOINED: its whole register comes in at once
                log.warning("device %s: part(s) %s joined its %s total (a unit added, or "
                            "one the monitor had not seen since it started or had "
                            "forgotten): the rise this brings is not energy; unless "
                            "rated_max_w refuses it, record a replacement at this time "
                            "(old final: the total before, new initial: the total after)",
                            device, parts, metric)
            else:
                log.info("device %s: part(s) %s joined its %s total", device, parts, metric)

    async def _read(self, ts: float) -> tuple[list, dict[str, int]]:
        if self.device.protocol == "snmp":
            if self.profile is None:
                await self._identify()
            assert self.profile is not None and self._plan is not None
            # Each stage held to its own share of the budget when there are two; a lone
            # stage's share is the whole poll's budget, which poll_once already holds.
            plan = self._plan
            stages_timeout = self.polling.timeout_s if plan.gets and plan.walks else None
            answers, refused = await read_answers(self.client,  # type: ignore[arg-type]
                                                  plan, stages_timeout)
            errors = {ErrorKind.DEVICE.value: refused} if refused else {}
            readings = decode_snmp(self.profile, answers, self.device.id, ts, self._parts)
            if self._parts.events:
                self._tell_parts()
            return readings, errors
        assert self.device.modbus is not None and self.profile is not None
        if self.profile.sunspec is not None and not self._reads:
            await self._locate_sunspec(self.profile)
        blocks: dict[int, list[int] | None] = {}
        errors: dict[str, int] = {}
        last_device_error: DeviceError | None = None
        for i, read in enumerate(self._reads):
            try:
                blocks[i] = await self.client.read(  # type: ignore[union-attr]
                    read.function, read.address, read.count, self.device.modbus.unit)
            except DeviceError as exc:
                # One block refused (e.g. a register this firmware lacks): lose that block only.
                # Counted by exception code, so "illegal address" stands apart from "busy".
                blocks[i] = None
                last_device_error = exc
                kind = exception_kind(exc.code)
                errors[kind] = errors.get(kind, 0) + 1
        if last_device_error is not None and all(b is None for b in blocks.values()):
            last_device_error.refused = errors  # type: ignore[attr-defined]
            if self.profile.sunspec is not None:
                self._reads = ()  # the model may have moved (new firmware): walk again
            raise last_device_error
        return decode_modbus(self._reads, blocks, self.device.id, ts, self.profile.totals), errors

    async def _locate_sunspec(self, profile: Profile) -> None:
        """Walk the SunSpec chain and plan the reads where the model sits on this device."""
        assert profile.sunspec is not None and self.device.modbus is not None
        unit = self.device.modbus.unit
        function = profile.modbus_resolved[0].function

        async def read(fc: int, address: int, count: int) -> list[int]:
            return await self.client.read(fc, address, count, unit)  # type: ignore[union-attr]

        found = await locate_model(read, profile.sunspec, function)
        log.info("device %s: SunSpec model %d at %d (chain at %d)", self.device.id,
                 found.model_id, found.address, found.base)
        points = rebase(profile.modbus_resolved, found.address - profile.sunspec.model_at)
        self._reads = plan_profile(profile, points)

    # -- the schedule -------------------------------------------------------------------

    def rest_s(self) -> float:
        """Time from one slot to the next: the interval, longer while the device keeps
        failing (interval x 2^(failures-1), capped)."""
        interval = self.polling.interval_s
        f = self._health.failures
        if f >= BACKOFF_AFTER_FAILURES:
            interval = min(max(BACKOFF_MAX_S, interval), interval * 2 ** (f - 1))
        return interval

    def next_delay(self, now: float) -> float:
        """Seconds from ``now`` (monotonic) to the device's next slot after a poll now."""
        slot, _ = self.schedule.next(now - self.polling.interval_s, now, self.rest_s())
        return max(0.0, slot - now)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll at every slot until ``stop`` is set."""
        slot = self.schedule.first(self.monotonic())
        while not stop.is_set():
            try:
                # asyncio.timeout, not wait_for: no task made per slot of every device.
                async with asyncio.timeout(max(0.0, slot - self.monotonic())):
                    await stop.wait()
                break
            except TimeoutError:
                pass
            await self.poll_slot(slot)
            slot, skipped = self.schedule.next(slot, self.monotonic(), self.rest_s())
            if skipped:
                self.stats.slots_skipped(self.site_id, self.device.id, skipped)

    async def poll_slot(self, slot: float) -> PollResult:
        """Everything :meth:`run` does for one slot once it is due: wait for a place under
        the limit, poll (counted), note the outcome, hand the result to the sink. (Also
        what benchmarks/snmp_poll.py measures as the whole poll path.)"""
        async with self.limiter if self.limiter is not None else _UNLIMITED:
            self.stats.in_flight += 1
            try:
                result = await self._poll_at(slot)
            finally:
                self.stats.in_flight -= 1
        self._note(result)
        await self.sink(result)
        return result

    async def _poll_at(self, slot: float) -> PollResult:
        """One poll for ``slot``, counted: late or not, attempts, answered, duration."""
        late = self.schedule.is_late(slot, self.monotonic())
        self.stats.poll_started(self.site_id, self.device.id, late)
        try:
            result = await self.poll_once()
        except Exception:  # a bug must not kill the other devices' schedules
            log.exception("device %s: unexpected error while polling", self.device.id)
            result = PollResult(self.device.id, self.site_id, self.clock(), 0.0,
                                error_kind=ErrorKind.DECODE, error="internal error")
        self.stats.poll_done(result, self.attempts)
        return result

    def _note(self, result: PollResult) -> None:
        """Log the first failure and the recovery; count the rest silently."""
        h = self._health
        if result.ok:
            if h.logged:
                log.info("device %s (%s) is back after %d failed polls", self.device.id,
                         self.device.endpoint, h.failures)
            h.failures = 0
            h.logged.clear()
            return
        h.failures += 1
        kind = result.error_kind.value if result.error_kind else "?"
        if not h.logged and self._unmatched_now:
            h.logged.add(kind)  # _identify has said it, in its own words
        elif kind not in h.logged:
            log.warning("device %s (%s) poll failed: %s: %s (further %s failures are "
                        "counted, not logged)", self.device.id, self.device.endpoint, kind,
                        result.error, kind)
            h.logged.add(kind)
        else:
            log.debug("device %s failed again: %s", self.device.id, result.error)
