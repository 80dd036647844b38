"""Log in through the form in real headless Chromium, as an operator: the page shows only
that operator's site, the live refresh works under the CSP, and another organisation's
site is a 404 from inside the logged-in browser too."""

from __future__ import annotations

import json
import time

import pytest

from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from pue_monitor.web.server import WebServer
from tests.access_fixtures import PASSWORD, add_users, login_config
from tests.cdp import Browser
from tests.tools import require_tool
from tests.web_fixtures import NOW, fill

pytestmark = pytest.mark.integration


@pytest.fixture()
def server(tmp_path):
    store = Store.open(tmp_path / "data")
    fill(store)
    add_users(store)
    web = WebServer(create_app(login_config(), store, clock=lambda: NOW), "127.0.0.1", 0)
    web.start()
    yield f"http://127.0.0.1:{web.port}"
    web.stop()
    store.close()


def test_an_operator_logs_in_and_sees_only_its_site(server, tmp_path):
    with Browser(require_tool("chromium"), tmp_path / "chromium") as page:
        page.navigate(f"{server}/?lang=en")
        assert page.wait_for("location.pathname === '/login' && "
                             "document.readyState === 'complete' && "
                             "!!document.getElementById('login-form')")
        page.evaluate(f"""(() => {{
            document.getElementById('user').value = 'op-a';
            document.getElementById('password').value = {json.dumps(PASSWORD)};
            document.getElementById('login-form').requestSubmit();
        }})()""")
        # Back on the overview, and the refresh script fetched the API with the session.
        assert page.wait_for("location.pathname === '/' && "
                             "'refreshedAt' in document.body.dataset")
        sites = page.evaluate("[...document.querySelectorAll('section[data-site]')]"
                              ".map(s => s.dataset.site)")
        assert sites == ["bn-provincial"]
        assert page.evaluate("document.getElementById('live').dataset.state") == "on"
        assert "op-a" in page.evaluate("document.getElementById('account-name').textContent")
        # No script error and no CSP violation on the log-in page or the overview (the
        # site has no icon yet: the browser's own /favicon.ico request is not the page's).
        assert [e for e in page.console_errors() if not e.endswith("/favicon.ico")] == []
        statuses = page.evaluate("""Promise.all([
            '/api/v1/status?site=bn-provincial', '/api/v1/status?site=que-vo-dc',
            '/reports/view?site=que-vo-dc&period=2026&format=json', '/api/v1/users'
        ].map(u => fetch(u).then(r => r.status)))""")
        assert statuses == [200, 404, 404, 403]
        # The CSP holds in the browser: an inline script is refused, and the refusal is seen.
        page.evaluate("document.body.appendChild(Object.assign(document.createElement("
                      "'script'), {textContent: 'window.injected = true'})) && 0")
        assert page.evaluate("window.injected === undefined") is True
        deadline = time.monotonic() + 10  # the report arrives as an event, maybe later
        while time.monotonic() < deadline and not any(
                "Content Security Policy" in e for e in page.console_errors()):
            time.sleep(0.1)
        assert any("Content Security Policy" in e for e in page.console_errors())
