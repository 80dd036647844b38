"""SNMP decoding, planning and identification as data: pure functions, no agent."""

from __future__ import annotations

import pytest
import yaml

from pue_monitor.collectors.decode import decode_snmp
from pue_monitor.collectors.snmp_decode import MISSING, decode_points, to_number
from pue_monitor.collectors.snmp_identify import by_identity, probe_candidates
from pue_monitor.collectors.snmp_plan import plan_snmp, table_columns
from pue_monitor.collectors.totals import PartsSeen, labels_text
from pue_monitor.config.errors import ConfigIssue
from pue_monitor.config.profiles import load_profiles, parse_profile
from pue_monitor.store.model import Quality

PROFILES = load_profiles()
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def profile(points: str, extra: str = ""):
    text = f"name: t\nprotocol: snmp\ndescription: t\nsource: t\n{extra}\nsnmp_points:\n{points}"
    got, issues = parse_profile(yaml.safe_load(text), "t")
    assert got is not None, issues
    return got


def decoded(prof, answers):
    return {(s.reading.metric, s.reading.labels): (s.reading.value, s.reading.quality, s.oid)
            for s in decode_points(prof, answers, "d", 0.0)}


@pytest.mark.parametrize(("raw", "number"), [
    (42, 42.0), ("20", 20.0), (" 20", 20.0), ("200 Watts", 200.0), ("1.3%", 1.3),
    ("-12.5 C", -12.5), (b"7", 7.0), ("n/a", None), ("", None), (True, None),
    # A decimal comma or a thousands separator (which, cannot be told) and a hex string:
    # reading the number before them would give 20, 1 and 0.
    ("20,5", None), ("1,234 W", None), ("1.234,5", None), ("0x1F", None),
    ("5, 6", 5.0),  # a list, not one number: its first
])
def test_numbers_sent_as_strings(raw, number):
    assert to_number(raw) == number


SCALAR = '  - {metric: active_power_w, oid: 1.3.6.1.4.1.9.1.0, scale: 10, not_available: [-1]}\n'


@pytest.mark.parametrize(("extra", "raw", "value", "quality"), [
    ("", 114, 1140.0, Quality.OK),
    ("", "114", 1140.0, Quality.OK),
    ("", -1, None, Quality.NOT_AVAILABLE),  # the point's own sentinel
    ("snmp_not_available: [65535]", 65535, None, Quality.NOT_AVAILABLE),  # the profile's
    ("", 65535, 655350.0, Quality.OK),  # not declared: a value
    ("", "garbage", None, Quality.DECODE_ERROR),
    ("", "", None, Quality.NOT_AVAILABLE),  # an SNMP NULL arrives as an empty string
    ("", "  ", None, Quality.NOT_AVAILABLE),  # blanks: no value either
    ("", b"", None, Quality.NOT_AVAILABLE),
    ("", " 20", 200.0, Quality.OK),  # a number served as a string, padded
    ("", "200 Watts", 2000.0, Quality.OK),
    ("", -5, -50.0, Quality.OK),  # type integer (the default): a negative is a value
])
def test_scale_and_sentinels(extra, raw, value, quality):
    got = decoded(profile(SCALAR, extra), {"1.3.6.1.4.1.9.1.0": raw})
    assert got[("active_power_w", ())][:2] == (value, quality)


UNSIGNED = ('  - {metric: active_energy_kwh, oid: 1.3.6.1.4.1.9.1.0, type: TYPE, '
            'scale: 0.001}\n')


# An agent sending a negative INTEGER where its MIB says Gauge32 / Unsigned32 / Counter:
# not a value (-2,147,483 kWh); a decode error. Through the plain path (an integer) and the
# parsing one (a string).
@pytest.mark.parametrize(("kind", "raw", "value", "quality"), [
    ("gauge32", -2147483000, None, Quality.DECODE_ERROR),
    ("unsigned32", -1294967296, None, Quality.DECODE_ERROR),
    ("counter32", "-5", None, Quality.DECODE_ERROR),
    ("counter64", -1, None, Quality.DECODE_ERROR),
    ("gauge32", 2147483000, 2147483.0, Quality.OK),
    ("integer", -5, -0.005, Quality.OK),
])
def test_a_negative_answer_to_an_unsigned_type_is_a_decode_error(kind, raw, value, quality):
    got = decoded(profile(UNSIGNED.replace("TYPE", kind)), {"1.3.6.1.4.1.9.1.0": raw})
    assert got[("active_energy_kwh", ())][:2] == (value, quality)


