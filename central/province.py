"""One province config split the way a real province runs: an edge config per data
center (its own site, shipping to the central) and the central's config (the data
centers and who sees what). Used by `pue-monitor demo --province` and the tests; pure.
"""

from __future__ import annotations

from pue_monitor.config.model import Config

# Environment variable each demo edge reads its token from.
TOKEN_ENV = "PUE_CENTRAL_TOKEN"
# Keys of the province config an edge keeps as they are.
EDGE_KEYS = ("title", "polling", "collection", "profiles_dir", "emission_factors",
             "max_report_years")
CENTRAL_KEYS = ("title", "organisations", "web", "emission_factors", "max_report_years",
                "profiles_dir", "store")


def data_center_of(site_id: str) -> str:
    """The demo's data center of a site: one per site, named after it."""
    return site_id


def split_province(raw: dict, config: Config, central_url: str,
                   token_env: str = TOKEN_ENV) -> tuple[dict, dict[str, dict]]:
    """(central config, {data center: edge config}) as YAML-ready dicts, from a province
    config ``raw`` (as written) and the same validated (``config``)."""
    central = {k: raw[k] for k in CENTRAL_KEYS if k in raw}
    central["sites"] = []
    central["ingest"] = {"data_centers": [
        {"id": data_center_of(s.id), "name": {"vi": s.name.vi, "en": s.name.en},
         "sites": [s.id]} for s in config.sites]}
    edges = {}
    for site in raw["sites"]:
        edge = {k: raw[k] for k in EDGE_KEYS if k in raw}
        edge["sites"] = [site]
        edge["web"] = {"login": False}
        edge["central"] = {"url": central_url, "token_env": token_env}
        edges[data_center_of(site["id"])] = edge
    return central, edges
