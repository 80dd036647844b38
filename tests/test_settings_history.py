"""Settings with history (issue 11): a `changes:` entry with a `from:` time changes a
meter's settings from then on. Each table row imports one day with the configuration as
it was, reports (the blocks are made), then reports with the configuration that records
the change: the figure equals a fresh import with that configuration and the numbers
worked out by hand, and the report lists the change (JSON, CSV, HTML in vi and en)
under its digest."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pue_monitor.cli import main
from pue_monitor.config import load_config
from pue_monitor.config.errors import ConfigError
from pue_monitor.config.loader import load_config_text

REL = 1e-9
ICT = timezone(timedelta(hours=7))
DAY = datetime(2025, 3, 14, tzinfo=ICT)
STEP_MIN = 15

# One day of readings every 15 minutes, each counter rising linearly:
#   h-in       facility          10 000 kWh + 150 kWh/h
#   h-chiller  facility, 0.6      2 000 kWh +  50 kWh/h
#   h-office   monitor              500 kWh +  20 kWh/h
#   h-it       it (ups_output)   98 500 kWh + 100 kWh/h: a 100 000 kWh register, it reads
#                                99 975 at 14:45 and 0 (the wrap) at 15:00
RATES = {"h-in": (10_000.0, 150.0), "h-chiller": (2_000.0, 50.0), "h-office": (500.0, 20.0),
         "h-it": (98_500.0, 100.0)}
WIDTH = 100_000.0

CONFIG = """\
polling: {{interval_s: 60, timeout_s: 2, retries: 0}}
sites:
  - id: hist
    name: {{vi: "Thiết lập có lịch sử", en: "Settings with history"}}
    devices:
      - id: h-in
        profile: eastron_sdm630
        role: facility
        modbus: {{host: 127.0.0.1, port: 15101}}
      - id: h-chiller
        profile: eastron_sdm630
        role: facility
        share: 0.6
        modbus: {{host: 127.0.0.1, port: 15102}}
{chiller}
      - id: h-office
        profile: eastron_sdm630
        modbus: {{host: 127.0.0.1, port: 15103}}
{office}
      - id: h-it
        profile: eastron_sdm630
        role: it
        measurement_point: ups_output
        modbus: {{host: 127.0.0.1, port: 15104}}
{it}
"""
NOON = '"2025-03-14T12:00:00+07:00"'
WIDE = "        counter_width_kwh: 100000"

# (name, extra lines at import, extra lines at report time, E_DC, E_IT, coverage,
#  the changes the report lists as (time, device, setting, old, new))
HISTORY = [
    # The chiller's share is 0.6 until noon, 0.5 after: 3600 + 50*12*0.6 + 50*12*0.5.
    ("share-from-noon", {"it": WIDE},
     {"it": WIDE, "chiller": f"        changes: [{{from: {NOON}, share: 0.5}}]"},
     3600 + 360 + 300, 2400.0, 1.0,
     [("2025-03-14T12:00:00+07:00", "h-chiller", "share", 0.6, 0.5)]),
    # The office is subtracted from 18:00 (a date and time in the site's zone): 6 h * 20.
    ("exclude-from-18h", {"it": WIDE},
     {"it": WIDE, "office": '        changes: [{from: "2025-03-14T18:00:00+07:00", '
                            "role: exclude}]"},
     3600 + 720 - 120, 2400.0, 1.0,
     [("2025-03-14T18:00:00+07:00", "h-office", "role", "monitor", "exclude")]),
    # The register's width declared from noon: the 15:00 wrap is unwound
    # (100 000 - 99 975 + 0 = 25 kWh), nothing is left out. Before, it was a reset.
    ("width-from-noon", {},
     {"it": f"        changes: [{{from: {NOON}, counter_width_kwh: 100000}}]"},
     3600 + 720, 2400.0, 1.0,
     [("2025-03-14T12:00:00+07:00", "h-it", "counter_width_kwh", None, WIDTH)]),
    # Declared from 16:00 only: the 15:00 step is still a reset, its 15 minutes left out
    # of both sides: E_IT 2400 - 25, E_DC (150 + 30) * 23.75, coverage 95/96.
    ("width-after-the-wrap", {},
     {"it": '        changes: [{from: "2025-03-14T16:00:00+07:00", counter_width_kwh: 100000}]'},
     180 * 23.75, 2375.0, 95 / 96,
     [("2025-03-14T16:00:00+07:00", "h-it", "counter_width_kwh", None, WIDTH)]),
    # Two changes of one meter, the second undoing the first (a date: local midnight
    # after the day, outside the period, so not listed).
    ("share-and-back", {"it": WIDE},
     {"it": WIDE, "chiller": f"        changes: [{{from: {NOON}, share: 1.0}}, "
                             "{from: 2025-03-15, share: 0.6}]"},
     3600 + 360 + 600, 2400.0, 1.0,
     [("2025-03-14T12:00:00+07:00", "h-chiller", "share", 0.6, 1.0)]),
]


def cli(*argv: object) -> int:
    return main([str(a) for a in argv])


def readings(path: Path) -> Path:
    lines = ["timestamp,device,metric,value"]
    for k in range(24 * 60 // STEP_MIN + 1):
        ts = (DAY + timedelta(minutes=STEP_MIN * k)).isoformat()
        for device, (first, per_hour) in RATES.items():
            value = first + per_hour * k * STEP_MIN / 60
            if device == "h-it" and value >= WIDTH:
                value -= WIDTH
            lines.append(f"{ts},{device},active_energy_kwh,{value:.3f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config(tmp_path: Path, name: str, extra: dict[str, str]) -> Path:
    text = CONFIG.format(**{k: extra.get(k, "") for k in ("chiller", "office", "it")})
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(line for line in text.splitlines() if line) + "\n",
                    encoding="utf-8")
    return path


def report(conf: Path, data: Path, out: Path, fmt: str = "json", *extra: str) -> str:
    assert cli("report", "-c", conf, "--data-dir", data, "--site", "hist", "--period",
               "2025-03-14", "--format", fmt, "-o", out, *extra) == 0
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("at_import", "at_report", "e_dc", "e_it", "coverage", "changes"),
                         [h[1:] for h in HISTORY], ids=[h[0] for h in HISTORY])
def test_a_change_with_a_from_date_equals_a_fresh_import(tmp_path, at_import, at_report,
                                                         e_dc, e_it, coverage, changes):
    data = readings(tmp_path / "readings.csv")
    before, after = config(tmp_path, "before", at_import), config(tmp_path, "after", at_report)
    stale, fresh = tmp_path / "stale", tmp_path / "fresh"
    assert cli("import", "-c", before, "--data-dir", stale, data) == 0
    was = json.loads(report(before, stale, tmp_path / "before.json"))
    assert cli("import", "-c", after, "--data-dir", fresh, data) == 0
    want = json.loads(report(after, fresh, tmp_path / "fresh.json"))
    got = json.loads(report(after, stale, tmp_path / "after.json"))
    assert want["facility_energy_kwh"] == pytest.approx(e_dc, rel=REL)
    assert want["it_energy_kwh"] == pytest.approx(e_it, rel=REL)
    assert want["pue"] == pytest.approx(e_dc / e_it, rel=REL)
    assert want["coverage"] == pytest.approx(coverage, rel=REL)
    for key in ("pue", "facility_energy_kwh", "it_energy_kwh", "coverage", "status",
                "meters", "settings", "settings_changes", "inputs", "digest"):
        assert got[key] == want[key], key
    listed = [(c["from"], c["device"], k, v["old"], v["new"])
              for c in want["settings_changes"] for k, v in c["changed"].items()]
    assert listed == changes
    # Under the digest: the change is in the inputs, and the digest moved with it.
    assert want["inputs"]["settings_changes"] == want["settings_changes"]
    assert was["settings_changes"] == []
    assert was["digest"]["value"] != want["digest"]["value"]


def test_a_role_change_gives_the_meter_one_figure_per_role(tmp_path):
    # The office: monitor (no figure) until 18:00, then excluded: 6 h * 20 = 120 kWh.
    name, at_import, at_report, *_ = HISTORY[1]
    data = readings(tmp_path / "readings.csv")
    conf = config(tmp_path, "after", at_report)
    assert cli("import", "-c", conf, "--data-dir", tmp_path / "d", data) == 0
    doc = json.loads(report(conf, tmp_path / "d", tmp_path / "r.json"))
    office = [m for m in doc["meters"] if m["device"] == "h-office"]
    assert [(m["role"], m["share"]) for m in office] == [("exclude", 1.0)]
    assert office[0]["energy_kwh"] == pytest.approx(120.0, rel=REL)
    assert office[0]["common_s"] == pytest.approx(6 * 3600.0, rel=REL)
    # The settings listed are those at the period's start.
    assert doc["settings"]["h-office"]["role"] == "monitor"
    # The chiller's share change: two figures of one meter, 360 and 300 kWh.
    conf = config(tmp_path, "share", HISTORY[0][2])
    assert cli("import", "-c", conf, "--data-dir", tmp_path / "e", data) == 0
    doc = json.loads(report(conf, tmp_path / "e", tmp_path / "s.json"))
    chiller = [(m["share"], m["energy_kwh"]) for m in doc["meters"]
               if m["device"] == "h-chiller"]
    assert chiller == [(0.6, pytest.approx(360.0, rel=REL)),
                       (0.5, pytest.approx(300.0, rel=REL))]


def test_recompute_drops_only_the_blocks_after_the_change(tmp_path, capsys):
    data = readings(tmp_path / "readings.csv")
    before = config(tmp_path, "before", {})
    after = config(tmp_path, "after", HISTORY[2][2])
    store = tmp_path / "data"
    assert cli("import", "-c", before, "--data-dir", store, data) == 0
    report(before, store, tmp_path / "r.json")  # the day's 96 blocks, made without width
    capsys.readouterr()
    assert cli("recompute", "-c", after, "--data-dir", store) == 0
    # Only h-it's blocks from noon on are stale: 12 h = 48 blocks.
    assert "settings or PUE method changed for 1 meter(s): h-it; 48 block(s) computed" in \
        capsys.readouterr().out
    assert cli("recompute", "-c", after, "--data-dir", store) == 0
    assert "settings or PUE method changed for 0 meter(s); 0 block(s) computed" in capsys.readouterr().out


def test_the_csv_and_html_reports_list_settings_and_changes(tmp_path):
    data = readings(tmp_path / "readings.csv")
    conf = config(tmp_path, "after", HISTORY[0][2])
    store = tmp_path / "data"
    assert cli("import", "-c", conf, "--data-dir", store, data) == 0
    row = next(csv.DictReader(io.StringIO(report(conf, store, tmp_path / "r.csv", "csv"))))
    assert row["settings_changes"] == "2025-03-14T12:00:00+07:00 h-chiller share 0.6->0.5"
    assert json.loads(row["settings"])["h-chiller"]["share"] == 0.6
    for lang, heading, change in (
            ("en", "Changes of settings in the period", "<td>Share</td><td>0.6 → 0.5</td>"),
            ("vi", "Thay đổi thiết lập trong kỳ",
             "<td>Tỉ lệ thuộc TTDL</td><td>0,6 → 0,5</td>")):
        page = report(conf, store, tmp_path / f"r.{lang}.html", "html", "--lang", lang)
        assert heading in page
        assert "<td>2025-03-14T12:00:00+07:00</td><td>h-chiller</td>" + change in page


BAD = [
    ("off-the-quarter-hour", '{from: "2025-03-14T12:05:00+07:00", share: 0.5}',
     "sites[0].devices[1].changes[0].from",
     '"2025-03-14T12:05:00+07:00" is not on a 15-minute boundary'),
    ("not-in-order", '{from: 2025-03-15, share: 0.5}, {from: 2025-03-14, share: 0.4}',
     "sites[0].devices[1].changes[1].from", '"2025-03-14" is not after the change before'),
    ("sets-nothing", "{from: 2025-03-15}", "sites[0].devices[1].changes[0]",
     "a change sets no setting"),
    ("unknown-setting", "{from: 2025-03-15, profile: ups_mib}",
     "sites[0].devices[1].changes[0].profile", "unknown key"),
    ("share-out-of-range", "{from: 2025-03-15, share: 1.5}",
     "sites[0].devices[1].changes[0].share", "less than or equal to 1"),
    ("it-without-point", "{from: 2025-03-15, role: it}", "sites[0].devices[1].changes[0]",
     "an it meter needs measurement_point"),
    ("naive-time", '{from: "2025-03-15T00:00:00", share: 0.5}',
     "sites[0].devices[1].changes[0].from", "a time needs its UTC offset"),
]


@pytest.mark.parametrize(("change", "path", "message"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_a_bad_change_is_refused_with_its_path(change, path, message):
    text = CONFIG.format(chiller=f"        changes: [{change}]", office="", it="")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    found = [i for i in caught.value.issues if i.path == path]
    assert found, [str(i) for i in caught.value.issues]
    assert message in found[0].message


def test_a_water_meter_stays_a_water_meter():
    text = CONFIG.format(chiller="", it="", office="") + """\
      - id: h-water
        profile: eastron_sdm630
        role: monitor
        modbus: {host: 127.0.0.1, port: 15105}
        changes: [{from: 2025-03-15, role: water}]
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    assert any(i.path == "sites[0].devices[4].changes[0].role"
               and "a water meter stays a water meter" in i.message
               for i in caught.value.issues)


