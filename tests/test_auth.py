"""Log-in, CSRF, the log-in rate limit, security headers, cookies, API tokens, the scrape
guard and the session key (web.auth, web.security, web.ratelimit)."""

from __future__ import annotations

import re
import stat

import pytest

from pue_monitor.config.model import Scrape, Web
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from pue_monitor.web.accounts import hash_password, new_token
from pue_monitor.web.auth import LIMITER_KEY
from pue_monitor.web.ratelimit import FailureLimiter
from pue_monitor.web.security import SECRET_KEY_FILE, load_secret_key
from tests.access_fixtures import PASSWORD, add_users, login_config
from tests.web_fixtures import NOW, demo_config, fill

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def store(tmp_path):
    s = Store.open(tmp_path / "data")
    fill(s)
    add_users(s)
    yield s
    s.close()


def make_app(store, config=None):
    return create_app(config or login_config(), store, clock=lambda: NOW, testing=True)


@pytest.fixture()
def app(store):
    return make_app(store)


def csrf_of(client, path="/login") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def log_in(client, user="op-a", password=PASSWORD, next_=None, **env):
    data = {"user": user, "password": password, "csrf_token": csrf_of(client)}
    if next_ is not None:
        data["next"] = next_
    return client.post("/login", data=data, environ_base=env)


# -- log-in through the form -------------------------------------------------------------

def test_log_in_then_see_then_log_out(app):
    client = app.test_client()
    answer = log_in(client)
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    html = client.get("/?lang=en").get_data(as_text=True)
    assert "Logged in as op-a (operator)" in html
    token = CSRF.search(html).group(1)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_log_out_ends_the_session_in_the_store_not_only_in_the_browser(app):
    client = app.test_client()
    log_in(client)
    cookie = client.get_cookie("pue_session").value  # a copy kept by someone
    html = client.get("/?lang=en").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": CSRF.search(html).group(1)}
                       ).status_code == 302
    thief = app.test_client()
    thief.set_cookie("pue_session", cookie)
    answer = thief.get("/api/v1/province")
    assert answer.status_code == 401  # the cookie still verifies, the session is gone
    assert thief.get("/").status_code == 302


@pytest.mark.parametrize(("next_", "location"), [
    ("/reports/?lang=en", "/reports/?lang=en"),
    ("//evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("", "/"),
])
def test_after_log_in_only_a_local_path(app, next_, location):
    assert log_in(app.test_client(), next_=next_).headers["Location"] == location


@pytest.mark.parametrize(("user", "password"), [
    ("op-a", "wrong password!"), ("nobody", PASSWORD), ("", ""), ("op-a", "x" * 5000),
])
def test_wrong_name_or_password_is_one_message(app, user, password):
    answer = log_in(app.test_client(), user, password)
    assert answer.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu." in answer.get_data(as_text=True)


def test_a_new_password_or_a_removed_user_ends_the_sessions(app, store):
    client = app.test_client()
    log_in(client)
    assert client.get("/api/v1/status").status_code == 200
    store.set_password_hash("op-a", hash_password("another long password"))
    assert client.get("/api/v1/status").status_code == 401
    log_in(client, password="another long password")
    store.remove_user("op-a")
    assert client.get("/").status_code == 302


def test_log_in_makes_a_new_session(app):
    client = app.test_client()
    before = csrf_of(client)
    log_in(client)
    with client.session_transaction() as session:
        assert session["csrf"] != before and session["user"] == "op-a"


# -- CSRF ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "data"), [
    ("/login", {"user": "op-a", "password": PASSWORD}),
    ("/login", {"user": "op-a", "password": PASSWORD, "csrf_token": "forged"}),
    ("/logout", {}),
    ("/logout", {"csrf_token": ""}),
    ("/reports/view", {"site": "bn-provincial", "period": "2026", "format": "json"}),
])
def test_a_form_without_its_csrf_token_is_refused(app, path, data):
    client = app.test_client()
    log_in(client, "adm")
    csrf_of(client)  # the session has a token; the request does not carry it
    answer = client.post(path, data=data)
    assert answer.status_code == 400 and "CSRF" in answer.get_data(as_text=True)
    assert client.get("/api/v1/status").status_code == 200  # still logged in


