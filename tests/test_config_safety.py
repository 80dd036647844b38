"""Hostile configuration files: bad bytes, alias bombs, repeated keys, booleans for
numbers, oversized files. Each is refused with one clear error naming where it is."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest

from pue_monitor.cli import main
from pue_monitor.config import ConfigError, load_config, load_config_text
from pue_monitor.config.strict import misplaced_bool
from pue_monitor.config.yamlio import MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED_NODES, \
    MAX_YAML_BYTES

ROOT = Path(__file__).parent.parent
DEMO = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")

# Nine levels of nine aliases: 9**10 (about 3.5 billion) strings once expanded, 10 lines.
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefghi", "bcdefghij"))


def demo_with(pattern: str, replacement: str) -> str:
    """The demo configuration with the first match of ``pattern`` replaced."""
    text, count = re.subn(pattern, replacement, DEMO, count=1)
    assert count == 1, pattern
    return text


# (name, configuration text, the one issue expected, as printed)
HOSTILE = [
    ("bool-interval", demo_with(r"interval_s: 5", "interval_s: true"),
     "polling.interval_s: a boolean is not a number: got true"),
    ("bool-retries", demo_with(r"retries: 1", "retries: false"),
     "polling.retries: a boolean is not a number: got false"),
    ("bool-port", demo_with(r"port: \d+", "port: true"),
     "sites[0].devices[0].modbus.port: a boolean is not a number: got true"),
    ("bool-threshold", demo_with(r"(\n    kind: provincial)", r"\1\n    pue_threshold: yes"),
     "sites[0].pue_threshold: a boolean is not a number: got true"),
    ("bool-emission-value", DEMO + "\nemission_factors: {2024: true}\n",
     "emission_factors: a boolean is not a number: got {2024: True}"),
    ("bool-emission-year", DEMO + "\nemission_factors: {true: 0.5}\n",
     "emission_factors: a boolean is not a number: got {True: 0.5}"),
    # after demo.yaml's last line: a blank one, then polling again on the one after
    ("duplicate-top", DEMO + "\npolling: {interval_s: 1}\n",
     f"duplicate key 'polling' at line {DEMO.count(chr(10)) + 2} (first at line "
     f"{DEMO.splitlines().index('polling:') + 1}): give each key once"),
    ("duplicate-nested", "sites:\n  - id: a\n    name: {vi: x, en: y}\n    id: b\n",
     "sites[0]: duplicate key 'id' at line 4 (first at line 2): give each key once"),
    # 1 and true are one key in the dict the loader builds: the second would win silently
    ("duplicate-equal-keys", "1: a\ntrue: b\n",
     "duplicate key 'true' at line 2 (first at line 1): give each key once"),
    ("alias-bomb", BOMB,
     f"j[8][8][8]: more than {MAX_EXPANDED_NODES} nodes once aliases are expanded "
     "(an alias bomb?): refused"),
    ("too-many-aliases", "d: &d {a: 1}\nl: [" + ", ".join(["*d"] * (MAX_ALIASES + 1)) + "]\n",
     f"more than {MAX_ALIASES} aliases to mappings or sequences: refused"),
    ("recursive-alias", "sites: &s [*s]\n", "sites[0]: recursive alias at line 1: refused"),
    ("too-deep", "sites: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n",
     f"sites{'[0]' * (MAX_DEPTH - 1)}: nested deeper than {MAX_DEPTH} levels at line 1: "
     "refused"),
    ("bad-timestamp", "sites: [{id: a, at: 2025-13-01}]\n",
     "sites[0].at: '2025-13-01' at line 1 is not a valid timestamp (month must be in 1..12)"),
    ("empty-int", "polling: {interval_s: !!int }\n",
     "polling.interval_s: '' at line 1 is not a valid int (string index out of range)"),
    ("python-tag", "sites: !!python/object/apply:os.system [echo]\n", None),
]


@pytest.mark.parametrize(("name", "text", "expected"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_config_is_refused_with_its_path(name, text, expected):
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    issues = [str(issue) for issue in caught.value.issues]
    if expected is None:  # libyaml's own message (with line and column)
        assert len(issues) == 1 and issues[0].startswith("not valid YAML: could not "
                                                         "determine a constructor"), issues
    else:
        assert issues == [expected]


def test_merge_keys_may_be_overridden():
    """``<<: *defaults`` then the same key again is what merging is for: not a duplicate."""
    text = demo_with(r"polling:\n  interval_s: 5\n  timeout_s: 2\n  retries: 1\n",
                     "defaults: &d {interval_s: 5, timeout_s: 2, retries: 1}\n"
                     "polling:\n  <<: *d\n  interval_s: 7\n")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    # only the helper key itself is unknown; the merged mapping is taken
    assert [str(i) for i in caught.value.issues] == ["defaults: unknown key"]


# (file bytes, the error, as printed)
BAD_FILES = [
    (b"title:\n  vi: \xff\xfe\n",
     "not UTF-8: byte 0xff at byte offset 13 (line 2, column 7); save the file as UTF-8"),
    (b"# Gi\xe1m s\xe1t\n",  # Latin-1, not UTF-8
     "not UTF-8: byte 0xe1 at byte offset 4 (line 1, column 5); save the file as UTF-8"),
    (b"#" * (MAX_YAML_BYTES + 1), f"file is larger than {MAX_YAML_BYTES} bytes: refused"),
]


@pytest.mark.parametrize(("data", "expected"), BAD_FILES, ids=["ff", "latin1", "too-large"])
def test_unreadable_file_names_file_and_position(tmp_path, data, expected):
    path = tmp_path / "province.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.source == str(path)
    assert [str(i) for i in caught.value.issues] == [expected]


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_commands_print_the_error_not_a_traceback(tmp_path, capsys, command):
    path = tmp_path / "province.yaml"
    path.write_bytes(DEMO.encode("utf-8").replace("Bắc Ninh".encode(), b"B\xe1c Ninh", 1))
    assert main([command, "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "UnicodeDecodeError" not in err
    assert f"{path}: 1 configuration error(s)" in err
    assert "not UTF-8: byte 0xe1 at byte offset" in err


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "province.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + DEMO.encode("utf-8"))
    assert [s.id for s in load_config(path, env={}).sites] == [
        "bn-provincial", "que-vo-dc", "yen-phong-dc"]


PROFILE_HEAD = "name: bad\nprotocol: modbus\ndescription: x\nsource: y\nnumbering: address\n"
MINIMAL = """
sites:
  - id: s1
    name: {vi: "TTDL 1", en: "DC 1"}
    devices:
      - {id: m1, profile: eastron_sdm630, role: facility, modbus: {host: 127.0.0.1, port: 1502}}
      - {id: u1, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {host: 127.0.0.1, port: 1161}}
