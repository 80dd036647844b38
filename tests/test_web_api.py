"""The JSON API and the pages through Flask's test client, over the months of stored
blocks of tests/web_history.py (hand-computed figures in its docstring) and the live polls
of tests/web_fixtures.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from pue_monitor.web.format import mark_of
from pue_monitor.web.series import province_document
from tests.web_fixtures import NOW, demo_config, fill
from tests.web_history import GAP_DAY, TZ, day_pue, facility_kw, fill_history

SITE = "/api/v1/sites/bn-provincial"
DAY_S = 86400


class Recording:
    """The store, recording how far back every raw-reading read reaches."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.raw_spans: list[float] = []

    def series_windows(self, keys, windows, labels="", near_s=0.0):
        self.raw_spans += [b - a for a, b in windows]
        return self._store.series_windows(keys, windows, labels, near_s)

    def latest(self, since, devices=None):
        self.raw_spans.append(NOW - since)
        return self._store.latest(since, devices)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store.open(tmp_path_factory.mktemp("history"))
    fill_history(s, demo_config())
    fill(s)
    yield s
    s.close()


@pytest.fixture()
def recording(store):
    return Recording(store)


@pytest.fixture()
def client(recording):
    return create_app(demo_config(), recording, clock=lambda: NOW, testing=True).test_client()


# (url, status, content type): every route, good and bad.
ROUTES = [
    ("/", 200, "text/html"),
    ("/?lang=en", 200, "text/html"),
    ("/sites/bn-provincial", 200, "text/html"),
    ("/sites/que-vo-dc?lang=en", 200, "text/html"),
    ("/sites/bn-provincial?year=2025", 200, "text/html"),
    ("/sites/bn-provincial?year=x", 200, "text/html"),  # a bad year shows this one
    ("/sites/nowhere", 404, "text/html"),
    ("/devices/prov-incomer", 200, "text/html"),
    ("/devices/qv-pdu-02?lang=en", 200, "text/html"),
    ("/devices/yp-ups-1", 200, "text/html"),
    ("/devices/nothing", 404, "text/html"),
    ("/no/such/page", 404, "text/html"),
    ("/api/v1/province", 200, "application/json"),
    (SITE, 200, "application/json"),
    ("/api/v1/sites/nowhere", 404, "application/json"),
    (f"{SITE}/pue", 200, "application/json"),
    *((f"{SITE}/pue?range={r}", 200, "application/json") for r in ("day", "week", "month",
                                                                    "year")),
    (f"{SITE}/pue?range=decade", 400, "application/json"),
    ("/api/v1/sites/nowhere/pue?range=day", 404, "application/json"),
    (f"{SITE}/power?range=week", 200, "application/json"),
    (f"{SITE}/power?range=all", 400, "application/json"),
    (f"{SITE}/months?year=2026", 200, "application/json"),
    (f"{SITE}/months", 200, "application/json"),
    (f"{SITE}/months?year=2015", 400, "application/json"),
    (f"{SITE}/months?year=2027", 400, "application/json"),
    (f"{SITE}/months?year=twenty", 400, "application/json"),
    ("/api/v1/devices/prov-incomer", 200, "application/json"),
    ("/api/v1/devices/nothing", 404, "application/json"),
    ("/api/v1/devices/prov-incomer/power?range=month", 200, "application/json"),
    ("/api/v1/devices/prov-incomer/power?range=hour", 400, "application/json"),
    ("/api/v1/no/such/thing", 404, "application/json"),
    ("/api/v1/openapi.json", 200, "application/json"),
    (f"{SITE}/events", 200, "application/json"),
    (f"{SITE}/events?days=3660", 200, "application/json"),
    (f"{SITE}/events?days=0", 400, "application/json"),
    (f"{SITE}/events?days=week", 400, "application/json"),
    ("/api/v1/sites/nowhere/events", 404, "application/json"),
]


@pytest.mark.parametrize(("url", "status", "kind"), ROUTES)
def test_route_status_and_type(client, recording, url, status, kind):
    answer = client.get(url)
    assert answer.status_code == status, answer.data[:300]
    assert answer.mimetype == kind
    if kind == "application/json" and status >= 400:
        assert set(answer.get_json()) == {"error", "status"}
    # No request reads raw readings over more than a day (series come from blocks).
    assert all(span <= DAY_S for span in recording.raw_spans), max(recording.raw_spans)


