"""The fast SNMP engine's own pure pieces: how table columns become walks (one per table,
since gufo-snmp's GETBULK takes one OID) and how its values become the reference's."""

from __future__ import annotations

import pytest

from pue_monitor.collectors.snmp_decode import MISSING
from pue_monitor.collectors.snmp_gufo import _to_python, walk_groups

UPS_OUT = "1.3.6.1.2.1.33.1.4.4.1"  # upsOutputEntry
UPS_IN = "1.3.6.1.2.1.33.1.3.3.1"  # upsInputEntry


@pytest.mark.parametrize(("columns", "walks"), [
    # A lone column is its own root.
    ([f"{UPS_OUT}.4"], [(f"{UPS_OUT}.4", (f"{UPS_OUT}.4",))]),
    # Columns of one entry: walked from the entry, in OID order (.10 after .4, not before).
    ([f"{UPS_OUT}.10", f"{UPS_OUT}.4", f"{UPS_OUT}.2"],
     [(UPS_OUT, (f"{UPS_OUT}.2", f"{UPS_OUT}.4", f"{UPS_OUT}.10"))]),
    # Two tables: two walks, in the order the profile names them; repeats asked once.
    ([f"{UPS_IN}.3", f"{UPS_OUT}.4", f"{UPS_IN}.5", f"{UPS_IN}.3"],
     [(UPS_IN, (f"{UPS_IN}.3", f"{UPS_IN}.5")), (f"{UPS_OUT}.4", (f"{UPS_OUT}.4",))]),
    ([], []),
])
def test_columns_become_one_walk_per_table(columns, walks):
    assert walk_groups(columns) == walks


@pytest.mark.parametrize(("value", "python"), [
    (b"Smart-UPS 1500", "Smart-UPS 1500"),  # OctetString: text, as pysnmp's
    (b"\xff\xfe", "\ufffd\ufffd"),  # undecodable bytes replaced, as pysnmp's
    ("1.3.6.1.4.1.318", "1.3.6.1.4.1.318"),  # OBJECT IDENTIFIER and IpAddress: text
    (4200, 4200),  # Integer32, Gauge32, Counter32/64, TimeTicks
    (None, MISSING),
])
def test_values_are_the_references(value, python):
    assert _to_python(value) == python
