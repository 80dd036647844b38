"""`pue-monitor import` then `pue-monitor report`, on hand-computed scenarios.

Each folder of tests/data/scenarios holds one site's readings as CSV (the sites are in
tests/data/scenarios/config.yaml). The period is the local day 2025-03-14 in Hà Nội
(UTC+7), [00:00, 24:00). Every expected number is worked out in the comment beside it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pue_monitor.config import load_config
from pue_monitor.cli import main
from pue_monitor.exchange.importer import parse_readings
from pue_monitor.store.sqlite import DB_FILE
from tests.store_sql import READINGS

SCENARIOS_DIR = Path(__file__).parent / "data" / "scenarios"
CONFIG = SCENARIOS_DIR / "config.yaml"
DAY = "2025-03-14"
START, END = "2025-03-14T00:00:00+07:00", "2025-03-15T00:00:00+07:00"

# site: category, PUE, E_DC, E_IT (kWh), coverage, status, compliant, per-meter energy
# (kWh, share applied) and counter resets, and how the HTML shows PUE, E_DC and coverage
# in Vietnamese and English.
SCENARIOS = {
    # Incomer 1000 (00:00) -> 1500 (10:00) -> 30 (11:00) -> 730 (24:00). 30 < 10 % of 1500:
    # a reset (method 3). The energy between 10:00 and the reset is unknown, and the meter
    # has no power to measure it: 10:00-11:00 is a gap for both sides (method 2 counted
    # the 30 kWh as that hour's energy, under-counting one side only: PUE 1.23).
    # Covered 23 h of 24: 0.958333 >= 0.95, ok. E_DC 500 + 700 = 1200.
    # UPS 200 -> 1200 over 24 h, 1000/24 kWh an hour, over 23 h: 23000/24 = 958.333.
    # PUE 1200 / (23000/24) = 28800/23000 = 1.2521739 -> published 1.25 <= 1.4.
    "reset": dict(category="PUE1", pue=28800 / 23000, facility=1200.0, it=23000 / 24,
                  coverage=23 / 24, status="ok", compliant=True,
                  meters={"reset-in": 1200.0, "reset-it": 23000 / 24},
                  resets={"reset-in": 1, "reset-it": 0},
                  covered_s={"reset-in": 23 * 3600.0, "reset-it": 24 * 3600.0},
                  html={"vi": ("1,25", "1.200,0 kWh", "95,83 %"),
                        "en": ("1.25", "1,200.0 kWh", "95.83 %")}),
    # Width 100 000: 99 500 -> 99 900 (+400) -> 300 (+100 000 - 99 900 + 300 = +400): 800.
    # IT 0 -> 500. PUE 800 / 500 = 1.60 > 1.4: over the threshold. A wrap is not a reset
    # (method 3 counts wraps apart; method 2 counted it as one): resets 0.
    "wrap": dict(category="PUE1", pue=1.6, facility=800.0, it=500.0, coverage=1.0,
                 status="ok", compliant=False, meters={"wrap-in": 800.0, "wrap-it": 500.0},
                 resets={"wrap-in": 0}, flags={"wrap-in": {"wrap": 1, "reset": 0}},
                 html={"vi": ("1,60", "800,0 kWh", "100,00 %"),
                       "en": ("1.60", "800.0 kWh", "100.00 %")}),
    # Old meter 5000 -> 5200 (06:00) -> 5400 (its final reading at the noon swap); the new
    # one starts at 10: 210 at 18:00 (+200), 410 at 24:00 (+200). 400 + 400 = 800.
    # IT 0 -> 600. PUE 800 / 600 = 1.3333 -> published 1.33 <= 1.4.
    "swap": dict(category="PUE1", pue=800 / 600, facility=800.0, it=600.0, coverage=1.0,
                 status="ok", compliant=True, meters={"swap-in": 800.0, "swap-it": 600.0},
                 resets={"swap-in": 0},
                 html={"vi": ("1,33", "800,0 kWh", "100,00 %"),
                       "en": ("1.33", "800.0 kWh", "100.00 %")}),
    # The UPS gives only power, 40 kW hourly, with nothing between 06:00 and 09:00: three
    # hours over max_gap_s = 3600, left out of both sides. Covered 21 h: 21/24 = 0.875.
    # Incomer 0 -> 1440 linear (60 kW): 60 x 21 = 1260; IT 40 x 21 = 840. PUE 1.5, not
    # judged (incomplete).
    "gap": dict(category="PUE1", pue=1.5, facility=1260.0, it=840.0, coverage=0.875,
                status="incomplete", compliant=None, meters={"gap-in": 1260.0, "gap-it": 840.0},
                covered_s={"gap-it": 21 * 3600.0},
                html={"vi": ("1,50", "1.260,0 kWh", "87,50 %"),
                      "en": ("1.50", "1,260.0 kWh", "87.50 %")}),
    # Incomer 100 (00:00), 250 (03:00), silent 18 h, 1150 (21:00), 1300 (24:00): the
    # counter bridges the silence exactly: 1200, coverage 1. IT 0 -> 1000. PUE 1.2.
    "cgap": dict(category="PUE1", pue=1.2, facility=1200.0, it=1000.0, coverage=1.0,
                 status="ok", compliant=True, meters={"cgap-in": 1200.0, "cgap-it": 1000.0},
                 html={"vi": ("1,20", "1.200,0 kWh", "100,00 %"),
                       "en": ("1.20", "1,200.0 kWh", "100.00 %")}),
    # Incomer 1000 at 23:00 (13th) and 1100 at 01:00: 1050 at midnight; 2200 at 23:30 and
    # 2300 at 00:30 (15th): 2250 at midnight. 2250 - 1050 = 1200.
    # IT 0 at 22:00 (13th), 160 at 02:00: 80 at midnight; then 40 kWh/h (160 -> 1080 over
    # 23 h) for 22 h: 160 + 880 = 1040 at the next midnight. 1040 - 80 = 960.
    # PUE 1200 / 960 = 1.25.
    "ragged": dict(category="PUE1", pue=1.25, facility=1200.0, it=960.0, coverage=1.0,
                   status="ok", compliant=True,
                   meters={"ragged-in": 1200.0, "ragged-it": 960.0},
                   html={"vi": ("1,25", "1.200,0 kWh", "100,00 %"),
                         "en": ("1.25", "1,200.0 kWh", "100.00 %")}),
    # Incomer 1500, office inside the boundary 200 (excluded), IT at equipment input 1000:
    # (1500 - 200) / 1000 = 1.3, PUE3.
    "exclude": dict(category="PUE3", pue=1.3, facility=1300.0, it=1000.0, coverage=1.0,
                    status="ok", compliant=True,
                    meters={"exclude-in": 1500.0, "exclude-office": 200.0,
                            "exclude-it": 1000.0},
                    html={"vi": ("1,30", "1.300,0 kWh", "100,00 %"),
                          "en": ("1.30", "1,300.0 kWh", "100.00 %")}),
    # Incomer 1000 + 60 % of a 500 kWh chiller plant (300) = 1300; IT 1000: PUE 1.3.
    # The CRAH sub-meter (100) is not added: pPUE cooling (1000 + 100) / 1000 = 1.1.
    "shared": dict(category="PUE1", pue=1.3, facility=1300.0, it=1000.0, coverage=1.0,
                   status="ok", compliant=True,
                   meters={"shared-in": 1000.0, "shared-chiller": 300.0, "shared-crah": 100.0,
                           "shared-it": 1000.0},
                   html={"vi": ("1,30", "1.300,0 kWh", "100,00 %"),
                         "en": ("1.30", "1,300.0 kWh", "100.00 %")}),
    # IT at a PDU output (400) and at equipment input (400): PUE2. 1100 / 800 = 1.375,
    # published half-up as 1.38 <= 1.4.
    "mixed": dict(category="PUE2", pue=1.375, facility=1100.0, it=800.0, coverage=1.0,
                  status="ok", compliant=True,
                  meters={"mixed-in": 1100.0, "mixed-pdu": 400.0, "mixed-server": 400.0},
                  html={"vi": ("1,38", "1.100,0 kWh", "100,00 %"),
                        "en": ("1.38", "1,100.0 kWh", "100.00 %")}),
    # The "facility" meter (800) is really a sub-feeder: E_IT 1000 > E_DC. PUE 0.8 is a
    # metering error: invalid, never judged.
    "misassigned": dict(category="PUE1", pue=0.8, facility=800.0, it=1000.0, coverage=1.0,
                        status="invalid", compliant=None,
                        meters={"mis-in": 800.0, "mis-it": 1000.0},
                        html={"vi": ("0,80", "800,0 kWh", "100,00 %"),
                              "en": ("0.80", "800.0 kWh", "100.00 %")}),
    # UPS power 50 kW hourly but 10:00 -> 11:13: a 73-minute gap over max_gap_s = 3600.
    # Covered 1440 - 73 = 1367 min: 1367 / 1440 = 0.949305... < 0.95: incomplete.
    # Incomer 0 -> 1680 (70 kW): 70 x 1367 / 60 = 1594.8333; IT 50 x 1367 / 60 = 1139.1667.
    "covlow": dict(category="PUE1", pue=1.4, facility=70 * 1367 / 60, it=50 * 1367 / 60,
                   coverage=1367 / 1440, status="incomplete", compliant=None,
                   meters={"covlow-in": 70 * 1367 / 60, "covlow-it": 50 * 1367 / 60},
                   html={"vi": ("1,40", "1.594,8 kWh", "94,93 %"),
                         "en": ("1.40", "1,594.8 kWh", "94.93 %")}),
    # The same with a 71-minute gap (10:00 -> 11:11): 1369 / 1440 = 0.950694... >= 0.95:
    # ok, and PUE 1.40 <= 1.4 is compliant. E_DC 70 x 1369 / 60 = 1597.1667,
    # E_IT 50 x 1369 / 60 = 1140.8333.
    "covhigh": dict(category="PUE1", pue=1.4, facility=70 * 1369 / 60, it=50 * 1369 / 60,
                    coverage=1369 / 1440, status="ok", compliant=True,
                    meters={"covhigh-in": 70 * 1369 / 60, "covhigh-it": 50 * 1369 / 60},
                    html={"vi": ("1,40", "1.597,2 kWh", "95,07 %"),
                          "en": ("1.40", "1,597.2 kWh", "95.07 %")}),
}

VERDICT = {True: {"vi": "✓ Đạt", "en": "✓ Compliant"},
           False: {"vi": "✗ Vượt ngưỡng", "en": "✗ Over threshold"},
           None: {"vi": "○ Không đánh giá", "en": "○ Not assessed"}}
STATUS = {"ok": {"vi": "Hợp lệ", "en": "Valid"},
          "incomplete": {"vi": "Thiếu dữ liệu", "en": "Incomplete"},
          "invalid": {"vi": "Không hợp lệ", "en": "Invalid"}}
CATEGORY = {"PUE1": {"vi": "PUE1: CNTT đo tại đầu ra UPS",
                     "en": "PUE1: IT measured at UPS output"},
            "PUE2": {"vi": "PUE2: CNTT đo tại đầu ra PDU",
                     "en": "PUE2: IT measured at PDU output"},
            "PUE3": {"vi": "PUE3: CNTT đo tại đầu vào thiết bị",
                     "en": "PUE3: IT measured at equipment input"}}


def cli(*argv: str) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A store holding every scenario, imported through the command line."""
    folder = tmp_path_factory.mktemp("scenarios") / "data"
    for name in SCENARIOS:
        assert cli("import", "-c", CONFIG, "--data-dir", folder,
                   SCENARIOS_DIR / name / "readings.csv") == 0
    return folder


