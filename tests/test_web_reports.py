"""Audit reports in the browser: the same documents as `pue-monitor report`, read-only."""

from __future__ import annotations

import csv
import re
import io

import pytest

from pue_monitor.figures.report import build_report
from pue_monitor.figures.rollup import rollup
from pue_monitor.store.sqlite import Store
from tests.web_fixtures import NOW, demo_config, fill
from pue_monitor.web import create_app

PERIOD = "2026-11-25T09:45..2026-11-25T10:00"  # the fixture's whole 15-minute block


@pytest.fixture()
def setup(tmp_path):
    store = Store.open(tmp_path / "data")
    fill(store)
    config = demo_config()
    rollup(store, config, NOW + 120)
    app = create_app(config, store, clock=lambda: NOW, testing=True)
    yield app.test_client(), store, config
    store.close()


def test_index_lists_every_site_and_the_province(setup):
    client, _, config = setup
    html = client.get("/reports/?lang=en").get_data(as_text=True)
    for site in config.sites:
        assert site.name.en in html
    assert "All data centers" in html and "site=all" in html and "period=2026" in html
    assert "Báo cáo PUE theo kỳ" in client.get("/reports/?lang=vi").get_data(as_text=True)


def test_json_is_the_command_line_document(setup):
    client, store, config = setup
    answer = client.get(f"/reports/view?site=bn-provincial&period={PERIOD}&format=json")
    assert answer.status_code == 200
    doc = answer.get_json()
    assert doc == build_report(store, config, "bn-provincial", PERIOD, NOW, NOW)
    # 140 kW over 100 kW for the whole quarter hour: 35 / 25 kWh, judged and compliant.
    assert (doc["pue"], doc["facility_energy_kwh"], doc["it_energy_kwh"]) == (
        pytest.approx(1.4), pytest.approx(35.0), pytest.approx(25.0))
    assert (doc["status"], doc["compliant"], doc["coverage"]) == ("ok", True, 1.0)


def test_csv_province_rows(setup):
    client, _, config = setup
    answer = client.get(f"/reports/view?site=all&period={PERIOD}&format=csv")
    assert answer.status_code == 200
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))
    assert [r["site"] for r in rows] == [*(s.id for s in config.sites), "province"]
    by_site = {r["site"]: r for r in rows}
    assert float(by_site["que-vo-dc"]["pue"]) == pytest.approx(1.5)
    assert by_site["que-vo-dc"]["compliant"] == "false"
    assert by_site["yen-phong-dc"]["status"] == "no_data"


@pytest.mark.parametrize(("lang", "figure", "verdict"), [("vi", "1,50", "✗ Vượt ngưỡng"),
                                                          ("en", "1.50", "✗ Over threshold")])
def test_printable_html_in_both_languages(setup, lang, figure, verdict):
    client, _, _ = setup
    html = client.get(f"/reports/view?site=que-vo-dc&period={PERIOD}&format=html&lang={lang}"
                      ).get_data(as_text=True)
    assert f'<html lang="{lang}">' in html and figure in html and verdict in html


@pytest.mark.parametrize(("query", "message"), [
    ("site=all&period=last+year", "unknown period 'last year'"),
    ("site=all&period=2026&format=xlsx", "format 'xlsx'"),
])
def test_bad_requests_say_why(setup, query, message):
    client, _, _ = setup
    answer = client.get(f"/reports/view?{query}&lang=en")
    assert answer.status_code == 400
    assert message in answer.get_data(as_text=True).replace("&#39;", "'")


def test_an_unknown_site_is_not_found(setup):
    # The same answer as another organisation's site (web.access.require_site).
    client, _, _ = setup
    assert client.get("/reports/view?site=nowhere&period=2026&lang=en").status_code == 404


def test_the_province_computed_in_processes_is_the_same_document(tmp_path):
    """`report --site all` computes sites in forked processes: same document, byte for byte."""
    store = Store.open(tmp_path / "data")
    fill(store)
    config = demo_config()
    period = "2026-11-25T09:30..2026-11-25T10:00"  # a partial block and a whole one
    # Forked first: the children roll up the missing blocks, each site's writes its own.
    forked = build_report(store, config, "all", period, NOW, NOW, workers=2)
    alone = build_report(store, config, "all", period, NOW, NOW)
    assert [s["site"] for s in forked["sites"]] == [s.id for s in config.sites]
    assert forked == alone
    assert {s["status"] for s in alone["sites"]} >= {"incomplete"}  # something was computed
    store.close()