# The device's own total answering "not available" (a card's "" for a total it does not
# have) gives way to the sum of its lines; a total it answered with a value, or with
# something that could not be decoded, stays as it is (no second reading of the series).
@pytest.mark.parametrize(("own", "want"), [
    (MISSING, [(3000.0, Quality.OK)]),
    ("", [(3000.0, Quality.OK)]),
    (4500, [(4500.0, Quality.OK)]),
    ("garbage", [(None, Quality.DECODE_ERROR)]),
])
def test_a_total_the_device_has_not_gives_way_to_its_lines(own, want):
    prof = profile('  - {metric: active_power_w, oid: 1.3.6.1.4.1.9.2.0}\n'
                   '  - {metric: active_power_w, oid: "1.3.6.1.4.1.9.3.{line}"}\n',
                   "totals: [{metric: active_power_w, sum_over: line}]")
    answers = {"1.3.6.1.4.1.9.3.1": 1000, "1.3.6.1.4.1.9.3.2": 2000}
    if own is not MISSING:
        answers["1.3.6.1.4.1.9.2.0"] = own
    total = [(r.value, r.quality) for r in decode_snmp(prof, answers, "d", 0.0)
             if r.metric == "active_power_w" and not r.labels]
    assert total == want


def test_missing_object_is_no_reading_at_all():
    assert decoded(profile(SCALAR), {"1.3.6.1.4.1.9.1.0": MISSING}) == {}


FALLBACK = """  - metric: load_pct
    oid: 1.3.6.1.4.1.318.1.1.1.4.3.3.0
    scale: 0.1
    fallback: [{oid: 1.3.6.1.4.1.318.1.1.1.4.2.3.0}]
"""
HIGH, LOW = "1.3.6.1.4.1.318.1.1.1.4.3.3.0", "1.3.6.1.4.1.318.1.1.1.4.2.3.0"


@pytest.mark.parametrize(("answers", "value", "source"), [
    ({HIGH: 176, LOW: 17}, 17.6, HIGH),  # high precision first
    ({HIGH: MISSING, LOW: 17}, 17.0, LOW),  # this card lacks it: the integer object
    ({LOW: 17}, 17.0, LOW),
    ({HIGH: "x", LOW: 17}, 17.0, LOW),  # undecodable: the next one
])
def test_fallback_chain(answers, value, source):
    got = decoded(profile(FALLBACK), answers)[("load_pct", ())]
    assert got[0] == pytest.approx(value) and got[2] == source


TABLE = """  - metric: active_power_w
    oid: "1.3.6.1.4.1.13742.6.5.4.3.1.4.{_}.{outlet}.5"
    decimals: "1.3.6.1.4.1.13742.6.3.5.4.1.7.{_}.{outlet}.5"
"""
VALUE, DIGITS = "1.3.6.1.4.1.13742.6.5.4.3.1.4.1.{}.5", "1.3.6.1.4.1.13742.6.3.5.4.1.7.1.{}.5"


def test_table_rows_become_labels_with_per_row_decimal_digits():
    answers = {VALUE.format(1): 143, DIGITS.format(1): 0, VALUE.format(2): 2071,
               DIGITS.format(2): 1, VALUE.format(10): 5, DIGITS.format(10): 2,
               VALUE.format(3): 99}  # outlet 3 has no digits: it cannot be scaled
    got = decoded(profile(TABLE), answers)
    assert got[("active_power_w", (("outlet", "1"),))][0] == 143
    assert got[("active_power_w", (("outlet", "2"),))][0] == pytest.approx(207.1)
    assert got[("active_power_w", (("outlet", "10"),))][0] == pytest.approx(0.05)
    assert got[("active_power_w", (("outlet", "3"),))][1] == Quality.DECODE_ERROR


ENTITY = PROFILES["entity_sensor"]
E = "1.3.6.1.2.1.99.1.1.1.{}.{}"


# A row whose digits lie outside 0..9 (an agent answering 2**31 or -1) is a decode error:
# 10 ** 2**31 would hold the event loop for ever.
@pytest.mark.parametrize(("digits", "value"), [(9, 1e-9), (10, None), (2**31, None),
                                                (-1, None)])
