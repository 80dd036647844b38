"""Report periods are bounded: longer than the configured limit (10 years by default) or
naming absurd dates, they are refused with a clear message in Vietnamese and English,
before any work, in the web view and on the command line alike."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pue_monitor.cli import main
from pue_monitor.config import load_config_text
from pue_monitor.figures.report import build_report
from pue_monitor.pue.periods import DEFAULT_MAX_REPORT_YEARS, PeriodError, parse_period
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from tests.conftest import DEMO
from tests.web_fixtures import NOW, demo_config

TZ = "Asia/Ho_Chi_Minh"
AT = datetime(2026, 11, 25, 10, 7, 30, tzinfo=ZoneInfo(TZ)).timestamp()


def local(*args: int) -> float:
    return datetime(*args, tzinfo=ZoneInfo(TZ)).timestamp()


# (period, limit in years, expected (start, end)): the limit is calendar years, so a leap
# day in the span does not shorten it
ACCEPTED = [
    ("2016-01-01..2026-01-01", 10, (local(2016, 1, 1), local(2026, 1, 1))),
    ("2016-02-29..2026-02-28", 10, (local(2016, 2, 29), local(2026, 2, 28))),
    ("2000-01-01..2027-01-01", 27, (local(2000, 1, 1), local(2027, 1, 1))),
    ("1970-01-01..1970-01-02", 10, (local(1970, 1, 1), local(1970, 1, 2))),
    ("9998-12-31", 10, (local(9998, 12, 31), local(9999, 1, 1))),
]


@pytest.mark.parametrize(("text", "years", "expected"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_periods_up_to_the_limit_are_accepted(text, years, expected):
    assert parse_period(text, TZ, AT, years) == expected


# (period, English message, Vietnamese message), with the default limit of 10 years
REFUSED = [
    ("2016-01-01..2026-01-02",
     "period '2016-01-01..2026-01-02' is longer than 10 years: ask for a shorter one",
     "kỳ '2016-01-01..2026-01-02' dài hơn 10 năm: hãy chọn kỳ ngắn hơn"),
    ("1999-01-01..2026-01-01",
     "period '1999-01-01..2026-01-01' is longer than 10 years: ask for a shorter one",
     "kỳ '1999-01-01..2026-01-01' dài hơn 10 năm: hãy chọn kỳ ngắn hơn"),
    ("0001-01-01..9999-12-31",
     "'0001-01-01' is outside the years a report can cover (1970..9998)",
     "'0001-01-01' nằm ngoài các năm báo cáo có thể bao gồm (1970..9998)"),
    ("1900-01-01..2999-12-31",
     "'1900-01-01' is outside the years a report can cover (1970..9998)",
     "'1900-01-01' nằm ngoài các năm báo cáo có thể bao gồm (1970..9998)"),
    ("9999-12-31",
     "'9999-12-31' is outside the years a report can cover (1970..9998)",
     "'9999-12-31' nằm ngoài các năm báo cáo có thể bao gồm (1970..9998)"),
    ("9999",
     "'9999' is outside the years a report can cover (1970..9998)",
     "'9999' nằm ngoài các năm báo cáo có thể bao gồm (1970..9998)"),
    ("0000-Q1",
     "'0000-Q1' is outside the years a report can cover (1970..9998)",
     "'0000-Q1' nằm ngoài các năm báo cáo có thể bao gồm (1970..9998)"),
    ("2025-01-01T00:00+07:00..9999-12-31T23:59:59+14:00",
     "'9999-12-31T23:59:59+14:00' is outside the years a report can cover (1970..9998)",
     "'9999-12-31T23:59:59+14:00' nằm ngoài các năm báo cáo có thể bao gồm (1970..9998)"),
    ("2025-13", "no month 13 in '2025-13'", "không có tháng 13 trong '2025-13'"),
]


@pytest.mark.parametrize(("text", "en", "vi"), REFUSED, ids=[r[0] for r in REFUSED])
def test_long_or_absurd_periods_are_refused_in_both_languages(text, en, vi):
    with pytest.raises(PeriodError) as caught:
        parse_period(text, TZ, AT)
    assert (str(caught.value), caught.value.text("en"), caught.value.text("vi")) == (en, en, vi)


def test_trailing_12m_at_the_edge_of_time_is_a_clear_error():
    with pytest.raises(PeriodError, match=r"^period '12m' cannot be used: "):
        parse_period("12m", TZ, datetime(1, 6, 1, tzinfo=ZoneInfo("UTC")).timestamp())


def test_the_limit_comes_from_the_configuration(tmp_path):
    text = DEMO.read_text(encoding="utf-8")
    assert load_config_text(text, env={}).max_report_years == DEFAULT_MAX_REPORT_YEARS
    config = load_config_text(text + "\nmax_report_years: 30\n", env={})
    store = Store.open(tmp_path / "data")
    try:
        doc = build_report(store, config, "bn-provincial", "2000-01-01..2026-01-01", AT, AT)
        assert doc["period"]["start"] == "2000-01-01T00:00:00+07:00"
        with pytest.raises(PeriodError, match="longer than 30 years"):
            build_report(store, config, "all", "1990-01-01..2026-01-01", AT, AT)
    finally:
        store.close()


@pytest.mark.parametrize(("lang", "words"), [
    ("en", "is longer than 10 years: ask for a shorter one"),
    ("vi", "dài hơn 10 năm: hãy chọn kỳ ngắn hơn"),
])
def test_web_view_refuses_a_long_period_in_the_page_language(tmp_path, lang, words):
    store = Store.open(tmp_path / "data")
    try:
        client = create_app(demo_config(), store, clock=lambda: NOW, testing=True).test_client()
        answer = client.get(f"/reports/view?site=all&period=1926-01-01..2026-01-01"
                            f"&format=json&lang={lang}")
        assert answer.status_code == 400
        assert "outside the years" in client.get(
            "/reports/view?site=all&period=0001-01-01..9999-12-31&lang=en").get_data(
                as_text=True)
        answer = client.get(f"/reports/view?site=all&period=2000-01-01..2026-01-01&lang={lang}")
        assert answer.status_code == 400 and words in answer.get_data(as_text=True)
    finally:
        store.close()


def test_command_line_refuses_before_opening_the_store(tmp_path, capsys):
    missing = tmp_path / "no-store-here"
    assert main(["report", "-c", str(DEMO), "--data-dir", str(missing), "--site", "all",
                 "--period", "0001-01-01..9999-12-31"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert ("--period: '0001-01-01' is outside the years a report can cover (1970..9998)\n"
            "  ('0001-01-01' nằm ngoài các năm báo cáo có thể bao gồm (1970..9998))") in err
    assert not missing.exists()
