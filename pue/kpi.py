"""Site PUE over a period: ΣE_DC / ΣE_IT over the same covered time, never a mean of ratios."""

from __future__ import annotations

import operator as op
from decimal import ROUND_HALF_UP, Decimal
from dataclasses import dataclass, field

from pue_monitor.config.metrics import RATIO_ROLES, MeasurementPoint, Role
from pue_monitor.pue.energy import (
    MeterEnergy,
    Span,
    difference_share,
    intersect_spans,
    span_seconds,
)
from pue_monitor.pue.quality import COUNTED, MeterQuality

METHOD_VERSION = ("pue-monitor/4 ISO/IEC 30134-2 energy ratio, common-coverage spans "
                  "(sub-meters too); resets, step-backs, readings out of line, stuck and "
                  "implausible spans (negative power, a meter swap's step out of line) not "
                  "measured, wraps unwound")

# Status of a figure. Only "ok" figures are judged against the threshold.
OK, INCOMPLETE, INVALID, NO_DATA = "ok", "incomplete", "invalid", "no_data"

OPERATORS = {"<=": op.le, "<": op.lt}
# PUE is published with two decimals (1,40); compliance is judged on that figure.
REPORT_DECIMALS = 2


@dataclass(frozen=True)
class MeterInput:
    """One meter as the PUE step sees it: its role, share and energy source."""

    device: str
    role: Role
    energy: MeterEnergy
    share: float = 1.0
    measurement_point: MeasurementPoint | None = None


@dataclass(frozen=True)
class MeterFigure:
    """What one meter contributed, for the audit trail."""

    device: str
    role: str
    share: float
    method: str
    energy_kwh: float | None  # over the spans used, share applied
    covered_s: float  # seconds of the period this meter measured on its own
    resets: int = 0  # resets whose reading after lies in the period
    # Seconds of the common time (the spans the ratio is taken over) this meter measured:
    # all of it for facility, IT and exclude meters; a sub-meter may have missed some.
    common_s: float = 0.0
    # Counter against the meter's own integrated power, over the time both measured:
    # (counter kWh, power kWh, |difference| / counter), share not applied.
    cross_check: tuple[float, float, float | None] | None = None
    # Every flagged span of the meter overlapping the period, with counts by kind (empty
    # where the figure comes from stored blocks, which keep counts only).
    quality: MeterQuality = field(default_factory=MeterQuality)
    # Flags ending in the period, by quality.COUNTED group (reset, step_back, wrap, stuck,
    # implausible): whether the period was read from blocks or recomputed, these add up.
    counted: dict[str, int] = field(default_factory=dict)
    # Where an IT meter measured (its setting over the parts of this figure).
    measurement_point: str | None = None


@dataclass(frozen=True)
class PueResult:
    """An interval PUE with its category, coverage, status and compliance."""

    site: str
    start: float
    end: float
    window: str
    category: int
    pue: float | None
    facility_energy_kwh: float
    it_energy_kwh: float
    coverage: float
    status: str
    threshold: float
    operator: str
    compliant: bool | None
    meters: tuple[MeterFigure, ...] = field(default=())
    method_version: str = METHOD_VERSION

    @property
    def category_label(self) -> str:
        return f"PUE{self.category}"


def pue_category(points: list[MeasurementPoint | None]) -> int:
    """Category from where IT energy is measured: 3 all IT input, 2 PDU or IT input, else 1."""
    if points and all(p == MeasurementPoint.IT_INPUT for p in points):
        return 3
    if points and all(p in (MeasurementPoint.PDU_OUTPUT, MeasurementPoint.IT_INPUT)
                      for p in points):
        return 2
    return 1


def common_spans(meters: list[MeterInput], start: float, end: float) -> list[Span]:
    """Time covered by every meter that enters the ratio (facility, IT, exclusions)."""
    spans: list[Span] | None = None
    for meter in meters:
        if meter.role not in RATIO_ROLES:
            continue
        own = meter.energy.spans(start, end)
        spans = own if spans is None else intersect_spans(spans, own)
    return spans or []


def reported(pue: float) -> float:
    """The PUE as published: rounded half-up to REPORT_DECIMALS."""
    return float(Decimal(repr(pue)).quantize(Decimal(1).scaleb(-REPORT_DECIMALS),
                                             rounding=ROUND_HALF_UP))


