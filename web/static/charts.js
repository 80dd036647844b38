// Charts (uPlot, vendored in static/vendor) and sortable tables of the overview, site and
// device pages. Every chart draws from the JSON API (web/api.py); the page's settings and
// strings come from its <script id="page-data" type="application/json"> block, so there
// is no inline script. A drawn chart gets data-points="n"; a failed one data-state="error".
"use strict";

(function () {
  const dataEl = document.getElementById("page-data");
  const page = dataEl ? JSON.parse(dataEl.textContent) : {};
  const shared = document.getElementById("strings"); // the overview's, shared with live.js
  const S = page.strings || (shared ? JSON.parse(shared.textContent) : {});
  const lang = page.lang || document.body.dataset.lang || "vi";
  const DASH = "\u2014";
  const COLORS = {
    pue: "#1a73e8", threshold: "#b3261e", facility: "#202124", it: "#1b7f3b",
    cooling: "#1a73e8", power_distribution: "#f29900", lighting: "#a142f4", other: "#9aa0a6",
    exclude: "#795548", good: "#1b7f3b", bad: "#b3261e", nodata: "#9aa0a6", device: "#1a73e8",
  };
  const t = (key) => (key in S ? S[key] : key);

  function number(v, digits) {
    if (typeof v !== "number" || !Number.isFinite(v)) return DASH;
    const [i, f] = Math.abs(v).toFixed(digits).split(".");
    const g = lang === "vi" ? "." : ",", d = lang === "vi" ? "," : ".";
    const text = i.replace(/\B(?=(\d{3})+(?!\d))/g, g) + (f === undefined ? "" : d + f);
    return (v < 0 && /[1-9]/.test(text) ? "-" : "") + text;
  }

  async function getJson(url) {
    const answer = await fetch(url, { headers: { Accept: "application/json" } });
    if (!answer.ok) throw new Error("HTTP " + answer.status + " " + url);
    return answer.json();
  }

  function withRange(url, range) {
    return url + (url.includes("?") ? "&" : "?") + "range=" + encodeURIComponent(range);
  }

  // A chart's answers may come back out of order (a slow "day" after a quick click on
  // "year"): only the answer to the element's latest request may draw or fail it.
  const asked = new Map();
  function ticket(el) {
    const n = (asked.get(el) || 0) + 1;
    asked.set(el, n);
    return () => asked.get(el) === n;
  }

  // One uPlot per element, replaced when the range changes.
  const plots = new Map();
  function draw(el, opts, data) {
    const old = plots.get(el);
    if (old) old.destroy();
    el.replaceChildren();
    if (!opts.width) opts.width = Math.max(200, el.clientWidth || 600);
    const plot = new uPlot(opts, data, el);
    plots.set(el, plot);
    el.dataset.points = String(data[0].length);
    el.dataset.state = "drawn";
    return plot;
  }

  function failed(el, err) {
    el.dataset.state = "error";
    el.textContent = t("chart.error");
    if (window.console && console.warn) console.warn(String(err));
  }

  function timeAxisOpts(tz) {
    return tz && uPlot.tzDate ? { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz) } : {};
  }

  // Times as people in the page's language write them, in the site's time zone (24 h,
  // day before month), whatever the browser's own zone and locale.
  const STEP_FORMATS = {
    block: { hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
    hour: { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" },
    day: { day: "2-digit", month: "2-digit" },
    month: { month: "2-digit", year: "numeric" },
  };
  function timeFormatter(tz, step, full) {
    const opts = full ? { ...STEP_FORMATS.hour, year: "numeric" } : STEP_FORMATS[step] || STEP_FORMATS.hour;
    const f = new Intl.DateTimeFormat(lang === "vi" ? "vi-VN" : "en-GB", { timeZone: tz, ...opts });
    return (ts) => (ts === null || ts === undefined ? DASH : f.format(new Date(ts * 1000)));
  }
  function timeX(doc) {
    const axis = timeFormatter(doc.timezone, doc.step, false);
    const full = timeFormatter(doc.timezone, doc.step, true);
    return {
      series: { label: t("chart.time"), value: (u, v) => full(v) },
      axis: { values: (u, splits) => splits.map(axis), space: 70 },
    };
  }

  const pueValue = (u, v) => number(v, 2);
  const kwValue = (u, v) => (v === null || v === undefined ? DASH : number(v, 1) + " kW");

  // -- the site page ------------------------------------------------------------------
  async function pueChart(el, range) {
    const latest = ticket(el);
    try {
      const doc = await getJson(withRange(page.api.pue, range));
      if (!latest()) return;
      const xs = doc.points.map((p) => p.t);
      const ys = doc.points.map((p) => p.pue);
      const x = timeX(doc);
      draw(el, {
        height: 280, ...timeAxisOpts(doc.timezone),
        series: [x.series,
                 { label: "PUE", stroke: COLORS.pue, width: 2, value: pueValue, spanGaps: false },
                 { label: t("chart.threshold"), stroke: COLORS.threshold, dash: [6, 4],
                   points: { show: false }, value: pueValue }],
        axes: [x.axis, { values: (u, vals) => vals.map((v) => number(v, 2)) }],
      }, [xs, ys, xs.map(() => doc.threshold)]);
    } catch (err) { if (latest()) failed(el, err); }
  }

  async function powerChart(el, range) {
    const latest = ticket(el);
    try {
      const doc = await getJson(withRange(page.api.power, range));
      if (!latest()) return;
      // Stacked: each band is drawn as the running sum, from the top one down, so the
      // lower ones paint over it; the legend shows each role's own value.
      const stack = doc.stack;
      const sums = [];
      let running = doc.t.map(() => 0);
      for (const role of stack) {
        running = running.map((s, i) => {
          const v = doc.roles[role][i];
          return s === null || v === null ? null : s + v;
        });
        sums.push(running);
      }
      const x = timeX(doc);
      const series = [x.series];
      const data = [doc.t];
      for (let k = stack.length - 1; k >= 0; k--) {
        const role = stack[k];
        const own = doc.roles[role];
        series.push({ label: t("role." + role), stroke: COLORS[role] || COLORS.other,
                      fill: (COLORS[role] || COLORS.other) + "99",
                      value: (u, v, s, i) => kwValue(u, i === null ? null : own[i]) });
        data.push(sums[k]);
      }
      if (doc.roles.facility) {
        series.push({ label: t("role.facility"), stroke: COLORS.facility, width: 2,
                      value: kwValue });
        data.push(doc.roles.facility);
      }
      // Stacked areas only read right from zero.
      draw(el, { height: 280, ...timeAxisOpts(doc.timezone), series,
                 scales: { y: { range: (u, lo, hi) => [0, (hi || 1) * 1.05] } },
                 axes: [x.axis, { values: (u, vals) => vals.map((v) => number(v, 0)) }] }, data);
    } catch (err) { if (latest()) failed(el, err); }
  }

  async function monthsChart(el) {
    try {
      const doc = await getJson(page.api.months);
      const xs = doc.months.map((m) => m.month);
      const pick = (ok) => doc.months.map((m) => (m.compliant === ok ? m.pue : null));
      const bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 60] }) : null;
      const bar = (label, color, values) => ({ label, stroke: color, fill: color + "cc",
                                               paths: bars, points: { show: false },
                                               value: pueValue });
      draw(el, {
        height: 220, scales: { x: { time: false, range: [0.5, 12.5] } },
        series: [{ label: S["rep.month"] || "" },
                 bar(t("verdict.yes"), COLORS.good, null),
                 bar(t("verdict.no"), COLORS.bad, null),
                 bar(t("verdict.none"), COLORS.nodata, null),
                 { label: t("chart.threshold"), stroke: COLORS.threshold, dash: [6, 4],
                   points: { show: false }, value: pueValue }],
        axes: [{ values: (u, vals) => vals.map((v) => (Number.isInteger(v) ? String(v).padStart(2, "0") : "")) },
               { values: (u, vals) => vals.map((v) => number(v, 2)) }],
      }, [xs, pick(true), pick(false), pick(null), xs.map(() => doc.threshold)]);
    } catch (err) { failed(el, err); }
  }

  // -- the device page ----------------------------------------------------------------
  async function deviceChart(el, range) {
    const latest = ticket(el);
    try {
      const doc = await getJson(withRange(page.api.power, range));
      if (!latest()) return;
      const x = timeX(doc);
      draw(el, { height: 260, ...timeAxisOpts(doc.timezone),
                 scales: { y: { range: (u, lo, hi) => [0, (hi || 1) * 1.05] } },
                 series: [x.series,
                          { label: "kW", stroke: COLORS.device, width: 2, value: kwValue }],
                 axes: [x.axis, { values: (u, vals) => vals.map((v) => number(v, 1)) }] },
           [doc.t, doc.power_kw]);
    } catch (err) { if (latest()) failed(el, err); }
  }

  // -- the overview's sparklines ------------------------------------------------------
  async function spark(el) {
    try {
      const doc = await getJson(el.dataset.spark);
      const xs = doc.points.map((p) => p.t);
      draw(el, {
        width: 160, height: 40, legend: { show: false }, cursor: { show: false },
        series: [{}, { stroke: COLORS.pue, width: 1.5, spanGaps: false, points: { show: false } },
                 { stroke: COLORS.threshold, width: 1, dash: [3, 3], points: { show: false } }],
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: false } },
      }, [xs, doc.points.map((p) => p.pue), xs.map(() => doc.threshold)]);
      el.title = doc.points.map((p) => p.start.slice(0, 10) + " " + number(p.pue, 2)).join("\n");
    } catch (err) { failed(el, err); }
  }

  // -- sortable tables ------------------------------------------------------------------
  function sortKey(cell, kind) {
    const text = cell.textContent.trim();
    if (kind !== "num") return text;
    const plain = lang === "vi" ? text.replace(/\./g, "").replace(",", ".") : text.replace(/,/g, "");
    const n = parseFloat(plain);
    return Number.isFinite(n) ? n : null;
  }

  function sortable(table) {
    table.querySelectorAll("th[data-sort]").forEach((th, col) => {
      th.tabIndex = 0;
      th.classList.add("sort");
      const sort = () => {
        const asc = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = [...body.rows];
        rows.sort((a, b) => {
          const x = sortKey(a.cells[col], th.dataset.sort), y = sortKey(b.cells[col], th.dataset.sort);
          if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1; // gaps last
          const c = typeof x === "number" ? x - y : x.localeCompare(y, lang);
          return asc ? c : -c;
        });
        body.append(...rows);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
    });
  }

  function rangeButtons(scope, onRange) {
    scope.querySelectorAll("button[data-range]").forEach((button) => {
      button.addEventListener("click", () => {
        scope.querySelectorAll("button[data-range]").forEach((b) => b.setAttribute("aria-pressed", "false"));
        button.setAttribute("aria-pressed", "true");
        onRange(button.dataset.range);
      });
    });
  }

  function start() {
    document.querySelectorAll("table.sortable").forEach(sortable);
    document.querySelectorAll(".spark[data-spark]").forEach(spark);
    const pueEl = document.getElementById("chart-pue");
    const powerEl = document.getElementById("chart-power");
    if (pueEl && powerEl) {
      pueChart(pueEl, "day");
      powerChart(powerEl, "day");
      rangeButtons(pueEl.closest("section"), (r) => { pueChart(pueEl, r); powerChart(powerEl, r); });
    }
    const monthsEl = document.getElementById("chart-months");
    if (monthsEl) monthsChart(monthsEl);
    const deviceEl = document.getElementById("chart-device");
    if (deviceEl) {
      deviceChart(deviceEl, "day");
      rangeButtons(deviceEl.closest("section"), (r) => deviceChart(deviceEl, r));
    }
  }

  window.pueCharts = { number, plots };
  if (typeof uPlot === "undefined") {
    document.querySelectorAll("[data-chart], .spark").forEach((el) => failed(el, "uPlot missing"));
  } else {
    start();
  }
})();