"""
# (profile file bytes, the issue expected among those reported)
BAD_PROFILES = [
    (PROFILE_HEAD + "modbus_points:\n  - {metric: active_power_w, register: true}\n",
     "profiles/bad.yaml: modbus_points[0].register: a boolean is not a number: got true"),
    (PROFILE_HEAD + "modbus_points:\n  - {metric: active_power_w, register: 1, scale: no}\n",
     "profiles/bad.yaml: modbus_points[0].scale: a boolean is not a number: got false"),
    (PROFILE_HEAD + "max_oids_per_get: true\nmodbus_points:\n"
     "  - {metric: active_power_w, register: 1}\n",
     "profiles/bad.yaml: max_oids_per_get: a boolean is not a number: got true"),
    (PROFILE_HEAD + "modbus_points:\n  - {metric: active_power_w, register: 1, "
     "not_available: [true]}\n",
     "profiles/bad.yaml: modbus_points[0].not_available: a boolean is not a number: "
     "got [True]"),
    (PROFILE_HEAD + "modbus_points:\n  - {metric: active_power_w, register: 1}\n"
     "numbering: one_based\n",
     "profiles/bad.yaml: duplicate key 'numbering' at line 8 (first at line 5): give each "
     "key once"),
    ((PROFILE_HEAD + "modbus_points: []\n").replace("source: y", "source: \xe9").encode(
        "latin-1"),
     # 10 + 17 + 15 bytes of the first three lines, then "source: " (8)
     "profiles/bad.yaml: not UTF-8: byte 0xe9 at byte offset 50 (line 4, column 9); save "
     "the file as UTF-8"),
]


@pytest.mark.parametrize(("data", "expected"), BAD_PROFILES,
                         ids=["register", "scale", "max-oids", "marker", "duplicate", "latin1"])
def test_hostile_profile_is_refused_with_its_path(tmp_path, data, expected):
    path = tmp_path / "bad.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    text = MINIMAL.replace("sites:", f"profiles_dir: {tmp_path}\nsites:")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    assert expected in [str(i) for i in caught.value.issues]


# (value, the field's type, whether the value puts a boolean where a number belongs)
BOOL_CASES = [
    (True, int, True), (False, float, True), (True, float | None, True),
    (True, bool, False), (True, bool | int, False), (True, str, False), ("1", int, False),
    (1, int, False), ([1, True], list[float], True), ([1, 2.5], list[float], False),
    ({2024: True}, dict[int, float], True), ({True: 1.0}, dict[int, float], True),
    ({"a": True}, dict[str, str], False), ((1, True), tuple[int, ...], True),
    ((1, True), tuple[int, str], False), ((True, "x"), tuple[int, str], True),
    (True, Literal[32, 64], True), ([True], list[int | str], True),
]


@pytest.mark.parametrize(("value", "annotation", "expected"), BOOL_CASES)
def test_which_booleans_are_misplaced(value, annotation, expected):
    assert misplaced_bool(value, annotation) is expected
