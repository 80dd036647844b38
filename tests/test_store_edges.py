"""Where a device's data starts and what lies around a stretch: index seeks over the
metrics blocks are made from, never a scan of all the device's rows."""

from __future__ import annotations

import pytest

from pue_monitor.store.model import Reading

READINGS = [  # (ts, device, metric, labels, value)
    (50.0, "pdu", "outlet_power_w", (("outlet", "1"),), 10.0),  # a labelled series: not a total
    (80.0, "pdu", "temperature_c", (), 24.0),  # another metric: blocks are not made of it
    (100.0, "pdu", "active_power_w", (), 900.0),
    (160.0, "pdu", "active_energy_kwh", (), 5.0),
    (400.0, "pdu", "active_power_w", (), 910.0),
    (700.0, "pdu", "active_energy_kwh", (), 5.2),
    (990.0, "pdu", "temperature_c", (), 25.0),
    (120.0, "ups", "active_power_w", (), 40_000.0),
]


@pytest.fixture
def store(store_factory):
    store = store_factory.open()
    store.import_readings([Reading(ts, d, m, v, labels=lab)
                           for ts, d, m, lab, v in READINGS])
    yield store
    store.close()


@pytest.mark.parametrize(("device", "first"), [("pdu", 100.0), ("ups", 120.0), ("nobody", None)])
def test_first_reading_of_the_block_metrics(store, device, first):
    assert store.first_reading_ts(device) == first


@pytest.mark.parametrize(("start", "end", "around"), [
    (150.0, 300.0, (100.0, 400.0)),  # power before, power after
    (100.0, 160.0, (100.0, 400.0)),  # nothing before 100: the start itself
    (450.0, 650.0, (400.0, 700.0)),
    (710.0, 900.0, (700.0, 900.0)),  # nothing after (the temperature does not count)
])
def test_neighbours_of_a_stretch(store, start, end, around):
    assert store.neighbour_times("pdu", start, end) == around