def test_the_demo_config_still_loads():
    load_config(Path(__file__).parents[1] / "config" / "demo.yaml")


def test_energy_totals_and_power_chart_follow_the_roles_of_their_time(tmp_path):
    # The office: monitor until 18:00 (counted nowhere), excluded after: 6 h * 20 kWh/h.
    from pue_monitor.figures.charts import power_series
    from pue_monitor.figures.longterm import energy_totals
    from pue_monitor.storage import open_store

    data = readings(tmp_path / "readings.csv")
    conf = config(tmp_path, "after", HISTORY[1][2])
    assert cli("import", "-c", conf, "--data-dir", tmp_path / "d", data) == 0
    loaded = load_config(conf)
    site = loaded.site("hist")
    store = open_store(tmp_path / "d", loaded)
    try:
        totals = energy_totals(store, site, loaded)
        assert totals == {"facility": pytest.approx(3600 + 720, rel=REL),
                          "exclude": pytest.approx(120.0, rel=REL),
                          "it": pytest.approx(2400.0, rel=REL)}
        # The day's chart, one point a block: the office is excluded (20 kW) from the
        # 18:00 block on, and no exclude point before it.
        end = (DAY + timedelta(days=1)).timestamp()
        bounds, roles = power_series(store, site, "day", end, loaded)
        at_18 = bounds.index((DAY + timedelta(hours=18)).timestamp())
        assert roles["exclude"][:at_18] == [None] * at_18
        assert roles["exclude"][at_18:] == [pytest.approx(20.0, rel=REL)] * (len(bounds) - 1
                                                                             - at_18)
        assert roles["facility"] == [pytest.approx(150 + 30, rel=REL)] * (len(bounds) - 1)
    finally:
        store.close()


