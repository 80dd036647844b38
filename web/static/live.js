// Live refresh of the overview page: fetch /api/v1/status and rewrite every element
// carrying data-field / data-tone. The formatters mirror web/format.py name by name
// (the browser test compares both renderings), so change them together.
"use strict";

(function () {
  const body = document.body;
  const lang = body.dataset.lang || "vi";
  const refreshMs = Math.max(2, Number(body.dataset.refreshS) || 10) * 1000;
  const api = body.dataset.api || "/api/v1/status";
  const S = JSON.parse(document.getElementById("strings").textContent);
  const DASH = "\u2014";

  function t(key, params) {
    let text = key in S ? S[key] : key;
    for (const [name, value] of Object.entries(params || {})) {
      text = text.split("{" + name + "}").join(String(value));
    }
    return text;
  }

  function finite(v) {
    return typeof v === "number" && Number.isFinite(v);
  }

  // Grouped decimal number: vi "1.234,56", en "1,234.56". toFixed rounds half-up on the
  // exact binary value, as web/format.py does with Decimal.
  function number(v, digits) {
    if (!finite(v)) return DASH;
    const fixed = Math.abs(v).toFixed(digits);
    const [intPart, frac] = fixed.split(".");
    const groupSep = lang === "vi" ? "." : ",";
    const decSep = lang === "vi" ? "," : ".";
    const grouped = intPart.replace(/\B(?=(\d{3})+(?!\d))/g, groupSep);
    const text = frac === undefined ? grouped : grouped + decSep + frac;
    const isZero = /^[0.]*$/.test(fixed);
    return (v < 0 && !isZero ? "-" : "") + text;
  }

  function age(seconds) {
    if (!finite(seconds)) return DASH;
    seconds = Math.max(0, seconds);
    const steps = [[90, 1, "age.s"], [90 * 60, 60, "age.min"], [48 * 3600, 3600, "age.h"]];
    for (const [limit, unit, key] of steps) {
      if (seconds < limit) return t(key, { n: Math.floor(seconds / unit) });
    }
    return t("age.d", { n: Math.floor(seconds / 86400) });
  }

  function localDatetime(text) {
    if (!text) return DASH;
    const date = text.slice(0, 10), clock = text.slice(11, 19), offset = text.slice(19) || "Z";
    return `${clock} ${date.slice(8, 10)}/${date.slice(5, 7)}/${date.slice(0, 4)} (UTC${offset})`;
  }

  function period(fig) {
    if (!fig || !fig.start || !fig.end) return DASH;
    const day = (s) => `${s.slice(8, 10)}/${s.slice(5, 7)}`;
    const { start, end } = fig;
    if (start.slice(0, 10) === end.slice(0, 10)) {
      return `${start.slice(11, 16)}\u2013${end.slice(11, 16)} ${day(end)}`;
    }
    return `${start.slice(11, 16)} ${day(start)} \u2013 ${end.slice(11, 16)} ${day(end)}`;
  }

  function verdict(fig) {
    const c = fig ? fig.compliant : null;
    return t(c === null || c === undefined ? "verdict.none" : c ? "verdict.yes" : "verdict.no");
  }

  function risk(value) {
    // Why there is no forecast, rather than a forecast from nothing (web/format.py risk).
    if (value && ["no_figure", "not_judged", "too_short"].includes(value.refused)) {
      return t("risk.refused." + value.refused, {
        year: value.year, status: t("status." + value.basis_status),
        days: number(value.basis_days, 1), min: number(value.min_basis_days, 0) });
    }
    if (!value || value.at_risk === null || value.at_risk === undefined) return t("risk.none");
    const basis = value.basis_days === null || value.basis_days === undefined ? "" :
      t("risk.basis", { days: number(value.basis_days, 1),
                        coverage: number(100 * (value.basis_coverage || 0), 0) + " %" });
    return t(value.at_risk ? "risk.yes" : "risk.no",
             { year: value.year, pue: number(value.projected_pue, 2) }) + basis;
  }

  const ERR_KEYS = new Set(["timeout", "connection", "auth", "decode", "device_error"]);
  function errors(counts) {
    const parts = Object.keys(counts || {}).sort()
      .filter((k) => counts[k])
      .map((k) => `${ERR_KEYS.has(k) ? t("err." + k) : k} ${counts[k]}`);
    return parts.length ? parts.join(" \u00b7 ") : t("errors.none");
  }

  // A site's mark, as web/format.py mark_of: the 12 months' verdict and the year at risk.
  function markOf(site) {
    const w = ((site && site.windows) || {})["12m"] || {};
    if (w.compliant === null || w.compliant === undefined) return "not_judged";
    if (!w.compliant) return "over";
    return ((site && site.year_at_risk) || {}).at_risk ? "at_risk" : "green";
  }
  const MARK_TONES = { green: "good", at_risk: "warn", over: "bad", not_judged: "nodata" };

  const keyed = (prefix) => (v) => (v === null || v === undefined ? DASH : t(prefix + "." + v));
  const FORMATTERS = {
    text: (v) => (v === null || v === undefined || v === "" ? DASH : String(v)),
    int: (v) => (v === null || v === undefined ? DASH : String(Math.trunc(v))),
    pue: (v) => number(v, 2),
    kw: (v) => (v === null || v === undefined ? DASH : number(v / 1000, 1) + " kW"),
    kwh: (v) => (v === null || v === undefined ? DASH : number(v, 1) + " kWh"),
    pct: (v) => (v === null || v === undefined ? DASH : number(v * 100, 1) + "%"),
    ms: (v) => (v === null || v === undefined ? DASH : number(v * 1000, 0) + " ms"),
    age: age,
    datetime: localDatetime,
    period: period,
    status: keyed("status"),
    verdict: verdict,
    up: (v) => t("up." + (v === true ? "true" : v === false ? "false" : "null")),
    state: (v) => t("state." + (["up", "degraded", "down"].includes(v) ? v : "unknown")),
    errors: errors,
    risk: risk,
    mark: (v) => t("mark." + markOf(v)),
  };

  function resolve(scope, path) {
    let value = scope;
    for (const part of path ? path.split(".") : []) {
      value = value && typeof value === "object" ? value[part] : undefined;
    }
    return value === undefined ? null : value;
  }

  function tone(kind, value) {
    if (kind === "figure") {
      const fig = value || {};
      if (fig.status === "ok" && fig.compliant !== null && fig.compliant !== undefined) {
        return fig.compliant ? "good" : "bad";
      }
      return { invalid: "invalid", incomplete: "incomplete" }[fig.status] || "nodata";
    }
    if (kind === "device") {
      // A degraded device is an error as a down one is; an older document has no state.
      const dev = value || {};
      const state = dev.state || (dev.up === true ? "up" : dev.up === false ? "down" : "unknown");
      return { up: "good", degraded: "bad", down: "bad" }[state] || "nodata";
    }
    if (kind === "risk") {
      const r = value ? value.at_risk : null;
      return r === null || r === undefined ? "nodata" : r ? "bad" : "good";
    }
    if (kind === "mark") return MARK_TONES[markOf(value)];
    const total = (value && value.devices_total) || 0, up = (value && value.devices_up) || 0;
    return !total ? "nodata" : up === total ? "good" : "bad";
  }

  // The document object an element's paths are relative to.
  function scopeOf(el, doc, sites) {
    const siteEl = el.closest("[data-site]");
    const site = siteEl ? sites.get(siteEl.dataset.site) : null;
    if (siteEl && !site) return undefined; // the site left the document: leave it as is
    const devEl = el.closest("[data-device]");
    if (devEl) {
      return site ? (site.devices || []).find((d) => d.id === devEl.dataset.device) : undefined;
    }
    return site || doc;
  }

  function render(doc) {
    const sites = new Map((doc.sites || []).map((s) => [s.id, s]));
    for (const el of document.querySelectorAll("[data-field]")) {
      const scope = scopeOf(el, doc, sites);
      if (scope === undefined) continue;
      const fmt = FORMATTERS[el.dataset.fmt] || FORMATTERS.text;
      const text = fmt(resolve(scope, el.dataset.field));
      if (el.textContent !== text) el.textContent = text;
    }
    for (const el of document.querySelectorAll("[data-tone]")) {
      const scope = scopeOf(el, doc, sites);
      if (scope === undefined) continue;
      const [kind, path] = el.dataset.tone.split(":");
      const cls = "tone-" + tone(kind, resolve(scope, path));
      for (const c of [...el.classList]) if (c.startsWith("tone-") && c !== cls) el.classList.remove(c);
      el.classList.add(cls);
    }
  }

  const live = document.getElementById("live");
  function setLive(ok) {
    live.dataset.state = ok ? "on" : "off";
    live.textContent = ok ? t("live.on", { n: refreshMs / 1000 }) : t("live.off");
  }

  let timer = null;
  async function refresh() {
    try {
      const answer = await fetch(api, { cache: "no-store", headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      render(await answer.json());
      setLive(true);
      body.dataset.refreshedAt = String(Date.now());
    } catch (err) {
      setLive(false);
    } finally {
      timer = setTimeout(refresh, refreshMs);
    }
  }

  // Exposed for the browser test, which compares these formatters with the server's.
  window.pueMonitor = { FORMATTERS, render, tone, resolve, markOf };
  setLive(true);
  timer = setTimeout(refresh, 0);
})();