def test_the_report_form_posts_with_its_token(app):
    client = app.test_client()
    log_in(client, "adm")
    token = csrf_of(client, "/reports/?lang=en")
    answer = client.post("/reports/view", data={"site": "que-vo-dc", "period": "2026-11-25",
                                                "format": "json", "csrf_token": token})
    assert answer.status_code == 200 and answer.get_json()["site"] == "que-vo-dc"
    assert client.post("/reports/view", headers={"X-CSRF-Token": token}, data={
        "site": "que-vo-dc", "period": "2026-11-25", "format": "json"}).status_code == 200


# -- rate limit ----------------------------------------------------------------------------

def test_five_failures_then_wait_per_client_and_per_user(app):
    clock = Clock()
    app.extensions[LIMITER_KEY] = FailureLimiter(max_failures=5, lockout_s=300, clock=clock)
    attacker = app.test_client()
    statuses = [log_in(attacker, "op-a", "wrong password!").status_code for _ in range(5)]
    assert statuses == [401] * 5
    locked = log_in(attacker, "op-a")  # the right password, but too late
    assert locked.status_code == 429 and locked.headers["Retry-After"] == "300"
    assert "300" in locked.get_data(as_text=True)
    # the same client with another user name, and the same user from elsewhere: both wait
    assert log_in(attacker, "op-b").status_code == 429
    assert log_in(app.test_client(), "op-a", REMOTE_ADDR="192.0.2.7").status_code == 429
    # another user from another client is not held up
    assert log_in(app.test_client(), "op-b", REMOTE_ADDR="192.0.2.8").status_code == 302
    clock.now += 300
    assert log_in(attacker, "op-a").status_code == 302


# (failures, seconds later, retry_after): 5 failures 1 s apart, then time passes
LIMITER = [(4, 0, 0.0), (5, 0, 300.0), (5, 100, 200.0), (5, 299, 1.0), (5, 300, 0.0),
           (6, 0, 300.0)]


@pytest.mark.parametrize(("failures", "later", "wait"), LIMITER)
def test_limiter_table(failures, later, wait):
    clock = Clock()
    limiter = FailureLimiter(max_failures=5, lockout_s=300, clock=clock)
    for _ in range(failures):
        limiter.failed("k")
    clock.now += later
    assert limiter.retry_after("k") == pytest.approx(wait)


def test_limiter_forgets_on_success_and_stays_bounded():
    clock = Clock()
    limiter = FailureLimiter(max_failures=2, lockout_s=60, max_keys=100, clock=clock)
    limiter.failed("a")
    limiter.failed("a")
    assert limiter.retry_after("a") == 60
    limiter.succeeded("a")
    assert limiter.retry_after("a") == 0
    for i in range(1000):
        limiter.failed(f"user:{i}")
    assert len(limiter) == 100


# -- headers and cookies -------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/login", "/api/v1/status", "/metrics", "/healthz",
                                  "/no-such-page", "/static/live.js", "/reports/",
                                  "/reports/view?site=all&period=2026-11-25&format=html"])
def test_security_headers_on_every_response(app, path):
    client = app.test_client()
    log_in(client, "adm")
    with client.get(path) as answer:
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "same-origin"


def test_pages_carry_no_inline_script(app):
    client = app.test_client()
    log_in(client, "adm")
    for path in ("/?lang=en", "/reports/", "/login",
                 "/reports/view?site=all&period=2026-11-25&format=html"):
        html = client.get(path).get_data(as_text=True)
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
        assert all('type="application/json"' in attrs or (" src=" in attrs and not body)
                   for attrs, body in scripts), path
        assert " on" not in "".join(re.findall(r"<[a-z]+ [^>]*\bon[a-z]+=", html))


# (secure_cookies, base url, Secure flag on the session cookie)
COOKIES = [("auto", "http://localhost", False), ("auto", "https://localhost", True),
           ("always", "http://localhost", True), ("never", "https://localhost", False)]