def test_decimal_digits_outside_their_range_are_a_decode_error(digits, value):
    got = decoded(profile(TABLE), {VALUE.format(1): 1, DIGITS.format(1): digits})
    reading = got[("active_power_w", (("outlet", "1"),))]
    if value is None:
        assert reading[:2] == (None, Quality.DECODE_ERROR)
    else:
        assert reading[:2] == (pytest.approx(value), Quality.OK)


@pytest.mark.parametrize(("kind", "scale", "precision", "raw", "metric", "value"), [
    (6, 10, 2, 1234, "active_power_w", 12340.0),  # watts, kilo, 2 decimals: 12.34 kW
    (6, 9, 0, 250, "active_power_w", 250.0),
    (3, 9, 1, 2301, "voltage_v", 230.1),
    (5, 8, 0, 1500, "current_a", 1.5),  # milli
    (8, 9, -2, 23, "temperature_c", 23.0),  # negative precision: accurate digits, no shift
])
def test_entity_sensor_scale_and_precision(kind, scale, precision, raw, metric, value):
    answers = {E.format(1, 7): kind, E.format(2, 7): scale, E.format(3, 7): precision,
               E.format(4, 7): raw, E.format(5, 7): 1}
    got = decoded(ENTITY, answers)
    assert got == {(metric, (("sensor", "7"),)): (pytest.approx(value), Quality.OK,
                                                   E.format(4, 7))}


# Scale outside yocto(1)..yotta(17) or precision outside -8..9 (RFC 3433): a decode error,
# not an overflow or a stall.
@pytest.mark.parametrize(("scale", "precision"), [(0, 0), (18, 0), (2**31, 0), (9, 10),
                                                  (9, -9), (9, 2**31)])
def test_entity_sensor_factor_outside_the_mib_ranges(scale, precision):
    answers = {E.format(1, 7): 6, E.format(2, 7): scale, E.format(3, 7): precision,
               E.format(4, 7): 1234, E.format(5, 7): 1}
    got = decoded(ENTITY, answers)
    assert got == {("active_power_w", (("sensor", "7"),)): (None, Quality.DECODE_ERROR,
                                                            E.format(4, 7))}


def test_entity_sensor_not_ok_is_not_read():
    answers = {E.format(1, 7): 6, E.format(2, 7): 9, E.format(3, 7): 0, E.format(4, 7): 5,
               E.format(5, 7): 2}  # unavailable
    assert decoded(ENTITY, answers) == {}


def test_counter_wrap_is_declared_for_energy_counters():
    wraps = {p.metric: p.counter_width for name in ("raritan_pdu2", "eaton_epdu", "apc_ups")
             for p in PROFILES[name].snmp_points if p.metric == "active_energy_kwh"}
    assert wraps == {"active_energy_kwh": pytest.approx(2 ** 32 * 0.01)}  # apc_ups last
    raritan = [p for p in PROFILES["raritan_pdu2"].snmp_points if p.wrap_bits]
    assert [p.counter_width for p in raritan] == [pytest.approx(4_294_967.296)] * 2
    assert profile('  - {metric: active_energy_kwh, oid: 1.3.6.1.9.0, type: counter64, '
                   'scale: 0.001}\n').snmp_points[0].counter_width == pytest.approx(2 ** 64 / 1000)


def test_totals_sum_only_their_own_rows():
    ups = PROFILES["ups_mib"]
    base = "1.3.6.1.2.1.33.1"
    answers = {f"{base}.4.4.1.4.1": 1000, f"{base}.4.4.1.4.2": 2000,
               f"{base}.3.3.1.5.1": 5000}  # an input line: not output power
    total = [r for r in decode_snmp(ups, answers, "d", 0.0)
             if r.metric == "active_power_w" and not r.labels]
    assert [r.value for r in total] == [3000]