def get(client, url: str) -> dict:
    answer = client.get(url)
    assert answer.status_code == 200, answer.data[:300]
    return answer.get_json()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(TZ)


def test_month_range_is_daily_pue_with_the_gap_day_empty(client):
    doc = get(client, f"{SITE}/pue?range=month")
    points = doc["points"]
    first = datetime(2026, 10, 27, tzinfo=TZ)  # 30 local days ending today (25 Nov)
    assert [local(p["start"]) for p in points] == [first + timedelta(days=i)
                                                   for i in range(30)]
    for p in points:
        day = local(p["start"])
        if day.date() == GAP_DAY.date():
            assert (p["pue"], p["status"], p["coverage"]) == (None, "no_data", 0.0)
        else:
            assert p["pue"] == pytest.approx(day_pue(day), abs=1e-12)
            assert p["compliant"] is (day_pue(day) <= 1.4)
    # Today: blocks until 09:30 of a day that ends at 10:00.
    assert points[-1]["end"] == "2026-11-25T10:00:00+07:00"
    assert points[-1]["coverage"] == pytest.approx(9.5 / 10)


def test_day_range_is_96_blocks_and_the_unrolled_end_is_a_gap(client):
    points = get(client, f"{SITE}/pue?range=day")["points"]
    assert len(points) == 96
    assert points[0]["start"] == "2026-11-24T10:00:00+07:00"
    for p in points[:-2]:
        assert p["pue"] == pytest.approx(day_pue(local(p["start"])), abs=1e-12)
        assert p["coverage"] == 1.0
    # 09:30-10:00: live polls but no block rolled up yet: a gap, never interpolated.
    assert [(p["pue"], p["status"]) for p in points[-2:]] == [(None, "no_data")] * 2


def test_week_range_is_hourly(client):
    points = get(client, f"{SITE}/pue?range=week")["points"]
    assert len(points) == 7 * 24
    assert points[-1]["end"] == "2026-11-25T10:00:00+07:00"
    for p in points[:-1]:
        assert p["pue"] == pytest.approx(day_pue(local(p["start"])), abs=1e-12)
    assert points[-1]["coverage"] == pytest.approx(0.5)  # 09:00-09:30 of 09:00-10:00
    assert points[-1]["status"] == "incomplete"


# (month, PUE by hand from the day pattern, coverage) of 2026.
NOV_H = 23 * 24 + 9.5  # 24 days and 9.5 h of blocks, the gap day out
MONTHS = [
    (9, 1.45, 1.0),  # 15 odd days at 150 kW, 15 even at 140
    (10, (16 * 150 + 15 * 140) / (31 * 100), 1.0),
    (11, (12 * 24 * 150 + 11 * 24 * 140 + 9.5 * 150) / (100 * NOV_H), NOV_H / (24 * 24 + 10)),
]


def test_months_of_the_year(client):
    doc = get(client, f"{SITE}/months?year=2026")
    months = {m["month"]: m for m in doc["months"]}
    assert list(months) == list(range(1, 13))
    for month in range(1, 9):
        assert (months[month]["pue"], months[month]["status"]) == (None, "no_data")
    for month, pue, coverage in MONTHS:
        assert months[month]["pue"] == pytest.approx(pue, abs=1e-12)
        assert months[month]["coverage"] == pytest.approx(coverage, abs=1e-12)
        assert months[month]["compliant"] is False  # every one above 1.4
    assert months[12]["begun"] is False and months[12]["pue"] is None
    year = get(client, f"{SITE}/pue?range=year")["points"]
    assert [p["start"][:7] for p in year] == ["2025-12"] + [f"2026-{m:02d}" for m in range(1, 12)]
    assert [p["pue"] for p in year[-3:]] == [months[m]["pue"] for m in (9, 10, 11)]


def test_power_by_role_is_a_gap_where_a_meter_has_no_block(client):
    doc = get(client, f"{SITE}/power?range=month")
    assert doc["stack"] == ["it", "cooling"]
    for i, start in enumerate(doc["start"]):
        day = local(start)
        it = doc["roles"]["it"][i]
        assert it is None if day.date() == GAP_DAY.date() else it == pytest.approx(100.0)
        assert doc["roles"]["cooling"][i] == pytest.approx(30.0)
        assert doc["roles"]["facility"][i] == pytest.approx(facility_kw(day))


