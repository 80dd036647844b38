"""The canonical vocabulary: metric names (which carry their unit), roles, unit constants."""

from __future__ import annotations

from enum import Enum

# Canonical metrics. The suffix is the unit; a reading of a phase, line or outlet
# carries a label saying which one, the device total carries none.
METRICS: dict[str, str] = {
    "active_power_w": "Active power (W)",
    "active_energy_kwh": "Active energy, cumulative counter (kWh)",
    "apparent_power_va": "Apparent power (VA)",
    "current_a": "RMS current (A)",
    "voltage_v": "RMS voltage (V)",
    "frequency_hz": "Frequency (Hz)",
    "power_factor": "Power factor (0..1)",
    "load_pct": "Load in percent of rated capacity (%)",
    "temperature_c": "Temperature (°C)",
    "water_m3": "Water volume, cumulative counter (m³)",
}

# Metrics that are cumulative counters rather than gauges.
COUNTER_METRICS = frozenset({"active_energy_kwh", "water_m3"})

POWER_METRIC = "active_power_w"
ENERGY_METRIC = "active_energy_kwh"
WATER_METRIC = "water_m3"

# Label keys a profile may attach to a reading. `path` says which side of a UPS a reading
# is on (input, output, bypass, battery); `unit`, `inlet` and `cord` come from the table
# indexes of daisy-chained rack PDUs.
LABEL_KEYS = frozenset({"phase", "line", "outlet", "bank", "sensor", "circuit",
                        "path", "unit", "inlet", "cord"})

WH_PER_KWH = 1000.0
W_PER_KW = 1000.0
SECONDS_PER_HOUR = 3600.0
JOULES_PER_KWH = 3.6e6
LITRES_PER_M3 = 1000.0


class Role(str, Enum):
    """What a meter's energy means for the site's PUE (ISO/IEC 30134-2 boundary)."""

    FACILITY = "facility"  # energy entering the data center boundary: summed into E_DC
    IT = "it"  # IT equipment energy: summed into E_IT
    EXCLUDE = "exclude"  # non-data-center load inside the boundary: subtracted from E_DC
    COOLING = "cooling"  # sub-meters, for the breakdown and partial PUE
    POWER_DISTRIBUTION = "power_distribution"
    LIGHTING = "lighting"
    OTHER = "other"
    RENEWABLE = "renewable"  # on-site or contracted renewable energy: REF
    REUSE = "reuse"  # energy reused outside the data center (heat): ERF
    WATER = "water"  # site water meter: WUE
    MONITOR = "monitor"  # watched for health only; counts toward nothing


# Roles whose energy forms the PUE ratio itself; sub-meters of the boundary; the rest.
RATIO_ROLES = frozenset({Role.FACILITY, Role.IT, Role.EXCLUDE})
SUBMETER_ROLES = frozenset({Role.COOLING, Role.POWER_DISTRIBUTION, Role.LIGHTING, Role.OTHER})
# Roles that measure no energy: no 15-minute blocks, no part in any energy figure.
NO_ENERGY_ROLES = frozenset({Role.WATER, Role.MONITOR})


class MeasurementPoint(str, Enum):
    """Where IT energy is measured; decides the PUE category."""

    UPS_OUTPUT = "ups_output"
    PDU_OUTPUT = "pdu_output"
    IT_INPUT = "it_input"
