"""The work of `pue-monitor profile draft SOURCE`: propose a profile for a device no
profile reads (its arguments are pue_monitor.draft_cli's).

SOURCE is an ``snmp://`` URL (the device is walked), a saved walk (``.snmprec`` or
``snmpwalk -On`` output), or a Modbus register list (``.csv``, see
collectors.modbus_draft). The YAML goes to stdout or ``--out``; the values each point
would read now go to stderr. A draft is checked as a profile before it is written.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

import yaml

from pue_monitor.collectors.decode import decode_snmp
from pue_monitor.collectors.errors import PollError
from pue_monitor.collectors.mib_text import MibError, MibObject, read_mibs
from pue_monitor.collectors.modbus_probe import ProbeUrlError, probe_modbus
from pue_monitor.collectors.modbus_draft import ModbusListError, draft_modbus_profile
from pue_monitor.collectors.profile_draft import draft_points, render_profile
from pue_monitor.collectors.snmp_probe import SnmpUrlError, parse_snmp_url, snmp_engine_of
from pue_monitor.collectors.snmp_walkfile import WalkFileError, read_walk
from pue_monitor.config.profiles import parse_profile
from pue_monitor.probe import table

SYS_DESCR, SYS_OBJECT_ID = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0"
WALK_REPETITIONS = 25


class NothingToDraft(ValueError):
    """The walk has no object a profile would read."""


def _name_from(source: str) -> str:
    stem = Path(source).stem if "://" not in source else source.split("://", 1)[1]
    name = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    return f"draft_{name}"[:60]


def _walk_roots(objects: dict[str, MibObject]) -> list[str]:
    """The fewest subtrees that hold every MIB object (its parents' OIDs, nested ones
    dropped)."""
    parents = sorted({o.oid.rsplit(".", 1)[0] for o in objects.values()},
                     key=lambda o: tuple(int(p) for p in o.split(".")))
    roots: list[str] = []
    for oid in parents:
        if not any(oid == r or oid.startswith(r + ".") for r in roots):
            roots.append(oid)
    return roots


async def _walk_device(url: str, objects: dict[str, MibObject], timeout_s: float) -> dict:
    from pue_monitor.collectors.snmp_engine import snmp_client_for

    target = parse_snmp_url(url)
    client = snmp_client_for(target, timeout_s, retries=1, engine=snmp_engine_of(url))
    try:
        answers = dict(await client.get([SYS_DESCR, SYS_OBJECT_ID]))
        roots = _walk_roots(objects) or ["1.3.6.1.4.1"]
        answers.update(await client.walk(roots, WALK_REPETITIONS))
        return answers
    finally:
        client.close()


def _snmp_draft(args: argparse.Namespace, name: str) -> tuple[str, dict]:
    objects = read_mibs(args.mib) if args.mib else {}
    if args.source.startswith("snmp://"):
        answers = asyncio.run(_walk_device(args.source, objects, args.timeout))
    else:
        answers = read_walk(Path(args.source))
    points = draft_points(objects, answers)
    if not points:
        raise NothingToDraft(
            f"{len(answers)} values walked, none a power, energy, current, voltage, load or "
            "temperature object " + ("of the MIBs given" if objects else
                                     "(give the device's MIB with --mib)"))
    sys_object_id = answers.get(SYS_OBJECT_ID)
    modules = sorted({objects[p["oid"].split(".{")[0].removesuffix(".0")].module
                      for p in points if p["oid"].split(".{")[0].removesuffix(".0") in objects})
    source = args.source if "://" not in args.source else args.source.split("?", 1)[0]
    text = render_profile(name, points, str(sys_object_id).lstrip(".") if sys_object_id else None,
                          str(answers.get(SYS_DESCR, "")), modules or
                          [p.name for p in args.mib], source)
    return text, answers


def run_draft(args: argparse.Namespace) -> int:
    """The `profile draft` command: 0 with a valid draft, 2 when none could be made."""
    name = args.name or _name_from(args.source)
    try:
        if args.source.lower().endswith(".csv"):
            text, answers = draft_modbus_profile(Path(args.source), name), None
        else:
            text, answers = _snmp_draft(args, name)
    except (MibError, WalkFileError, ModbusListError, SnmpUrlError, PollError,
            NothingToDraft) as exc:
        print(f"pue-monitor profile draft: {exc}", file=sys.stderr)
        return 2
    profile, issues = parse_profile(yaml.safe_load(text), name)
    if profile is None:
        why = "; ".join(str(i) for i in issues)
        print(f"pue-monitor profile draft: no usable draft: {why}", file=sys.stderr)
        return 2
    if args.out is not None:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            print(f"pue-monitor profile draft: {args.out}: {exc.strerror}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    if answers is None and args.modbus:
        try:
            result = asyncio.run(probe_modbus(args.modbus, profile, args.timeout))
        except (ProbeUrlError, PollError) as exc:
            print(f"pue-monitor profile draft: {exc}", file=sys.stderr)
            return 2
        if not result.ok:
            print(f"pue-monitor profile draft: {args.modbus}: {result.error}", file=sys.stderr)
            return 2
        readings = list(result.readings)
    elif answers is not None:
        readings = decode_snmp(profile, answers, "draft", 0.0)
    else:
        return 0  # a register list alone: nothing to read yet
    print(table([{"metric": r.metric, "value": r.value, "labels": dict(r.labels),
                  "quality": r.quality.value} for r in readings]), file=sys.stderr)
    return 0

