"""`pue-monitor user ...` round trips: add, list, log in with it, passwd, token, remove."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from pue_monitor.cli import main
from pue_monitor.store.sqlite import Store
from pue_monitor.web import create_app
from tests.access_fixtures import login_config
from tests.web_fixtures import NOW

DEMO = str(Path(__file__).resolve().parent.parent / "config" / "demo.yaml")


@pytest.fixture()
def user(tmp_path, monkeypatch, capsys):
    """Run `pue-monitor user ARGS` with ``stdin`` piped in: (exit code, stdout, stderr)."""
    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(["user", "-c", DEMO, "--data-dir", str(tmp_path), *args])
        out, err = capsys.readouterr()
        return code, out, err
    return run


def test_round_trip(user, tmp_path):
    assert user("add", "lan", "--role", "operator", "--org", "bn-dost",
                stdin="first long password\n")[0] == 0
    assert user("add", "minh", "--role", "auditor", stdin="second long password\n")[0] == 0
    code, out, _ = user("list")
    assert code == 0
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["lan", "operator", "bn-dost"], ["minh", "auditor", "-"]]

    code, token, _ = user("token", "lan", "--label", "grafana")
    token = token.strip()
    assert code == 0 and token.startswith("pue_")
    store = Store.open(tmp_path)
    client = create_app(login_config(), store, clock=lambda: NOW, testing=True).test_client()
    answer = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
    assert [s["id"] for s in answer.get_json()["sites"]] == ["bn-provincial"]

    assert user("passwd", "lan", stdin="a third long password\n")[0] == 0
    from pue_monitor.web.accounts import check_password
    assert check_password(store, "lan", "a third long password") is not None
    assert check_password(store, "lan", "first long password") is None
    assert "first long password" not in (tmp_path / "pue-monitor.sqlite3").read_bytes().decode(
        "latin-1")

    assert user("token", "lan", "--revoke") == (0, "revoked 1 token(s) of lan\n", "")
    assert client.get("/api/v1/status",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert user("remove", "lan") == (0, "removed lan\n", "")
    assert [u.name for u in store.users()] == ["minh"]
    store.close()


# (arguments, standard input, message on stderr)
REFUSED = [
    (("add", "x", "--role", "operator"), "long enough password\n", "an operator needs --org"),
    (("add", "x", "--role", "operator", "--org", "nope"), "long enough password\n",
     "organisation 'nope' is not in the config (bn-dost, kcn-operators)"),
    (("add", "x", "--role", "auditor", "--org", "bn-dost"), "long enough password\n",
     "--org applies to operators only"),
    (("add", "x y", "--role", "admin"), "long enough password\n", "user name 'x y'"),
    (("add", "x", "--role", "admin"), "short\n", "at least 10 characters"),
    (("add", "x", "--role", "admin"), "", "no password given"),
    (("remove", "ghost"), "", "no user 'ghost'"),
    (("passwd", "ghost"), "long enough password\n", "no user 'ghost'"),
    (("token", "ghost"), "", "no user 'ghost'"),
]


@pytest.mark.parametrize(("args", "stdin", "message"), REFUSED)
def test_refused_with_a_reason(user, args, stdin, message):
    code, out, err = user(*args, stdin=stdin)
    assert code == 2 and out == "" and message in err


def test_a_name_is_taken_once(user):
    assert user("add", "x", "--role", "admin", stdin="long enough password\n")[0] == 0
    code, _, err = user("add", "x", "--role", "admin", stdin="long enough password\n")
    assert code == 2 and "exists already" in err


def test_no_password_option_exists(user):
    with pytest.raises(SystemExit):
        user("add", "x", "--role", "admin", "--password", "on the command line")