# A total summed over table rows (the Eaton ePDU's inlets, by daisy-chain unit), poll
# after poll with one memory of the parts seen, as a poller keeps it: a unit gone from
# the chain makes the total not available (a smaller sum would fall, and on the unit's
# return rise by its whole energy register in one step), and so does an inlet that
# answers "not available"; a part away FORGET_PART_S is forgotten. Polls: (hours since
# the first, rows: (unit, inlet) -> Wh); totals in kWh, None: not available; then what
# the memory told, by poll: (kind, labels as text).
EPDU_WH = "1.3.6.1.4.1.534.6.6.7.3.5.1.5"
U0, U1, U2 = "inlet=1 unit=0", "inlet=1 unit=1", "inlet=1 unit=2"
PARTS_CASES = [
    ("every unit each time", [(0, {(0, 1): 1000, (1, 1): 2000}),
                              (1, {(0, 1): 1500, (1, 1): 2600})],
     [3.0, 4.1], [[], []]),
    ("a unit leaves the chain and comes back",
     [(0, {(0, 1): 1000, (1, 1): 2000}), (1, {(0, 1): 1100}), (2, {(0, 1): 1200}),
      (3, {(0, 1): 1300, (1, 1): 2300})],
     [3.0, None, None, 3.6], [[], [("missing", U1)], [], [("back", U1)]]),
    ("a unit joins after the first poll, then leaves",
     [(0, {(0, 1): 1000}), (1, {(0, 1): 1100, (1, 1): 5000}), (2, {(0, 1): 1200})],
     [1.0, 6.1, None], [[], [("joined", U1)], [("missing", U1)]]),
    ("a unit missing a day of polls is forgotten: the total sums the units that answer",
     [(0, {(0, 1): 1000, (1, 1): 2000}), (1, {(0, 1): 1100}), (24.9, {(0, 1): 1200}),
      (25, {(0, 1): 1300}), (26, {(0, 1): 1400}), (27, {(0, 1): 1500, (1, 1): 2900})],
     [3.0, None, None, 1.3, 1.4, 4.4],
     [[], [("missing", U1)], [], [("forgotten", U1)], [], [("joined", U1)]]),
    ("a device silent two days is back whole: nothing to forget",
     [(0, {(0, 1): 1000, (1, 1): 2000}), (48, {(0, 1): 1100, (1, 1): 2100})],
     [3.0, 3.2], [[], []]),
    ("a device silent two days is back without a unit: missing, not forgotten",
     [(0, {(0, 1): 1000, (1, 1): 2000}), (48, {(0, 1): 1100}),
      (49, {(0, 1): 1200, (1, 1): 2200})],
     [3.0, None, 3.4], [[], [("missing", U1)], [("back", U1)]]),
    ("a chain strapped anew: unit 1 is now unit 2",
     [(0, {(0, 1): 1000, (1, 1): 2000}), (1, {(0, 1): 1100, (2, 1): 2100})],
     [3.0, None], [[], [("missing", U1), ("joined", U2)]]),
    ("a unit that comes and goes is told once an hour, and its return only when its "
     "going was",
     [(0, {(0, 1): 1000, (1, 1): 2000}), (0.1, {(0, 1): 1100}),
      (0.2, {(0, 1): 1200, (1, 1): 2100}), (0.3, {(0, 1): 1300}),
      (0.4, {(0, 1): 1400, (1, 1): 2200}), (1.2, {(0, 1): 1500}),
      (1.3, {(0, 1): 1600, (1, 1): 2300})],
     [3.0, None, 3.3, None, 3.6, None, 3.9],
     [[], [("missing", U1)], [("back", U1)], [], [], [("missing", U1)], [("back", U1)]]),
    ("an inlet answering 'not available' (-1) gives no total, its row is still there",
     [(0, {(0, 1): 1000, (0, 2): 2000}), (1, {(0, 1): 1100, (0, 2): -1}),
      (2, {(0, 1): 1200, (0, 2): 2200})],
     [3.0, None, 3.4], [[], [], []]),
    ("every row gone: no total at all, as before anything was seen",
     [(0, {(0, 1): 1000}), (1, {}), (2, {(0, 1): 1100})], [1.0, "absent", 1.1],
     [[], [("missing", U0)], [("back", U0)]]),
]


@pytest.mark.parametrize(("polls", "want", "told"), [c[1:] for c in PARTS_CASES],
                         ids=[c[0] for c in PARTS_CASES])
def test_a_total_with_a_part_missing_is_not_available(polls, want, told):
    epdu, seen, got, events = PROFILES["eaton_epdu"], PartsSeen(), [], []
    for hours, rows in polls:
        answers = {f"{EPDU_WH}.{unit}.{inlet}": wh for (unit, inlet), wh in rows.items()}
        totals = [r for r in decode_snmp(epdu, answers, "d", T0 + hours * 3600, seen)
                  if r.metric == "active_energy_kwh" and not r.labels]
        assert len(totals) <= 1
        if not totals:
            got.append("absent")
        else:
            total = totals[0]
            assert (total.quality == Quality.OK) == (total.value is not None)
            got.append(None if total.value is None else pytest.approx(total.value))
        events.append([(kind, labels_text(labels)) for kind, metric, labels in seen.events
                       if metric == "active_energy_kwh"])
        seen.events.clear()
    assert got == want
    assert events == told


