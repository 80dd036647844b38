"""Who sees what: every role against every route, pages and API alike (web.access).

The table's statuses are what the server must answer; 404 for another organisation's
site is the same answer as for a site that does not exist.
"""

from __future__ import annotations

import pytest

from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from pue_monitor.web.accounts import password_epoch, token_hash
from tests.access_fixtures import ALL, USERS, add_users, login_config
from tests.web_fixtures import NOW, demo_config, fill

WHO = ["anon", "op-a", "op-b", "aud", "adm"]
REPORT = "/reports/view?period=2026-11-25&format=json&site="

# route -> status for anon, op-a (bn-provincial), op-b (que-vo-dc, yen-phong-dc), aud, adm
ROUTES = [
    ("/", (302, 200, 200, 200, 200)),
    ("/?lang=en", (302, 200, 200, 200, 200)),
    ("/reports/", (302, 200, 200, 200, 200)),
    ("/api/v1/status", (401, 200, 200, 200, 200)),
    ("/api/v1/status?site=bn-provincial", (401, 200, 404, 200, 200)),
    ("/api/v1/status?site=que-vo-dc", (401, 404, 200, 200, 200)),
    ("/api/v1/status?site=nowhere", (401, 404, 404, 404, 404)),
    (REPORT + "bn-provincial", (302, 200, 404, 200, 200)),
    (REPORT + "yen-phong-dc", (302, 404, 200, 200, 200)),
    (REPORT + "nowhere", (302, 404, 404, 404, 404)),
    (REPORT + "all", (302, 200, 200, 200, 200)),
    ("/reports/view?period=2026-11-25&format=csv&site=que-vo-dc", (302, 404, 200, 200, 200)),
    # Pages and API per site and device: another organisation's is a 404, like a typo.
    ("/sites/bn-provincial", (302, 200, 404, 200, 200)),
    ("/sites/que-vo-dc", (302, 404, 200, 200, 200)),
    ("/devices/prov-incomer", (302, 200, 404, 200, 200)),
    ("/devices/qv-incomer", (302, 404, 200, 200, 200)),
    ("/api/v1/sites/bn-provincial", (401, 200, 404, 200, 200)),
    ("/api/v1/sites/que-vo-dc", (401, 404, 200, 200, 200)),
    ("/api/v1/sites/que-vo-dc/pue?range=day", (401, 404, 200, 200, 200)),
    ("/api/v1/sites/que-vo-dc/power?range=day", (401, 404, 200, 200, 200)),
    ("/api/v1/sites/que-vo-dc/months", (401, 404, 200, 200, 200)),
    ("/api/v1/sites/que-vo-dc/events", (401, 404, 200, 200, 200)),
    ("/api/v1/sites/bn-provincial/events?days=7", (401, 200, 404, 200, 200)),
    ("/api/v1/devices/qv-incomer", (401, 404, 200, 200, 200)),
    ("/api/v1/devices/prov-incomer", (401, 200, 404, 200, 200)),
    ("/api/v1/devices/qv-incomer/power?range=day", (401, 404, 200, 200, 200)),
    ("/api/v1/province", (401, 200, 200, 200, 200)),
    ("/api/v1/users", (401, 403, 403, 403, 200)),
    ("/metrics", (200, 200, 200, 200, 200)),  # from 127.0.0.1: a scrape network
    ("/healthz", (200, 200, 200, 200, 200)),
    ("/login", (200, 200, 200, 200, 200)),
    ("/static/style.css", (200, 200, 200, 200, 200)),
    ("/no-such-page", (404, 404, 404, 404, 404)),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    store = Store.open(tmp_path_factory.mktemp("access") / "data")
    fill(store)
    add_users(store)
    yield create_app(login_config(), store, clock=lambda: NOW, testing=True)
    store.close()


def client_as(app, who: str):
    client = app.test_client()
    if who != "anon":
        store = app.extensions["pue_monitor"].store
        user, sid = store.user(who), f"sid-{who}"
        store.add_session(token_hash(sid), who, NOW, NOW + 3600)
        with client.session_transaction() as session:
            session.update(user=who, sid=sid, epoch=password_epoch(user), csrf="t")
    return client


@pytest.mark.parametrize(("route", "who", "status"),
                         [(route, who, status) for route, statuses in ROUTES
                          for who, status in zip(WHO, statuses, strict=True)])
def test_role_by_route(app, route, who, status):
    with client_as(app, who).get(route) as answer:  # closes a static file's handle
        assert answer.status_code == status
        if status == 302:
            assert answer.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("who", WHO[1:])
def test_each_role_sees_its_sites_in_the_api_the_page_and_the_reports(app, who):
    client, wanted = client_as(app, who), USERS[who][2]
    assert [s["id"] for s in client.get("/api/v1/status").get_json()["sites"]] == wanted
    html = client.get("/?lang=en").get_data(as_text=True)
    assert [sid for sid in ALL if f'data-site="{sid}"' in html] == wanted
    report = client.get(REPORT + "all").get_json()
    assert [s["site"] for s in report["sites"]] == wanted
    index = client.get("/reports/?lang=en").get_data(as_text=True)
    assert [sid for sid in ALL if f"site={sid}&" in index] == wanted


def test_the_api_refuses_in_json(app):
    answer = client_as(app, "op-a").get("/api/v1/status?site=que-vo-dc")
    assert answer.status_code == 404 and answer.is_json
    anon = client_as(app, "anon").get("/api/v1/status")
    assert anon.get_json() == {"error": "authentication required"}
    assert anon.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_operator_of_an_unknown_organisation_sees_nothing(app):
    from pue_monitor.store.base import UserRecord
    store = app.extensions["pue_monitor"].store
    if store.user("op-gone") is None:
        store.add_user(UserRecord("op-gone", "operator", "dissolved", "x", NOW))
    client = client_as(app, "op-gone")
    assert client.get("/api/v1/status").get_json()["sites"] == []
    assert "No data center is assigned" in client.get("/?lang=en").get_data(as_text=True)


def test_with_log_in_off_everyone_sees_everything_and_the_page_says_so(tmp_path):
    store = Store.open(tmp_path / "data")
    fill(store)
    client = create_app(demo_config(), store, clock=lambda: NOW, testing=True).test_client()
    assert [s["id"] for s in client.get("/api/v1/status").get_json()["sites"]] == ALL
    html = client.get("/?lang=en").get_data(as_text=True)
    assert 'data-login="off"' in html and "Log-in is switched off" in html
    assert client.get("/login").status_code == 302
    store.close()


@pytest.mark.parametrize(("who", "figure"), [("op-a", False), ("op-b", False), ("aud", True),
                                             ("adm", True)])
def test_the_province_figure_only_for_those_who_see_every_site(app, who, figure):
    # It sums every site's energy: an operator would learn other organisations' totals.
    client = client_as(app, who)
    assert bool(client.get("/api/v1/status").get_json().get("province")) is figure
    province = client.get("/api/v1/province").get_json()
    assert [s["id"] for s in province["sites"]] == USERS[who][2]
    if not figure:
        assert province["pue"] is None and province["judged"] == 0