def report(data_dir: Path, tmp_path: Path, site: str, fmt: str, *extra: str) -> str:
    out = tmp_path / f"report.{fmt}"
    assert cli("report", "-c", CONFIG, "--data-dir", data_dir, "--site", site,
               "--period", DAY, "--format", fmt, "-o", out, *extra) == 0
    return out.read_text(encoding="utf-8")


@pytest.mark.parametrize("site", SCENARIOS)
def test_json_report_reproduces_the_scenario(data_dir, tmp_path, site):
    want = SCENARIOS[site]
    doc = json.loads(report(data_dir, tmp_path, site, "json"))
    assert doc["site"] == site
    assert doc["period"] == {"label": DAY, "start": START, "end": END,
                             "timezone": "Asia/Ho_Chi_Minh"}
    assert doc["category"] == want["category"]
    assert doc["pue"] == pytest.approx(want["pue"], rel=1e-9)
    assert doc["facility_energy_kwh"] == pytest.approx(want["facility"], rel=1e-9)
    assert doc["it_energy_kwh"] == pytest.approx(want["it"], rel=1e-9)
    assert doc["coverage"] == pytest.approx(want["coverage"], abs=1e-12)
    assert (doc["status"], doc["compliant"]) == (want["status"], want["compliant"])
    assert (doc["threshold"], doc["operator"]) == (1.4, "<=")
    meters = {m["device"]: m for m in doc["meters"]}
    assert {d: m["energy_kwh"] for d, m in meters.items()} == pytest.approx(want["meters"],
                                                                             rel=1e-9)
    for device, resets in want.get("resets", {}).items():
        assert meters[device]["resets"] == resets, device
        assert meters[device]["flags"]["reset"] == resets, device
    for device, flags in want.get("flags", {}).items():  # flags counted in the report
        assert {k: meters[device]["flags"][k] for k in flags} == flags, device
    for device, seconds in want.get("covered_s", {}).items():
        assert meters[device]["covered_s"] == pytest.approx(seconds, abs=1e-6), device
    assert doc["method"].startswith("pue-monitor/4")


