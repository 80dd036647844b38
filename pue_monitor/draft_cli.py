"""`pue-monitor profile draft SOURCE`: its arguments; the work is in pue_monitor.draft,
imported only when the command runs (it loads both SNMP engines, which every other
command, such as `report`, would otherwise pay for at start-up).

SOURCE is an ``snmp://`` URL (the device is walked), a saved walk (``.snmprec`` or
``snmpwalk -On`` output), or a Modbus register list (``.csv``, see
collectors.modbus_draft). The YAML goes to stdout or ``--out``; the values each point
would read now go to stderr. A draft is checked as a profile before it is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pue_monitor.config.model import DEFAULT_TIMEOUT_S


def add_parser(sub: argparse._SubParsersAction) -> None:
    profile = sub.add_parser("profile", help="profile tools: draft a profile for a new device")
    cmds = profile.add_subparsers(dest="profile_command", required=True)
    draft = cmds.add_parser("draft", help="propose a profile from a device walk, a saved walk "
                            "(.snmprec, snmpwalk -On) and its MIBs, or a Modbus register list "
                            "(.csv)")
    draft.add_argument("source", help="snmp://host?version=2c&community=${COMMUNITY}, a walk "
                       "file, or a Modbus register list .csv")
    draft.add_argument("--mib", type=Path, action="append", default=[],
                       help="a MIB file of the device (repeat for several)")
    draft.add_argument("--name", help="profile name (default: from the source's name)")
    draft.add_argument("-o", "--out", type=Path, help="write the YAML here (default: stdout)")
    draft.add_argument("--modbus", metavar="URL",
                       help="with a register list: poll this unit once with the draft "
                       "(modbus://host[:port]?unit=1 ...) and show what it reads")
    draft.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                       help="seconds per request")


def run(args: argparse.Namespace) -> int:
    """The `profile draft` command: 0 with a valid draft, 2 when none could be made."""
    from pue_monitor.draft import run_draft

    return run_draft(args)
