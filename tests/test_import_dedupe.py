"""`pue-monitor import` is idempotent: readings already in the store are skipped, never
stored twice, and a reading the store holds with another value refuses the whole file.

The sites and readings are those of tests/test_import_report.py (tests/data/scenarios).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from pue_monitor.config import load_config
from pue_monitor.cli import main
from pue_monitor.exchange.importer import (ImportConflict, check_against_store, import_checked,
                                          import_readings, parse_file)
from pue_monitor.store.model import Quality, Reading
from pue_monitor.store.sqlite import DB_FILE, Store
from tests.store_sql import READINGS

SCENARIOS_DIR = Path(__file__).parent / "data" / "scenarios"
CONFIG = SCENARIOS_DIR / "config.yaml"
NOW = 1_764_000_000.0  # 2025-11-24
HEADER = "timestamp,device,metric,value,labels"
# tests/data/scenarios/wrap/readings.csv with a labels column: what the store holds before
# each case of REIMPORTS.
WRAP = ["2025-03-14T00:00:00+07:00,wrap-in,active_energy_kwh,99500,",
        "2025-03-14T12:00:00+07:00,wrap-in,active_energy_kwh,99900,",
        "2025-03-15T00:00:00+07:00,wrap-in,active_energy_kwh,300,",
        "2025-03-14T00:00:00+07:00,wrap-it,active_energy_kwh,0,",
        "2025-03-15T00:00:00+07:00,wrap-it,active_energy_kwh,500,"]
NEW = "2025-03-14T12:00:00+07:00,wrap-it,active_energy_kwh,250,"
NEW_READING = Reading(1_741_928_400.0, "wrap-it", "active_energy_kwh", 250.0)


def cli(*argv: object) -> int:
    return main([str(a) for a in argv])


def count(data: Path) -> int:
    with sqlite3.connect(data / DB_FILE) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {READINGS}").fetchone()[0]


def dump(data: Path) -> tuple[list, list]:
    with sqlite3.connect(data / DB_FILE) as conn:
        return (conn.execute(f"SELECT * FROM {READINGS} ORDER BY device, metric, ts").fetchall(),
                conn.execute("SELECT * FROM interval_energy ORDER BY device, start").fetchall())


@pytest.mark.parametrize("site", ["reset", "wrap", "swap", "gap", "ragged"])
def test_importing_a_file_again_changes_nothing(tmp_path, capsys, site):
    data, csv_file = tmp_path / "data", SCENARIOS_DIR / site / "readings.csv"
    rows = len(csv_file.read_text(encoding="utf-8").splitlines()) - 1
    assert cli("import", "-c", CONFIG, "--data-dir", data, csv_file) == 0
    readings, blocks = dump(data)
    assert len(readings) == rows
    # Spoil one stored block: only a recomputation would put it right, and a file stored
    # already in full must not recompute (or delete) any block.
    with sqlite3.connect(data / DB_FILE) as conn:
        device, start = conn.execute("SELECT device, MIN(start) FROM interval_energy").fetchone()
        conn.execute("UPDATE interval_energy SET energy_kwh = -1 WHERE device = ? AND start = ?",
                     (device, start))
    spoiled = dump(data)[1]
    assert spoiled != blocks
    capsys.readouterr()
    assert cli("import", "-c", CONFIG, "--data-dir", data, csv_file) == 0
    assert capsys.readouterr().out.strip() == (
        f"imported 0 readings; {rows} rows already in the store, skipped; "
        "0 15-minute blocks recomputed")
    assert dump(data) == (readings, spoiled)


# (case, rows after the header, exit status, what the output says ('{file}' is the CSV's
# path), readings added to the store). The store holds WRAP before each case.
REIMPORTS = [
    ("the same readings", WRAP, 0,
     ["imported 0 readings; 5 rows already in the store, skipped; "
      "0 15-minute blocks recomputed"], 0),
    # 2025-03-14T00:00+07:00 = 2025-03-13T17:00Z; 12:00+07:00 = 05:00Z; 99500.0 = 99500.
    ("the same readings written otherwise",
     ["2025-03-13T17:00:00Z,wrap-in,active_energy_kwh,99500.0,",
      "2025-03-14T05:00:00+00:00,wrap-in,active_energy_kwh,99900,"], 0,
     ["imported 0 readings; 2 rows already in the store, skipped;"], 0),
    ("one new reading among stored ones", [*WRAP, NEW], 0,
     ["imported 1 readings of 1 devices (wrap-it) from 2025-03-14T05:00:00+00:00 to "
      "2025-03-14T05:00:00+00:00; 5 rows already in the store, skipped; "], 1),
    ("a stored reading repeated in the file", [*WRAP, WRAP[0]], 0,
     ["imported 0 readings; 5 rows already in the store, skipped; "
      "1 row repeated in the file, counted once; 0 15-minute blocks recomputed"], 0),
    ("another label is another reading",
     ["2025-03-14T12:00:00+07:00,wrap-in,active_energy_kwh,99900,phase=L1"], 0,
     ["imported 1 readings of 1 devices (wrap-in)"], 1),
    ("a stored reading with another value", [NEW, WRAP[1].replace("99900", "99950")], 1,
     ["{file}:3: wrap-in active_energy_kwh at 2025-03-14T05:00:00+00:00 is 99950 here but "
      "99900 in the store",
      "pue-monitor import: 1 bad row(s); nothing was imported"], 0),
    ("a stored reading and a changed one",
     ['2025-03-14T12:00:00+07:00,wrap-in,active_energy_kwh,99900,',
      '2025-03-15T00:00:00+07:00,wrap-it,active_energy_kwh,501,'], 1,
     ["{file}:3: wrap-it active_energy_kwh at 2025-03-14T17:00:00+00:00 is 501 here but 500 "
      "in the store"], 0),
    ("stored values and a bad row, told in line order",
     [WRAP[4].replace(",500,", ",499.5,"), "2025-03-16T00:00:00,wrap-in,active_energy_kwh,1,",
      WRAP[0].replace("99500", "0")], 1,
     ["{file}:2: wrap-it active_energy_kwh at 2025-03-14T17:00:00+00:00 is 499.5 here but 500 "
      "in the store\n{file}:3: timestamp '2025-03-16T00:00:00' has no UTC offset",
      "{file}:4: wrap-in active_energy_kwh at 2025-03-13T17:00:00+00:00 is 0 here but 99500 "
      "in the store",
      "pue-monitor import: 3 bad row(s); nothing was imported"], 0),
    ("in-file values that differ", [NEW, NEW.replace("250", "260")], 1,
     ["{file}:3: 260 here but 250 on line 2 for the same timestamp, device, metric and labels",
      "pue-monitor import: 1 bad row(s); nothing was imported"], 0),
]


@pytest.mark.parametrize(("rows", "status", "says", "added"),
                         [case[1:] for case in REIMPORTS], ids=[case[0] for case in REIMPORTS])
def test_import_over_stored_readings(tmp_path, capsys, rows, status, says, added):
    data = tmp_path / "data"
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text("\n".join([HEADER, *WRAP]) + "\n", encoding="utf-8")
    second.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    assert cli("import", "-c", CONFIG, "--data-dir", data, first) == 0
    before = dump(data)
    capsys.readouterr()
    assert cli("import", "-c", CONFIG, "--data-dir", data, second) == status
    out = capsys.readouterr()
    for text in says:
        assert text.format(file=second) in (out.out if status == 0 else out.err)
    assert count(data) == len(WRAP) + added
    if added == 0:
        assert dump(data) == before


# Rows after the header: (readings kept, rows counted once, [(line, error)])
IN_FILE = [
    (["2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,1000,"] * 2, 1, 1, []),
    (["2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,1000,",
      "2025-03-13T17:00:00Z,reset-in,active_energy_kwh,1000.0,"], 1, 1, []),
    (["2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,1000,",
      "2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,1000.5,"], 1, 0,
     [(3, "1000.5 here but 1000 on line 2 for the same timestamp, device, metric and labels")]),
    (["2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,1000,",
      "2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,1000,",
      "2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,999,"], 1, 1,
     [(4, "999 here but 1000 on line 2 for the same timestamp, device, metric and labels")]),
    (["2025-03-14T00:00:00+07:00,reset-in,active_power_w,1000,phase=L1",
      "2025-03-14T00:00:00+07:00,reset-in,active_power_w,1000,phase=L2",
      "2025-03-14T00:00:00+07:00,reset-in,active_power_w,1000,",
      "2025-03-14T00:00:00+07:00,reset-it,active_power_w,1000,",
      "2025-03-14T00:00:01+07:00,reset-in,active_power_w,1000,"], 5, 0, []),
]


@pytest.mark.parametrize(("rows", "kept", "repeated", "errors"), IN_FILE)
def test_rows_repeated_in_a_file(rows, kept, repeated, errors):
    parsed = parse_file("\n".join([HEADER, *rows]) + "\n", load_config(CONFIG), NOW)
    assert [(e.line, e.reason) for e in parsed.errors] == errors
    assert (len(parsed.readings), parsed.repeated) == (kept, repeated)
    assert parsed.lines == list(range(2, 2 + kept))


def test_a_file_with_repeated_rows_stores_each_reading_once(tmp_path, capsys):
    csv_file = tmp_path / "r.csv"
    csv_file.write_text("\n".join([HEADER, WRAP[0], WRAP[1], WRAP[0], WRAP[1], WRAP[0]]) + "\n",
                        encoding="utf-8")
    assert cli("import", "-c", CONFIG, "--data-dir", tmp_path / "d", csv_file) == 0
    assert "imported 2 readings of 1 devices (wrap-in)" in capsys.readouterr().out
    assert count(tmp_path / "d") == 2


AT = 1_741_885_200.0  # 2025-03-14T00:00:00+07:00
OK, NA = Quality.OK, Quality.NOT_AVAILABLE
L1 = (("phase", "L1"),)

# (stored (ts, labels, value, quality) of reset-in active_energy_kwh, the value imported
# at AT without labels: "new", "skipped" or what the error says)
AGAINST_STORE = [
    ([], 1000.0, "new"),
    ([(AT + 1, (), 1000.0, OK)], 1000.0, "new"),
    ([(AT, L1, 1000.0, OK)], 1000.0, "new"),
    ([(AT, (), 1000.0, OK)], 1000.0, "skipped"),
    # a store written by an earlier version, which stored a re-imported file twice
    ([(AT, (), 1000.0, OK), (AT, (), 1000.0, OK)], 1000.0, "skipped"),
    ([(AT, (), 1000.0, OK)], 1000.25, "reset-in active_energy_kwh at "
     "2025-03-13T17:00:00+00:00 is 1000.25 here but 1000 in the store"),
    ([(AT, (), 1000.0, NA)], 1000.0, "is 1000 here but no value (not_available) in the store"),
    ([(AT, (), 999.0, OK), (AT, (), 998.0, OK)], 1000.0, "here but 999 and 998 in the store"),
]


@pytest.mark.parametrize(("stored", "value", "outcome"), AGAINST_STORE)
def test_a_reading_against_the_store(tmp_path, stored, value, outcome):
    store = Store.open(tmp_path)
    try:
        store.import_readings([Reading(ts, "reset-in", "active_energy_kwh", v, labels, q)
                               for ts, labels, v, q in stored])
        reading = Reading(AT, "reset-in", "active_energy_kwh", value)
        check = check_against_store(store, [reading], [7])
    finally:
        store.close()
    if outcome == "new":
        assert (check.new, check.skipped, check.conflicts) == ([reading], 0, [])
    elif outcome == "skipped":
        assert (check.new, check.skipped, check.conflicts) == ([], 1, [])
    else:
        assert (check.new, check.skipped) == ([], 0)
        assert [e.line for e in check.conflicts] == [7]
        assert outcome in check.conflicts[0].reason


def test_import_readings_refuses_a_conflict_and_writes_nothing(tmp_path):
    config = load_config(CONFIG)
    parsed = parse_file("\n".join([HEADER, *WRAP]) + "\n", config, NOW)
    store = Store.open(tmp_path)
    try:
        first = import_readings(store, config, parsed.readings, NOW, parsed.lines)
        assert (first.rows, first.skipped) == (5, 0)
        again = import_readings(store, config, parsed.readings, NOW, parsed.lines)
        assert (again.rows, again.skipped, again.blocks, again.start) == (0, 5, 0, None)
        changed = [*parsed.readings[:4], replace(parsed.readings[4], value=501.0), NEW_READING]
        with pytest.raises(ImportConflict) as refused:
            import_readings(store, config, changed, NOW)  # lines as in a file: 2, 3, ...
    finally:
        store.close()
    assert [e.line for e in refused.value.errors] == [6]
    assert count(tmp_path) == 5


def test_the_recomputation_reports_its_progress_per_device(tmp_path):
    config = load_config(CONFIG)
    parsed = parse_file("\n".join([HEADER, *WRAP]) + "\n", config, NOW)
    store = Store.open(tmp_path)
    calls: list[tuple[int, int]] = []
    try:
        check = check_against_store(store, parsed.readings, parsed.lines)
        summary = import_checked(store, config, check, NOW,
                                 progress=lambda done, total: calls.append((done, total)))
    finally:
        store.close()
    assert summary.devices == ("wrap-in", "wrap-it")
    # two devices whose blocks are recomputed: one call after each
    assert calls == [(1, 2), (2, 2)]