def test_the_live_windows_take_the_settings_of_their_time(tmp_path):
    # The 24 h window ending at midnight after the day is the day itself: the office
    # excluded from 18:00 gives E_DC 3600 + 720 - 120 = 4200 against 2400, as the report;
    # the status shows the office with the role it has now (exclude).
    from pue_monitor.figures.service import site_status
    from pue_monitor.storage import open_store

    data = readings(tmp_path / "readings.csv")
    conf = config(tmp_path, "after", HISTORY[1][2])
    assert cli("import", "-c", conf, "--data-dir", tmp_path / "d", data) == 0
    loaded = load_config(conf)
    store = open_store(tmp_path / "d", loaded)
    try:
        now = (DAY + timedelta(days=1)).timestamp()
        status = site_status(store, loaded, loaded.site("hist"), now, windows=("24h",))
        day = status.windows["24h"]
        assert (day.start, day.end) == (DAY.timestamp(), now)
        assert day.facility_energy_kwh == pytest.approx(4200.0, rel=REL)
        assert day.it_energy_kwh == pytest.approx(2400.0, rel=REL)
        assert day.coverage == pytest.approx(1.0, rel=REL)
        assert {d.device.id: d.device.role.value for d in status.devices}["h-office"] == \
            "exclude"
    finally:
        store.close()