def test_site_summary_and_checks(client):
    doc = get(client, SITE)
    assert doc["mark"] == "not_judged"  # 12 months at 23 % coverage
    assert [m["id"] for m in doc["meters"]][:3] == ["prov-incomer", "prov-ups-a", "prov-ups-b"]
    assert doc["meters"][1]["measurement_point"] == "ups_output"
    # 30 days of blocks: cooling pPUE (IT + cooling) / IT = 130 / 100.
    assert doc["checks"]["ppue"]["cooling"] == pytest.approx(1.3)
    assert doc["windows"]["30d"]["pue"] == get(client, "/api/v1/province")["sites"][0]["30d"]


# (device, state, profile, reason, errors)
DEVICES = [
    ("prov-incomer", "up", "schneider_pm5xxx", "configured", {}),
    ("qv-pdu-02", "down", "apc_rpdu2", "configured", {"timeout": 1}),
    ("yp-ups-1", "never", "ups_mib", "configured", {}),
]


@pytest.mark.parametrize(("device", "state", "profile", "reason", "errors"), DEVICES)
def test_device(client, device, state, profile, reason, errors):
    doc = get(client, f"/api/v1/devices/{device}")
    assert (doc["state"], doc["profile"], doc["profile_reason"]) == (state, profile, reason)
    assert {k: n for k, n in doc["errors"].items() if n} == errors
    assert "community" not in doc["endpoint"] and "public" not in doc["endpoint"]


def test_device_readings_and_power(client):
    doc = get(client, "/api/v1/devices/prov-incomer")
    values = {(r["metric"], r["labels"]): r["value"] for r in doc["readings"]}
    assert values[("active_power_w", "")] == 140_000.0
    assert values[("active_energy_kwh", "")] == pytest.approx(1000.0 + 140.0 * 20 / 60)
    power = get(client, "/api/v1/devices/prov-incomer/power?range=month")
    for start, kw, cov in zip(power["start"], power["power_kw"], power["coverage"]):
        assert kw == pytest.approx(facility_kw(local(start)))
        assert cov == (pytest.approx(0.95) if start.startswith("2026-11-25") else 1.0)


def test_openapi_lists_every_route_and_only_them(client):
    app = client.application
    routes = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
              for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, item in
                  get(client, "/api/v1/openapi.json")["paths"].items() for method in item}
    assert routes == documented


def _site(sid, compliant, at_risk, facility, it):
    return {"id": sid, "name": {"vi": sid, "en": sid}, "kind": "attracted",
            "instant": {"pue": None}, "year_at_risk": {"at_risk": at_risk},
            "windows": {"12m": {"pue": None if it is None else facility / it,
                                "compliant": compliant, "coverage": 1.0, "category": "PUE1",
                                "facility_energy_kwh": facility, "it_energy_kwh": it}}}


# (sites, the status document's 12-month province figure, green). The figure is
# pue.province.province_figure's (tested in tests/test_province.py), computed once for the
# status document: the page shows it as it is, and counts the green marks beside it.
FIGURE = {"pue": 430.0 / 250.0, "facility_energy_kwh": 430.0, "it_energy_kwh": 250.0,
          "sites": 3, "judged": 2, "compliant": 1,
          "not_judged": [{"site": "c", "status": "incomplete", "coverage": 0.5, "pue": None}]}
PROVINCES = [
    ([_site("a", True, False, 130.0, 100.0), _site("b", False, False, 300.0, 150.0),
      _site("c", None, None, 999.0, 1.0)], FIGURE, 1),
    ([_site("a", True, True, 135.0, 100.0)], {**FIGURE, "pue": 1.35, "judged": 1}, 1),
    ([_site("c", None, None, 10.0, 5.0)], None, 0),
]


@pytest.mark.parametrize(("sites", "figure", "green"), PROVINCES)
def test_province_figure(sites, figure, green):
    doc = province_document({"generated_at": "", "sites": sites,
                             "province": {"12m": figure} if figure else {}})
    assert (doc["pue"], doc["judged"], doc["green"], doc["total"]) == (
        figure["pue"] if figure else None, figure["judged"] if figure else 0, green, len(sites))
    assert doc["not_judged"] == (figure["not_judged"] if figure else [])
    assert [r["id"] for r in doc["sites"]] == [site["id"] for site in sites]


# (12-month compliant, year at risk, mark)
MARKS = [(True, False, "green"), (True, True, "at_risk"), (True, None, "green"),
         (False, True, "over"), (None, True, "not_judged"), (None, None, "not_judged")]


