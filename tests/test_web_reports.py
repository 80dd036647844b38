"""Audit reports in the browser: the same documents as `pue-monitor report`, read-only."""

from __future__ import annotations

import csv
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
    ("site=all&period=2026&format=pdf", "format 'pdf'"),
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
