"""Stored blocks follow the meters' settings (issue 11): a setting changed after the
import (the swap recorded late, another counter width, maximum gap or poll interval)
drops the blocks it makes stale, at the next opening of the store or by
`pue-monitor recompute`, so the report equals a fresh import with the same configuration;
the report lists the settings and its digest covers them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pue_monitor.cli import main

SCENARIOS_DIR = Path(__file__).parent / "data" / "scenarios"
CONFIG = SCENARIOS_DIR / "config.yaml"
SWAP = '        replacements: [{at: "2025-03-14T12:00:00+07:00", old_final_kwh: 5400, ' \
       'new_initial_kwh: 10}]\n'


def cli(*argv: object) -> int:
    return main([str(a) for a in argv])


def report(config: Path, data: Path, out: Path, site: str = "swap") -> dict:
    assert cli("report", "-c", config, "--data-dir", data, "--site", site, "--period",
               "2025-03-14", "-o", out) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = CONFIG.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


# (name, the line as it was at import, as it is at report time: the real config)
CHANGES = [
    # The swap not yet recorded: 5400 -> 10 read as a reset, the afternoon's 400 kWh
    # of the new meter... then recorded: E_DC 800, PUE 800 / 600 (the scenario's figure).
    ("swap-recorded-late", SWAP, ""),
    # A counter width declared later (no wrap in this data: the same figure, but the
    # blocks were made with other settings and are recomputed all the same).
    ("width-declared-later", "        role: facility\n        modbus: {host: 127.0.0.1, "
     "port: 15005}\n", "        role: facility\n        counter_width_kwh: 1000000\n"
     "        modbus: {host: 127.0.0.1, port: 15005}\n"),
]


@pytest.mark.parametrize(("old_line", "import_line"), [c[1:] for c in CHANGES],
                         ids=[c[0] for c in CHANGES])
def test_report_after_a_settings_change_equals_a_fresh_import(tmp_path, old_line,
                                                              import_line):
    readings = SCENARIOS_DIR / "swap" / "readings.csv"
    at_import = variant(tmp_path, "before", old_line, import_line)
    stale, fresh = tmp_path / "stale", tmp_path / "fresh"
    assert cli("import", "-c", at_import, "--data-dir", stale, readings) == 0
    before = report(at_import, stale, tmp_path / "before.json")
    assert cli("import", "-c", CONFIG, "--data-dir", fresh, readings) == 0
    want = report(CONFIG, fresh, tmp_path / "fresh.json")
    got = report(CONFIG, stale, tmp_path / "after.json")
    assert want["facility_energy_kwh"] == pytest.approx(800.0, rel=1e-9)
    assert want["pue"] == pytest.approx(800 / 600, rel=1e-9)
    for key in ("pue", "facility_energy_kwh", "it_energy_kwh", "coverage", "status",
                "meters", "settings", "inputs", "digest"):
        assert got[key] == want[key], key
    # The settings are in the report and under its digest: they differ before.
    assert before["settings"] != want["settings"]
    assert before["digest"]["value"] != want["digest"]["value"]
    assert want["inputs"]["settings"] == want["settings"]


def test_recompute_says_which_meters_changed(tmp_path, capsys):
    readings = SCENARIOS_DIR / "swap" / "readings.csv"
    at_import = variant(tmp_path, "before", SWAP, "")
    data = tmp_path / "data"
    assert cli("import", "-c", at_import, "--data-dir", data, readings) == 0
    report(at_import, data, tmp_path / "r.json")  # the day's blocks, without the swap
    capsys.readouterr()
    assert cli("recompute", "-c", CONFIG, "--data-dir", data) == 0
    said = capsys.readouterr().out
    # 24 h of the swap-in meter's blocks again: 96 blocks.
    assert "settings or PUE method changed for 1 meter(s): swap-in; 96 block(s) computed" in said
    assert cli("recompute", "-c", CONFIG, "--data-dir", data) == 0
    assert "settings or PUE method changed for 0 meter(s); 0 block(s) computed" in capsys.readouterr().out
    assert report(CONFIG, data, tmp_path / "r2.json")["facility_energy_kwh"] == \
        pytest.approx(800.0, rel=1e-9)


def one_block_store(path: Path):
    """A store with two readings of the swap-in meter and its one block between them."""
    from pue_monitor.store.model import Reading
    from pue_monitor.store.sqlite import Store

    store = Store.open(path)
    store.import_readings([Reading(t, "swap-in", "active_energy_kwh", v)
                           for t, v in ((0.0, 1.0), (900.0, 2.0))])
    store.write_interval_energy([("swap-in", 0.0, 900.0, 1.0, 900.0, "counter")])
    return store


def test_a_store_of_an_earlier_version_keeps_its_blocks(tmp_path):
    # No fingerprint recorded at all: the blocks are taken as made with this configuration
    # (only recorded, nothing dropped); a change after that drops them.
    from pue_monitor.config import load_config
    from pue_monitor.figures.settings import refresh_settings

    config = load_config(CONFIG)
    store = one_block_store(tmp_path)
    try:
        assert refresh_settings(store, config) == {}
        assert store.block_counts(["swap-in"], 0.0, 900.0) == {"swap-in": 1}
        assert set(store.settings_fingerprints()) == {
            d.id for _, d in config.devices() if d.role.value not in ("monitor", "water")}
        changed = load_config(variant(tmp_path, "later", SWAP, ""))
        assert refresh_settings(store, changed) == {"swap-in": (0.0, 900.0)}
        assert store.block_counts(["swap-in"], 0.0, 900.0) == {}
    finally:
        store.close()


# What the store holds of the swap-in meter's blocks, written as the version of each case
# left it; (blocks kept, the record rewritten in this version's form). Blocks computed by
# another PUE method are stale over all their time; a record of the form before the
# method was kept (the time line alone) is taken as made by this method, as a store
# that kept no record at all is.
def _record_cases():
    from pue_monitor.figures.settings import METHOD, block_timeline

    def timeline(config):
        site, device = next((s, d) for s, d in config.devices() if d.id == "swap-in")
        return block_timeline(config, site, device)

    def as_dict(method):
        return lambda config: json.dumps({"method": method, "timeline": timeline(config)},
                                         sort_keys=True, separators=(",", ":"))
    return [
        ("this method", as_dict(METHOD), True),
        ("an earlier method", as_dict("pue-monitor/3 energy ratio"), False),
        ("a record without a method, the same settings",
         lambda config: json.dumps(timeline(config), sort_keys=True, separators=(",", ":")),
         True),
        ("a record without a method, other settings",
         lambda config: json.dumps([[None, {"profile": "other"}]]), False),
        ("an unreadable record", lambda config: "{not json", False),
    ]


@pytest.mark.parametrize(("written", "kept"), [c[1:] for c in _record_cases()],
                         ids=[c[0] for c in _record_cases()])
def test_blocks_of_another_pue_method_are_computed_again(tmp_path, written, kept):
    from pue_monitor.config import load_config
    from pue_monitor.figures.settings import METHOD, refresh_settings

    config = load_config(CONFIG)
    store = one_block_store(tmp_path)
    try:
        assert refresh_settings(store, config) == {}  # every device's record, this form
        store.replace_settings({"swap-in": written(config)}, drop_blocks=False)
        spans = refresh_settings(store, config)
        assert store.block_counts(["swap-in"], 0.0, 900.0) == ({"swap-in": 1} if kept else {})
        assert spans == ({} if kept else {"swap-in": (0.0, 900.0)})
        record = json.loads(store.settings_fingerprints()["swap-in"])
        assert record["method"] == METHOD
        assert refresh_settings(store, config) == {}  # nothing stale any more
    finally:
        store.close()


def test_records_from_before_the_method_was_kept_are_version_4s(tmp_path, monkeypatch):
    # Under a later method, a record of the earlier form (the time line alone) is a
    # version 4 record like any other: its blocks are stale.
    from pue_monitor.config import load_config
    from pue_monitor.figures import settings

    config = load_config(CONFIG)
    store = one_block_store(tmp_path)
    try:
        assert settings.refresh_settings(store, config) == {}
        site, device = next((s, d) for s, d in config.devices() if d.id == "swap-in")
        store.replace_settings({"swap-in": json.dumps(settings.block_timeline(
            config, site, device), sort_keys=True, separators=(",", ":"))}, drop_blocks=False)
        monkeypatch.setattr(settings, "METHOD", "pue-monitor/5")
        stale = settings.stale_devices(store, config)
        assert (stale["swap-in"].why, stale["swap-in"].was) == ("method", "pue-monitor/4")
        assert settings.refresh_settings(store, config)["swap-in"] == (0.0, 900.0)
        assert store.block_counts(["swap-in"], 0.0, 900.0) == {}
    finally:
        store.close()
