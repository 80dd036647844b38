"""`pue-monitor` command line: run, demo, simulate, check-config, probe, profile draft, import,
report, user, central."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path

from pue_monitor import config as config_package
from pue_monitor.config import ConfigError, load_config
from pue_monitor.config.model import DEFAULT_TIMEOUT_S, MAX_WORKERS
from pue_monitor import audit_cli, draft_cli, user_cli

# The demo province ships inside the package (pue_monitor.config), installed or not.
DEMO_CONFIG = Path(config_package.__file__).resolve().parent / "demo.yaml"
DEFAULT_DATA_DIR = Path("pue-data")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pue-monitor", description=(
        "Data center energy-efficiency monitor: collects power readings over SNMP and Modbus, "
        "computes PUE (ISO/IEC 30134-2) and serves a web view and Prometheus metrics."))
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="poll the configured devices and serve the web view")
    run.add_argument("-c", "--config", type=Path, required=True)
    _serving_args(run, "web and /metrics port (default 8080)", 8080)
    run.add_argument("--workers", type=_workers, default=None,
                     help="poll in this many worker processes, whole sites each (default: "
                     "collection.workers of the config, else 1: in this process)")

    demo = sub.add_parser("demo", help="run on the built-in simulated province (no hardware)")
    demo.add_argument("-c", "--config", type=Path, default=DEMO_CONFIG,
                      help="simulated province (default: the built-in config/demo.yaml)")
    _serving_args(demo, "web and /metrics port (default 8080, or a free one if 8080 is "
                  "busy; a port given here is used as is)", None)
    demo.add_argument("--province", action="store_true",
                      help="as a real province runs: an edge per data center shipping to a "
                      "central, whose web view is on --port")

    sim = sub.add_parser("simulate", help="serve simulated devices (SNMP agents, Modbus servers)")
    sim.add_argument("-c", "--config", type=Path, required=True)
    sim.add_argument("--control-port", type=int, default=None,
                     help="HTTP control and ground-truth port (default: from the config)")
    sim.add_argument("--state-dir", type=Path, default=None,
                     help="keep the energy registers here across restarts (default: start "
                     "fresh every time)")
    sim.add_argument("--free-ports", action="store_true",
                     help="serve every device and the control endpoint on free 127.0.0.1 "
                     "ports; the province as served is written to --config-out")
    sim.add_argument("--config-out", type=Path, default=None,
                     help="where --free-ports writes the province as served (default: "
                     "province.yaml in --state-dir)")

    check = sub.add_parser("check-config", help="validate a configuration and its profiles")
    check.add_argument("-c", "--config", type=Path, required=True)

    probe = sub.add_parser("probe", help="poll one device once and print its readings, e.g. "
                           "snmp://host?version=2c&community=${COMMUNITY}")
    probe.add_argument("url", help="snmp://[user@]host[:port]?version=2c&community=... "
                       "(v3: auth_protocol, auth_key, priv_protocol, priv_key, context); "
                       "modbus://host[:port]?unit=1, modbus+rtu://host[:port]?unit=1 (serial "
                       "gateway), modbus+serial:///dev/ttyUSB0?baud=9600&parity=N&unit=1")
    probe.add_argument("--profile", help="profile to use (default: identify the device; "
                       "required for Modbus)")
    probe.add_argument("--json", action="store_true", help="a JSON list of readings")
    probe.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                       help="seconds per request")
    probe.add_argument("--profiles-dir", type=Path, action="append", default=[],
                       help="also load the profiles of this folder (e.g. a saved draft)")
    draft_cli.add_parser(sub)
    audit_cli.add_parsers(sub)
    user_cli.add_parser(sub)
    from pue_monitor.central.args import add_parser as add_central_parser

    add_central_parser(sub, _serving_args)
    return parser


def _workers(text: str) -> int:
    """``--workers``: a whole number in the range collection.workers allows."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_WORKERS} "
                                          f"(got {text!r})")
    return n


def _serving_args(p: argparse.ArgumentParser, port_help: str, port: int | None) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=port, help=port_help)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help="where the embedded store lives (default ./pue-data)")


def entry() -> None:
    """The process's command line (the `pue-monitor` script, `python -m pue_monitor`):
    main(), then exit with its code."""
    code = main()
    # The process ends here, and everything the command made is freed with it. Frozen,
    # the objects are left out of the interpreter's last garbage collection, which would
    # otherwise walk them all only to free them: 0.1-0.15 s after a province's yearly
    # report. Files and connections are closed by then (with-blocks), and atexit
    # handlers (logging's flush) still run.
    gc.freeze()
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level.upper() != "DEBUG":
        # pymodbus logs every server start and reconnect at INFO; our own logs say what matters.
        logging.getLogger("pymodbus").setLevel(logging.WARNING)
    if args.command == "probe":
        from pue_monitor.probe import run_probe

        return run_probe(args.url, args.profile, args.json, args.timeout, args.profiles_dir)
    if args.command == "profile":
        return draft_cli.run(args)
    try:
        # The commands that poll nothing read only the profiles their devices name.
        config = load_config(args.config,
                             all_profiles=args.command not in audit_cli.COMMANDS)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.command == "check-config":
        devices = len(config.devices())
        print(f"{args.config}: OK: {len(config.sites)} sites, {devices} devices, "
              f"profiles: {', '.join(sorted({d.profile for _, d in config.devices()}))}")
        return 0
    if args.command == "central":
        from pue_monitor.central.service import run as run_central

        try:
            return run_central(args, config)
        except OSError as exc:
            print(f"pue-monitor: cannot serve on {args.host}:{args.port}: "
                  f"{exc.strerror or exc} (choose another with --port)", file=sys.stderr)
            return 1
    if args.command in audit_cli.COMMANDS:
        return audit_cli.run(args, config)
    if args.command == "user":
        from pue_monitor.storage import open_users

        store = open_users(args.data_dir)
        try:
            return user_cli.run(args, config, store)
        finally:
            store.close()
    if args.command == "simulate":
        from pue_monitor.simulator.serve import run_simulator

        return run_simulator(args.config, control_port=args.control_port,
                             state_dir=args.state_dir, free_ports=args.free_ports,
                             config_out=args.config_out) or 0
    from pue_monitor.runner import run_monitor, start_simulator

    try:
        return _serve(args, config, run_monitor, start_simulator)
    except OSError as exc:
        print(f"pue-monitor: cannot serve on {args.host}:{args.port}: {exc.strerror or exc} "
              "(choose another with --port)", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"pue-monitor: {exc}", file=sys.stderr)
        return 1


def _serve(args, config, run_monitor, start_simulator) -> int:
    if args.command == "run":
        if args.workers is not None:
            config = config.model_copy(update={"collection": config.collection.model_copy(
                update={"workers": args.workers})})
        return run_monitor(config, args.data_dir, args.host, args.port)
    # demo: the simulated devices in a child process, then the monitor on them
    if config.simulation is None:
        print(f"{args.config}: has no simulation section; use `pue-monitor run`",
              file=sys.stderr)
        return 1
    if args.province:
        from pue_monitor.demo_province import run_province_demo

        return run_province_demo(args.config, args.data_dir, args.host, args.port,
                                 start_simulator)
    from pue_monitor.demo import run_demo

    return run_demo(args.config, args.data_dir, args.host, args.port, run_monitor,
                    start_simulator)


if __name__ == "__main__":
    raise SystemExit(main())