@pytest.mark.parametrize("site", SCENARIOS)
def test_csv_report_reproduces_the_scenario(data_dir, tmp_path, site):
    want = SCENARIOS[site]
    rows = list(csv.DictReader(io.StringIO(report(data_dir, tmp_path, site, "csv"))))
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == ["site", "period_start", "period_end", "category",
                         "facility_energy_kwh", "it_energy_kwh", "pue", "coverage", "status",
                         "threshold", "operator", "compliant", "dcie_pct", "digest",
                         "sites_judged", "sites_compliant", "not_judged", "settings",
                         "settings_changes", "earlier_methods"]
    assert row["earlier_methods"] == ""  # every block is this method's
    assert (row["site"], row["period_start"], row["period_end"]) == (site, START, END)
    assert row["category"] == want["category"]
    assert float(row["pue"]) == pytest.approx(want["pue"], abs=1e-9)
    assert float(row["facility_energy_kwh"]) == pytest.approx(want["facility"], abs=1e-6)
    assert float(row["it_energy_kwh"]) == pytest.approx(want["it"], abs=1e-6)
    assert float(row["coverage"]) == pytest.approx(want["coverage"], abs=1e-9)
    assert row["status"] == want["status"]
    assert row["compliant"] == {True: "true", False: "false", None: ""}[want["compliant"]]
    assert (row["threshold"], row["operator"]) == ("1.4", "<=")
    assert len(row["digest"]) == 64


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("site", SCENARIOS)
def test_html_report_shows_the_figures(data_dir, tmp_path, site, lang):
    want = SCENARIOS[site]
    page = report(data_dir, tmp_path, site, "html", "--lang", lang)
    pue, facility, coverage = want["html"][lang]
    assert f'<div class="pue">{pue}</div>' in page
    assert facility in page
    assert coverage in page
    assert VERDICT[want["compliant"]][lang] in page
    assert STATUS[want["status"]][lang] in page
    assert CATEGORY[want["category"]][lang] in page
    assert f'<html lang="{lang}">' in page
    assert "@media print" in page and "size: A4" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page  # one file
    digest = json.loads(report(data_dir, tmp_path, site, "json"))["digest"]["value"]
    assert digest in page


