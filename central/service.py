"""`pue-monitor central`: the ingest service and the web view for every site, polling
nothing; and `pue-monitor central token ...` to make, list and revoke ingest tokens
(their arguments are central.args').

The composition root of the central: opens the store, builds the ingest service
(central.ingest) and the ordinary web app with the central's blueprint, and closes the
15-minute blocks of the readings edges send (the same roll-up `run` has).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from pue_monitor.central.history import annotate_report
from pue_monitor.central.ingest import Central
from pue_monitor.central.metrics import CentralCollector
from pue_monitor.central.tokens import new_token, token_hash
from pue_monitor.central.web import CENTRAL_KEY, bp
from pue_monitor.config.model import Config
from pue_monitor.figures.keptparts import KEEP_EVERY_S, keep_years
from pue_monitor.figures.rollup import rollup
from pue_monitor.web import create_app, warm
from pue_monitor.web.security import load_secret_key
from pue_monitor.web.server import WebServer

log = logging.getLogger(__name__)
ROLLUP_EVERY_S = 60.0
MIN_GIVEN_TOKEN = 32  # characters of a token given with --from-env


def _open(config: Config, data_dir: Path):
    from pue_monitor.storage import open_users

    return open_users(data_dir, config)


def run(args: argparse.Namespace, config: Config) -> int:
    if config.ingest is None:
        print(f"{args.config}: has no ingest: section (the data centers that write here)",
              file=sys.stderr)
        return 1
    if config.sites:
        print(f"{args.config}: sites: the central's sites come from its edges' definitions; "
              "list their ids under ingest.data_centers[].sites instead", file=sys.stderr)
        return 1
    if getattr(args, "central_command", None) == "token":
        store = _open(config, args.data_dir)
        try:
            return _token(args, config, store)
        finally:
            store.close()
    return serve(config, args.data_dir, args.host, args.port)


def _token(args: argparse.Namespace, config: Config, store) -> int:
    assert config.ingest is not None
    now = time.time()
    if args.token_action == "list":
        for t in store.central_tokens():
            state = ("revoked " + _iso(t.revoked_ts)) if t.revoked_ts is not None else "live"
            print(f"{t.data_center}\t{t.label}\tcreated {_iso(t.created_ts)}\t{state}")
        return 0
    if config.ingest.data_center(args.data_center) is None:
        known = ", ".join(dc.id for dc in config.ingest.data_centers)
        print(f"pue-monitor: unknown data center {args.data_center!r} (known: {known})",
              file=sys.stderr)
        return 1
    if args.token_action == "revoke":
        n = store.revoke_central_tokens(args.data_center, args.label, now)
        print(f"revoked {n} token(s) of {args.data_center}")
        return 0 if n else 1
    token = new_token()
    if args.from_env is not None:
        token = os.environ.get(args.from_env, "").strip()
        if len(token) < MIN_GIVEN_TOKEN:
            print(f"pue-monitor: the environment variable {args.from_env} must hold a token "
                  f"of at least {MIN_GIVEN_TOKEN} characters", file=sys.stderr)
            return 1
    try:
        store.add_central_token(token_hash(token), args.data_center, args.label, now)
    except ValueError as exc:
        print(f"pue-monitor: {exc} (revoke it first)", file=sys.stderr)
        return 1
    if args.from_env is not None:
        print(f"token {args.label} of {args.data_center} recorded (from {args.from_env})")
        return 0
    print(token)
    print(f"(the token of {args.data_center}, label {args.label}: shown once, kept only as a "
          "hash; give it to the edge in the environment variable its central.token_env names)",
          file=sys.stderr)
    return 0


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def build(config: Config, data_dir: Path, clock=time.time, background: bool = False):
    """The store, the ingest service and the web app of a central (no thread started;
    ``background``: the web view recomputes expired figures beside the requests, as a
    monitor's does)."""
    from pue_monitor.storage import open_store

    store = open_store(data_dir, config)
    central = Central(store, config, clock)
    app = create_app(central.config, store, clock, extra_collectors=[CentralCollector(central)],
                     secret_key=load_secret_key(config, data_dir), background=background)
    state = app.extensions["pue_monitor"]
    state.annotate_report = lambda doc: annotate_report(doc, store.site_definitions())
    central.on_config.append(state.replace_config)
    app.extensions[CENTRAL_KEY] = central
    app.register_blueprint(bp)
    return store, central, app


def _rollup_loop(central: Central, stop: threading.Event) -> None:
    while True:
        try:
            with central.lock:  # never beside an ingest that deletes stale blocks
                rollup(central.store, central.config, central.clock())
        except Exception:  # retried on the next pass; ingest goes on
            log.exception("interval-energy rollup failed; retrying in %.0f s", ROLLUP_EVERY_S)
        if stop.wait(ROLLUP_EVERY_S):
            return


def _keep_loop(central: Central, stop: threading.Event) -> None:
    """Every KEEP_EVERY_S, the partial blocks' results of every site's yearly figures kept
    (figures.keptparts.keep_years), so the province's yearly reports run warm."""
    while True:
        try:
            keep_years(central.store, central.config, central.clock())
        except Exception:  # retried at the next pass; ingest and reports go on
            log.exception("keeping the partial blocks' results failed; retrying in %.0f s",
                          KEEP_EVERY_S)
        if stop.wait(KEEP_EVERY_S):
            return


def serve(config: Config, data_dir: Path, host: str, port: int,
          announce=print, started=None) -> int:
    """Serve ingest and the web view until SIGINT/SIGTERM. ``started(store, port)``, if
    given, runs once the server listens and returns what to call on the way out (the
    province demo starts its edges there)."""
    from pue_monitor.storage import describe

    store, central, app = build(config, data_dir, background=True)
    # Before serving: the first page then finds its figures computed (issue 15).
    log.info("web view warmed up in %.1f s", warm(app))
    server = WebServer(app, host, port)
    server.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    announce(f"pue-monitor: central   http://{shown}:{server.port}/  (ingest: "
             f"/api/v2/write, site definitions: /api/v1/central/definition)")
    announce(f"pue-monitor: data in   {describe(data_dir, config)}")
    finish = None
    if started is not None:
        try:
            finish = started(store, server.port)
        except BaseException:
            server.stop()
            store.close()
            raise
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    roller = threading.Thread(target=_rollup_loop, args=(central, stop), name="rollup",
                              daemon=True)
    roller.start()
    keeper = threading.Thread(target=_keep_loop, args=(central, stop), name="keep",
                              daemon=True)
    keeper.start()
    try:
        stop.wait()
    finally:
        if finish is not None:
            finish()
        server.stop()
        roller.join(10)
        keeper.join(10)
        store.close()
    return 0
