"""The central's line-protocol parser (central.lineproto) and what it makes of points
(central.points): good lines with their hand-read values, bad lines with their reasons."""

from __future__ import annotations

import pytest

from pue_monitor.central.lineproto import parse, parse_line
from pue_monitor.central.points import read_batch, run_line, seconds, sort_points
from pue_monitor.exchange.influx import encode, reading_lines, to_ns
from pue_monitor.store.model import PollResult, Reading

GOOD = [
    # line, measurement, tags, fields, timestamp (ns)
    ("m f=1 5", "m", {}, {"f": 1.0}, 5),
    ("m f=1", "m", {}, {"f": 1.0}, None),
    ("m,a=1,b=x f=-2.5e3,g=7i,h=8u,t=t,F=FALSE 1700000000000000000", "m",
     {"a": "1", "b": "x"}, {"f": -2500.0, "g": 7, "h": 8, "t": True, "F": False},
     1700000000000000000),
    ('m s="a b, c=d" 1', "m", {}, {"s": "a b, c=d"}, 1),
    ('m s="say \\"hi\\" \\\\ ok" 1', "m", {}, {"s": 'say "hi" \\ ok'}, 1),
    ("my\\ meas\\,ure,tag\\ key=va\\,l\\=ue f=1 -3", "my meas,ure", {"tag key": "va,l=ue"},
     {"f": 1.0}, -3),
    ("m f=0.30000000000000004 1", "m", {}, {"f": 0.30000000000000004}, 1),
]

BAD = [
    ("m", "expected 'measurement[,tags] fields [timestamp]'"),
    ("m  f=1 1", "separated by single spaces"),
    ("m f=1 1 2", "separated by single spaces"),
    ("m f=abc 1", "'abc' is not a number, boolean or string"),
    ("m f=1_000 1", "'1_000' is not a number"),
    ("m f=inf 1", "'inf' is not a finite number"),
    ("m f=NaN 1", "'NaN' is not a finite number"),
    ("m f=99999999999999999999i 1", "is not a number"),
    ("m f=-1u 1", "is not a number"),
    ("m f=1 1.5", "timestamp '1.5' is not an integer"),
    ("m f=1 99999999999999999999", "64-bit nanosecond range"),
    ("m,a f=1 1", "tag 'a' is not key=value"),
    ("m,a=1,a=2 f=1 1", "tag 'a' given twice"),
    ("m f=1,f=2 1", "field 'f' given twice"),
    ("m f= 1", "field 'f=' is not key=value"),
    (",a=1 f=1 1", "no measurement name"),
    ('m s="open 1', "unterminated string"),
]


@pytest.mark.parametrize(("line", "measurement", "tags", "fields", "ts"), GOOD)
def test_good_lines(line, measurement, tags, fields, ts):
    point = parse_line(line)
    assert (point.measurement, point.tags, point.fields, point.ts_ns) == (
        measurement, tags, fields, ts)


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_bad_lines_say_why(line, reason):
    points, errors = parse("ok f=1 1\n" + line + "\n")
    assert [p.line for p in points] == [1]
    assert len(errors) == 1 and errors[0].line == 2
    assert reason in str(errors[0]), str(errors[0])


@pytest.mark.parametrize(("precision", "ns"), [("ns", 7), ("us", 7_000), ("ms", 7_000_000),
                                               ("s", 7_000_000_000)])
def test_precision_scales_the_timestamp(precision, ns):
    (point,), _ = parse("m f=1 7", precision)
    assert point.ts_ns == ns


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of ns, us, ms, s"):
        parse("m f=1 7", "h")


def test_comments_and_blank_lines_are_skipped_and_lines_keep_their_numbers():
    points, errors = parse("# a comment\n\nm f=1 1\r\n  \nm f=x 2\n")
    assert [p.line for p in points] == [3]
    assert [e.line for e in errors] == [5]


def test_the_edges_readings_come_back_as_they_were():
    """What exchange.influx writes, the central reads back: same time (to the float),
    device, metric, labels (one named like a reserved tag too) and value."""
    ts = 1_764_650_000.123457  # a float with a fraction: 238 ns steps at this epoch
    result = PollResult("pdu-1", "site-a", ts, 0.1, readings=(
        Reading(ts, "pdu-1", "active_power_w", 1234.5, (("outlet", "3"), ("phase", "L1"))),
        Reading(ts + 0.5, "pdu-1", "active_energy_kwh", 0.30000000000000004,
                (("metric", "odd"),)),
    ))
    lines = reading_lines(result, {"pdu-1": "it"})
    points, errors = parse("\n".join(lines))
    batch = sort_points(points)
    assert errors == [] and batch.errors == []
    assert batch.readings == list(result.readings)
    assert batch.sites == ["site-a", "site-a"]
    assert seconds(to_ns(ts)) == ts


