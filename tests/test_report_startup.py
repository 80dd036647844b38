"""What `pue-monitor report` (and the other commands that poll nothing) load at start-up
(issue 13: the yearly report as a new process): no SNMP engine, no web framework, no
InfluxDB client, no pandas; and only the profiles its devices name. Checked by what is
imported and read, never by a time (speed is benchmarks/report_year.py's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pue_monitor.config import load_config_text
from tests.test_config import MINIMAL
from tests.test_import_report import CONFIG, DAY, SCENARIOS_DIR

ROOT = Path(__file__).resolve().parent.parent
# Top-level packages a report never needs (the parser of every command is built, so
# these would come in through the `profile draft`, `central` or `run` modules).
NOT_FOR_A_REPORT = ["pysnmp", "pyasn1", "gufo_snmp", "pymodbus", "flask", "werkzeug",
                    "influxdb_client", "pandas", "psycopg", "waitress", "prometheus_client"]
# The command, then what is loaded: run in a new interpreter (this one has them all).
PROBE = """
import json, sys
from pue_monitor.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules
                  if m.split(".")[0] in %r)}))
"""


def run_fresh(*argv) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE % NOT_FOR_A_REPORT,
                           *[str(a) for a in argv]], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_report_loads_no_collector_web_or_exporter_library(tmp_path):
    data = tmp_path / "data"
    imported = run_fresh("import", "-c", CONFIG, "--data-dir", data,
                         SCENARIOS_DIR / "reset" / "readings.csv")
    assert imported == {"code": 0, "modules": []}
    reported = run_fresh("report", "-c", CONFIG, "--data-dir", data, "--site", "all",
                         "--period", DAY, "--format", "json", "-o", tmp_path / "r.json")
    assert reported == {"code": 0, "modules": []}
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["sites"]


def test_a_report_with_nothing_to_recompute_loads_no_numpy(tmp_path):
    """numpy comes in on first use (pue.lazynp): the import computes the blocks, and a
    report reading only blocks, days and kept results never needs an array."""
    data = tmp_path / "data"
    probe = PROBE % ["numpy"]
    done = [subprocess.run([sys.executable, "-c", probe, *[str(a) for a in argv]],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
            for argv in (["import", "-c", CONFIG, "--data-dir", data,
                          SCENARIOS_DIR / "reset" / "readings.csv"],
                         ["report", "-c", CONFIG, "--data-dir", data, "--site", "all",
                          "--period", DAY, "--format", "json", "-o", tmp_path / "r.json"])]
    assert all(d.returncode == 0 for d in done), [d.stderr for d in done]
    loaded = [json.loads(d.stdout.strip().splitlines()[-1])["modules"] for d in done]
    assert "numpy" in loaded[0]  # the import computed blocks with it
    assert loaded[1] == []


def test_the_process_entry_exits_with_mains_code_and_all_of_its_output(tmp_path):
    """`python -m pue_monitor` (cli.entry) leaves the heap out of the last garbage
    collection before it exits: the whole document still reaches stdout, and the exit
    code is main()'s, for a report and for a refused one."""
    from pue_monitor.cli import main

    data = tmp_path / "data"
    assert main(["import", "-c", str(CONFIG), "--data-dir", str(data),
                 str(SCENARIOS_DIR / "reset" / "readings.csv")]) == 0
    # One site's CSV: an output shorter than stdout's buffer, flushed at the exit.
    report = ["report", "-c", str(CONFIG), "--data-dir", str(data), "--period", DAY,
              "--format", "csv"]
    assert main([*report, "--site", "reset", "-o", str(tmp_path / "in.csv")]) == 0
    refused = main([*report, "--site", "nowhere"])
    assert refused != 0
    # Buffered, as a deployment's output is (this machine's environment may unbuffer it).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = [subprocess.run([sys.executable, "-m", "pue_monitor", *report, "--site", site],
                           capture_output=True, timeout=300, cwd=ROOT, env=env)
            for site in ("reset", "nowhere")]
    assert done[0].returncode == 0, done[0].stderr
    assert done[0].stdout == (tmp_path / "in.csv").read_bytes()
    assert done[1].returncode == refused and b"unknown site 'nowhere'" in done[1].stderr


def test_the_commands_still_find_their_arguments():
    # `central` and `profile draft` keep their arguments though their modules load late.
    for argv in (["central", "--help"], ["central", "token", "create", "--help"],
                 ["profile", "draft", "--help"]):
        done = subprocess.run([sys.executable, "-m", "pue_monitor", *argv],
                              capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0 and "usage: pue-monitor" in done.stdout, (argv, done.stderr)


BROKEN = "name: broken\nprotocol: snmp\ndescription: x\nsource: y\nsnmp_points: 7\n"


@pytest.mark.parametrize(("devices_profiles", "all_profiles", "loaded"), [
    # Only what the devices name (plus nothing of the broken extra profile)...
    (("eastron_sdm630", "ups_mib"), False, {"eastron_sdm630", "ups_mib"}),
    # ... but every profile when a device may be identified as any of them.
    (("auto", "ups_mib"), False, None),
    # check-config and run read them all.
    (("eastron_sdm630", "ups_mib"), True, None),
])
def test_only_the_profiles_named_are_read_for_a_command_that_polls_nothing(
        tmp_path, devices_profiles, all_profiles, loaded):
    (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    text = MINIMAL.replace("sites:", f"profiles_dir: {tmp_path}\nsites:").replace(
        "profile: eastron_sdm630", f"profile: {devices_profiles[0]}").replace(
        "profile: ups_mib", f"profile: {devices_profiles[1]}")
    if loaded is None:  # every file read: the broken one is refused, naming it
        with pytest.raises(Exception, match="profiles/broken.yaml: snmp_points"):
            load_config_text(text, env={"COMMUNITY": "x"}, all_profiles=all_profiles)
        return
    config = load_config_text(text, env={"COMMUNITY": "x"}, all_profiles=all_profiles)
    assert set(config.profiles) == loaded


@pytest.mark.parametrize("name", ["../ups_mib", "nothing_by_this_name", ".hidden"])
def test_a_profile_name_that_is_no_profile_file_is_refused_either_way(name):
    text = MINIMAL.replace("profile: eastron_sdm630", f'profile: "{name}"')
    for all_profiles in (True, False):
        with pytest.raises(Exception, match="sites\\[0\\].devices\\[0\\].profile"):
            load_config_text(text, env={"COMMUNITY": "x"}, all_profiles=all_profiles)