PG_PASSWORD_ENV = "PUE_TEST_PG_PASSWORD"


@pytest.mark.parametrize("row", [HISTORY[1], HISTORY[3]], ids=[HISTORY[1][0], HISTORY[3][0]])
def test_a_change_on_postgresql_equals_a_fresh_import(postgres_server, tmp_path, monkeypatch,
                                                      row):
    # The same as above with the store in PostgreSQL (its blocks dropped from the change
    # on, its days summed again), against a fresh SQLite import.
    name, at_import, at_report, e_dc, e_it, coverage, _ = row
    monkeypatch.setenv(PG_PASSWORD_ENV, "not-checked-by-trust-auth")
    url = postgres_server.url(postgres_server.create()).replace(
        "postgres@", "postgres:${%s}@" % PG_PASSWORD_ENV)
    data = readings(tmp_path / "readings.csv")
    on_pg = {}
    for which, extra in (("before", at_import), ("after", at_report)):
        path = config(tmp_path, which, extra)
        on_pg[which] = tmp_path / f"pg-{which}.yaml"
        on_pg[which].write_text(f'store: {{url: "{url}"}}\n' + path.read_text("utf-8"),
                                encoding="utf-8")
    unused = tmp_path / "unused"
    assert cli("import", "-c", on_pg["before"], "--data-dir", unused, data) == 0
    report(on_pg["before"], unused, tmp_path / "before.json")
    got = json.loads(report(on_pg["after"], unused, tmp_path / "after.json"))
    fresh = config(tmp_path, "after", at_report)
    assert cli("import", "-c", fresh, "--data-dir", tmp_path / "fresh", data) == 0
    want = json.loads(report(fresh, tmp_path / "fresh", tmp_path / "fresh.json"))
    assert want["facility_energy_kwh"] == pytest.approx(e_dc, rel=REL)
    assert want["coverage"] == pytest.approx(coverage, rel=REL)
    for key in ("pue", "facility_energy_kwh", "it_energy_kwh", "coverage", "status",
                "meters", "settings", "settings_changes", "inputs", "digest"):
        assert got[key] == want[key], key