# (period, language, how people write it)
PERIOD_WORDS = [
    ("2026", "vi", "Năm 2026 (01/01/2026 – 31/12/2026, UTC+07:00)"),
    ("2026", "en", "Year 2026 (01/01/2026 – 31/12/2026, UTC+07:00)"),
    ("2026-Q3", "vi", "Quý III năm 2026 (01/07/2026 – 30/09/2026, UTC+07:00)"),
    ("2026-Q3", "en", "Q3 2026 (01/07/2026 – 30/09/2026, UTC+07:00)"),
    ("2026-02", "vi", "Tháng 2 năm 2026 (01/02/2026 – 28/02/2026, UTC+07:00)"),
    ("2026-02", "en", "February 2026 (01/02/2026 – 28/02/2026, UTC+07:00)"),
    ("2026-11-24", "vi", "Ngày 24/11/2026 (24/11/2026, UTC+07:00)"),
    ("2026-11-01..2026-11-25", "en", "01/11/2026 – 24/11/2026, UTC+07:00"),
    (PERIOD, "vi", "09:45 25/11/2026 – 10:00 25/11/2026, UTC+07:00"),
]


@pytest.mark.parametrize(("period", "lang", "words"), PERIOD_WORDS)
def test_the_period_is_written_as_people_write_it(setup, period, lang, words):
    client, _, _ = setup
    html = client.get(f"/reports/view?site=que-vo-dc&period={period}&format=html&lang={lang}"
                      ).get_data(as_text=True)
    assert words in html
    # Local times only: no ISO time anywhere a reader sees it (links and the
    # machine-readable inputs block aside).
    readable = re.sub(r'href="[^"]*"', "", html.split("<pre>")[0])
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", readable)
    assert "Lập lúc: 10:00 25/11/2026" in html if lang == "vi" else \
        "Generated at: 10:00 25/11/2026" in html


@pytest.mark.parametrize(("lang", "words"), [
    ("vi", ("Người lập báo cáo", "Người phê duyệt", "(ký, ghi rõ họ tên)",
            "Phương pháp (tiếng Anh)",
            "English", "Báo cáo kiểm tra", "Tổng quan trực tuyến")),
    ("en", ("Prepared by", "Approved by", "(signature and full name)", "Method (in Vietnamese)",
            "Tiếng Việt", "Audit reports", "Live overview")),
])
def test_signature_block_both_methods_navigation_and_language_switch(setup, lang, words):
    client, _, _ = setup
    html = client.get(f"/reports/view?site=que-vo-dc&period=2026&format=html&lang={lang}"
                      ).get_data(as_text=True)
    for word in words:
        assert word in html, word
    other = "en" if lang == "vi" else "vi"
    assert f"/reports/view?site=que-vo-dc&amp;period=2026&amp;format=html&amp;lang={other}" in html
    assert '<nav class="no-print">' in html and ".no-print { display: none; }" in html
    assert "@page { size: A4;" in html
    # The month chart: one svg, twelve month labels, a bar for each month with a figure
    # (November, the only one with data here) and the threshold line.
    chart = re.search(r'<svg class="chart".*?</svg>', html, re.S).group(0)
    assert chart.count("<rect") == 1 and 'stroke-dasharray="6 4"' in chart


def test_date_picker_and_quarter_shortcuts(setup):
    client, store, config = setup
    html = client.get("/reports/?lang=vi").get_data(as_text=True)
    assert 'type="date" name="from"' in html and 'type="date" name="to"' in html
    # this year's begun quarters (November: all four) and last year's
    for label in ("Quý I năm 2026", "Quý IV năm 2026", "Quý IV năm 2025"):
        assert label in html
    assert "period=2026-Q4" in html and "period=2025-Q1" in html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    picked = client.post("/reports/view", data={
        "csrf_token": csrf, "site": "bn-provincial", "from": "2026-11-25",
        "to": "2026-11-25", "format": "json"})
    assert picked.status_code == 200
    # the last day included: the period ends at the next midnight
    assert picked.get_json() == build_report(store, config, "bn-provincial",
                                             "2026-11-25..2026-11-26", NOW, NOW)
    backwards = client.post("/reports/view?lang=en", data={
        "csrf_token": csrf, "site": "bn-provincial", "from": "2026-11-25",
        "to": "2026-11-01", "format": "html"})
    assert backwards.status_code == 400
    assert "the last day 01/11/2026 is before the first 25/11/2026" in backwards.get_data(
        as_text=True)
