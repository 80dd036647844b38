"""SNMPv3 against net-snmp's snmpd (Debian package snmpd) started on 127.0.0.1 with its own
configuration: every USM authentication and privacy protocol, a poll through a
configuration whose keys come from ${VAR}, auth failures counted as `auth`, and secrets
that never show in a dump, a repr or a log line; each through both SNMP engines. Also
v1 and v2c against the same agent, and the engine chosen for what the fast one lacks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pue_monitor.collectors.poller import DevicePoller
from pue_monitor.collectors.errors import PollTimeout
from pue_monitor.collectors.service import make_client
from pue_monitor.collectors.snmp_decode import MISSING
from pue_monitor.collectors.snmp_engine import choose_engine, snmp_client_for
from pue_monitor.collectors.snmp_client import PysnmpClient
from pue_monitor.collectors.snmp_gufo import GufoClient
from pue_monitor.config import load_config_text
from pue_monitor.config.model import SnmpTarget
from pue_monitor.store.model import ErrorKind
from tests.conftest import free_port
from tests.snmp_support import ENGINES, snmp_client, snmpd, snmpd_conf
from tests.tools import require_tool

pytestmark = pytest.mark.integration

AUTH = {"md5": "MD5", "sha": "SHA", "sha224": "SHA-224", "sha256": "SHA-256",
        "sha384": "SHA-384", "sha512": "SHA-512"}  # ours -> net-snmp's spelling
PRIV = {"des": "DES", "aes128": "AES", "aes192": "AES-192", "aes256": "AES-256"}
AUTH_KEY, PRIV_KEY, COMMUNITY = "auth-Key-7f3a", "priv-Key-91c2", "comm-5e77d"
OVERRIDES = {"1.3.6.1.2.1.33.1.4.4.1.4.1": 4200, "1.3.6.1.2.1.33.1.4.4.1.4.2": 4300,
             "1.3.6.1.2.1.33.1.4.4.1.2.1": 231, "1.3.6.1.2.1.33.1.4.2.0": 500}
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
TIMEOUT_S = 2.0


def user(auth: str, priv: str) -> str:
    return f"u_{auth}_{priv}"


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    path = require_tool("snmpd")
    users = [(user(a, p), AUTH[a], AUTH_KEY, PRIV[p], PRIV_KEY) for a in AUTH for p in PRIV]
    port = free_port()
    with snmpd(path, tmp_path_factory.mktemp("snmpd"),
               snmpd_conf(port, COMMUNITY, users, OVERRIDES), port):
        yield port


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("priv", PRIV)
@pytest.mark.parametrize("auth", AUTH)
async def test_every_usm_combination_reads_the_agent(agent, auth, priv, engine):
    client = snmp_client(engine, "127.0.0.1", agent, version="3", timeout_s=TIMEOUT_S,
                         retries=1, user=user(auth, priv), auth_protocol=auth,
                         auth_key=AUTH_KEY, priv_protocol=priv, priv_key=PRIV_KEY)
    try:
        got = await client.get([SYS_OBJECT_ID])
        walked = await client.walk(["1.3.6.1.2.1.33.1.4.4.1"], 25)
    finally:
        client.close()
    assert got[SYS_OBJECT_ID] == "1.3.6.1.4.1.8072.3.2.10"
    assert walked == WALKED


# The overrides under upsOutputEntry, as a walk of its columns 2 and 4 gives them.
WALKED = {"1.3.6.1.2.1.33.1.4.4.1.2.1": 231, "1.3.6.1.2.1.33.1.4.4.1.4.1": 4200,
          "1.3.6.1.2.1.33.1.4.4.1.4.2": 4300}
MISSING_OID = "1.3.6.1.4.1.99999.1.0"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("version", ["1", "2c"])
async def test_community_versions_read_the_agent(agent, version, engine):
    if (engine, version) == ("fast", "1"):
        with pytest.raises(ValueError, match="SNMPv1"):
            snmp_client(engine, "127.0.0.1", agent, COMMUNITY, version)
        return
    client = snmp_client(engine, "127.0.0.1", agent, COMMUNITY, version, timeout_s=TIMEOUT_S,
                         retries=1)
    try:
        got = await client.get([SYS_OBJECT_ID, MISSING_OID])
        walked = await client.walk(["1.3.6.1.2.1.33.1.4.4.1.2", "1.3.6.1.2.1.33.1.4.4.1.4"], 25)
        nothing = await client.walk(["1.3.6.1.4.1.99999.7"], 25)
    finally:
        client.close()
    assert got == {SYS_OBJECT_ID: "1.3.6.1.4.1.8072.3.2.10", MISSING_OID: MISSING}
    assert walked == WALKED
    assert nothing == {}


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_silent_agent_is_a_timeout(engine):
    client = snmp_client(engine, "127.0.0.1", free_port(), COMMUNITY, timeout_s=0.3, retries=1)
    try:
        with pytest.raises(PollTimeout):
            await client.get([SYS_OBJECT_ID])
    finally:
        client.close()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("same_engine_id", [True, False], ids=["restarted", "replaced"])
async def test_a_restarted_agent_is_read_again_without_auth_errors(tmp_path, engine,
                                                                   same_engine_id):
    # Restarted, an agent counts one more boot and its time starts again (same engine id);
    # replaced, it has a new engine id. Neither engine can match the agent's reports to
    # the old session; both discover it again after a timeout, so within two polls it is
    # read again (the fast engine rediscovers between its own retries: in one).
    path = require_tool("snmpd")
    port = free_port()
    conf = snmpd_conf(port, COMMUNITY, [("u1", "SHA-256", AUTH_KEY, "AES", PRIV_KEY)], OVERRIDES)
    client = snmp_client(engine, "127.0.0.1", port, version="3", timeout_s=TIMEOUT_S,
                         retries=1, user="u1", auth_protocol="sha256", auth_key=AUTH_KEY,
                         priv_protocol="aes128", priv_key=PRIV_KEY)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    try:
        with snmpd(path, first, conf, port):
            before = await client.get([SYS_OBJECT_ID])
        with snmpd(path, first if same_engine_id else second, conf, port):
            polls = []
            for _ in range(2):
                try:
                    polls.append(await client.get([SYS_OBJECT_ID]))
                except PollTimeout:
                    polls.append("timeout")
    finally:
        client.close()
    assert before == polls[-1] == {SYS_OBJECT_ID: "1.3.6.1.4.1.8072.3.2.10"}
    assert polls[0] == (before if engine == "fast" else "timeout")


@pytest.mark.parametrize(("target", "setting", "engine", "reason"), [
    ({"version": "2c"}, None, "fast", None),
    ({"version": "2c"}, "reference", "reference", None),
    ({"version": "1"}, None, "reference", "SNMPv1"),
    ({"version": "3", "user": "u", "context": "bank2"}, None, "reference", "context name"),
    ({"version": "3", "user": "u"}, "fast", "fast", None),
])
def test_the_engine_falls_back_for_what_gufo_lacks(target, setting, engine, reason):
    chosen, why = choose_engine(SnmpTarget(host="127.0.0.1", **target), setting)
    assert chosen == engine
    assert (why is None) if reason is None else (reason in why)


def test_the_fallback_is_logged_once_per_device(caplog):
    caplog.set_level(logging.INFO)
    target = SnmpTarget(host="127.0.0.1", version="1")
    clients = [snmp_client_for(target, TIMEOUT_S, engine=None, device="old-ups")
               for _ in range(3)]
    for client in clients:
        assert isinstance(client, PysnmpClient)
        client.close()
    lines = [r.getMessage() for r in caplog.records if "old-ups" in r.getMessage()]
    assert len(lines) == 1 and "SNMPv1" in lines[0] and "reference" in lines[0]


CONFIG = """
polling: {{snmp_engine: {engine}}}
sites:
  - id: s1
    name: {{vi: "TTDL", en: "DC"}}
    devices:
      - {{id: incomer, profile: eastron_sdm630, role: facility,
         modbus: {{host: 127.0.0.1, port: 1502}}}}
      - id: ups-v3
        profile: ups_mib
        role: it
        measurement_point: ups_output
        snmp: {{host: 127.0.0.1, port: {port}, version: 3, user: {user}, context: "",
                auth_protocol: sha256, auth_key: "${{UPS_AUTH}}",
                priv_protocol: aes128, priv_key: "${{UPS_PRIV}}"}}