def test_parts_an_ignored_index_repeats_are_counted_apart():
    # Two pduIds behind one Raritan agent give inlet I1 twice (the pduId is an index the
    # profile ignores): the second PDU gone is a part missing, not the same labels seen.
    raritan, seen = PROFILES["raritan_pdu2"], PartsSeen()
    base, digits = "1.3.6.1.4.1.13742.6.5.2.3.1.4", "1.3.6.1.4.1.13742.6.3.3.4.1.7"
    got = []
    for hour, pdus in enumerate([(1, 2), (1,), (1, 2)]):
        answers = {}
        for pdu in pdus:
            answers[f"{base}.{pdu}.1.8"] = 1_000_000 * pdu + hour * 1000
            answers[f"{digits}.{pdu}.1.8"] = 0
        got += [r.value for r in decode_snmp(raritan, answers, "d", T0 + hour * 3600, seen)
                if r.metric == "active_energy_kwh" and not r.labels]
    assert got == [3000.0, None, 3004.0]


def test_parts_known_from_the_store_are_waited_for_and_counted_on_first_sight():
    # Seeded from the store (one series per labels, so no count): the first poll that
    # has them, twice over, is no part joining; the same poll without them is one missing.
    raritan = PROFILES["raritan_pdu2"]
    base, digits = "1.3.6.1.4.1.13742.6.5.2.3.1.4", "1.3.6.1.4.1.13742.6.3.3.4.1.7"
    before = [("active_energy_kwh", (("inlet", "I1"),))]
    got = []
    for pdus in [(1, 2), (1,), ()]:
        seen = PartsSeen.since_before(raritan.totals, before)
        answers = {f"{base}.{p}.1.8": 1000 for p in pdus} | {f"{digits}.{p}.1.8": 0
                                                            for p in pdus}
        totals = [r.value for r in decode_snmp(raritan, answers, "d", T0, seen)
                  if r.metric == "active_energy_kwh" and not r.labels]
        got.append((totals, [kind for kind, _, _ in seen.events]))
    assert got == [([2.0], []), ([1.0], []), ([], ["missing"])]


def test_two_totals_of_one_metric_keep_their_parts_apart():
    # A profile may sum one metric over two families of rows (a PDU's and an ATS's
    # outputs): each total remembers its own parts, so neither sees the other's missing.
    prof = profile('  - {metric: active_power_w, oid: "1.3.6.1.4.1.9.3.{line}"}\n'
                   '  - {metric: active_power_w, oid: "1.3.6.1.4.1.9.4.{outlet}"}\n',
                   "totals: [{metric: active_power_w, sum_over: line},\n"
                   "         {metric: active_power_w, sum_over: outlet}]")
    seen, got = PartsSeen(), []
    for _ in range(3):
        answers = {"1.3.6.1.4.1.9.3.1": 100, "1.3.6.1.4.1.9.4.1": 40, "1.3.6.1.4.1.9.4.2": 2}
        got.append(sorted((r.value, r.quality.value)
                          for r in decode_snmp(prof, answers, "d", T0, seen)
                          if r.metric == "active_power_w" and not r.labels))
    assert got == [[(42.0, "ok"), (100.0, "ok")]] * 3


def test_without_a_memory_of_parts_a_poll_sums_the_rows_it_has():
    # A single decode (the profile draft tool, the corpus tests) has no earlier poll to
    # miss a part from: the rows answered are the device's.
    answers = {f"{EPDU_WH}.0.1": 1000}
    totals = [r.value for r in decode_snmp(PROFILES["eaton_epdu"], answers, "d", 0.0)
              if r.metric == "active_energy_kwh" and not r.labels]
    assert totals == [1.0]


