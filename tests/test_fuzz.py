"""Fuzzing with Hypothesis: hostile input never raises anything but the documented error.

- the configuration loader, on random text, random bytes, YAML built from tricky pieces
  and the demo province with random values put in: a Config or a ConfigError;
- the Modbus frame checks on random bytes: values, FrameError or ExceptionAnswer;
- the Modbus block decoder on random register blocks of every built-in profile: readings
  (a garbage block gives DECODE_ERROR readings), never an exception;
- the CSV importer on random rows: readings and RowErrors, never an exception.

Runs are deterministic (derandomize: the same inputs on every run, so CI is not flaky)
and their sizes are named below; the number of inputs each test tried is printed at the
end of the run (``fuzz: CSV importer rows: inputs tried: 500, crashes: 0``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pue_monitor.collectors.decode import decode_modbus
from pue_monitor.collectors.modbus_frame import ExceptionAnswer, FrameError, answer_values, \
    check_rtu_crc, parse_mbap_header, rtu_answer_size
from pue_monitor.collectors.modbus_plan import plan_modbus
from pue_monitor.config import Config, ConfigError, load_config, load_config_text, load_profiles
from pue_monitor.config.datatypes import MAX_READ_BITS, MAX_READ_REGISTERS, READ_FUNCTIONS
from pue_monitor.exchange.importer import REQUIRED, ParsedFile, parse_file
from pue_monitor.store.model import Quality
from tests.fuzz_support import FUZZ, trying

ROOT = Path(__file__).resolve().parent.parent
DEMO_TEXT = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
DEMO_RAW = yaml.safe_load(DEMO_TEXT)

# Inputs per test. The loader reads every profile file per valid-looking document
# (~0.1 s, ~0.4 s on a loaded CI machine), so it gets fewer than the pure decoders.
CONFIG_EXAMPLES = 150
MUTATED_DEMO_EXAMPLES = 60
FRAME_EXAMPLES = 2000
BLOCK_EXAMPLES = 500
CSV_EXAMPLES = 500


# ---- configuration ------------------------------------------------------------------------


def load_or_refuse(text: str) -> None:
    """A Config or a ConfigError with at least one issue; anything else fails the test."""
    try:
        config = load_config_text(text, env={})
    except ConfigError as exc:
        assert exc.issues and all(isinstance(str(i), str) for i in exc.issues)
        return
    assert isinstance(config, Config)


# Pieces of YAML that reach the parser's, composer's and constructor's corners.
YAML_PIECES = st.sampled_from([
    "a", "sites", "polling", "interval_s", "1", "-1", "1e400", ".nan", "0x1F", "0o17",
    "true", "no", "~", "null", "2025-13-01", "2025-01-01T00:00:00+07:00", "'q'", '"\\x"',
    "&a", "&b", "*a", "*b", "<<", "<<: *a", "!!int", "!!float", "!!binary", "!!str",
    "!!python/object:os.system", "!!set", "!!omap", "?", ":", ": ", "- ", "[", "]", "{",
    "}", ",", "\n", "\n  ", "\n    ", "  ", "#", "|", ">", "---", "...", "%YAML 1.1",
    "\t", "\x00", "\ufeff", "Bắc Ninh", "${HOME}", "${X:-1}",
])


@settings(max_examples=CONFIG_EXAMPLES, **FUZZ)
@given(st.text(max_size=400))
def test_config_loader_on_random_text(text):
    with trying("config loader, random text"):
        load_or_refuse(text)


@settings(max_examples=CONFIG_EXAMPLES, **FUZZ)
@given(st.lists(YAML_PIECES, max_size=60).map("".join))
def test_config_loader_on_yaml_pieces(text):
    with trying("config loader, YAML pieces"):
        load_or_refuse(text)


@settings(max_examples=CONFIG_EXAMPLES, **FUZZ)
@given(st.binary(max_size=300))
def test_config_loader_on_random_bytes(tmp_path_factory, data):
    with trying("config loader, random bytes in a file"):
        path = tmp_path_factory.mktemp("fuzz") / "province.yaml"
        path.write_bytes(data)
        try:
            config = load_config(path, env={})
        except ConfigError as exc:
            assert exc.issues and exc.source == str(path)
            return
        assert isinstance(config, Config)


VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["${UNSET}", "auto", "it", "facility", "3", "2c"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                         max_size=3))


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, prefix + (i,))
    return out


DEMO_PATHS = [p for p in _paths(DEMO_RAW) if p]


@st.composite
def mutated_demo(draw) -> str:
    """The demo province with a few values replaced, keys deleted or keys added."""
    raw = copy.deepcopy(DEMO_RAW)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(DEMO_PATHS))
        parent = raw
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(VALUES)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=8))] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    return yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


@settings(max_examples=MUTATED_DEMO_EXAMPLES, **FUZZ)
@given(mutated_demo())
def test_config_loader_on_the_demo_with_random_values(text):
    with trying("config loader, demo province mutated"):
        load_or_refuse(text)


# ---- Modbus frames ------------------------------------------------------------------------


@settings(max_examples=FRAME_EXAMPLES, **FUZZ)
@given(st.sampled_from(sorted(READ_FUNCTIONS)), st.integers(1, MAX_READ_BITS),
       st.binary(max_size=300))
def test_answer_decoder_on_random_bytes(function, count, pdu):
    with trying("Modbus answer PDU"):
        if function in (3, 4):
            count = min(count, MAX_READ_REGISTERS)
        try:
            values = answer_values(function, count, pdu)
        except (FrameError, ExceptionAnswer):
            return
        assert len(values) == count
        assert all(0 <= v <= (0xFFFF if function in (3, 4) else 1) for v in values)


@settings(max_examples=FRAME_EXAMPLES, **FUZZ)
@given(st.binary(min_size=7, max_size=7), st.binary(min_size=3, max_size=3),
       st.binary(max_size=260))
def test_header_and_crc_checks_on_random_bytes(mbap, rtu_head, rtu_frame):
    with trying("Modbus MBAP header, RTU header and CRC"):
        try:
            transaction, unit, length = parse_mbap_header(mbap)
            assert 1 <= length <= 253 and 0 <= unit <= 255 and 0 <= transaction <= 0xFFFF
        except FrameError:
            pass
        try:
            assert 5 <= rtu_answer_size(rtu_head) <= 256
        except FrameError:
            pass
        try:
            check_rtu_crc(rtu_frame)
        except FrameError:
            pass


# ---- Modbus blocks ------------------------------------------------------------------------

PROFILES = load_profiles()
MODBUS_READS = {name: plan_modbus(p.modbus_resolved, max_gap=p.modbus_max_gap)
                for name, p in sorted(PROFILES.items()) if p.protocol == "modbus"}


@st.composite
def profile_and_blocks(draw):
    name = draw(st.sampled_from(sorted(MODBUS_READS)))
    reads = MODBUS_READS[name]
    blocks: dict[int, list[int] | None] = {}
    for i, read in enumerate(reads):
        kind = draw(st.sampled_from(["words", "words", "short", "long", "out-of-range",
                                     "none"]))
        if kind == "none":
            blocks[i] = None
            continue
        size = {"short": draw(st.integers(0, max(read.count - 1, 0))),
                "long": read.count + draw(st.integers(1, 5))}.get(kind, read.count)
        word = st.integers(-2**20, 2**20) if kind == "out-of-range" else \
            st.integers(0, 0xFFFF)
        blocks[i] = draw(st.lists(word, min_size=size, max_size=size))
    return name, reads, blocks


@settings(max_examples=BLOCK_EXAMPLES, **FUZZ)
@given(profile_and_blocks())
def test_block_decoder_on_random_registers(case):
    with trying("Modbus register blocks (every built-in profile)"):
        name, reads, blocks = case
        readings = decode_modbus(reads, blocks, "dev", 1.0e9, PROFILES[name].totals)
        answered = [p for i, r in enumerate(reads) if blocks[i] is not None for p in r.points]
        # every field of an answered block gives one reading (the totals come on top)
        assert len(readings) >= len(answered)
        for reading in readings:
            assert (reading.value is None) == (reading.quality != Quality.OK), reading


# ---- CSV import ---------------------------------------------------------------------------

CONFIG = load_config(ROOT / "config" / "demo.yaml", env={})
DEVICES = sorted(d.id for _, d in CONFIG.devices())
CELLS = {
    "timestamp": st.one_of(st.sampled_from(["2026-03-01T00:00:00+07:00", "2026-03-01",
                                            "0001-01-01T00:00:00+14:00",
                                            "9999-12-31T23:59:59-12:00", "2026-02-30T00:00Z",
                                            ""]), st.text(max_size=30)),
    "device": st.one_of(st.sampled_from(DEVICES), st.text(max_size=10)),
    "metric": st.one_of(st.sampled_from(["energy_kwh", "active_power_w", "water_m3"]),
                        st.text(max_size=10)),
    "value": st.one_of(st.floats().map(repr), st.integers().map(str),
                       st.sampled_from(["nan", "-inf", "1e999", "-0", "", "1_000"]),
                       st.text(max_size=10)),
    "labels": st.one_of(st.sampled_from(["", "outlet=1", "phase=L1,phase=L2", "x=1", "=",
                                         "outlet="]), st.text(max_size=15)),
}


def _csv_cell(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@st.composite
def csv_files(draw) -> str:
    columns = list(REQUIRED) + (["labels"] if draw(st.booleans()) else [])
    if draw(st.integers(0, 9)) == 0:
        columns = draw(st.lists(st.text(max_size=8), max_size=5))  # a broken header
    rows = []
    for _ in range(draw(st.integers(0, 12))):
        width = len(columns) + draw(st.sampled_from([0, 0, 0, -1, 1]))
        cells = [draw(CELLS.get(columns[i] if i < len(columns) else "", st.text(max_size=8)))
                 for i in range(max(width, 0))]
        quote = draw(st.booleans())
        rows.append(",".join(_csv_cell(c) if quote else c for c in cells))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return newline.join([",".join(columns), *rows])


@settings(max_examples=CSV_EXAMPLES, **FUZZ)
@given(st.one_of(csv_files(), st.text(max_size=300)))
def test_csv_importer_on_random_rows(text):
    with trying("CSV importer rows"):
        parsed = parse_file(text, CONFIG, now=1.8e9)
        assert isinstance(parsed, ParsedFile)
        assert parsed.readings or parsed.errors
        assert len(parsed.lines) == len(parsed.readings)
        assert all(err.line >= 1 and err.reason for err in parsed.errors)


@pytest.mark.parametrize(("text", "expected"), [
    ("timestamp,device,metric,value\n" + "x" * 140_000 + ",a,b,1\n",
     "line 2: not readable as CSV: field larger than field limit (131072)"),
    ("x" * 140_000, "line 1: not readable as CSV: field larger than field limit (131072)"),
], ids=["row", "header"])
def test_csv_field_beyond_the_csv_limit_is_a_row_error(text, expected):
    """Found by hand beside the fuzzing: csv.Error escaped parse_file."""
    parsed = parse_file(text, CONFIG, now=1.8e9)
    assert (parsed.readings, [str(e) for e in parsed.errors]) == ([], [expected])
