"""Report documents (figures.report) as JSON, CSV (one row per site) or a printable HTML page.

The HTML is one self-contained file (inline CSS, A4 print layout) in Vietnamese or
English; its wording comes from web.i18n so the report and the live view never differ.
"""

from __future__ import annotations

import csv
import io
import json
import math
from html import escape

from pue_monitor.web.format import DASH, number, operator_sign, threshold, verdict
from pue_monitor.web.i18n import LANGS, t
from pue_monitor.web.report_parts import (clock_text, month_chart, navigation, period_line,
                                          signatures)

CSV_COLUMNS = ("site", "period_start", "period_end", "category", "facility_energy_kwh",
               "it_energy_kwh", "pue", "coverage", "status", "threshold", "operator",
               "compliant", "dcie_pct", "digest", "sites_judged", "sites_compliant",
               "not_judged", "settings", "settings_changes", "earlier_methods")
# The site column of a province document's last CSV row: the province figure.
PROVINCE_ROW = "province"
# Machine CSV: enough digits for any meter, none of the float noise (1259.9999999999998).
CSV_DIGITS = 9


def site_reports(doc: dict) -> list[dict]:
    """The site reports of a site or province document."""
    return doc["sites"] if "sites" in doc else [doc]


def to_json(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _plain(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, CSV_DIGITS))
    return str(value)


def to_csv(doc: dict) -> str:
    """One row per site; '.' decimals, empty for a missing figure, true/false."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rep in site_reports(doc):
        row = {**rep, "period_start": rep["period"]["start"], "period_end": rep["period"]["end"],
               "digest": rep["digest"]["value"],
               "settings": json.dumps(rep.get("settings") or {}, sort_keys=True,
                                      separators=(",", ":"), ensure_ascii=False),
               "settings_changes": changes_text(rep.get("settings_changes") or []),
               "earlier_methods": "; ".join(
                   f"{e['device']} {e['method']} {e.get('from') or ''}..{e['until']}"
                   for e in rep.get("earlier_methods") or [])}
        writer.writerow([_plain(row.get(c)) for c in CSV_COLUMNS])
    prov = doc.get("province")
    if prov is not None:
        row = {"site": PROVINCE_ROW, "period_start": prov.get("start"),
               "period_end": prov.get("end"), "pue": prov["pue"],
               "facility_energy_kwh": prov["facility_energy_kwh"],
               "it_energy_kwh": prov["it_energy_kwh"], "sites_judged": prov["judged"],
               "sites_compliant": prov["compliant"],
               # The sites whose figures rest in part on blocks of an earlier method.
               "earlier_methods": " ".join(r["site"] for r in site_reports(doc)
                                           if r.get("earlier_methods")),
               "not_judged": prov.get("refused") or " ".join(
                   f"{n['site']}:{n['status']}" for n in prov["not_judged"])}
        writer.writerow([_plain(row.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def changes_text(changes: list[dict]) -> str:
    """'FROM DEVICE setting old->new, ...; ...': every change of settings, one line."""
    return "; ".join(f"{c['from']} {c['device']} " + ", ".join(
        f"{k} {_shown(v['old'])}->{_shown(v['new'])}" for k, v in c["changed"].items())
        for c in changes)


def _shown(value: object) -> str:
    return "null" if value is None else _plain(value)


# ---- HTML ------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 16mm 14mm; }
body { font: 10.5pt/1.4 "Noto Sans", "DejaVu Sans", Arial, sans-serif; color: #111;
       max-width: 190mm; margin: 0 auto; padding: 8mm 0; }
h1 { font-size: 16pt; margin: 0 0 2mm; } h2 { font-size: 13pt; margin: 6mm 0 2mm; }
h3 { font-size: 11pt; margin: 4mm 0 1.5mm; }
.muted { color: #555; } .small { font-size: 8.5pt; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 3mm; }
th, td { border: 0.3mm solid #bbb; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.headline { display: flex; gap: 8mm; align-items: center; border: 0.4mm solid #888;
            padding: 3mm 4mm; margin: 2mm 0 3mm; }
.headline .pue { font-size: 28pt; font-weight: bold; }
.good { color: #11612b; } .bad { color: #a11919; } .none { color: #555; }
code, pre { font: 8pt/1.3 "DejaVu Sans Mono", monospace; white-space: pre-wrap;
            word-break: break-all; }
section.site { page-break-before: always; } section.site.first { page-break-before: auto; }
nav { font-size: 9.5pt; margin-bottom: 4mm; }
svg.chart { display: block; margin: 1mm 0 3mm; }
.signatures { display: flex; gap: 10mm; margin-top: 10mm; page-break-inside: avoid; }
.sign { flex: 1; text-align: center; min-height: 42mm; }
.sign .role { font-weight: bold; } .sign .hint { font-size: 8.5pt; color: #555; }
.sign .line { text-align: left; margin-top: 14mm; border-top: 0.2mm dotted #888; padding-top: 1mm; }
.sign .line + .line { margin-top: 4mm; border-top: none; }
@media print { body { padding: 0; max-width: none; } a { color: inherit; }
               .no-print { display: none; } }
"""