"""


CONFIG_V2 = """
sites:
  - id: s1
    name: {{vi: "TTDL", en: "DC"}}
    devices:
      - {{id: incomer, profile: eastron_sdm630, role: facility,
         modbus: {{host: 127.0.0.1, port: 1502}}}}
      - {{id: ups-v2, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {{host: 127.0.0.1, port: {port}, community: "${{UPS_COMMUNITY}}"}}}}
"""


def v3_config(port: int, auth_key: str = AUTH_KEY, name: str | None = None,
              engine: str = "fast"):
    text = CONFIG.format(port=port, user=name or user("sha256", "aes128"), engine=engine)
    return load_config_text(text, env={"UPS_AUTH": auth_key, "UPS_PRIV": PRIV_KEY})


async def poll(config, interval_s: float = 10.0):
    site, device = next((s, d) for s, d in config.devices() if d.snmp is not None)
    polling = config.polling_for(site, device).model_copy(
        update={"timeout_s": TIMEOUT_S, "retries": 0, "interval_s": interval_s})
    client = make_client(device, polling)

    async def discard(_result):
        pass

    poller = DevicePoller(site.id, device, config.profile_of(device), polling, client, discard)
    return poller, client


@pytest.mark.parametrize("engine", ENGINES)
async def test_sha256_aes128_poll_through_the_configuration(agent, engine):
    poller, client = await poll(v3_config(agent, engine=engine))
    assert isinstance(client, GufoClient if engine == "fast" else PysnmpClient)
    try:
        result = await poller.poll_once()
    finally:
        client.close()
    assert result.ok, result.error
    got = {(r.metric, r.labels): r.value for r in result.readings}
    assert got[("active_power_w", ())] == 8500  # the two output lines summed
    assert got[("frequency_hz", ())] == pytest.approx(50.0)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("auth_key", "name"), [
    ("wrong-key-123", None),  # wrong digest
    (AUTH_KEY, "nobody"),  # unknown user name
])
async def test_bad_credentials_are_auth_errors(agent, auth_key, name, engine):
    poller, client = await poll(v3_config(agent, auth_key, name, engine))
    try:
        result = await poller.poll_once()
    finally:
        client.close()
    assert (result.ok, result.error_kind) == (False, ErrorKind.AUTH)


@pytest.mark.parametrize("engine", ENGINES)
async def test_secrets_never_show_in_dumps_or_logs(agent, caplog, engine):
    config = v3_config(agent, auth_key="wrong-key-123", engine=engine)
    secrets = ("wrong-key-123", PRIV_KEY)
    dumps = [config.model_dump_json(), repr(config), str(config),
             str(config.model_dump()), repr(config.devices()[1][1])]
    v2 = load_config_text(CONFIG_V2.format(port=agent), env={"UPS_COMMUNITY": COMMUNITY})
    dumps += [v2.model_dump_json(), repr(v2)]
    caplog.set_level(logging.DEBUG)
    poller, client = await poll(config, interval_s=0.2)
    stop = asyncio.Event()
    try:
        task = asyncio.create_task(poller.run(stop))
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(task, 5.0)
    finally:
        client.close()
    assert "poll failed: auth" in caplog.text  # the failure itself is logged ...
    for text in [*dumps, caplog.text]:
        for secret in (*secrets, COMMUNITY):
            assert secret not in text  # ... never the keys or the community