def test_html_says_which_language(data_dir, tmp_path):
    vi = report(data_dir, tmp_path, "shared", "html", "--lang", "vi")
    en = report(data_dir, tmp_path, "shared", "html", "--lang", "en")
    assert "Cân bằng điện năng" in vi and "Energy balance" in en
    # pPUE cooling (1000 + 100) / 1000 = 1.1; unexplained 1300 - 1100 = 200 kWh, 15.4 %.
    assert "1,10" in vi and "1.10" in en
    assert "200,0 kWh · 15,4 %" in vi and "200.0 kWh · 15.4 %" in en
    assert "Energy balance" not in vi and "Cân bằng" not in en


def test_province_report_has_one_row_per_site(data_dir, tmp_path):
    doc = json.loads(report(data_dir, tmp_path, "all", "json"))
    assert [s["site"] for s in doc["sites"]] == list(SCENARIOS)
    for rep in doc["sites"]:
        assert rep["pue"] == pytest.approx(SCENARIOS[rep["site"]]["pue"], rel=1e-9)
    rows = list(csv.DictReader(io.StringIO(report(data_dir, tmp_path, "all", "csv"))))
    assert [r["site"] for r in rows] == [*SCENARIOS, "province"]
    assert [r["status"] for r in rows[:-1]] == [w["status"] for w in SCENARIOS.values()]
    page = report(data_dir, tmp_path, "all", "html", "--lang", "en")
    assert "All data centers" in page
    assert page.count('<section class="site') == len(SCENARIOS)
    for name in ("Counter reset", "Mixed IT measurement points", "Coverage just above"):
        assert name in page


# The province over the scenarios, by hand: the ok sites are reset, wrap, swap, cgap,
# ragged, exclude, shared, mixed and covhigh (gap and covlow are incomplete, misassigned
# invalid). E_DC 1200 + 800 + 800 + 1200 + 1200 + 1300 + 1300 + 1100 + 70 x 1369 / 60;
# E_IT 23000 / 24 + 500 + 600 + 1000 + 960 + 1000 + 1000 + 800 + 50 x 1369 / 60. All
# judged sites but wrap (1.60) are compliant: 8 of 9; 12 sites in all.
PROVINCE_DC = 8900 + 70 * 1369 / 60
PROVINCE_IT = 23000 / 24 + 5860 + 50 * 1369 / 60
NOT_JUDGED = [("gap", "incomplete", 0.875, 1.5), ("misassigned", "invalid", 1.0, 0.8),
              ("covlow", "incomplete", 1367 / 1440, 1.4)]