RECOMPUTE = ("python3 -c 'import hashlib,json,sys; r=json.load(sys.stdin); "
             "print(hashlib.sha256(json.dumps(r[\"inputs\"],sort_keys=True,"
             "separators=(\",\",\":\")).encode()).hexdigest())' < report.json")


def _pct(value: float | None, lang: str, digits: int = 2) -> str:
    return DASH if value is None else number(value * 100, digits, lang) + " %"


def _down(share: float) -> float:
    """A share rounded down to the 0.1 % shown: 99.99 % is not shown as a whole 100.0 %."""
    return math.floor(share * 1000 + 1e-9) / 1000


def _kwh(value: float | None, lang: str) -> str:
    return DASH if value is None else number(value, 1, lang) + " kWh"


def _tone(rep: dict) -> str:
    c = rep.get("compliant")
    return "none" if c is None else ("good" if c else "bad")


def _period(rep: dict, lang: str) -> str:
    return escape(period_line(rep["period"], lang))


def _rows(cells: list[list[str]], head: list[str], numeric: set[int] = frozenset()) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    thead = f"<thead><tr>{th}</tr></thead>" if any(head) else ""
    body = "".join("<tr>" + "".join(
        f"<td class=\"n\">{c}</td>" if i in numeric else f"<td>{c}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in cells)
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _judgement(rep: dict, lang: str) -> str:
    op = f"{operator_sign(rep['operator'])} {threshold(rep['threshold'], lang)}"
    return (f"<span class=\"{_tone(rep)}\">{escape(verdict(rep, lang))}</span>"
            f" <span class=\"muted\">({escape(t('threshold', lang))} {escape(op)})</span>"
            + _earlier_mark(rep, lang))


def _earlier_mark(rep: dict, lang: str) -> str:
    """Beside a verdict: the figure rests in part on blocks of an earlier PUE method."""
    if not rep.get("earlier_methods"):
        return ""
    return f" <span class=\"bad\">({escape(t('rep.method.earlier.mark', lang))})</span>"


def _province_table(doc: dict, lang: str) -> str:
    rows = [[escape(r["site_name"][lang]) + f" <span class=\"muted\">({escape(r['site'])})</span>",
             escape(r["category"]), number(r["pue"], 2, lang), _kwh(r["facility_energy_kwh"], lang),
             _kwh(r["it_energy_kwh"], lang), _pct(r["coverage"], lang),
             escape(t("status." + r["status"], lang)),
             escape(f"{operator_sign(r['operator'])} {threshold(r['threshold'], lang)}"),
             f"<span class=\"{_tone(r)}\">{escape(verdict(r, lang))}</span>"
             + _earlier_mark(r, lang)]
            for r in site_reports(doc)]
    head = [t("rep.site", lang), t("rep.category", lang), "PUE", "E_DC", "E_IT",
            t("fig.coverage", lang), t("fig.status", lang), t("threshold", lang),
            t("rep.verdict", lang)]
    return (f"<h2>{escape(t('rep.province', lang))}</h2>" + _province_figure(doc, lang)
            + _rows(rows, head, {2, 3, 4, 5}))


def _province_figure(doc: dict, lang: str) -> str:
    prov = doc.get("province")
    if prov is None:
        return ""
    if prov.get("refused"):
        return (f"<p class=\"muted\">{escape(t('prov.refused', lang))}: "
                f"{escape(prov['refused'])}</p>")
    judged = t("prov.judged", lang, judged=prov["judged"], sites=prov["sites"],
               compliant=prov["compliant"])
    head = (f"<div class=\"headline\"><div><div class=\"muted\">"
            f"{escape(t('prov.pue', lang))}</div>"
            f"<div class=\"pue\">{number(prov['pue'], 2, lang)}</div></div>"
            f"<div><div>E_DC {_kwh(prov['facility_energy_kwh'], lang)} · "
            f"E_IT {_kwh(prov['it_energy_kwh'], lang)}</div><div>{escape(judged)}</div>"
            "</div></div>")
    if not prov["not_judged"]:
        return head
    rows = [[escape(n["site"]), escape(t("status." + n["status"], lang)),
             _pct(n["coverage"], lang), number(n["pue"], 2, lang)]
            for n in prov["not_judged"]]
    return (head + f"<h3>{escape(t('prov.not_judged', lang))}</h3>"
            + _rows(rows, [t("rep.site", lang), t("fig.status", lang),
                           t("fig.coverage", lang), "PUE"], {2, 3}))


def _kpis(rep: dict, lang: str) -> str:
    k = rep.get("kpis") or {}
    rows = []
    for key, label, fmt in (("ppue_cooling", "kpi.ppue_cooling", 2),
                            ("ppue_power_distribution", "kpi.ppue_power_distribution", 2),
                            ("ref", "kpi.ref", None), ("erf", "kpi.erf", None),
                            ("wue_l_per_kwh", "kpi.wue", 3), ("cue_kg_per_kwh", "kpi.cue", 3)):
        value = k.get(key)
        if value is None and key == "wue_l_per_kwh" and k.get("water_coverage") is not None:
            # Water metered, but not the whole period (pue.kpis): shown missing, with why.
            rows.append([escape(t(label, lang)), "\u2014 <span class=\"muted\">(" + escape(t(
                "kpi.wue_not_whole", lang, water=_pct(_down(k["water_coverage"]), lang, 1),
                common=_pct(_down(rep.get("coverage") or 0.0), lang, 1))) + ")</span>"])
            continue
        if value is None:
            continue
        text = _pct(value, lang, 1) if fmt is None else number(value, fmt, lang)
        if key == "cue_kg_per_kwh" and k.get("emission_factor_kg_per_kwh") is not None:
            text += " <span class=\"muted\">(" + escape(t(
                "kpi.factor", lang, f=number(k["emission_factor_kg_per_kwh"], 4, lang),
                y=k.get("emission_factor_year"))) + ")</span>"
        rows.append([escape(t(label, lang)), text])
    if not rows:
        return ""
    return f"<h3>{escape(t('rep.kpis', lang))}</h3>" + _rows(rows, ["", ""], {1})


def _balance(rep: dict, lang: str) -> str:
    b = rep.get("balance")
    if not b:
        return ""
    flag = t("bal.flagged" if b["flagged"] else "bal.ok", lang)
    rows = [[escape(t("rep.facility", lang)), _kwh(rep["facility_energy_kwh"], lang)],
            [escape(t("bal.submetered", lang)), _kwh(b["submetered_kwh"], lang)],
            [escape(t("bal.unexplained", lang)), _kwh(b["unexplained_kwh"], lang) + " · "
             + _pct(b["unexplained_share"], lang, 1)]]
    return (f"<h3>{escape(t('rep.balance', lang))}</h3>" + _rows(rows, ["", ""], {1})
            + f"<p class=\"{'bad' if b['flagged'] else 'muted'}\">{escape(flag)}</p>")


def _meters(rep: dict, lang: str) -> str:
    rows = []
    for m in rep["meters"]:
        label = (m.get("names") or {}).get(lang) or m.get("name")
        name = escape(m["device"]) + (f"<br><span class=\"small muted\">{escape(label)}</span>"
                                      if label else "")
        point = m.get("measurement_point")
        rows.append([name, escape(t("role." + m["role"], lang)),
                     escape(t("mp." + point, lang)) if point else DASH,
                     number(m["share"], 2, lang),
                     escape(" + ".join(t("method." + x, lang) for x in m["method"].split("+"))),
                     _kwh(m["energy_kwh"], lang), _pct(m["coverage"], lang),
                     _pct(m.get("common_coverage"), lang), str(m["resets"]),
                     escape(_flags(m.get("flags"), lang))])
    head = [t("dev.id", lang), t("dev.role", lang), t("met.point", lang), t("met.share", lang),
            t("met.method", lang), t("rep.energy", lang), t("fig.coverage", lang),
            t("met.common", lang), t("met.resets", lang), t("met.flags", lang)]
    return f"<h3>{escape(t('rep.meters', lang))}</h3>" + _rows(rows, head, {3, 5, 6, 7, 8})


def _flags(counts: dict | None, lang: str) -> str:
    """'step-back 2 · stuck 1': the non-zero flag counts of a meter, else a dash."""
    parts = [f"{t('flag.' + k, lang)} {n}" for k, n in (counts or {}).items() if n]
    return " · ".join(parts) if parts else DASH


# The settings a report lists per meter, in this order (figures.settings.meter_settings).
SETTING_KEYS = ("role", "share", "measurement_point", "counter_width_kwh", "max_gap_s",
                "interval_s", "replacements", "reset_below_fraction", "rated_max_w",
                "stuck_power_polls", "profile")


def _setting(key: str, value: object, lang: str) -> str:
    if value is None:
        return DASH
    if key == "role":
        return escape(t("role." + str(value), lang))
    if key == "measurement_point":
        return escape(t("mp." + str(value), lang))
    if key == "replacements":
        return escape(", ".join(f"{r[0]}: {number(r[1], 1, lang)} → {number(r[2], 1, lang)} kWh"
                                for r in value)) if value else DASH  # type: ignore[union-attr]
    if isinstance(value, float | int) and not isinstance(value, bool):
        return number(value, 6, lang).rstrip("0").rstrip(",.") if isinstance(value, float) \
            else str(value)
    return escape(str(value))


def _settings(rep: dict, lang: str) -> str:
    """Every meter's settings at the period's start and every change within it."""
    settings = rep.get("settings") or {}
    if not settings:
        return ""
    rows = [[escape(device)] + [_setting(k, values.get(k), lang) for k in SETTING_KEYS]
            for device, values in settings.items()]
    out = (f"<h3>{escape(t('rep.settings', lang))}</h3>"
           + _rows(rows, [t("dev.id", lang)] + [t("set." + k, lang) for k in SETTING_KEYS]))
    changes = rep.get("settings_changes") or []
    if not changes:
        return out + f"<p>{escape(t('rep.changes.none', lang))}</p>"
    rows = [[escape(c["from"]), escape(c["device"]), escape(t("set." + k, lang)),
             _setting(k, v["old"], lang) + " → " + _setting(k, v["new"], lang)]
            for c in changes for k, v in c["changed"].items()]
    return (out + f"<h3>{escape(t('rep.changes', lang))}</h3>"
            + _rows(rows, [t("rep.from", lang), t("dev.id", lang), t("rep.setting", lang),
                           t("rep.change", lang)]))


# At most this many outage spans are listed in the HTML (the JSON has all of them).
OUTAGE_ROWS = 40


def _outages(rep: dict, lang: str) -> str:
    out = rep.get("monitor_outages")
    if out is None:
        return ""
    title = f"<h3>{escape(t('rep.outages', lang))}</h3>"
    if not out["spans"]:
        return title + f"<p>{escape(t('rep.outages.none', lang))}</p>"
    total = t("rep.outages.total", lang, hours=number(out["seconds"] / 3600, 2, lang),
              share=_pct(out["share"], lang), runs=out["runs"])
    rows = [[escape(clock_text(x["start"])), escape(clock_text(x["end"])),
             number(x["seconds"] / 3600, 2, lang)]
            for x in out["spans"][:OUTAGE_ROWS]]
    more = len(out["spans"]) - OUTAGE_ROWS
    return (title + f"<p>{escape(total)}</p>"
            + _rows(rows, [t("rep.from", lang), t("rep.to", lang), t("rep.hours", lang)], {2})
            + (f"<p class=\"muted\">{escape(t('rep.outages.more', lang, n=more))}</p>"
               if more > 0 else ""))


def _months(rep: dict, lang: str) -> str:
    months = rep.get("months")
    if not months:
        return ""
    rows = [[escape(f"{m['month'][5:7]}/{m['month'][:4]}"), escape(m["category"]),
             number(m["pue"], 2, lang),
             _kwh(m["facility_energy_kwh"], lang), _kwh(m["it_energy_kwh"], lang),
             _pct(m["coverage"], lang), escape(t("status." + m["status"], lang)),
             f"<span class=\"{_tone(m)}\">{escape(verdict(m, lang))}</span>"] for m in months]
    head = [t("rep.month", lang), t("rep.category", lang), "PUE", "E_DC", "E_IT",
            t("fig.coverage", lang), t("fig.status", lang), t("rep.verdict", lang)]
    return (f"<h3>{escape(t('rep.months', lang))}</h3>"
            + month_chart(months, rep["threshold"], lang) + _rows(rows, head, {2, 3, 4, 5}))


def _site(rep: dict, lang: str, first: bool) -> str:
    cat = rep["category"]
    canonical = json.dumps(rep["inputs"], sort_keys=True, separators=(",", ":"))
    figures = [[escape(t("rep.facility", lang)), _kwh(rep["facility_energy_kwh"], lang)],
               [escape(t("rep.it", lang)), _kwh(rep["it_energy_kwh"], lang)],
               [escape(t("rep.dcie", lang)), DASH if rep.get("dcie_pct") is None
                else number(rep["dcie_pct"], 1, lang) + " %"]]
    return f"""<section class="site{' first' if first else ''}">
<h2>{escape(rep['site_name'][lang])} <span class="muted">({escape(rep['site'])})</span></h2>
<p>{escape(t('kind.' + rep['kind'], lang))} · {escape(t('rep.period', lang))}:
{_period(rep, lang)}</p>
<div class="headline"><div><div class="muted">{escape(t('rep.pue', lang))}</div>
<div class="pue">{number(rep['pue'], 2, lang)}</div>
<div>{escape(t('cat.' + cat, lang))}</div></div>
<div><div>{_judgement(rep, lang)}</div>
<div>{escape(t('fig.status', lang))}: {escape(t('status.' + rep['status'], lang))}</div>
<div>{escape(t('fig.coverage', lang))}: {_pct(rep['coverage'], lang)}</div></div></div>
<h3>{escape(t('rep.energy', lang))}</h3>{_rows(figures, ['', ''], {1})}
{_kpis(rep, lang)}{_balance(rep, lang)}{_meters(rep, lang)}
{_settings(rep, lang)}{_outages(rep, lang)}
{_months(rep, lang)}
<h3>{escape(t('rep.method', lang))}</h3>
<p>{escape(t('rep.method.text', lang))}</p>
<p class="small" lang="{_other(lang)}"><strong>{escape(t('rep.method.other', lang))}:</strong>
{escape(t('rep.method.text', _other(lang)))}</p><p class="small muted">{escape(rep['method'])}</p>
{_earlier(rep, lang)}
<h3>{escape(t('rep.digest', lang))}</h3>
<p><code>{escape(rep['digest']['value'])}</code></p>
<p class="small">{escape(t('rep.digest.how', lang))}</p><pre>{escape(RECOMPUTE)}</pre>
<p class="small muted">{escape(t('rep.inputs', lang))}:</p><pre>{escape(canonical)}</pre>
</section>"""


def _earlier(rep: dict, lang: str) -> str:
    """The blocks of the period an earlier PUE method computed (figures.report.earlier_in),
    if any."""
    rows = rep.get("earlier_methods") or []
    if not rows:
        return ""
    items = "".join(f"<li>{escape(_earlier_line(e, lang))}</li>" for e in rows)
    return f"<p class=\"bad\">{escape(t('rep.method.earlier', lang))}</p><ul>{items}</ul>"


def _earlier_line(e: dict, lang: str) -> str:
    """'ups: blocks before 08:00 02/01/2026 by pue-monitor/3' (or from ... until ...)."""
    since, until = e.get("from"), clock_text(e["until"])
    if since is None:
        return t("rep.method.earlier.row", lang, device=e["device"], until=until,
                 method=e["method"])
    return t("rep.method.earlier.span", lang, device=e["device"], since=clock_text(since),
             until=until, method=e["method"])


def _other(lang: str) -> str:
    return next(x for x in LANGS if x != lang)


def to_html(doc: dict, lang: str, generated: str, nav: dict | None = None) -> str:
    """A printable report of a site or, for a province document, of every site.

    ``generated``: when it was made, as a local ISO time with its offset (shown on that
    clock); ``nav``: links for the browser (web.report_parts.navigation), none in a file.
    """
    reps = site_reports(doc)
    single = "sites" not in doc
    label = doc["period"].get("label") or ""
    subject = reps[0]["site_name"][lang] if single else (doc.get("title") or {}).get(lang, "")
    period = period_line(reps[0]["period"] if reps else doc["period"], lang)
    head = (navigation(nav, lang) + f"<h1>{escape(t('rep.title', lang))}</h1>"
            f"<p><strong>{escape(subject)}</strong> · {escape(t('rep.period', lang))}: "
            f"{escape(period)}<br><span class=\"small muted\">{escape(t('rep.generated', lang))}: "
            f"{escape(clock_text(generated))}</span></p>")
    body = "" if single else _province_table(doc, lang)
    body += "".join(_site(r, lang, first=single and i == 0) for i, r in enumerate(reps))
    title = f"{t('rep.title', lang)} · {subject} · {period or label}"
    return (f"<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>{head}{body}"
            f"{signatures(lang)}</body></html>\n")
