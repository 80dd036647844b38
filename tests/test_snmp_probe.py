"""`pue-monitor probe snmp://...`: URL parsing, and every corpus capture probed through the
command line (served by snmpsim on 127.0.0.1), identified without --profile, with either
SNMP engine (``engine=`` in the URL)."""

from __future__ import annotations

import json

import pytest

from pue_monitor.collectors.snmp_probe import SnmpUrlError, parse_snmp_url, snmp_engine_of
from pue_monitor.cli import main
from tests.snmp_support import ENGINES, expected, snmpsim, snmpsim_command
from tests.test_snmp_corpus import NOT_READ_HERE, PROFILE_OF

SECRET = "s3cret-community"


@pytest.mark.parametrize(("url", "env", "fields"), [
    ("snmp://10.0.5.31", {}, {"host": "10.0.5.31", "port": 161, "version": "2c"}),
    ("snmp://10.0.5.31:1161?version=1&community=private", {},
     {"port": 1161, "version": "1", "community": "private"}),
    ("snmp://10.0.5.31?community=${COMM}", {"COMM": SECRET}, {"community": SECRET}),
    ("snmp://ops@10.0.5.31?auth_protocol=SHA-256&auth_key=${K}&priv_protocol=aes128"
     "&priv_key=${K}&context=bank2", {"K": "longenough"},
     {"version": "3", "user": "ops", "auth_protocol": "sha256", "priv_protocol": "aes128",
      "auth_key": "longenough", "context": "bank2"}),
])
def test_url_names_a_target(url, env, fields):
    target = parse_snmp_url(url, env)
    for name, want in fields.items():
        got = getattr(target, name)
        assert (got.get_secret_value() if hasattr(got, "get_secret_value") else got) == want


@pytest.mark.parametrize(("url", "message"), [
    ("modbus://10.0.5.31", "scheme must be snmp"),
    ("snmp:///nohost", "no host"),
    ("snmp://h?communty=x", "unknown parameter(s) communty"),
    ("snmp://h?community=${NOT_SET_ANYWHERE}", "NOT_SET_ANYWHERE is not set"),
    ("snmp://u@h?auth_protocol=sha&auth_key=short", "at least 8 characters"),
    ("snmp://u@h?priv_protocol=aes&priv_key=longenough", "priv"),
    ("snmp://h?version=4", "version"),
    ("snmp://h?engine=turbo", "engine must be one of fast, reference"),
])
def test_bad_url_is_refused_without_echoing_secrets(url, message):
    with pytest.raises(SnmpUrlError, match=None) as info:
        parse_snmp_url(url, {})
        snmp_engine_of(url)
    assert message in str(info.value)
    assert "short" not in str(info.value) and "longenough" not in str(info.value)


def test_unknown_scheme_and_profile(capsys):
    assert main(["probe", "gopher://h"]) == 2
    assert main(["probe", "snmp://127.0.0.1", "--profile", "no_such"]) == 2
    err = capsys.readouterr().err
    assert "unknown scheme 'gopher'" in err and "unknown profile 'no_such'" in err


@pytest.fixture(scope="module")
def agent_port(tmp_path_factory):
    if not snmpsim_command():
        pytest.fail("snmpsim is part of the test extra: pip install -e '.[test]'")
    with snmpsim(tmp_path_factory.mktemp("snmpsim")) as port:
        yield port


HEADLINE = {"W": "active_power_w", "kWh": "active_energy_kwh"}


@pytest.mark.integration
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("capture", sorted(PROFILE_OF))
def test_probe_identifies_and_reads_every_capture(agent_port, capture, engine, capsys):
    url = f"snmp://127.0.0.1:{agent_port}?version=2c&community={capture}&engine={engine}"
    assert main(["probe", url, "--json", "--timeout", "5"]) == 0
    out, err = capsys.readouterr()
    assert f"profile {PROFILE_OF[capture]} " in err
    items = json.loads(out)
    assert all(set(i) >= {"metric", "value", "labels"} for i in items)
    values = {(i["metric"], tuple(sorted(i["labels"].items()))) for i in items}
    # Every power and energy sensor of the reference comes out as a reading (but those the
    # corpus test says are not read, and why).
    wanted = [s for s in expected(capture)["sensors"] if s["unit"] in HEADLINE
              and "sentinel" not in s.get("note", "")
              and (capture, s["oid"].lstrip(".")) not in NOT_READ_HERE]
    got_values = sorted(i["value"] for i in items if i["metric"] in HEADLINE.values()
                        and i["value"] is not None)
    for sensor in wanted:
        assert any(v == pytest.approx(sensor.get("mib_expected", sensor["expected"]))
                   for v in got_values), sensor["oid"]
    assert values


@pytest.mark.integration
@pytest.mark.parametrize("engine", ENGINES)
def test_probe_of_a_silent_agent_says_so(agent_port, engine, capsys):
    url = f"snmp://127.0.0.1:{agent_port}?community={SECRET}&engine={engine}"
    assert main(["probe", url, "--timeout", "0.3"]) == 2
    err = capsys.readouterr().err
    assert "timeout" in err.lower() or "no snmp response" in err.lower()
    assert SECRET not in err


@pytest.mark.integration
@pytest.mark.parametrize("capture", ["sentry4", "raritan-pdu_px3", "apc_ap8853"])
def test_v1_walks_with_getnext_to_the_same_readings(agent_port, capture, capsys):
    # SNMPv1 has no GETBULK and names one missing object per error: the same rows must
    # come out of GETNEXT walks and re-asked GETs.
    out = {}
    for version in ("1", "2c"):
        url = f"snmp://127.0.0.1:{agent_port}?version={version}&community={capture}"
        assert main(["probe", url, "--json", "--profile", PROFILE_OF[capture]]) == 0
        out[version] = sorted(json.dumps(i, sort_keys=True)
                              for i in json.loads(capsys.readouterr().out))
    assert out["1"] == out["2c"]
    assert len(out["1"]) > 5


@pytest.mark.integration
def test_probe_refuses_fast_for_what_it_lacks(capsys):
    # Refused before any request: no agent is needed.
    assert main(["probe", "snmp://127.0.0.1:1?version=1&engine=fast"]) == 2
    assert "snmp_engine fast cannot poll this target: SNMPv1" in capsys.readouterr().err
