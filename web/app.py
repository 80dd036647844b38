"""The Flask app factory and the state its views share (cached figures over the store)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from pue_monitor.config.model import Config
from pue_monitor.figures.blockcache import BlockCache
from pue_monitor.figures.longterm import energy_totals, site_long_figures
from pue_monitor.figures.service import province_status
from pue_monitor.store.base import StoreProtocol
from pue_monitor.web.document import LongSite, status_document
from pue_monitor.web.heavy import HeavyCollector, HeavyWork
from pue_monitor.web.metrics import StatusCollector

log = logging.getLogger(__name__)

# Scrapes, page loads and API calls within this many seconds share one computation.
CACHE_S = 1.0
# With WebState.background, an expired status document this young is still served while
# the next one is computed beside the requests (older: the request waits for it).
STALE_MAX_S = 30.0
# The long figures (30 days, 12 months, year at risk) move slowly: recomputed this often.
LONG_CACHE_S = 60.0
# The page refreshes at the poll interval, within these bounds.
REFRESH_MIN_S, REFRESH_MAX_S = 2.0, 30.0


def package_version() -> str:
    try:
        return version("pue-monitor")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


@dataclass
class WebState:
    """What the views need: the config, the store, a clock and a short-lived cache."""

    config: Config
    store: StoreProtocol
    clock: Callable[[], float]
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    # The central service adds the sites' definition history to its reports (central/).
    annotate_report: Callable[[dict], dict] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Recompute an expired status document and expired long figures on threads of their
    # own, serving the previous ones meanwhile (the running monitor); off, the request
    # that finds them expired recomputes them (tests, benchmarks' cold rows).
    background: bool = False
    _cached: tuple[float, dict] | None = None
    _long: tuple[float, dict[str, LongSite]] | None = None
    _refreshing: threading.Thread | None = None
    _doc_thread: threading.Thread | None = None
    _failing: bool = False
    heavy: HeavyWork | None = None
    # What is computed from closed blocks (the live windows' whole blocks, the charts'
    # series): kept until another block closes (figures.blockcache).
    blocks: BlockCache = field(default_factory=BlockCache)

    def _compute_long(self, now: float) -> tuple[float, dict[str, LongSite]]:
        return (now, {site.id: LongSite(site_long_figures(self.store, self.config, site, now),
                                        energy_totals(self.store, site, self.config))
                      for site in self.config.sites})

    def long_figures(self, now: float) -> dict[str, LongSite]:
        """The slow figures, at most LONG_CACHE_S old. They cost about 0.1 s a site over a
        year of blocks: with ``background`` only the first computation (start-up's warm
        up) is paid by a caller, later ones run beside the requests."""
        if self._long is not None and 0 <= now - self._long[0] < LONG_CACHE_S:
            return self._long[1]
        if self._long is None or not self.background:
            self._long = self._compute_long(now)
            return self._long[1]
        if self._refreshing is None or not self._refreshing.is_alive():
            self._refreshing = threading.Thread(target=self._refresh_long, args=(now,),
                                                name="web-long-figures", daemon=True)
            self._refreshing.start()
        return self._long[1]

    def _refresh_long(self, now: float) -> None:
        try:
            self._long = self._compute_long(now)
        except Exception:  # noqa: BLE001 - the previous figures stay; retried when asked
            log.exception("cannot recompute the 30-day and 12-month figures")

    def document(self) -> dict:
        """The status document for now, computed at most once per CACHE_S.

        With ``background``, an expired document younger than STALE_MAX_S is served as
        it is while a thread computes the next one (its ``generated_at`` says how old it
        is), so no page waits for the live figures once the monitor has started.

        :raises Exception: whatever the store raised; logged once until it recovers.
        """
        now = self.clock()
        kept = self._cached
        if kept is not None and 0 <= now - kept[0] < CACHE_S:
            return kept[1]
        if self.background and kept is not None and 0 <= now - kept[0] < STALE_MAX_S:
            if self._doc_thread is None or not self._doc_thread.is_alive():
                self._doc_thread = threading.Thread(target=self._refresh_document,
                                                    name="web-status", daemon=True)
                self._doc_thread.start()
            return kept[1]
        with self._lock:
            now = self.clock()
            if self._cached is not None and 0 <= now - self._cached[0] < CACHE_S:
                return self._cached[1]
            return self._compute_document(now)

    def _compute_document(self, now: float) -> dict:
        try:
            doc = status_document(province_status(self.store, self.config, now,
                                                  kept=self.blocks),
                                  self.config, now, self.long_figures(now),
                                  self.store.device_identifications())
        except Exception:
            if not self._failing:
                log.exception("cannot compute the status document")
            self._failing = True
            raise
        if self._failing:
            log.info("status document computed again")
        self._failing = False
        self._cached = (now, doc)
        return doc

    def _refresh_document(self) -> None:
        try:
            with self._lock:
                self._compute_document(self.clock())
        except Exception:  # noqa: BLE001 - logged by _compute_document; retried when asked
            pass

    def replace_config(self, config: Config) -> None:
        """Serve another config from now on (the central's, when a site definition
        arrives); the cached figures go with the old one."""
        with self._lock:
            self.config, self._cached, self._long = config, None, None
            self.blocks.clear()

    @property
    def refresh_s(self) -> float:
        fastest = min((self.config.polling_for(s, d).interval_s
                       for s, d in self.config.devices()), default=REFRESH_MAX_S)
        return min(REFRESH_MAX_S, max(REFRESH_MIN_S, fastest))


def warm(app: Flask) -> float:
    """Do at start-up what the first page would otherwise wait for: compile the
    templates, import what the store's frames need and compute the status document (the
    long figures included). Returns the seconds it took; a failing store is logged
    (WebState.document) and left to the first request."""
    start = time.perf_counter()
    for name in app.jinja_env.list_templates(extensions=("html",)):
        app.jinja_env.get_template(name)
    try:
        app.extensions["pue_monitor"].document()
    except Exception:  # noqa: BLE001 - logged once by WebState.document
        pass
    return time.perf_counter() - start


def create_app(config: Config, store: StoreProtocol, clock: Callable[[], float] = time.time,
               *, testing: bool = False, extra_collectors: Iterable[Collector] = (),
               secret_key: bytes | None = None, background: bool = False) -> Flask:
    """The Flask app: overview page, /api/v1/status, /metrics, /healthz, log-in.

    ``extra_collectors`` add to /metrics (e.g. the InfluxDB writer's, wired by the runner).
    ``secret_key`` signs the session cookie (web.security.load_secret_key); without it a
    random one is made, and sessions end with the process.
    ``background``: recompute expired long figures beside the requests (WebState).
    Access: every route is closed unless marked public, and sees only the sites
    web.access allows (see that module).
    """
    app = Flask(__name__)
    app.config.update(TESTING=testing, JSON_SORT_KEYS=False)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # Larger request bodies get 413 before any view reads them (waitress refuses them
    # too, in web.server).
    app.config["MAX_CONTENT_LENGTH"] = config.web.limits.max_body_bytes
    state = WebState(config, store, clock, background=background,
                     heavy=HeavyWork(config.web.limits))
    state.registry.register(StatusCollector(state.document, package_version()))
    state.registry.register(HeavyCollector(state.heavy))  # type: ignore[arg-type]
    for collector in extra_collectors:
        state.registry.register(collector)
    app.extensions["pue_monitor"] = state

    from pue_monitor.web import access, api, auth, pages, reports, security, views
    security.install(app, config, secret_key)
    access.install(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    return app


__all__ = ["WebState", "create_app", "warm"]