SORT_BAD = [
    ("pue_reading,device=d,metric=active_power_w value=1 1", "without tag site"),
    ("pue_reading,site=s,device=d,metric=volts value=1 1", "unknown metric 'volts'"),
    ("pue_reading,site=s,device=d,metric=active_power_w,colour=red value=1 1",
     "unknown label 'colour'"),
    ("pue_reading,site=s,device=d,metric=active_power_w,label_phase=L1 value=1 1",
     "only a label named like a reserved tag"),
    ("pue_reading,site=s,device=d,metric=active_power_w value=1,other=2 1",
     "takes one field, value (not other)"),
    ('pue_reading,site=s,device=d,metric=active_power_w value="1" 1', "must be a number"),
    ("pue_reading,site=s,device=d,metric=active_power_w value=1", "a timestamp is required"),
    ("pue_run,site=s value=1 1", "takes the tags site and run"),
    ("pue_run,site=s,run=r stopped=1 1", "one boolean field, stopped"),
    ("cpu,host=a usage=1 1", "unknown measurement 'cpu'"),
]


@pytest.mark.parametrize(("line", "reason"), SORT_BAD)
def test_points_the_central_does_not_take(line, reason):
    points, errors = parse(line)
    batch = sort_points(points)
    assert errors == [] and batch.readings == [] and batch.runs == []
    assert len(batch.errors) == 1 and reason in str(batch.errors[0]), batch.errors


def test_run_marks_and_derived_points():
    site_line = encode("pue_site", {"site": "s", "window": "15m", "category": "1"},
                       {"pue": 1.5}, 10.0)
    points, _ = parse("\n".join([run_line("s", "abc", 100.0, False),
                                 run_line("s", "abc", 160.0, True), site_line]))
    batch = sort_points(points)
    assert batch.runs == [("s", "abc", 100.0, False), ("s", "abc", 160.0, True)]
    assert batch.ignored == 1 and batch.errors == []


# The ingest's fast reader against the full parser: each body is read twice (the second
# time its tag sections are known, so its plain lines take the fast way), and must give
# what sort_points(parse(body)) gives: readings, sites, lines, refusals, run marks.
R = "pue_reading,device=d{n},metric=active_power_w,site=s"
FAST_BODIES = [
    "\n".join(f"{R.format(n=n)} value={n}.5 {1700000000000000000 + n}" for n in range(5)),
    f"{R.format(n=1)} value=1 10\n{R.format(n=2)} value=2 20\n",  # a last newline
    f"{R.format(n=1)} value=1 10\r\n{R.format(n=2)} value=2 20\r\n",  # CRLF
    f"# a comment\n\n{R.format(n=1)} value=1 10\n   \n{R.format(n=1)} value=2 11",
    f"{R.format(n=1)} value=1_0 10\n{R.format(n=1)} value=inf 11\n"
    f"{R.format(n=1)} value=nan 12\n{R.format(n=1)} value=1i 13\n"
    f"{R.format(n=1)} value=t 14\n{R.format(n=1)} value=1 15",
    f"{R.format(n=1)} value=1 99999999999999999999\n{R.format(n=1)} value=1 x\n"
    f"{R.format(n=1)} value=1 1_0\n{R.format(n=1)} value=1",
    f"{R.format(n=1)} value=1 10 20\n{R.format(n=1)}  value=1 10\n{R.format(n=1)} value=1,x=2 1",
    f"{R.format(n=1)} value=1 10 {R.format(n=2)}\nvalue=2 20",  # 4 and 2 sections: not 3 + 3
    f'{R.format(n=1)} value="1" 10\n{R.format(n=1)},label_phase=L1 value=1 10',
    f"{R.format(n=1)},phase=L1 value=1 10\n{R.format(n=1)},phase=L1 value=2 10",
    f"{R.format(n=1)} value=1 10\n" + run_line("s", "r1", 100.0, False) + "\ncpu,h=a u=1 1",
    "pue_reading,device=x\\,y,metric=active_power_w,site=s value=1 1",
]


@pytest.mark.parametrize("body", FAST_BODIES)
@pytest.mark.parametrize("precision", ["ns", "s"])
def test_the_fast_reader_reads_as_the_parser(body, precision):
    points, errors = parse(body, precision)
    want = sort_points(points)
    want.errors[:0] = errors
    for _ in range(2):
        got = read_batch(body, precision)
        assert (got.readings, got.sites, got.lines, got.runs, got.ignored) == \
            (want.readings, want.sites, want.lines, want.runs, want.ignored)
        assert [str(e) for e in got.errors] == [str(e) for e in want.errors]
