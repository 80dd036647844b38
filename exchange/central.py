"""Shipping to the province's central service (central/), at a data center (the edge).

Readings go as InfluxDB line protocol through the same durable writer and outbox as the
InfluxDB export (exchange.influx, store.outbox), in an outbox file of their own: a
central outage of days, a kill -9 or a flapping link lose nothing (a batch is removed
only once the central confirmed it) and duplicate nothing (the central stores a reading
it already has once). The run log goes the same way (``pue_run`` points). The site
definition (central.sitedef) is sent on start, again until the central took it, and again
whenever it changes while the edge runs (an auto device identified).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pue_monitor.central.points import run_line
from pue_monitor.central.sitedef import FORMAT, definition_sites, fingerprint
from pue_monitor.config.metrics import Role
from pue_monitor.config.model import CentralLink, Config
from pue_monitor.exchange.influx import (BACKOFF_MAX_S, BACKOFF_MIN_S, InfluxWriter,
                                         TOO_LARGE_STATUS, Refusals, Refused,
                                         RejectedBatch, TooLarge, reading_lines)
from pue_monitor.store.model import Identified, PollResult
from pue_monitor.store.outbox import Outbox

log = logging.getLogger(__name__)

OUTBOX_FILE = "central-outbox.sqlite3"
WRITE_PATH = "/api/v2/write?precision=ns"
DEFINITION_PATH = "/api/v1/central/definition"
EDGE_TIME_HEADER = "X-Pue-Edge-Time"
# Answers that say the points themselves are wrong: dropped (counted), never retried.
# (413, too large, is not one of them: the writer sends smaller batches.)
REJECTED = (400, 422)
DEFINITION_CURSOR = "site_definition:"


def link_token(link: CentralLink) -> str:
    """The token from the environment. :raises RuntimeError: the variable is not set."""
    token = os.environ.get(link.token_env, "").strip()
    if not token:
        raise RuntimeError(f"central.token_env names {link.token_env}, which is not set: "
                           "put the data center's token there (pue-monitor central token "
                           "create, at the central)")
    return token


class CentralTransport:
    """POSTs to the central: gzip line protocol, ``Authorization: Token``, the edge's
    clock in a header; no retries of its own (the writer's)."""

    def __init__(self, url: str, token: str, timeout_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.url, self.token, self.timeout_s, self.clock = url.rstrip("/"), token, timeout_s, clock

    def post(self, path: str, body: bytes, content_type: str) -> int:
        request = urllib.request.Request(
            self.url + path, data=gzip.compress(body, compresslevel=5), method="POST",
            headers={"Authorization": f"Token {self.token}", "Content-Type": content_type,
                     "Content-Encoding": "gzip", EDGE_TIME_HEADER: f"{self.clock():.3f}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            if exc.code in REJECTED:
                raise RejectedBatch(f"HTTP {exc.code}: {detail}") from None
            if exc.code == TOO_LARGE_STATUS:
                raise TooLarge(f"HTTP {exc.code}: {detail}") from None
            raise RuntimeError(f"central answered HTTP {exc.code}: {detail}") from None

    def write(self, lines: Sequence[str]) -> None:
        self.post(WRITE_PATH, "\n".join(lines).encode("utf-8"), "text/plain; charset=utf-8")

    def close(self) -> None:
        pass


def shipped_roles(config: Config) -> dict[str, str]:
    """{device: role} of the devices whose readings go to the central: every meter with a
    PUE role (monitor-only devices stay at the edge)."""
    return {d.id: d.role.value for _, d in config.devices() if d.role != Role.MONITOR}


def central_writer(link: CentralLink, data_dir: str | Path) -> InfluxWriter:
    transport = CentralTransport(link.url, link_token(link), link.timeout_s)
    return InfluxWriter(Outbox.open(data_dir, link.buffer_max_points, OUTBOX_FILE), transport,
                        link.batch_size, link.flush_interval_s, what="central")


class ShippingStore:
    """The edge's store as the collectors see it when shipping to the central: a poll's
    readings are queued durably in the outbox *before* they are stored, so a reading in
    the store is always on its way to the central, whenever the process is killed (the
    other order would lose the readings stored in the instant before a kill -9).

    A failed store write is retried by the sink with the same results: those already
    queued are not queued again (a store down for an hour would otherwise queue the same
    readings at every retry and push genuine ones out of a full outbox). They are
    remembered by identity, at most as many as the sink holds (collection.store_backlog);
    one forgotten and queued twice is stored once at the central. A reading whose point
    cannot be encoded goes to ``refused`` and the poll's other readings are shipped.
    Everything else goes to the store as it is."""

    def __init__(self, store, config: Config, outbox: Outbox,
                 refused: Refused | None = None) -> None:
        self._store, self._outbox, self._roles = store, outbox, shipped_roles(config)
        self._refused = refused if refused is not None else Refusals("central")
        # Results queued but not yet stored, by id(); the value keeps the object alive so
        # its id cannot be reused meanwhile. Insertion order: the oldest are forgotten
        # first.
        self._unstored: dict[int, PollResult] = {}
        self._unstored_max = config.collection.store_backlog

    def write_polls(self, results) -> None:
        unstored = self._unstored
        fresh = [result for result in results if id(result) not in unstored]
        lines = [line for result in fresh if result.device in self._roles
                 for line in reading_lines(result, self._roles, self._refused)]
        if lines:
            self._outbox.enqueue(lines)
        for result in fresh:
            unstored[id(result)] = result
        while len(unstored) > self._unstored_max:
            del unstored[next(iter(unstored))]
        self._store.write_polls(results)
        for result in results:
            unstored.pop(id(result), None)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def run_marks(config: Config, outbox: Outbox) -> Callable[[str, float, bool], None]:
    """The run log's marks as points, once per site this edge collects, queued durably
    (called before the mark is stored, as ShippingStore does with readings)."""
    sites = [site.id for site in config.sites]

    def mark(run: str, ts: float, stopped: bool) -> None:
        outbox.enqueue([run_line(site, run, ts, stopped) for site in sites])
    return mark


def definition_document(config: Config, outbox: Outbox,
                        identified: Mapping[str, str | Identified], now: float) -> dict:
    """The site definition to send, with when this edge first saw it (kept in the outbox,
    so a restart with an unchanged config keeps the time of the change)."""
    sites = definition_sites(config, identified)
    name = DEFINITION_CURSOR + fingerprint(sites)
    changed = outbox.cursor(name)
    if changed is None:
        changed = now
        outbox.enqueue([], {name: now})
    return {"format": FORMAT, "changed_ts": changed, "sites": sites}


# How often the edge looks whether its definition changed while it runs (a `profile:
# auto` device identified after the start changes it).
DEFINITION_RECHECK_S = 60.0


class DefinitionSender:
    """Sends the site definition on its own thread until the central took it (204), or
    refused it for good (400/403: logged; fix the config and restart); then looks every
    ``recheck_s`` whether the definition changed (``make`` builds it again: an auto
    device identified meanwhile) and sends the new one the same way."""

    def __init__(self, transport: CentralTransport, make: Callable[[], dict],
                 recheck_s: float = DEFINITION_RECHECK_S) -> None:
        self.transport, self.make, self.recheck_s = transport, make, recheck_s
        self.sent = threading.Event()  # the first definition was taken
        self.sent_count = 0  # definitions the central took
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="central-definition",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        last = None  # the sites of the definition last taken (or refused)
        while not self._stop.is_set():
            try:
                document = self.make()
            except Exception as exc:  # the store busy: look again at the next check
                log.warning("cannot build the site definition now: %s", exc)
                document = None
            if document is not None and document["sites"] != last:
                if not self._send(document):
                    return  # stopping
                last = document["sites"]
            self._stop.wait(self.recheck_s)

    def _send(self, document: dict) -> bool:
        """Post until taken or refused for good; False when stopped first."""
        body = json.dumps(document, ensure_ascii=False).encode("utf-8")
        backoff, failing = BACKOFF_MIN_S, False
        while not self._stop.is_set():
            try:
                self.transport.post(DEFINITION_PATH, body, "application/json")
            except (RejectedBatch, TooLarge) as exc:  # a document cannot be split
                log.error("the central refused this data center's site definition: %s", exc)
                return True
            except Exception as exc:  # unreachable, 401/403/5xx: tried again
                if not failing:
                    log.error("cannot send the site definition to the central, retrying: %s",
                              exc)
                failing = True
                self._stop.wait(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            log.info("site definition sent to the central")
            self.sent_count += 1
            self.sent.set()
            return True
        return False
