"""Configuration loading: strict, every error with its path, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from pue_monitor.config import ConfigError, load_config, load_config_text
from pue_monitor.config.datatypes import resolve_register
from pue_monitor.cli import main

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent
MINIMAL = """
sites:
  - id: s1
    name: {vi: "TTDL 1", en: "DC 1"}
    devices:
      - {id: m1, profile: eastron_sdm630, role: facility, modbus: {host: 127.0.0.1, port: 1502}}
      - {id: u1, profile: ups_mib, role: it, measurement_point: ups_output,
         snmp: {host: 127.0.0.1, port: 1161, community: "${COMMUNITY}"}}
"""


def test_demo_config_loads():
    config = load_config(ROOT / "config" / "demo.yaml", env={})
    assert [s.id for s in config.sites] == ["bn-provincial", "que-vo-dc", "yen-phong-dc"]
    assert {s.kind for s in config.sites} == {"provincial", "attracted"}
    for site in config.sites:
        roles = {d.role.value for d in site.devices}
        assert {"facility", "it"} <= roles
        assert {d.protocol for d in site.devices} == {"snmp", "modbus"}


def test_broken_config_lists_every_error_with_its_path():
    with pytest.raises(ConfigError) as caught:
        load_config(DATA / "broken.yaml", env={})
    got = [str(i) for i in caught.value.issues]
    expected = (DATA / "broken.expected.txt").read_text(encoding="utf-8").splitlines()
    assert got == expected


def test_check_config_command_prints_errors_and_fails(capsys):
    assert main(["check-config", "-c", str(DATA / "broken.yaml")]) == 1
    err = capsys.readouterr().err
    assert 'sites[0].devices[1].profile: unknown profile "apc_smx"' in err
    assert main(["check-config", "-c", str(ROOT / "config" / "demo.yaml")]) == 0


def test_secret_comes_from_environment_and_never_prints():
    config = load_config_text(MINIMAL, env={"COMMUNITY": "s3cr3t-community"})
    device = config.sites[0].devices[1]
    assert device.snmp.community.get_secret_value() == "s3cr3t-community"
    dumped = config.model_dump_json() + repr(config) + str(config)
    assert "s3cr3t-community" not in dumped


def test_missing_environment_variable_is_an_error_with_path():
    with pytest.raises(ConfigError) as caught:
        load_config_text(MINIMAL, env={})
    assert [str(i) for i in caught.value.issues] == [
        "sites[0].devices[1].snmp.community: environment variable COMMUNITY is not set"]


def test_default_after_colon_dash():
    text = MINIMAL.replace("${COMMUNITY}", "${COMMUNITY:-public}")
    config = load_config_text(text, env={})
    assert config.sites[0].devices[1].snmp.community.get_secret_value() == "public"


@pytest.mark.parametrize(("number", "numbering", "expected"), [
    (3060, "one_based", (3059, None)),  # Schneider manual "3060 Active power total"
    (30053, "modicon", (52, 4)),  # Eastron "30053 Total system power" = input reg 0x0034
    (40001, "modicon", (0, 3)),
    (300053, "modicon", (52, 4)),  # 6-digit form
    (52, "address", (52, None)),
])
def test_register_numbering(number, numbering, expected):
    assert resolve_register(number, numbering) == expected


@pytest.mark.parametrize(("number", "numbering"), [
    (0, "one_based"), (20001, "modicon"), (30000, "modicon"), (70000, "address")])
def test_register_numbering_rejects(number, numbering):
    with pytest.raises(ValueError):
        resolve_register(number, numbering)


@pytest.mark.parametrize(("profile_yaml", "expected"), [
    ("name: bad\nprotocol: modbus\ndescription: x\nsource: y\nnumbering: one_based\n"
     "modbus_points:\n  - {metric: active_power_w, register: 10, type: float16}\n",
     "bad.yaml: modbus_points[0].type: unknown data type 'float16'"),
    ("name: bad\nprotocol: modbus\ndescription: x\nsource: y\nnumbering: modicon\n"
     "modbus_points:\n  - {metric: active_power_w, register: 30001, function: 3}\n",
     "bad.yaml: modbus_points[0].function: function 3 contradicts register 30001"),
    ("name: bad\nprotocol: modbus\ndescription: x\nsource: y\nnumbering: address\n"
     "modbus_points:\n  - {metric: active_power_w, register: 1, order: XYZW}\n",
     "bad.yaml: modbus_points[0].order: unknown byte order 'XYZW'"),
    ("name: bad\nprotocol: snmp\ndescription: x\nsource: y\n"
     "snmp_points:\n  - {metric: power_kw, oid: 1.3.6.1}\n",
     "bad.yaml: snmp_points[0].metric: unknown metric 'power_kw'"),
    ("name: bad\nprotocol: modbus\ndescription: x\nsource: y\n"
     "modbus_points:\n  - {metric: active_power_w, register: 1}\n",
     "bad.yaml: a modbus profile must say its register numbering"),
])
def test_bad_profiles_are_reported_with_path(tmp_path, profile_yaml, expected):
    (tmp_path / "bad.yaml").write_text(profile_yaml)
    text = MINIMAL.replace("sites:", f"profiles_dir: {tmp_path}\nsites:")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={"COMMUNITY": "x"})
    assert any(str(i).startswith("profiles/" + expected) for i in caught.value.issues), \
        [str(i) for i in caught.value.issues]


# (device setting as YAML, the error with its path and value)
QUALITY_BAD = [
    ("reset_below_fraction: 1.5",
     "sites[0].devices[0].reset_below_fraction: Input should be less than 1 (got 1.5)"),
    ("reset_below_fraction: 0",
     "sites[0].devices[0].reset_below_fraction: Input should be greater than 0 (got 0)"),
    ("rated_max_w: -5", "sites[0].devices[0].rated_max_w: Input should be greater than 0 (got -5)"),
    ("stuck_power_polls: 1",
     "sites[0].devices[0].stuck_power_polls: Input should be greater than or equal to 2 (got 1)"),
]


@pytest.mark.parametrize(("setting", "expected"), QUALITY_BAD, ids=[q[0] for q in QUALITY_BAD])
def test_bad_quality_settings_name_path_and_value(setting, expected):
    text = MINIMAL.replace("role: facility,", f"role: facility, {setting},")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={"COMMUNITY": "x"})
    assert [str(i) for i in caught.value.issues] == [expected]


def test_bad_profile_quality_setting_names_path_and_value(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nprotocol: modbus\ndescription: x\nsource: y\nnumbering: address\n"
        "rated_max_w: 0\nmodbus_points:\n  - {metric: active_power_w, register: 1}\n")
    text = MINIMAL.replace("sites:", f"profiles_dir: {tmp_path}\nsites:")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={"COMMUNITY": "x"})
    assert [str(i) for i in caught.value.issues] == [
        "profiles/bad.yaml: rated_max_w: Input should be greater than 0 (got 0)"]


def test_quality_settings_device_over_profile_over_default(tmp_path):
    from pue_monitor.config.model import quality_settings
    (tmp_path / "rated.yaml").write_text(
        "name: rated\nprotocol: modbus\ndescription: x\nsource: y\nnumbering: address\n"
        "rated_max_w: 69000\nreset_below_fraction: 0.2\n"
        "modbus_points:\n  - {metric: active_power_w, register: 1}\n")
    text = MINIMAL.replace("sites:", f"profiles_dir: {tmp_path}\nsites:").replace(
        "profile: eastron_sdm630, role: facility,",
        "profile: rated, role: facility, reset_below_fraction: 0.05,")
    config = load_config_text(text, env={"COMMUNITY": "x"})
    device = config.sites[0].devices[0]
    # The device's fraction, the profile's rated maximum, the method's stuck default.
    assert quality_settings(device, config.profile_of(device)) == {
        "reset_below_fraction": 0.05, "rated_max_w": 69000.0, "stuck_power_polls": None}


ENGINE_CONFIG = """
{top}
sites:
  - id: s1
    name: {{vi: "TTDL 1", en: "DC 1"}}
    {site}
    devices:
      - {{id: m1, profile: eastron_sdm630, role: facility, modbus: {{host: 127.0.0.1, port: 1502}}}}
      - {{id: u1, profile: ups_mib, role: it, measurement_point: ups_output, {device}
         snmp: {{host: 127.0.0.1, port: 1161, {snmp}}}}}
