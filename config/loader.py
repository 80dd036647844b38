"""Load a site configuration: every error with its path and value, before any I/O."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import ValidationError

from pue_monitor.config.errors import ConfigError, ConfigIssue, join_path
from pue_monitor.config.metrics import (
    ENERGY_METRIC,
    NO_ENERGY_ROLES,
    POWER_METRIC,
    WATER_METRIC,
    Role,
)
from pue_monitor.config.history import check_history
from pue_monitor.config.model import AUTO_PROFILE, Config, fast_engine_gap
from pue_monitor.config.profiles import Profile, _pydantic_message, load_profiles
from pue_monitor.config.yamlio import YamlInputError, load_yaml, read_utf8

# ${NAME} or ${NAME:-default}: secrets and per-machine values come from the environment.
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
def q(value: object) -> str:
    """Quote a value in messages the way it would be written in YAML or JSON."""
    return json.dumps(value, ensure_ascii=False)


# Roles whose meter must give energy (a counter, or power to integrate).
ENERGY_ROLES = tuple(r for r in Role if r not in NO_ENERGY_ROLES)


def load_config(path: str | Path, env: Mapping[str, str] | None = None,
                all_profiles: bool = True) -> Config:
    """Load and validate a configuration file.

    ``all_profiles=False``: read only the profiles the devices name (all of them when a
    device is ``profile: auto``, which may be identified as any): for the commands that
    poll nothing (report, import, recompute), which then do not parse and validate some
    sixty profile files at every start. ``check-config`` and ``run`` read them all.

    :raises ConfigError: listing every problem found.
    """
    path = Path(path)
    try:
        text = read_utf8(path)
    except OSError as exc:
        raise ConfigError([ConfigIssue("", f"cannot read {path}: {exc.strerror}")], str(path))
    except YamlInputError as exc:
        raise ConfigError([ConfigIssue("", exc.message)], str(path)) from None
    return load_config_text(text, base_dir=path.parent, source=str(path), env=env,
                            all_profiles=all_profiles)


def load_config_text(text: str, base_dir: Path | None = None, source: str = "<config>",
                     env: Mapping[str, str] | None = None, all_profiles: bool = True) -> Config:
    """Validate configuration text; see :func:`load_config`."""
    env = os.environ if env is None else env
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue("", f"not valid YAML: {exc}")], source) from None
    except YamlInputError as exc:
        raise ConfigError([ConfigIssue(exc.path, exc.message)], source) from None
    if not isinstance(raw, dict):
        raise ConfigError([ConfigIssue("", "the configuration must be a mapping")], source)
    issues: list[ConfigIssue] = []
    if "profiles" in raw:
        issues.append(ConfigIssue("profiles", "unknown key (profiles live in profile files)"))
        raw = {k: v for k, v in raw.items() if k != "profiles"}
    raw = _substitute(raw, env, "", issues)

    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            issues.append(ConfigIssue(join_path(err["loc"]), _pydantic_message(err)))

    profiles: dict[str, Profile] = {}
    extra_dirs = []
    if isinstance(raw.get("profiles_dir"), str):
        folder = Path(raw["profiles_dir"])
        if not folder.is_absolute() and base_dir is not None:
            folder = base_dir / folder
        if not folder.is_dir():
            issues.append(ConfigIssue("profiles_dir", f"not a folder: {q(raw['profiles_dir'])}"))
        else:
            extra_dirs.append(folder)
    names = None
    if not all_profiles and config is not None:
        names = {d.profile for _, d in config.devices()}
        if AUTO_PROFILE in names:
            names = None
    try:
        profiles = load_profiles(*extra_dirs, names=names)
    except ConfigError as exc:
        issues.extend(ConfigIssue(f"profiles/{i.path}", i.message) for i in exc.issues)

    issues.extend(_cross_check(raw, profiles))
    issues.extend(_check_simulation(raw))
    issues.extend(_check_snmp_engines(raw))
    issues.extend(_check_organisations(raw))
    if config is not None:
        issues.extend(check_history(config))
    if issues:
        raise ConfigError(_dedupe(issues), source)
    assert config is not None
    return config.model_copy(update={"profiles": profiles})


def _substitute(node: object, env: Mapping[str, str], path: str,
                issues: list[ConfigIssue]) -> object:
    """Replace ${VAR} references in every string; a missing variable is an error."""
    if isinstance(node, dict):
        return {k: _substitute(v, env, f"{path}.{k}" if path else str(k), issues)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, f"{path}[{i}]", issues) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            issues.append(ConfigIssue(path, f"environment variable {name} is not set"))
            return ""
        return ENV_REF.sub(repl, node)
    return node


def _cross_check(raw: dict, profiles: dict[str, Profile]) -> list[ConfigIssue]:
    """Checks that span objects: references, uniqueness, roles that need energy data."""
    issues: list[ConfigIssue] = []
    site_ids: dict[str, int] = {}
    device_ids: dict[str, str] = {}
    endpoints: dict[tuple, str] = {}
    sites = raw.get("sites")
    if not isinstance(sites, list):
        return issues
    for s, site in enumerate(sites):
        if not isinstance(site, dict):
            continue
        spath = f"sites[{s}]"
        sid = site.get("id")
        if isinstance(sid, str):
            if sid in site_ids:
                issues.append(ConfigIssue(f"{spath}.id", f"duplicate site id {q(sid)} "
                                          f"(also sites[{site_ids[sid]}])"))
            site_ids.setdefault(sid, s)
        devices = site.get("devices")
        if not isinstance(devices, list):
            continue
        roles_seen: set[str] = set()
        for d, dev in enumerate(devices):
            if not isinstance(dev, dict):
                continue
            dpath = f"{spath}.devices[{d}]"
            did = dev.get("id")
            if isinstance(did, str):
                if did in device_ids:
                    issues.append(ConfigIssue(f"{dpath}.id", f"duplicate device id {q(did)} "
                                              f"(also {device_ids[did]})"))
                device_ids.setdefault(did, dpath)
            roles_seen.add(str(dev.get("role", Role.MONITOR.value)))
            issues.extend(_check_device(dev, dpath, profiles, endpoints))
        for role, word in ((Role.FACILITY, "facility"), (Role.IT, "it")):
            if role.value not in roles_seen and devices:
                issues.append(ConfigIssue(f"{spath}.devices", f"no device has role {word}: "
                                          "the site's PUE cannot be computed"))
    return issues


def _check_device(dev: dict, dpath: str, profiles: dict[str, Profile],
                  endpoints: dict[tuple, str]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    name = dev.get("profile")
    # auto: the model is known only at the first poll, so checks needing it are skipped.
    profile = profiles.get(name) if isinstance(name, str) and name != AUTO_PROFILE else None
    if name == AUTO_PROFILE and isinstance(dev.get("modbus"), dict):
        issues.append(ConfigIssue(f"{dpath}.profile", "profile auto needs an SNMP device: "
                                  "Modbus devices cannot identify themselves; name the profile"))
    elif isinstance(name, str) and name != AUTO_PROFILE and profile is None and profiles:
        issues.append(ConfigIssue(f"{dpath}.profile", f"unknown profile {q(name)}"))
    for proto in ("snmp", "modbus"):
        target = dev.get(proto)
        if not isinstance(target, dict):
            continue
        if profile is not None and profile.protocol != proto:
            issues.append(ConfigIssue(f"{dpath}.{proto}", f"profile {q(name)} speaks "
                                      f"{profile.protocol}, not {proto}"))
        # Values of any type may reach here (the schema reports wrong ones): compared as
        # text, so a list where a port belongs cannot break the check.
        key = (proto, *(repr(target.get(k)) for k in ("host", "port", "unit")))
        if key in endpoints:
            issues.append(ConfigIssue(f"{dpath}.{proto}", f"same address as {endpoints[key]}"))
        endpoints.setdefault(key, dpath)
    role = dev.get("role")
    if profile is not None and role == Role.WATER.value:
        totals = {p.metric for p in profile.points_for() if not p.labels}
        if WATER_METRIC not in totals:
            issues.append(ConfigIssue(f"{dpath}.role", f"role water needs total {WATER_METRIC}; "
                                      f"profile {q(name)} has none"))
    elif profile is not None and isinstance(role, str) \
            and role in {r.value for r in ENERGY_ROLES}:
        totals = {p.metric for p in profile.points_for() if not p.labels}
        totals |= {t.metric for t in profile.totals}
        if not totals & {ENERGY_METRIC, POWER_METRIC}:
            issues.append(ConfigIssue(f"{dpath}.role", f"role {role} needs total "
                                      f"{ENERGY_METRIC} or {POWER_METRIC}; profile {q(name)} "
                                      "has neither"))
    return issues


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen: set[tuple[str, str]] = set()
    out = []
    for issue in issues:
        key = (issue.path, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


def _list(value: object) -> list:
    """``value`` if it is a list, else empty (the schema reports the wrong type)."""
    return value if isinstance(value, list) else []


def _check_simulation(raw: dict) -> list[ConfigIssue]:
    """Every device the simulation names must exist in that site."""
    sim = raw.get("simulation")
    if not isinstance(sim, dict) or not isinstance(sim.get("sites"), dict):
        return []
    issues: list[ConfigIssue] = []
    sites = {s.get("id"): s for s in _list(raw.get("sites"))
             if isinstance(s, dict) and isinstance(s.get("id"), str)}
    for sid, spec in sim["sites"].items():
        path = f"simulation.sites.{sid}"
        if sid not in sites:
            issues.append(ConfigIssue(path, f"unknown site {q(sid)}"))
            continue
        if not isinstance(spec, dict):
            continue
        ids = {d.get("id") for d in _list(sites[sid].get("devices"))
               if isinstance(d, dict) and isinstance(d.get("id"), str)}
        for group in ("incomers", "ups", "pdus", "cooling"):
            for i, dev in enumerate(_list(spec.get(group))):
                if not isinstance(dev, str) or dev not in ids:
                    issues.append(ConfigIssue(f"{path}.{group}[{i}]",
                                              f"no device {q(dev)} in site {q(sid)}"))
    return issues


def _check_snmp_engines(raw: dict) -> list[ConfigIssue]:
    """An explicit ``snmp_engine: fast`` for a device the fast engine cannot poll is an
    error where it is written (unset, such a device falls back to the reference engine).
    The polling block that applies is the device's, else its site's, else the top one."""
    issues: list[ConfigIssue] = []
    top = raw.get("polling")
    for s, site in enumerate(raw.get("sites") or []):
        if not isinstance(site, dict):
            continue
        for d, dev in enumerate(site.get("devices") or []):
            if not isinstance(dev, dict) or not isinstance(dev.get("snmp"), dict):
                continue
            dpath = f"sites[{s}].devices[{d}]"
            blocks = ((dev.get("polling"), f"{dpath}.polling"),
                      (site.get("polling"), f"sites[{s}].polling"), (top, "polling"))
            polling, ppath = next(((b, p) for b, p in blocks if b is not None), (None, ""))
            if not isinstance(polling, dict) or polling.get("snmp_engine") != "fast":
                continue
            snmp = dev["snmp"]
            gap = fast_engine_gap(str(snmp.get("version", "2c")), str(snmp.get("context") or ""))
            if gap is not None:
                issues.append(ConfigIssue(f"{ppath}.snmp_engine", f"{q('fast')} cannot poll "
                                          f"device {q(dev.get('id'))} ({dpath}): {gap}"))
    return issues


def _check_organisations(raw: dict) -> list[ConfigIssue]:
    """Organisation ids are unique and name only configured sites."""
    orgs = raw.get("organisations")
    if not isinstance(orgs, list):
        return []
    issues: list[ConfigIssue] = []
    site_ids = {s.get("id") for s in raw.get("sites") or [] if isinstance(s, dict)}
    # At the central service the sites are its data centers' (their edges define them).
    ingest = raw.get("ingest")
    for dc in _list(ingest.get("data_centers")) if isinstance(ingest, dict) else []:
        if isinstance(dc, dict):
            site_ids |= {sid for sid in _list(dc.get("sites")) if isinstance(sid, str)}
    seen: dict[str, int] = {}
    for o, org in enumerate(orgs):
        if not isinstance(org, dict):
            continue
        oid = org.get("id")
        if isinstance(oid, str):
            if oid in seen:
                issues.append(ConfigIssue(f"organisations[{o}].id", f"duplicate organisation "
                                          f"id {q(oid)} (also organisations[{seen[oid]}])"))
            seen.setdefault(oid, o)
        for i, sid in enumerate(org.get("sites") or []):
            if sid not in site_ids:
                issues.append(ConfigIssue(f"organisations[{o}].sites[{i}]",
                                          f"unknown site {q(sid)}"))
    return issues