def test_plan_gets_scalars_and_walks_columns_side_by_side():
    plan = plan_snmp(PROFILES["raritan_pdu2"])
    assert plan.gets == ()
    assert plan.walks == ("1.3.6.1.4.1.13742.6.3.3.4.1.7", "1.3.6.1.4.1.13742.6.3.4.4.1.7",
                          "1.3.6.1.4.1.13742.6.3.5.4.1.7", "1.3.6.1.4.1.13742.6.3.6.3.1.2",
                          "1.3.6.1.4.1.13742.6.3.6.3.1.17", "1.3.6.1.4.1.13742.6.5.2.3.1.4",
                          "1.3.6.1.4.1.13742.6.5.3.3.1.4", "1.3.6.1.4.1.13742.6.5.4.3.1.4",
                          "1.3.6.1.4.1.13742.6.5.5.3.1.4")
    janitza = plan_snmp(PROFILES["janitza_umg"], max_oids=8)
    assert [len(g) for g in janitza.gets] == [8, 8, 8, 3] and janitza.walks == ()


def scalars(n, base="1.3.6.1.2.1.33.1.4.4.1.2"):
    return "".join(f'  - {{metric: voltage_v, oid: {base}.{i}, labels: {{line: "{i}"}}}}\n'
                   for i in range(1, n + 1))


def column(n, metric="active_power_w"):
    return f'  - {{metric: {metric}, oid: "1.3.6.1.4.1.9.{n}.{{outlet}}"}}\n'


# (name, points, profile extra, max_oids, GET batch sizes, walked columns, requests at
#  least, budget at a 2 s timeout: 2 s per GET + 0.5 s, then 2 s per column + 0.5 s)
SNMP_PLANS = [
    ("14 scalars in GETs of 5", scalars(14), "max_oids_per_get: 5", None, [5, 5, 4], (), 3,
     6.5),
    ("an OID read by two points is asked once",
     scalars(3) + '  - {metric: current_a, oid: 1.3.6.1.2.1.33.1.4.4.1.2.1}\n', "", None, [3],
     (), 1, 2.5),
    ("the caller's batch size wins", scalars(14), "max_oids_per_get: 5", 7, [7, 7], (), 2,
     4.5),
    ("scalars in one GET, then one walk", scalars(2) + column(2), "", None, [2],
     ("1.3.6.1.4.1.9.2",), 2, 2.5 + 2.5),
    ("columns only: one walk, no GET", column(2) + column(3, "current_a"), "", None, [],
     ("1.3.6.1.4.1.9.2", "1.3.6.1.4.1.9.3"), 1, 4.5),
    ("a decimals helper is asked beside its value",
     '  - {metric: active_power_w, oid: 1.3.6.1.4.1.9.1.0, decimals: 1.3.6.1.4.1.9.3.0}\n', "",
     None, [2], (), 1, 2.5),
]


@pytest.mark.parametrize(("name", "points", "extra", "max_oids", "batches", "walks",
                          "requests", "budget_s"), SNMP_PLANS, ids=[p[0] for p in SNMP_PLANS])
def test_snmp_plan(name, points, extra, max_oids, batches, walks, requests, budget_s):
    plan = plan_snmp(profile(points, extra), max_oids)
    assert [len(g) for g in plan.gets] == batches
    assert sum(plan.gets, ()) == tuple(dict.fromkeys(sum(plan.gets, ())))  # each OID once
    assert (plan.walks, plan.requests) == (walks, requests)
    assert plan.budget_s(2.0) == pytest.approx(budget_s)


def test_snmp_plan_refuses_an_empty_batch():
    with pytest.raises(ValueError, match="max_oids"):
        plan_snmp(profile(scalars(1)), -1)


@pytest.mark.parametrize(("oids", "columns"), [
    (["1.3.6.1.2.1.{line}"], ("1.3.6.1.2.1",)),
    (["1.3.6.1.2.1.33.1.4.4.1.4.{line}", "1.3.6.1.2.1.33.1.4.4.1.2.{line}"],
     ("1.3.6.1.2.1.33.1.4.4.1.2", "1.3.6.1.2.1.33.1.4.4.1.4")),
    (["1.3.6.1.2.1.33.{line}", "1.3.6.1.2.1.33.1.4.{line}"], ("1.3.6.1.2.1.33",)),  # nested
    (["1.3.6.1.4.1.1.10.{line}", "1.3.6.1.4.1.1.9.{line}"],
     ("1.3.6.1.4.1.1.9", "1.3.6.1.4.1.1.10")),  # numeric order, not text order
])
def test_table_columns(oids, columns):
    assert table_columns(oids) == columns