@pytest.mark.parametrize(("compliant", "at_risk", "mark"), MARKS)
def test_mark(compliant, at_risk, mark):
    assert mark_of(_site("x", compliant, at_risk, 1.0, 1.0)) == mark


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_site_page_shows_the_api_numbers(client, lang):
    html = client.get(f"/sites/bn-provincial?lang={lang}").get_data(as_text=True)
    months = get(client, f"{SITE}/months?year=2026")["months"]
    sep = "," if lang == "vi" else "."
    for m in months[8:11]:
        shown = re.search(rf'data-api-months="months.{m["month"] - 1}.pue">([^<]*)<', html)
        assert shown and shown.group(1) == f"{m['pue']:.2f}".replace(".", sep)
    assert '<script id="page-data" type="application/json">' in html
    assert "<script>" not in html  # no inline script


def _vocabulary() -> list[str]:
    from pue_monitor.config.metrics import METRICS, MeasurementPoint
    from pue_monitor.store.model import Quality
    from pue_monitor.web.format import MARKS
    from pue_monitor.figures.charts import RANGES
    return ([f"metric.{m}" for m in METRICS] + [f"mp.{p.value}" for p in MeasurementPoint]
            + [f"quality.{q.value}" for q in Quality] + [f"mark.{m}" for m in MARKS]
            + [f"range.{r}" for r in RANGES]
            + [f"state.{s}" for s in ("up", "degraded", "down", "never")]
            + [f"profile.{r}" for r in ("configured", "identified")])


@pytest.mark.parametrize("key", _vocabulary())
def test_every_shown_value_has_both_languages(key):
    from pue_monitor.web.i18n import CATALOGUE
    assert set(CATALOGUE[key]) == {"vi", "en"} and all(CATALOGUE[key].values())


def test_no_text_is_written_twice_in_the_catalogue():
    """A key given twice in the catalogue's literal keeps its last text silently: the
    device-state texts were once written twice and the page showed the stale one."""
    import ast
    from pathlib import Path

    from pue_monitor.web import i18n
    tree = ast.parse(Path(i18n.__file__).read_text(encoding="utf-8"))
    keys = [k.value for node in ast.walk(tree) if isinstance(node, ast.Dict)
            for k in node.keys if isinstance(k, ast.Constant)]
    catalogue = [k for k in keys if isinstance(k, str) and "." in k]
    assert len(catalogue) > 250  # the catalogue was read
    assert sorted({k for k in catalogue if catalogue.count(k) > 1}) == []


# (url, content type): a store that fails gives a clear error in the page's language.
FAILING = [("/sites/bn-provincial?lang=en", "text/html"), ("/devices/prov-incomer?lang=vi",
                                                            "text/html"),
           ("/api/v1/sites/bn-provincial", "application/json"),
           ("/api/v1/province", "application/json")]


@pytest.mark.parametrize(("url", "kind"), FAILING)
def test_store_failure_is_a_clear_error(tmp_path, caplog, url, kind):
    from pue_monitor.web.i18n import t
    store = Store.open(tmp_path / "data")

    def broken(*args, **kwargs):
        raise OSError("disk I/O error")

    store.latest = broken  # type: ignore[method-assign]
    client = create_app(demo_config(), store, clock=lambda: NOW, testing=True).test_client()
    answer = client.get(url)
    assert (answer.status_code, answer.mimetype) == (500, kind)
    lang = "vi" if "lang=vi" in url else "en"
    if kind == "text/html":
        assert t("error.unavailable", lang) in answer.get_data(as_text=True)
    else:
        assert answer.get_json() == {"error": t("error.unavailable", "en"), "status": 500}
    assert not [r for r in caplog.records if r.name == "pue_monitor.web.pages" and r.exc_info]
    store.close()


def test_energy_totals_from_the_day_summary(client):
    # Sep 1 - Nov 24 whole days (odd: 15 + 16 + 12 at 150 kW, even: 15 + 15 + 12 at
    # 140 kW) and 9.5 h of Nov 25 (odd); IT 100 kW less prov-ups-b's 24 h on the gap day.
    hours = 85 * 24 + 9.5
    totals = get(client, SITE)["energy_kwh_total"]
    assert totals == {"cooling": pytest.approx(30 * hours),
                      "facility": pytest.approx(24 * (150 * 43 + 140 * 42) + 9.5 * 150),
                      "it": pytest.approx(100 * hours - 50 * 24)}