def test_province_figure_in_the_report(data_dir, tmp_path):
    prov = json.loads(report(data_dir, tmp_path, "all", "json"))["province"]
    assert prov["facility_energy_kwh"] == pytest.approx(PROVINCE_DC, rel=1e-9)
    assert prov["it_energy_kwh"] == pytest.approx(PROVINCE_IT, rel=1e-9)
    assert prov["pue"] == pytest.approx(PROVINCE_DC / PROVINCE_IT, rel=1e-9)
    assert (prov["sites"], prov["judged"], prov["compliant"]) == (12, 9, 8)
    assert [(n["site"], n["status"], n["coverage"], n["pue"]) for n in prov["not_judged"]] \
        == [(s, st, pytest.approx(c, rel=1e-9), pytest.approx(p, rel=1e-9))
            for s, st, c, p in NOT_JUDGED]
    assert (prov["start"], prov["end"], prov["refused"]) == (START, END, None)
    row = list(csv.DictReader(io.StringIO(report(data_dir, tmp_path, "all", "csv"))))[-1]
    assert float(row["pue"]) == pytest.approx(PROVINCE_DC / PROVINCE_IT, rel=1e-9)
    assert (row["sites_judged"], row["sites_compliant"]) == ("9", "8")
    assert row["not_judged"] == "gap:incomplete misassigned:invalid covlow:incomplete"
    # PUE 10497.1667 / 7959.1667 = 1.3189 -> "1,32"; E_DC "10.497,2 kWh".
    for lang, pue, e_dc, judged, why in (
            ("vi", "1,32", "10.497,2 kWh", "Được đánh giá: 9/12 TTDL · đạt ngưỡng: 8",
             "Chưa đánh giá được (và lý do)"),
            ("en", "1.32", "10,497.2 kWh", "Judged: 9 of 12 data centers · compliant: 8",
             "Not judged (and why)")):
        page = report(data_dir, tmp_path, "all", "html", "--lang", lang)
        head = page[:page.index('<section class="site')]
        assert f'<div class="pue">{pue}</div>' in head and e_dc in head
        assert judged in head and why in head and "misassigned" in head


def canonical_sha256(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=True).encode("ascii")).hexdigest()


@pytest.mark.parametrize("site", ["reset", "gap", "shared"])
def test_digest_is_recomputable_and_tamper_evident(data_dir, tmp_path, site):
    doc = json.loads(report(data_dir, tmp_path, site, "json"))
    assert doc["digest"]["algorithm"] == "sha256"
    assert canonical_sha256(doc["inputs"]) == doc["digest"]["value"]
    # The inputs say what the figure came from: shares, energies and covered time.
    assert {m["device"]: m["energy_kwh"] for m in doc["inputs"]["meters"]} == pytest.approx(
        SCENARIOS[site]["meters"], rel=1e-9)
    tampered = json.loads(json.dumps(doc["inputs"]))
    tampered["meters"][0]["energy_kwh"] += 0.1
    assert canonical_sha256(tampered) != doc["digest"]["value"]
    tampered = json.loads(json.dumps(doc["inputs"]))
    tampered["meters"][0]["share"] = 0.5
    assert canonical_sha256(tampered) != doc["digest"]["value"]


def test_a_meters_coverage_is_its_own_time(data_dir, tmp_path):
    doc = json.loads(report(data_dir, tmp_path, "gap", "json"))
    meters = {m["device"]: m for m in doc["meters"]}
    # The incomer's counter reads at 00:00 and 24:00: it measured all 24 h, even the three
    # hours the UPS did not (those are left out of E_DC, not out of the meter's coverage).
    assert meters["gap-in"]["covered_s"] == pytest.approx(24 * 3600.0, abs=1e-6)
    assert meters["gap-in"]["coverage"] == pytest.approx(1.0, abs=1e-12)


def test_trailing_12m_ends_at_the_given_time(data_dir, tmp_path):
    out = tmp_path / "r.json"
    assert cli("report", "-c", CONFIG, "--data-dir", data_dir, "--site", "reset", "--period",
               "12m", "--at", "2025-03-20T00:00:00+07:00", "-o", out) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert (doc["period"]["start"], doc["period"]["end"]) == ("2024-03-20T00:00:00+07:00",
                                                              "2025-03-20T00:00:00+07:00")
    # 23 measured hours (the reset's hour is a gap) out of 365 days (2024-02-29 lies
    # before the start): (23/24) / 365.
    assert doc["coverage"] == pytest.approx(23 / 24 / 365, abs=1e-12)
    assert doc["status"] == "incomplete" and doc["compliant"] is None
    assert doc["pue"] == pytest.approx(28800 / 23000, rel=1e-9)
    months = {m["month"]: m for m in doc["months"]}
    assert len(months) == 13  # March 2024 (from the 20th) to March 2025 (to the 20th)
    # March 2025 up to the 20th: 23 hours of 19 days.
    assert months["2025-03"]["coverage"] == pytest.approx(23 / 24 / 19, abs=1e-12)
    assert months["2024-07"]["status"] == "no_data"