@pytest.mark.parametrize(("sys_object_id", "sys_descr", "name"), [
    ("1.3.6.1.4.1.318.1.3.4.6", "", "apc_rpdu2"),
    (".1.3.6.1.4.1.318.1.3.4.6", "", "apc_rpdu2"),  # a leading dot, as one capture has
    ("1.3.6.1.4.1.318.1.3.27", "", "apc_ups"),
    ("1.3.6.1.4.1.318.1.3.14.23", "", "apc_inrow"),
    ("1.3.6.1.4.1.318.1.3.41", "", None),  # 318.1.3.4 is a prefix in text, not in arcs
    ("1.3.6.1.4.1.534.6.6.7", "", "eaton_epdu"),
    ("1.3.6.1.4.1.534.1", "", "eaton_xups"),
    ("1.3.6.1.4.1.8072.3.2.10", "Linux", None),
])
def test_identity(sys_object_id, sys_descr, name):
    found = by_identity(PROFILES.values(), sys_object_id, sys_descr)
    assert (found.name if found else None) == name


def test_standard_mibs_are_probed_in_their_order():
    assert [p.name for _oid, p in probe_candidates(PROFILES.values())] == [
        "ups_mib", "entity_sensor"]


@pytest.mark.parametrize(("points", "message"), [
    ('  - {metric: active_power_w, oid: "1.3.6.{outlet}.{bogus}"}\n', "unknown label 'bogus'"),
    ('  - {metric: active_power_w, oid: "1.3.6.x.1"}\n', "not a numeric OID"),
    ('  - {metric: active_power_w, oid: "1.3.6.{outlet}", decimals: "1.3.7.1"}\n',
     "same index placeholders"),
    ('  - {metric: active_power_w, oid: "1.3.6.{outlet}", labels: {outlet: "1"}}\n',
     "both fixed and a table index"),
    ('  - {metric: active_power_w, oid: "1.3.6.{sensor}", entity_scale: "1.3.7.{sensor}"}\n',
     "go together"),
    ('  - {metric: active_power_w, oid: "1.3.6.{sensor}", when: [{oid: "1.3.7.{sensor}", '
     'equals: [1], matches: "x"}]}\n', "either equals or matches"),
    ('  - {metric: active_power_w, oid: "1.3.6.{sensor}", when: [{oid: "1.3.7.{sensor}"}]}\n',
     "either equals or matches"),
    ('  - {metric: active_power_w, oid: "1.3.6.{sensor}", when: [{oid: "1.3.7.{sensor}", '
     'matches: "(" }]}\n', "matches: '('"),
    # A label value the store's label key or line protocol cannot carry.
    ('  - {metric: active_power_w, oid: "1.3.6.1", labels: {sensor: "a,b"}}\n',
     "label 'sensor': value 'a,b' holds ','"),
    ('  - {metric: active_power_w, oid: "1.3.6.1", labels: {sensor: "a=b"}}\n',
     "holds '='"),
    ('  - {metric: active_power_w, oid: "1.3.6.1", labels: {inlet: "A\\\\1"}}\n',
     "holds '\\\\'"),
    ('  - {metric: active_power_w, oid: "1.3.6.1", labels: {inlet: "A\\t1"}}\n',
     "holds '\\t'"),
])
def test_bad_points_are_refused(points, message):
    text = f"name: t\nprotocol: snmp\ndescription: t\nsource: t\nsnmp_points:\n{points}"
    got, issues = parse_profile(yaml.safe_load(text), "t")
    assert got is None
    assert any(message in i.message for i in issues if isinstance(i, ConfigIssue)), issues


# Rows are found by cutting the index off each answer's OID when every placeholder is at
# the end, and by the pattern's regex otherwise: both must find the same rows, in OID
# order, and nothing from a neighbouring column or a deeper/shallower OID.
ROWS_ANSWERS = {
    "1.3.6.1.4.1.9.2.1.5.10": 5, "1.3.6.1.4.1.9.2.1.5.2": 7, "1.3.6.1.4.1.9.2.1.5.2.1": 9,
    "1.3.6.1.4.1.9.2.1.50.3": 1, "1.3.6.1.4.1.9.2.1.5": 4, "1.3.6.1.4.1.9.2.1.6.4": 8,
    "1.3.6.1.4.1.9.3.1.5.1.2": 11, "1.3.6.1.4.1.9.3.1.5.2.7": 12, "1.3.6.1.4.1.9.3.1.5.1": 13,
    "1.3.6.1.4.1.9.4.2.1.3": 21, "1.3.6.1.4.1.9.4.1.1.3": 22, "1.3.6.1.4.1.9.4.3.2.3": 23,
}