def test_the_category_follows_the_points_the_parts_held():
    # An IT meter moved from UPS output to equipment input: a stretch wholly after the
    # change (a month of a longer report) is PUE3, one across it PUE1 (mixed points).
    from pue_monitor.config.metrics import MeasurementPoint as MP
    from pue_monitor.config.metrics import Role
    from pue_monitor.pue.kpi import MeterInfo, MeterPart, Part, combine

    before = (MeterInfo("in", Role.FACILITY), MeterInfo("it", Role.IT, 1.0, MP.UPS_OUTPUT))
    after = (before[0], MeterInfo("it", Role.IT, 1.0, MP.IT_INPUT))

    def part(a, b, infos):
        return Part(a, b, b - a, {"in": MeterPart(1.5 * (b - a) / 60, b - a, "counter",
                                                  common_s=b - a),
                                  "it": MeterPart((b - a) / 60, b - a, "counter",
                                                  common_s=b - a)}, infos)

    late = combine("s", list(before), [part(1800, 3600, after)], 1800, 3600)
    assert (late.category, late.pue) == (3, pytest.approx(1.5, rel=REL))
    across = combine("s", list(before), [part(0, 1800, before), part(1800, 3600, after)],
                     0, 3600)
    assert across.category == 1
    assert [(m.device, m.measurement_point) for m in across.meters if m.role == "it"] == \
        [("it", "ups_output"), ("it", "it_input")]
