"""`pue-monitor import` (CSV readings into the store), `pue-monitor report` (audit
reports as JSON, CSV or printable HTML) and `pue-monitor recompute` (blocks made with
settings that changed); on a terminal they show their progress."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pue_monitor.config.model import DEFAULT_TIMEZONE, Config
from pue_monitor.progress import Progress

if TYPE_CHECKING:  # the store is opened where a command needs it (start-up stays light)
    from pue_monitor.store.base import StoreProtocol

COMMANDS = ("import", "report", "recompute")
DEFAULT_DATA_DIR = Path("pue-data")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    _add_import_report(sub)
    add_recompute_parser(sub)


def _add_import_report(sub: argparse._SubParsersAction) -> None:
    imp = sub.add_parser("import", help="import historical readings from a CSV file",
                         description="CSV columns: timestamp (ISO 8601 with offset), device, "
                         "metric, value, optional labels (k=v,k2=v2). Nothing is imported "
                         "if any row is bad; rows already in the store with the same value "
                         "are skipped, with another value they are bad rows.")
    imp.add_argument("-c", "--config", type=Path, required=True)
    imp.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                     help="the store (default ./pue-data)")
    imp.add_argument("file", type=Path, help="CSV file ('-' for standard input)")

    rep = sub.add_parser("report", help="PUE audit report of a site or of every site")
    rep.add_argument("-c", "--config", type=Path, required=True)
    rep.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                     help="the store (default ./pue-data)")
    rep.add_argument("--site", required=True, help="a site id, or 'all'")
    rep.add_argument("--period", required=True,
                     help="2025, 2025-Q1, 2025-03, 2025-03-14, 12m or START..END "
                          "(in the site's time zone)")
    rep.add_argument("--at", help="ISO time the trailing '12m' ends at (default: now)")
    rep.add_argument("--format", choices=("json", "csv", "html"), default="json")
    rep.add_argument("--lang", choices=("vi", "en"), default="vi", help="HTML language")
    rep.add_argument("-o", "--output", type=Path, help="write here instead of standard output")


def add_recompute_parser(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser("recompute", help="recompute the stored 15-minute blocks of every "
                         "meter whose settings changed, now rather than when next read")
    rec.add_argument("-c", "--config", type=Path, required=True)
    rec.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                     help="the store (default ./pue-data)")


def run(args: argparse.Namespace, config: Config) -> int:
    from pue_monitor.storage import busy_errors, describe
    from pue_monitor.store.series import SchemaError

    try:
        return {"import": _import, "report": _report,
                "recompute": _recompute}[args.command](args, config)
    except UserError as exc:
        print(f"pue-monitor {args.command}: {exc}", file=sys.stderr)
        return 2
    except SchemaError as exc:  # a store of a newer version (it names path and version)
        print(f"pue-monitor {args.command}: {exc}", file=sys.stderr)
        return 1
    except busy_errors() as exc:  # e.g. locked past the busy timeout
        print(f"pue-monitor {args.command}: the store {describe(args.data_dir, config)} "
              "cannot be used now: "
              f"{exc} (another process may hold it for a long write; try again)",
              file=sys.stderr)
        return 1


class UserError(Exception):
    """A mistake in the command line or its input, told to the user in one message."""


def _import(args: argparse.Namespace, config: Config) -> int:
    from pue_monitor.exchange.importer import check_against_store, import_checked, parse_file
    from pue_monitor.storage import exists, open_store

    try:
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text(
            encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {args.file}: {exc}") from None
    now = time.time()
    parsed = parse_file(text, config, now)
    errors = list(parsed.errors)
    # A refused file creates no store; an existing one is checked too, so that every bad
    # row (rows stored already with other values among them) is told in one go.
    if errors and not exists(args.data_dir, config):
        return _refused(args.file, errors)
    store = open_store(args.data_dir, config, Progress("day summary rebuilt", "devices"))
    try:
        check = check_against_store(store, parsed.readings, parsed.lines)
        errors += check.conflicts
        if errors:
            return _refused(args.file, errors)
        summary = import_checked(store, config, check, now, parsed.repeated,
                                 progress=Progress("import: blocks recomputed", "devices"))
        kept = _keep_reports(store, config, summary.devices, summary.start, summary.end, now,
                             summary.blocks, "import")
    finally:
        store.close()
    parts = [f"imported {summary.rows} readings"]
    if summary.rows:
        first, last = (datetime.fromtimestamp(x, timezone.utc).isoformat(timespec="seconds")
                       for x in (summary.start, summary.end))
        parts[0] += (f" of {len(summary.devices)} devices ({', '.join(summary.devices)}) "
                     f"from {first} to {last}")
    if summary.skipped:
        parts.append(f"{_rows(summary.skipped)} already in the store, skipped")
    if summary.repeated:
        parts.append(f"{_rows(summary.repeated)} repeated in the file, counted once")
    parts.append(f"{summary.blocks} 15-minute blocks recomputed")
    if kept:
        parts.append(_ready(kept))
    print("; ".join(parts))
    return 0


def _keep_reports(store: StoreProtocol, config: Config, devices: Collection[str],
                  start: float | None, end: float | None, now: float, blocks: int,
                  command: str) -> int:
    """After ``command`` recomputed ``blocks`` of ``devices`` in [start, end]: the exact
    results of their partial blocks computed and kept now (figures.keptparts.keep_span),
    so that the first report after it finds them. How many are kept there."""
    from pue_monitor.figures.keptparts import keep_span

    if not blocks or start is None or end is None:
        return 0
    return keep_span(store, config, devices, start, end, now,
                     progress=Progress(f"{command}: partial blocks computed for reports",
                                       "site-years"))


def _ready(kept: int) -> str:
    return (f"{kept} exact result{'' if kept == 1 else 's'} of partial blocks kept for "
            "reports")


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _refused(file: Path, errors: list) -> int:
    for err in sorted(errors, key=lambda e: e.line):
        print(f"{file}:{err.line}: {err.reason}", file=sys.stderr)
    print(f"pue-monitor import: {len(errors)} bad row(s); nothing was imported",
          file=sys.stderr)
    return 1


def _cpus() -> int:
    """CPUs this process may run on (affinity and cgroup cpusets, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _recompute(args: argparse.Namespace, config: Config) -> int:
    """Drop the blocks made with other settings (open_store does) and compute them again
    from the readings, over the time they covered."""
    from pue_monitor.figures.rollup import rollup_range
    from pue_monitor.storage import exists, open_store

    if not exists(args.data_dir):
        raise UserError(f"no store in {args.data_dir}")
    spans: dict = {}
    store = open_store(args.data_dir, config, Progress("day summary rebuilt", "devices"),
                       spans)
    where = {device.id: (site, device) for site, device in config.devices()}
    stale = sorted(spans)
    written = 0
    kept = 0
    try:
        for device_id, span in spans.items():
            if span is not None:
                written += rollup_range(store, config, *where[device_id], *span)
        done = [span for span in spans.values() if span is not None]
        if done:
            kept = _keep_reports(store, config, stale, min(a for a, _ in done),
                                 max(b for _, b in done), time.time(), written, "recompute")
    finally:
        store.close()
    print(f"pue-monitor recompute: settings or PUE method changed for {len(stale)} meter(s)"
          f"{': ' + ', '.join(stale) if stale else ''}; {written} block(s) computed"
          f"{'; ' + _ready(kept) if kept else ''}")
    return 0


def _report(args: argparse.Namespace, config: Config) -> int:
    from pue_monitor.figures.report import build_report
    from pue_monitor.pue.periods import PeriodError, parse_period
    from pue_monitor.storage import exists, open_store
    from pue_monitor.web.report_render import to_csv, to_html, to_json

    now = time.time()
    at = now
    if args.at:
        try:
            moment = datetime.fromisoformat(args.at)
        except ValueError:
            raise UserError(f"--at {args.at!r} is not an ISO time") from None
        if moment.tzinfo is None:
            raise UserError(f"--at {args.at!r} needs a UTC offset (e.g. +07:00)")
        at = moment.timestamp()
    known = [s.id for s in config.sites]
    if args.site != "all" and args.site not in known:
        raise UserError(f"unknown site {args.site!r} (known: {', '.join(known)}, or all)")
    # The period is checked before the store is opened (which may rebuild summaries).
    for site in config.sites if args.site == "all" else [config.site(args.site)]:
        try:
            parse_period(args.period, site.timezone, at, config.max_report_years)
        except PeriodError as exc:
            raise UserError(f"--period: {exc.en}\n  ({exc.vi})") from None
    if not exists(args.data_dir, config):
        raise UserError(f"no store in {args.data_dir} (import readings or run the monitor "
                        "first, or give --data-dir)")
    store = open_store(args.data_dir, config, Progress("day summary rebuilt", "devices"))
    try:
        # The sites of `--site all` are independent: one process per CPU.
        doc = build_report(store, config, args.site, args.period, at, now,
                           workers=_cpus(), progress=Progress("report", "sites"))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    finally:
        store.close()
    if args.format == "json":
        text = to_json(doc)
    elif args.format == "csv":
        text = to_csv(doc)
    else:
        # When it was made, on the local clock of the report's (first) site.
        first = (doc["sites"] or [{}])[0] if "sites" in doc else doc
        zone = first.get("period", {}).get("timezone") or DEFAULT_TIMEZONE
        generated = datetime.fromtimestamp(now, ZoneInfo(zone)).isoformat(timespec="seconds")
        text = to_html(doc, args.lang, generated)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0