def judge(pue: float | None, status: str, threshold: float, operator: str) -> bool | None:
    """Compliance is true or false only for an ``ok`` figure.

    The figure is judged as it is reported (two decimals), so a page showing "1,40"
    never says "over 1,4" because of float noise in the last digit.
    """
    if status != OK or pue is None:
        return None
    return bool(OPERATORS[operator](reported(pue), threshold))


@dataclass(frozen=True)
class MeterInfo:
    """A meter's identity in the ratio, without its data."""

    device: str
    role: Role
    share: float = 1.0
    measurement_point: MeasurementPoint | None = None


@dataclass(frozen=True)
class MeterPart:
    """One meter over one stretch: raw energy (share not applied) over the spans used."""

    energy_kwh: float | None
    covered_s: float  # what this meter measured on its own
    method: str
    resets: int = 0
    cross_check: tuple[float, float] | None = None  # (counter kWh, power kWh)
    common_s: float = 0.0  # what it measured of the part's common time
    quality: MeterQuality = field(default_factory=MeterQuality)  # flags overlapping the part
    # Flags ending in the part, by quality.COUNTED group: from the flags of a part
    # recomputed from readings, from the stored blocks' counts otherwise.
    counted: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    """One stretch of a period, reduced: the seconds every ratio meter covered (the spans
    both sides are taken over) and each meter's energy. Parts of a period add up."""

    start: float
    end: float
    common_s: float
    meters: dict[str, MeterPart]
    # The meters' settings in force over this part, where they differ from the ones
    # combine is given (settings with history, config.history): each part's energy goes
    # to the side of the ratio its meter's role had then, with the share it had then.
    infos: tuple[MeterInfo, ...] | None = None


def info(meter: MeterInput) -> MeterInfo:
    return MeterInfo(meter.device, meter.role, meter.share, meter.measurement_point)


def _with(meter: MeterInput, energy: MeterEnergy) -> MeterInput:
    """dataclasses.replace(meter, energy=energy), without its introspection."""
    if energy is meter.energy:
        return meter
    return MeterInput(meter.device, meter.role, energy, meter.share, meter.measurement_point)


def reduce_part(meters: list[MeterInput], start: float, end: float) -> Part:
    """Energy of each meter over [start, end], all over the common spans of the ratio
    meters (a sub-meter over the part of them it measured): every figure of a result,
    partial PUE and balance included, compares the same time."""
    if end <= start:
        raise ValueError(f"empty period: {start} .. {end}")
    qualities = {m.device: m.energy.quality(start, end) for m in meters}
    meters = [_with(m, m.energy.for_window(start, end)) for m in meters]
    spans = common_spans(meters, start, end)
    # A counter resolves the window but perhaps not the shorter common spans the ratio
    # uses (another meter's gap cut them): judge its step again over those, and again
    # after each switch to power narrows them (at most once per meter).
    for _ in meters:
        switched = False
        for i, meter in enumerate(meters):
            used = spans if meter.role in RATIO_ROLES else intersect_spans(
                spans, meter.energy.spans(start, end))
            chosen = meter.energy.for_spans(used, start, end)
            if chosen is not meter.energy:
                meters[i], switched = _with(meter, chosen), True
        if not switched:
            break
        spans = common_spans(meters, start, end)
    out = {}
    for meter in meters:
        own = meter.energy.spans(start, end)
        used = spans if meter.role in RATIO_ROLES else intersect_spans(spans, own)
        counter = meter.energy.counter
        resets = (counter.resets_in(start, end)
                  if counter is not None and meter.energy.method == "counter" else 0)
        out[meter.device] = MeterPart(
            energy_kwh=meter.energy.energy(used) if used else None,
            covered_s=span_seconds(own), method=meter.energy.method, resets=resets,
            cross_check=meter.energy.cross_check(start, end)
            if meter.energy.method == "counter" else None, common_s=span_seconds(used),
            quality=qualities[meter.device],
            # Resets as the meter's resets field counts them (its counter's, when the
            # counter is the source), as a stored block does.
            counted=qualities[meter.device].ending_in(start, end) | {"reset": resets})
    return Part(start, end, span_seconds(spans), out)