def test_import_recomputes_the_blocks_it_changes(tmp_path):
    """Filling a power gap later must change the blocks that were computed without it."""
    data = tmp_path / "data"
    assert cli("import", "-c", CONFIG, "--data-dir", data,
               SCENARIOS_DIR / "gap" / "readings.csv") == 0
    first = json.loads(report(data, tmp_path, "gap", "json"))
    assert first["coverage"] == pytest.approx(0.875, abs=1e-12)  # 21 h of 24
    late = tmp_path / "late.csv"
    late.write_text("timestamp,device,metric,value\n"
                    "2025-03-14T07:00:00+07:00,gap-it,active_power_w,40000\n"
                    "2025-03-14T08:00:00+07:00,gap-it,active_power_w,40000\n", encoding="utf-8")
    assert cli("import", "-c", CONFIG, "--data-dir", data, late) == 0
    doc = json.loads(report(data, tmp_path, "gap", "json"))
    # Now 24 h on both sides: E_DC 1440, E_IT 40 x 24 = 960, PUE 1.5 > 1.4.
    assert doc["coverage"] == pytest.approx(1.0, abs=1e-12)
    assert doc["facility_energy_kwh"] == pytest.approx(1440.0, rel=1e-9)
    assert doc["it_energy_kwh"] == pytest.approx(960.0, rel=1e-9)
    assert (doc["status"], doc["compliant"]) == ("ok", False)