@pytest.mark.parametrize(("oid", "rows"), [
    # one trailing placeholder: rows 2 and 10 (numeric order), not 5.2.1, 50.3 or 6.4
    ("1.3.6.1.4.1.9.2.1.5.{outlet}", [(("outlet", "2"), 7.0), (("outlet", "10"), 5.0)]),
    # two trailing placeholders
    ("1.3.6.1.4.1.9.3.1.5.{bank}.{outlet}",
     [((("bank", "1"), ("outlet", "2")), 11.0), ((("bank", "2"), ("outlet", "7")), 12.0)]),
    # a placeholder in the middle (regex): the column number after it must match
    ("1.3.6.1.4.1.9.4.{line}.1.3", [(("line", "1"), 22.0), (("line", "2"), 21.0)]),
])
def test_table_rows_trailing_and_inner_placeholders(oid, rows):
    prof = profile(f"  - {{metric: current_a, oid: '{oid}'}}\n")
    got = [(r.reading.labels, r.reading.value)
           for r in decode_points(prof, ROWS_ANSWERS, "d", 0.0)]
    want = [(labels if isinstance(labels[0], tuple) else (labels,), value)
            for labels, value in rows]
    assert got == want


EPDU_IN = "1.3.6.1.4.1.534.6.6.7.3"


def epdu_rows(table: int, value_column: int, rows: dict[int, tuple[int, int]]) -> dict:
    """Rows of one EATON-EPDU-MIB input table of unit 0, inlet 1: {index: (type, raw)}."""
    out = {}
    for index, (kind, raw) in rows.items():
        out[f"{EPDU_IN}.{table}.1.2.0.1.{index}"] = kind
        out[f"{EPDU_IN}.{table}.1.{value_column}.0.1.{index}"] = raw
    return out


# (case, voltage rows, current rows: {index: (measurement type, raw mV or mA)}, what is
# read: {(metric, phase): value}). A row's phase comes from its measurement type
# (EATON-EPDU-MIB inputVoltageMeasType, inputCurrentMeasType), not its index.
EPDU_PHASES = [
    ("single phase", {1: (1, 230_100)}, {1: (1, 4_200)},
     {("voltage_v", "1"): 230.1, ("current_a", "1"): 4.2}),
    ("wye with a neutral", {1: (2, 230_000), 2: (3, 231_000), 3: (4, 229_000)},
     {1: (3, 10_000), 2: (4, 11_000), 3: (5, 12_000), 4: (2, 1_500)},
     {("voltage_v", "1"): 230.0, ("voltage_v", "2"): 231.0, ("voltage_v", "3"): 229.0,
      ("current_a", "1"): 10.0, ("current_a", "2"): 11.0, ("current_a", "3"): 12.0,
      ("current_a", "N"): 1.5}),
    ("delta: line-to-line voltages", {1: (5, 208_000), 2: (6, 207_000), 3: (7, 209_000)},
     {1: (3, 10_000), 2: (4, 11_000), 3: (5, 12_000)},
     {("voltage_v", "1-2"): 208.0, ("voltage_v", "2-3"): 207.0, ("voltage_v", "3-1"): 209.0,
      ("current_a", "1"): 10.0, ("current_a", "2"): 11.0, ("current_a", "3"): 12.0}),
    ("rows in another order", {1: (4, 229_000), 2: (2, 230_000)}, {1: (2, 1_500), 2: (5, 9_000)},
     {("voltage_v", "3"): 229.0, ("voltage_v", "1"): 230.0, ("current_a", "N"): 1.5,
      ("current_a", "3"): 9.0}),
]


@pytest.mark.parametrize(("voltages", "currents", "want"), [c[1:] for c in EPDU_PHASES],
                         ids=[c[0] for c in EPDU_PHASES])
def test_an_eaton_inlet_row_is_labelled_by_its_measurement_type(voltages, currents, want):
    answers = epdu_rows(2, 3, voltages) | epdu_rows(3, 4, currents)
    got = [((s.reading.metric, dict(s.reading.labels)["phase"]), s.reading.value)
           for s in decode_points(PROFILES["eaton_epdu"], answers, "d", 0.0)
           if s.reading.metric in ("voltage_v", "current_a")]
    assert len(got) == len(dict(got))  # one reading per series: no row read twice
    assert dict(got) == pytest.approx(want)