class NoDays(Recording):
    """The store as if its day summary were incomplete: every sum from the blocks."""

    def days_complete(self):
        return False


@pytest.mark.parametrize("url", [f"{SITE}/power?range={r}" for r in ("month", "year")]
                         + ["/api/v1/devices/prov-ups-b/power?range=year"])
def test_series_from_days_equal_series_from_blocks(store, url):
    def answer(s):
        return get(create_app(demo_config(), s, clock=lambda: NOW, testing=True).test_client(),
                   url)
    from_days, from_blocks = answer(Recording(store)), answer(NoDays(store))
    assert from_days == from_blocks
    values = from_days["roles"]["it"] if "roles" in from_days else from_days["power_kw"]
    assert sum(v is not None for v in values) >= 3  # September to November have blocks


def test_alert_history_in_the_api_and_on_the_site_page(tmp_path):
    from pue_monitor.store.base import SiteEvent
    store = Store.open(tmp_path / "data")
    fill(store)
    store.record_events([
        SiteEvent("bn-provincial", NOW - 3 * 3600, "device", "prov-chiller", "down", None,
                  "timeout"),
        SiteEvent("bn-provincial", NOW - 2 * 3600, "pue", "24h", "over", 1.4567, "<= 1.4"),
        SiteEvent("bn-provincial", NOW - 100 * DAY_S, "device", "prov-chiller", "up"),
        SiteEvent("que-vo-dc", NOW - 3600, "device", "qv-ups-1", "down", None, "timeout")])
    client = create_app(demo_config(), store, clock=lambda: NOW, testing=True).test_client()
    doc = get(client, f"{SITE}/events")
    # newest first, the last 90 days only, this site only
    assert [(e["kind"], e["subject"], e["state"]) for e in doc["events"]] == [
        ("pue", "24h", "over"), ("device", "prov-chiller", "down")]
    assert doc["events"][0]["value"] == 1.4567 and doc["events"][0]["name"] is None
    assert doc["events"][1]["name"] == {"vi": "Lộ cấp hệ thống chiller",
                                        "en": "Chiller plant feed"}
    assert doc["events"][1]["at"].endswith("+07:00")
    assert len(get(client, f"{SITE}/events?days=101")["events"]) == 3
    html = client.get("/sites/bn-provincial?lang=vi").get_data(as_text=True)
    assert "Lịch sử cảnh báo" in html and "Lộ cấp hệ thống chiller" in html
    assert re.search(r'data-api="events.0.state">Vượt ngưỡng<', html)
    assert re.search(r'data-api="events.1.state">Mất kết nối<', html)
    assert "PUE 1,46" in html and "hết thời gian chờ" in html
    english = client.get("/sites/bn-provincial?lang=en").get_data(as_text=True)
    assert "Alert history" in english and "Chiller plant feed" in english
    assert re.search(r'data-api="events.0.state">Over the threshold<', english)
    quiet = client.get("/sites/yen-phong-dc?lang=en").get_data(as_text=True)
    assert "No alert in the last 90 days." in quiet
    store.close()


@pytest.mark.parametrize(("lang", "kind"), [("vi", "hết thời gian chờ: "), ("en", "timeout: ")])
def test_device_page_names_the_last_error_in_the_page_language(client, lang, kind):
    html = client.get(f"/devices/qv-pdu-02?lang={lang}").get_data(as_text=True)
    shown = re.search(r'data-api="last_error">(.*?)</dd>', html, re.S).group(1)
    assert shown.startswith(kind) and '<span class="mono small">' in shown


def test_background_state_serves_the_previous_document_while_the_next_is_computed(store):
    from pue_monitor.web.app import CACHE_S, STALE_MAX_S, warm
    clock = [NOW]
    app = create_app(demo_config(), store, clock=lambda: clock[0], testing=True,
                     background=True)
    warm(app)
    state = app.extensions["pue_monitor"]
    first = state.document()
    assert first["generated_at_unix"] == NOW
    clock[0] = NOW + 2 * CACHE_S  # expired: served as it is, the next one on a thread
    assert state.document() is first
    state._doc_thread.join(timeout=60)
    assert state.document()["generated_at_unix"] == NOW + 2 * CACHE_S
    clock[0] = NOW + 2 * CACHE_S + STALE_MAX_S + 1  # too old to serve: computed at once
    assert state.document()["generated_at_unix"] == clock[0]
