"""Fuzzing every HTTP endpoint with schemathesis, from the app's own OpenAPI document
(web/openapi.py, served at /api/v1/openapi.json): random path parameters, query strings,
headers and form bodies for every operation it lists, against the app in-process (Flask's
WSGI test client) over a store holding 20 minutes of polls of the demo province
(tests/web_fixtures.py).

Three ways in: log-in off (the demo's setting: every route answers), log-in on without a
session (every closed route must refuse, not fail), and log-in on as an operator who sees
one site of three (the others must be "not found", not a failure). Requests valid by the document,
invalid by it (schemathesis' negative mode), and valid ones on the configuration's real
site and device ids, so the found-id code paths are reached too. Each must get an answer
below 500: never a server error, whatever the input.

Bounded and deterministic (tests/fuzz_support.FUZZ); figures printed at the end of the run.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from pue_monitor.config.model import Web
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from pue_monitor.web.accounts import password_epoch, token_hash
from pue_monitor.web.openapi import openapi_document
from tests.access_fixtures import add_users
from tests import suite_figures
from tests.fuzz_support import FUZZ
from tests.web_fixtures import NOW, demo_config, fill

EXAMPLES = 60  # per operation and way in
WAYS_IN = ["login-off", "login-on-anonymous", "login-on-operator"]
OPERATOR = "op-a"  # sees bn-provincial only (tests/access_fixtures.py)
OPERATIONS = [(method.upper(), path) for path, item in openapi_document()["paths"].items()
              for method in item]


@pytest.fixture(scope="module", params=WAYS_IN)
def web_schema(request, tmp_path_factory):
    """(way in, the schema of the app's own document, bound to the app, the real ids)."""
    config = demo_config()
    if request.param != "login-off":
        config = config.model_copy(update={"web": Web(login=True)})
    store = Store.open(tmp_path_factory.mktemp("fuzz-http"))
    fill(store)
    add_users(store)
    app = create_app(config, store, clock=lambda: NOW, testing=True)
    cookies = {}
    if request.param == "login-on-operator":
        client = app.test_client()
        sid = "sid-fuzz"  # a session the store knows (log-out ends it there)
        store.add_session(token_hash(sid), OPERATOR, NOW, NOW + 3600)
        with client.session_transaction() as session:
            session.update(user=OPERATOR, sid=sid, epoch=password_epoch(store.user(OPERATOR)))
        name = app.config["SESSION_COOKIE_NAME"]
        cookies[name] = client.get_cookie(name).value
        assert app.test_client(use_cookies=False).get("/api/v1/province", headers={
            "Cookie": f"{name}={cookies[name]}"}).status_code == 200  # logged in indeed
    schema = schemathesis.openapi.from_dict(openapi_document())  # what /api/v1/openapi.json serves
    schema.app = app
    ids = {"site_id": [s.id for s in config.sites],
           "device_id": sorted(d.id for _, d in config.devices())}
    yield request.param, schema, ids, cookies
    store.close()


# Report periods in every form parse_period reads (pue/periods.py), near the stored data
# and at the edges of the calendar, beside the random strings schemathesis makes.
DATES = st.one_of(st.dates(date(2024, 1, 1), date(2027, 12, 31)), st.dates())
PERIODS = st.one_of(
    st.sampled_from(["12m", "2026", "2026-Q4", "2026-11", "2026-11-25", "0001", "9999-Q4",
                     "0001-01-01..9999-12-31", "2026-11-25T09:00..2026-11-25T10:00",
                     "2026-11-25T09:00+07:00..2026-11-25T10:00Z", "2026-02-30", "2026-Q5"]),
    DATES.map(lambda d: f"{d:%Y}"), DATES.map(lambda d: f"{d:%Y-%m}"),
    DATES.map(lambda d: f"{d:%Y}-Q{(d.month - 1) // 3 + 1}"),
    st.tuples(DATES, st.integers(-3, 400)).map(
        lambda p: f"{p[0]:%Y-%m-%d}..{(p[0] + timedelta(days=p[1])):%Y-%m-%d}"
        if date.min + timedelta(days=400) < p[0] < date.max - timedelta(days=400)
        else f"{p[0]:%Y-%m-%d}"))


def cases(operation, ids: dict[str, list[str]]):
    """Requests valid by the document, invalid by it, and valid ones on real ids (in the
    path, or a report's site and period)."""
    real = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
    strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                  operation.as_strategy(GenerationMode.NEGATIVE)]
    if real:
        strategies.append(st.fixed_dictionaries({k: st.sampled_from(v) for k, v in real.items()})
                          .flatmap(lambda found: operation.as_strategy(
                              GenerationMode.POSITIVE, path_parameters=found)))
    if {"site", "period"} <= {p.name for p in operation.query}:
        strategies.append(st.fixed_dictionaries(
            {"site": st.sampled_from([*ids["site_id"], "all"]), "period": PERIODS})
            .flatmap(lambda found: operation.as_strategy(GenerationMode.POSITIVE, query=found)))
    return st.one_of(strategies)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
@settings(max_examples=EXAMPLES, **FUZZ)
@given(data=st.data())
def test_every_endpoint_answers_below_500(web_schema, method, path, data):
    way_in, schema, ids, cookies = web_schema
    operation = schema.find_operation_by_label(f"{method} {path}")
    case = data.draw(cases(operation, ids))
    response = case.call(cookies=cookies) if cookies else case.call()
    # 500s: answers of 500 and above, of every input tried (each also fails the test)
    suite_figures.count(f"fuzz: HTTP endpoints, {way_in} (schemathesis, {len(OPERATIONS)} operations)",
           inputs_tried=1, **{"500s": int(response.status_code >= 500),
                              f"answered {response.status_code // 100}xx": 1})
    case.validate_response(response, checks=[not_a_server_error])