@pytest.mark.parametrize(("mode", "base", "secure"), COOKIES)
def test_session_cookie_flags(store, mode, base, secure):
    client = make_app(store, login_config(secure_cookies=mode)).test_client()
    answer = client.get("/login", base_url=base)
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("pue_session=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure


# -- API tokens ----------------------------------------------------------------------------

def test_api_tokens_carry_their_user_scope(app, store):
    token, digest = new_token()
    store.add_token("op-b", digest, "grafana", NOW)
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {token}"}
    sites = client.get("/api/v1/status", headers=bearer).get_json()["sites"]
    assert [s["id"] for s in sites] == ["que-vo-dc", "yen-phong-dc"]
    assert client.get("/api/v1/status?site=bn-provincial", headers=bearer).status_code == 404
    assert client.get("/api/v1/users", headers=bearer).status_code == 403
    assert client.get("/api/v1/status", headers={
        "Authorization": f"Bearer {token}x"}).status_code == 401
    assert store.revoke_tokens("op-b") == 1
    assert client.get("/api/v1/status", headers=bearer).status_code == 401


def test_a_wrong_token_is_refused_even_with_a_session(app):
    client = app.test_client()
    log_in(client, "adm")
    assert client.get("/api/v1/status", headers={
        "Authorization": "Bearer nothing"}).status_code == 401


# -- /metrics and /healthz -----------------------------------------------------------------

# (networks, token configured, client address, token sent, status)
SCRAPES = [
    (None, None, "127.0.0.1", None, 200),
    (None, None, "10.1.2.3", None, 200),
    (None, None, "203.0.113.9", None, 403),
    (None, None, "::1", None, 200),
    (None, None, "2001:db8::1", None, 403),
    ([], "s3cret-scrape-token", "127.0.0.1", None, 403),
    ([], "s3cret-scrape-token", "203.0.113.9", "s3cret-scrape-token", 200),
    ([], "s3cret-scrape-token", "203.0.113.9", "wrong", 403),
    (["203.0.113.0/24"], None, "203.0.113.9", None, 200),
    (None, None, "::ffff:127.0.0.1", None, 200),
    (None, None, "::ffff:203.0.113.9", None, 403),
]


@pytest.mark.parametrize(("networks", "token", "client", "sent", "status"), SCRAPES)
@pytest.mark.parametrize("path", ["/metrics", "/healthz"])
def test_scrape_guard(store, networks, token, client, sent, status, path):
    scrape = Scrape(**({} if networks is None else {"networks": networks}),
                    **({} if token is None else {"token": token}))
    for login in (True, False):
        config = demo_config().model_copy(update={"web": Web(login=login, scrape=scrape)})
        headers = {"Authorization": f"Bearer {sent}"} if sent else {}
        answer = make_app(store, config).test_client().get(
            path, headers=headers, environ_base={"REMOTE_ADDR": client})
        assert answer.status_code == status


# -- the session key -----------------------------------------------------------------------

def test_session_key_is_made_once_and_kept_private(tmp_path):
    first = load_secret_key(demo_config(), tmp_path)
    path = tmp_path / SECRET_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64 and load_secret_key(demo_config(), tmp_path) == first
    path.chmod(0o644)
    assert load_secret_key(demo_config(), tmp_path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    configured = login_config(secret_key="k" * 40)
    assert load_secret_key(configured, tmp_path) == b"k" * 40


# (proxy_hops, X-Forwarded-For, X-Forwarded-Proto, /metrics status, Secure cookie)
PROXIED = [(0, "203.0.113.9", "https", 200, False),  # headers ignored: the peer is 127.0.0.1
           (1, "203.0.113.9", "https", 403, True),
           (1, "10.0.0.5", "http", 200, False)]


@pytest.mark.parametrize(("hops", "forwarded_for", "proto", "status", "secure"), PROXIED)
def test_behind_a_reverse_proxy(store, hops, forwarded_for, proto, status, secure):
    client = make_app(store, login_config(proxy_hops=hops)).test_client()
    headers = {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": proto}
    assert client.get("/metrics", headers=headers).status_code == status
    cookie = client.get("/login", headers=headers).headers["Set-Cookie"]
    assert ("Secure" in cookie) is secure


@pytest.mark.parametrize(("lang", "words"), [
    ("vi", ["Đăng nhập", "Tên đăng nhập", "Mật khẩu", '<html lang="vi">']),
    ("en", ["Log in", "User name", "Password", '<html lang="en">']),
])
def test_the_log_in_page_in_both_languages(app, lang, words):
    html = app.test_client().get(f"/login?lang={lang}").get_data(as_text=True)
    assert all(word in html for word in words)
    assert 'name="csrf_token"' in html and 'autocomplete="current-password"' in html