def combine(site: str, meters: list[MeterInfo], parts: list[Part], start: float, end: float,
            *, window: str = "", threshold: float = 1.4, operator: str = "<=",
            coverage_threshold: float = 0.95) -> PueResult:
    """PUE = (ΣE_facility − ΣE_exclude) / ΣE_IT over the parts of [start, end]."""
    if end <= start:
        raise ValueError(f"empty period: {start} .. {end}")
    if operator not in OPERATORS:
        raise ValueError(f"unknown threshold operator {operator!r}")
    # A meter whose role, share or measurement point changed within the period is one
    # figure per setting (device, role, share, point), each over the parts it held in.
    groups: dict[MeterInfo, list[MeterPart]] = {meter: [] for meter in meters}
    for part in parts:
        held = {m.device: m for m in (part.infos if part.infos is not None else meters)}
        for device, piece in part.meters.items():
            meter = held.get(device)
            if meter is not None:
                groups.setdefault(meter, []).append(piece)
    # Where IT energy was measured over the parts (the settings they held); the given
    # meters' when there are none.
    held_it = [m for m, pieces in groups.items() if m.role == Role.IT and pieces]
    category = pue_category([m.measurement_point for m in held_it or
                             [m for m in meters if m.role == Role.IT]])
    covered = sum(p.common_s for p in parts)
    coverage = covered / (end - start)
    e_dc = e_it = 0.0
    negative = False
    figures = []
    for meter, pieces in groups.items():
        if not pieces and meter not in meters:
            continue
        # One pass over the pieces (a yearly report combines thousands): each sum adds
        # in the pieces' order from 0, as sum() would.
        raw_kwh = covered_s = common_s = resets = by_counter = by_power = 0
        measured = checked = False
        methods: set[str] = set()
        counted = dict.fromkeys(COUNTED, 0)
        for x in pieces:
            if x.energy_kwh is not None:
                raw_kwh += x.energy_kwh
                measured = True
            if x.cross_check is not None:
                by_counter += x.cross_check[0]
                by_power += x.cross_check[1]
                checked = True
            covered_s += x.covered_s
            common_s += x.common_s
            resets += x.resets
            methods.update(x.method.split("+"))
            for name, n in x.counted.items():
                if name in counted:
                    counted[name] += n
        energy = raw_kwh * meter.share if measured else None
        negative |= energy is not None and energy < 0
        if energy is not None and meter.role == Role.FACILITY:
            e_dc += energy
        elif energy is not None and meter.role == Role.EXCLUDE:
            e_dc -= energy
        elif energy is not None and meter.role == Role.IT:
            e_it += energy
        methods.discard("none")
        check = (by_counter, by_power, difference_share(by_counter, by_power)) \
            if checked else None
        figures.append(MeterFigure(
            device=meter.device, role=meter.role.value, share=meter.share,
            method="+".join(sorted(methods)) or "none", energy_kwh=energy,
            covered_s=covered_s, resets=resets, cross_check=check, common_s=common_s,
            quality=MeterQuality.merge([x.quality for x in pieces]), counted=counted,
            measurement_point=meter.measurement_point.value
            if meter.measurement_point is not None else None))

    pue: float | None = None
    if covered <= 0:
        status = NO_DATA
    elif e_it <= 0 or e_dc < 0 or negative or e_it > e_dc:
        status = INVALID
        pue = e_dc / e_it if e_it > 0 else None
    else:
        pue = e_dc / e_it
        status = OK if coverage >= coverage_threshold else INCOMPLETE
    return PueResult(
        site=site, start=start, end=end, window=window, category=category, pue=pue,
        facility_energy_kwh=e_dc, it_energy_kwh=e_it, coverage=coverage, status=status,
        threshold=threshold, operator=operator,
        compliant=judge(pue, status, threshold, operator), meters=tuple(figures))


def interval_pue(site: str, meters: list[MeterInput], start: float, end: float, *,
                 window: str = "", threshold: float = 1.4, operator: str = "<=",
                 coverage_threshold: float = 0.95) -> PueResult:
    """PUE over [start, end] from the meters' raw series (one part)."""
    if end <= start:
        raise ValueError(f"empty period: {start} .. {end}")
    return combine(site, [info(m) for m in meters], [reduce_part(meters, start, end)], start,
                   end, window=window, threshold=threshold, operator=operator,
                   coverage_threshold=coverage_threshold)