def test_a_long_import_gives_every_block(tmp_path):
    """Two days of 1-minute readings in one file: every block, across every seam."""
    lines = ["timestamp,device,metric,value"]
    t0 = datetime(2025, 3, 14, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    for minute in range(2 * 1440 + 1):
        at = (t0 + timedelta(minutes=minute)).isoformat()
        # Incomer: 60 kW as a counter that gains 1 kWh a minute; UPS: 40 kW as power.
        lines.append(f"{at},gap-in,active_energy_kwh,{5000 + minute}")
        lines.append(f"{at},gap-it,active_power_w,40000")
    csv_file = tmp_path / "two-days.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    assert cli("import", "-c", CONFIG, "--data-dir", data, csv_file) == 0
    with sqlite3.connect(data / DB_FILE) as conn:
        rows = conn.execute("SELECT device, COUNT(*), MIN(energy_kwh), MAX(energy_kwh), "
                            "MIN(covered_s) FROM interval_energy GROUP BY device").fetchall()
    # 2 days = 192 blocks a meter; 15 minutes of 60 kW = 15 kWh, of 40 kW = 10 kWh.
    assert sorted(rows) == [("gap-in", 192, pytest.approx(15.0), pytest.approx(15.0), 900.0),
                            ("gap-it", 192, pytest.approx(10.0), pytest.approx(10.0), 900.0)]
    out = tmp_path / "r.json"
    assert cli("report", "-c", CONFIG, "--data-dir", data, "--site", "gap", "--period",
               "2025-03-14..2025-03-16", "-o", out) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    # 48 h: E_DC 60 x 48 = 2880, E_IT 40 x 48 = 1920, PUE 1.5.
    assert doc["facility_energy_kwh"] == pytest.approx(2880.0, rel=1e-9)
    assert doc["it_energy_kwh"] == pytest.approx(1920.0, rel=1e-9)
    assert (doc["coverage"], doc["status"]) == (pytest.approx(1.0), "ok")


def test_import_summary(tmp_path, capsys):
    assert cli("import", "-c", CONFIG, "--data-dir", tmp_path / "d",
               SCENARIOS_DIR / "ragged" / "readings.csv") == 0
    out = capsys.readouterr().out
    assert "imported 7 readings of 2 devices (ragged-in, ragged-it)" in out
    assert "from 2025-03-13T15:00:00+00:00 to 2025-03-14T18:00:00+00:00" in out


# ---- bad input ------------------------------------------------------------------------

HEADER = "timestamp,device,metric,value"
GOOD = "2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,1000"
NOW = 1_764_000_000.0  # 2025-11-24

# (row after the header and one good row, what the error must say)
BAD_ROWS = [
    ("2025-03-14T00:05:00,reset-in,active_energy_kwh,1", "has no UTC offset"),
    ("14/03/2025 00:05,reset-in,active_energy_kwh,1", "is not ISO 8601"),
    ("2025-03-14T00:05:00+07:00,reset-xx,active_energy_kwh,1", "unknown device 'reset-xx'"),
    ("2025-03-14T00:05:00+07:00,reset-in,energy_kwh,1", "unknown metric 'energy_kwh'"),
    ("2025-03-14T00:05:00+07:00,reset-in,active_energy_kwh,abc", "'abc' is not a number"),
    ("2025-03-14T00:05:00+07:00,reset-in,active_energy_kwh,", "'' is not a number"),
    ("2025-03-14T00:05:00+07:00,reset-in,active_energy_kwh,nan", "not a finite number"),
    ("2025-03-14T00:05:00+07:00,reset-in,active_energy_kwh,-5", "never negative"),
    ("2025-03-14T00:05:00+07:00,reset-in,active_energy_kwh,1000,5", "5 fields, expected 4"),
    ("2025-03-14T00:05:00+07:00,reset-in", "2 fields, expected 4"),
    ("2030-01-01T00:00:00+07:00,reset-in,active_energy_kwh,1", "in the future"),
    # The same reading as line 2 with another value (an identical repeat is counted once:
    # tests/test_import_dedupe.py).
    ("2025-03-14T00:00:00+07:00,reset-in,active_energy_kwh,1001",
     "1001 here but 1000 on line 2 for the same timestamp, device, metric and labels"),
    ("2025-03-14T00:05,nobody,active_energy_kwh,x",
     "(write e.g. +07:00 or Z); unknown device 'nobody'; value 'x' is not a number"),
]


@pytest.mark.parametrize(("row", "reason"), BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_bad_row_is_refused_with_its_line(row, reason):
    config = load_config(CONFIG)
    readings, errors = parse_readings(f"{HEADER}\n{GOOD}\n{row}\n", config, NOW)
    assert len(errors) == 1 and errors[0].line == 3
    assert reason in errors[0].reason


@pytest.mark.parametrize(("header", "reason"), [
    ("timestamp,device,value", "missing column(s) metric"),
    ("time,device,metric,value", "missing column(s) timestamp"),
    ("timestamp,device,metric,value,unit", "unknown column(s) unit"),
])
def test_bad_header_is_refused(header, reason):
    readings, errors = parse_readings(f"{header}\n{GOOD}\n", load_config(CONFIG), NOW)
    assert readings == []
    assert {e.line for e in errors} == {1}
    assert any(reason in e.reason for e in errors), errors


def test_labels_are_parsed_and_checked():
    config = load_config(CONFIG)
    text = ("timestamp,device,metric,value,labels\n"
            "2025-03-14T00:00:00+07:00,reset-in,active_power_w,1000,phase=L1\n"
            "2025-03-14T00:00:00+07:00,reset-in,voltage_v,230,\n"
            "2025-03-14T00:00:00+07:00,reset-in,voltage_v,231,colour=red\n"
            '2025-03-14T00:00:00+07:00,reset-in,voltage_v,232,"phase=L2,phase=L3"\n')
    readings, errors = parse_readings(text, config, NOW)
    assert [(e.line, e.reason) for e in errors] == [
        (4, "unknown label 'colour' (known: bank, circuit, cord, inlet, line, outlet, path, "
            "phase, sensor, unit)"),
        (5, "label 'phase' given twice")]
    assert [r.labels for r in readings] == [(("phase", "L1"),), ()]


def test_a_bad_file_lists_every_error_and_imports_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    assert cli("import", "-c", CONFIG, "--data-dir", data,
               SCENARIOS_DIR / "wrap" / "readings.csv") == 0
    before = dump(data)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([
        HEADER,
        "2025-03-16T00:00:00+07:00,wrap-in,active_energy_kwh,700",  # 2: good
        "2025-03-16T00:00:00,wrap-it,active_energy_kwh,900",  # 3: naive time
        "2025-03-16T00:00:00+07:00,wrap-ups,active_energy_kwh,900",  # 4: unknown device
        "2025-03-16T00:00:00+07:00,wrap-it,energy,900",  # 5: unknown metric
        "2025-03-16T00:00:00+07:00,wrap-it,active_energy_kwh,9OO",  # 6: not a number
        "2025-03-17T00:00:00+07:00,wrap-it,active_energy_kwh,1000",  # 7: good
        "2025-03-17T00:00:00+07:00,wrap-it",  # 8: missing columns
    ]) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert cli("import", "-c", CONFIG, "--data-dir", data, bad) == 1
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith(str(bad))]
    assert [ln.split(":")[1] for ln in lines] == ["3", "4", "5", "6", "8"]
    assert "no UTC offset" in lines[0] and "unknown device 'wrap-ups'" in lines[1]
    assert "unknown metric 'energy'" in lines[2] and "'9OO' is not a number" in lines[3]
    assert "2 fields, expected 4" in lines[4]
    assert "5 bad row(s); nothing was imported" in err
    assert dump(data) == before
    # Nor is a store created for a refused file.
    assert cli("import", "-c", CONFIG, "--data-dir", tmp_path / "fresh", bad) == 1
    assert not (tmp_path / "fresh").exists()


def dump(data: Path) -> tuple[list, list]:
    with sqlite3.connect(data / DB_FILE) as conn:
        return (conn.execute(f"SELECT * FROM {READINGS} ORDER BY device, metric, ts").fetchall(),
                conn.execute("SELECT * FROM interval_energy ORDER BY device, start").fetchall())


@pytest.mark.parametrize(("argv", "message"), [
    (["--site", "nowhere", "--period", DAY], "unknown site 'nowhere'"),
    (["--site", "reset", "--period", "2025-13"], "no month 13"),
    (["--site", "all", "--period", "last year"], "unknown period 'last year'"),
    (["--site", "reset", "--period", "12m", "--at", "2025-03-20T00:00"], "needs a UTC offset"),
])
def test_report_refuses_bad_arguments_clearly(data_dir, capsys, argv, message):
    assert cli("report", "-c", CONFIG, "--data-dir", data_dir, *argv) == 2
    assert message in capsys.readouterr().err


def test_report_without_a_store_says_so(tmp_path, capsys):
    assert cli("report", "-c", CONFIG, "--data-dir", tmp_path / "none", "--site", "reset",
               "--period", DAY) == 2
    assert "no store in" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_a_site_without_readings_is_reported_as_no_data(tmp_path):
    data = tmp_path / "data"
    assert cli("import", "-c", CONFIG, "--data-dir", data,
               SCENARIOS_DIR / "reset" / "readings.csv") == 0
    doc = json.loads(report(data, tmp_path, "wrap", "json"))
    assert (doc["pue"], doc["coverage"], doc["status"], doc["compliant"]) == (
        None, 0.0, "no_data", None)
    row = next(csv.DictReader(io.StringIO(report(data, tmp_path, "wrap", "csv"))))
    assert (row["pue"], row["status"], row["compliant"]) == ("", "no_data", "")
    page = report(data, tmp_path, "wrap", "html", "--lang", "vi")
    assert '<div class="pue">—</div>' in page and "Không có dữ liệu" in page
    assert "○ Không đánh giá" in page


# ---- results kept by the import for the reports after it (figures.keptparts.keep_span) --

# Scenarios with a run of partial blocks that a report recomputes from raw readings (the
# IT meter measured part of them, tests/test_kept_parts.py). Their readings span a day,
# less than the real REACH_S (two days and an hour): results that close to the roll-up's
# frontier are not kept, so the cases that keep shorten it as tests/test_kept_parts.py does.
WITH_RUNS = ["covhigh", "covlow"]


@pytest.mark.parametrize("period", ["2025", "2025-03", DAY])
@pytest.mark.parametrize("site", WITH_RUNS)
def test_the_first_report_after_an_import_recomputes_no_partial_block(
        tmp_path, capsys, monkeypatch, site, period):
    """The import keeps the exact results of the partial blocks of every year it touched,
    as the monitor's hourly keeper does for this year and the last: the first report after
    it recomputes none, and is the same document as one computed without any kept result."""
    from unittest import mock

    from pue_monitor.figures import keptparts
    from tests.test_kept_parts import counting

    monkeypatch.setattr(keptparts, "REACH_S", 1800.0)
    data = tmp_path / "data"
    assert cli("import", "-c", CONFIG, "--data-dir", data,
               SCENARIOS_DIR / site / "readings.csv") == 0
    assert capsys.readouterr().out.strip().endswith(
        "; 1 exact result of partial blocks kept for reports")
    argv = ["report", "-c", CONFIG, "--data-dir", data, "--site", site, "--period", period,
            "--format", "json", "-o"]
    with counting() as runs:
        assert cli(*argv, tmp_path / "first.json") == 0
    assert runs == []
    with counting() as runs, mock.patch.object(keptparts, "active", lambda: None):
        assert cli(*argv, tmp_path / "uncached.json") == 0
    assert len(runs) == 1  # the scenario's run, recomputed when nothing is kept
    assert (tmp_path / "first.json").read_bytes() == (tmp_path / "uncached.json").read_bytes()


@pytest.mark.parametrize("site", WITH_RUNS)
def test_an_import_keeps_nothing_within_reach_of_its_end(tmp_path, capsys, site):
    """With the real REACH_S a day of readings is all within reach of the roll-up's
    frontier: nothing is kept, the import says nothing of it, and the first report
    computes the run (and keeps it, as before)."""
    from tests.test_kept_parts import counting

    data = tmp_path / "data"
    assert cli("import", "-c", CONFIG, "--data-dir", data,
               SCENARIOS_DIR / site / "readings.csv") == 0
    assert capsys.readouterr().out.strip().endswith("15-minute blocks recomputed")
    with counting() as runs:
        assert cli("report", "-c", CONFIG, "--data-dir", data, "--site", site, "--period",
                   DAY, "--format", "json", "-o", tmp_path / "r.json") == 0
    assert len(runs) == 1