"""
V1, V3_CONTEXT = "version: 1", "version: 3, user: ops, context: bank2"
V1_GAP = ("SNMPv1: gufo-snmp reads no error index, so a GET with one missing object loses "
          "the whole request")
V3_GAP = "SNMPv3 context name: gufo-snmp sends none"


@pytest.mark.parametrize(("where", "snmp", "issue"), [
    ("top", V1, f'polling.snmp_engine: "fast" cannot poll device "u1" (sites[0].devices[1]): '
                f"{V1_GAP}"),
    ("site", V1, f'sites[0].polling.snmp_engine: "fast" cannot poll device "u1" '
                 f"(sites[0].devices[1]): {V1_GAP}"),
    ("device", V3_CONTEXT, f'sites[0].devices[1].polling.snmp_engine: "fast" cannot poll '
                           f'device "u1" (sites[0].devices[1]): {V3_GAP}'),
])
def test_explicit_fast_engine_for_what_it_lacks_is_refused(where, snmp, issue):
    block = "polling: {snmp_engine: fast}"
    text = ENGINE_CONFIG.format(top=block if where == "top" else "",
                                site=block if where == "site" else "",
                                device=block + "," if where == "device" else "", snmp=snmp)
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    assert [str(i) for i in caught.value.issues] == [issue]


@pytest.mark.parametrize(("top", "snmp", "engine"), [
    ("", "version: 2c", None),  # unset: fast where it can, the reference elsewhere
    ("", V1, None),
    ("polling: {snmp_engine: reference}", V1, "reference"),
    ("polling: {snmp_engine: fast}", "version: 3, user: ops", "fast"),
])
def test_snmp_engine_setting_loads(top, snmp, engine):
    config = load_config_text(ENGINE_CONFIG.format(top=top, site="", device="", snmp=snmp),
                              env={})
    site, device = config.devices()[1]
    assert config.polling_for(site, device).snmp_engine == engine


def test_unknown_snmp_engine_is_refused_with_its_path():
    text = ENGINE_CONFIG.format(top="polling: {snmp_engine: turbo}", site="", device="",
                                snmp="version: 2c")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    assert [i.path for i in caught.value.issues] == ["polling.snmp_engine"]
    assert "'fast' or 'reference'" in str(caught.value.issues[0])


@pytest.mark.parametrize(("store", "issue"), [
    ("{url: 'mysql://db/x'}", "store.url: store url must start with postgresql://"),
    ("{url: 'postgresql://db/x', read_url: 'db2/x'}",
     "store.read_url: store url must start with postgresql://"),
])
def test_store_urls_are_checked_with_their_path(store, issue):
    with pytest.raises(ConfigError) as caught:
        load_config_text(f"sites: []\nstore: {store}\n", env={})
    assert [str(i)[:len(issue)] for i in caught.value.issues] == [issue]


def test_the_read_replica_url_comes_from_the_environment_and_never_prints():
    config = load_config_text("sites: []\nstore: {url: 'postgresql://db/x', "
                              "read_url: '${REPLICA}'}\n",
                              env={"REPLICA": "postgresql://u:pw-9f2@replica/x"})
    assert config.store.read_url.get_secret_value() == "postgresql://u:pw-9f2@replica/x"
    assert "pw-9f2" not in config.model_dump_json() + repr(config) + str(config)
