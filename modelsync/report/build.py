"""The report's data (the API's answers, collected once) and its HTML (one self-contained page).

:func:`collect` reads ``GET /models/{name}``, ``.../metrics``, ``.../drift`` and ``.../telemetry``
(a section the caller may not read, e.g. an IAM-only route with a browser's token, is kept as
``{"unavailable": message}`` and shown as such). :func:`render` turns that data into the page's markup;
``console/console.mjs`` renders the same markup from the same data in the browser (keep them in step:
tests/unit/test_report.py compares them). :func:`page` wraps the markup with the inline stylesheet
(``console/report.css``): no script, no external resource, printable.
"""

from __future__ import annotations

import datetime as _dt
import math
import pathlib
import urllib.parse
from collections.abc import Callable
from typing import Any

from .svg import DASH, columns, count, esc, fig, fixed, hbars, lines, ms, num, pct, short, split

SCHEMA = "modelsync.report/1"
CONSOLE = pathlib.Path(__file__).resolve().parent / "console"
WORST = 3  # features whose distributions are drawn (largest PSI first)
PREDICTION = "__prediction__"
ERROR_HINT = ('<p class="hint">Error rate: failed requests out of requests; a batch input counts its refused '
              "rows out of the rows it read.</p>")

Getter = Callable[[str, "dict[str, str] | None"], Any]


def iso(t: _dt.datetime) -> str:
    return t.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def latest_version(model: dict[str, Any]) -> int | None:
    """The version ``latest`` points to, else the highest."""
    latest = (model.get("aliases") or {}).get("latest")
    if latest and latest.get("version") is not None:
        return int(latest["version"])
    versions = [int(v["version"]) for v in model.get("versions") or []]
    return max(versions) if versions else None


def collect(get: Getter, name: str, since: str, version: int | None = None, source: str = "",
            now: _dt.datetime | None = None) -> dict[str, Any]:
    """Everything the page shows, as the API answered it. ``get(path, query)`` returns the JSON answer
    or raises :class:`modelsync.commands.operator.CommandFailed` (a missing model is an error; a section
    that cannot be read is kept as ``{"unavailable": message}``)."""
    from modelsync.commands.operator import CommandFailed

    base = "/models/" + urllib.parse.quote(name, safe="")
    model = get(base, None)
    version = version if version is not None else latest_version(model)

    def section(path: str, query: dict[str, str]) -> Any:
        try:
            return get(base + path, query)
        except CommandFailed as exc:
            return {"unavailable": str(exc)}

    return {"schema": SCHEMA, "name": name, "source": source,
            "generated_at": iso(now or _dt.datetime.now(_dt.UTC)), "since": since, "version": version,
            "model": model,
            "metrics": section("/metrics", {"since": since}),
            "drift": section("/drift", {"since": since, **({"version": str(version)} if version else {})}),
            "telemetry": section("/telemetry", {"since": since})}


# -- rendering (ported line by line in console/console.mjs) ----------------------------------------

def stamp(s: Any) -> str:
    """An ISO time as "YYYY-MM-DD HH:MM" (UTC)."""
    return str(s)[:16].replace("T", " ") if s else DASH


def epoch(s: str) -> float:
    return _dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def vname(v: Any) -> str:
    return DASH if v is None else "v" + num(v)


def feature_label(f: str) -> str:
    return "predictions" if f == PREDICTION else f


def unavailable(section: Any) -> str:
    if section is None:
        return "not collected"
    return str(section.get("unavailable") or "") if isinstance(section, dict) else "not collected"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def tile(label: str, text: str, key: str, value: Any, cls: str = "") -> str:
    return (f'<div class="tile {esc(cls)}"><span class="tlabel">{esc(label)}</span>'
            f'<span class="tvalue"{fig(key, value)}>{esc(text)}</span></div>')


def render(data: dict[str, Any]) -> str:
    """The page's markup (inside ``<body>``)."""
    return "\n".join([header(data), summary(data), versions(data), aliases(data), metrics(data),
                      drift(data), devices(data)])


def header(data: dict[str, Any]) -> str:
    name = str(data.get("name") or "")
    return (f'<header><h1>modelsync report: <span{fig("name", name)}>{esc(name)}</span></h1>'
            f'<p class="meta">Generated {esc(stamp(data.get("generated_at")))} UTC from '
            f'{esc(data.get("source") or DASH)} · window since {esc(stamp(data.get("since")))} UTC · dri'
            f'ft of '
            f'<b{fig("version", data.get("version"))}>{esc(vname(data.get("version")))}</b></p></header>')


def summary(data: dict[str, Any]) -> str:
    model = data.get("model") or {}
    vs = model.get("versions") or []
    latest = ((model.get("aliases") or {}).get("latest") or {}).get("version")
    tiles = [tile("Versions", count(len(vs)), "summary/versions", len(vs)),
             tile("latest", vname(latest), "summary/latest", latest)]
    m = data.get("metrics") or {}
    if not unavailable(m):
        requests = 0
        for v in m.get("versions") or []:
            requests = requests + int(v.get("requests") or 0)
        tiles.append(tile("Requests", count(requests), "summary/requests", requests))
    d = data.get("drift") or {}
    if not unavailable(d):
        tiles.append(tile("Drift " + vname(d.get("version")), str(d.get("status")), "summary/drift",
                          str(d.get("status")), "status-" + str(d.get("status"))))
    t = data.get("telemetry") or {}
    if not unavailable(t):
        tiles.append(tile("Devices", count(t.get("devices") or 0), "summary/devices", t.get("devices") or 0))
    return '<section class="tiles">' + "".join(tiles) + "</section>"


def outcome(v: dict[str, Any], latest: Any) -> str:
    if v.get("status") == "pending":
        return "pending approval"
    if v.get("schema_change_count"):
        return (f"published; latest held at {vname(v.get('compared_with'))} "
                f"({num(v.get('schema_change_count'))} input-schema changes)")
    return "published; latest" if latest == v.get("version") else "published"


def versions(data: dict[str, Any]) -> str:
    model = data.get("model") or {}
    latest = ((model.get("aliases") or {}).get("latest") or {}).get("version")
    rows = []
    for v in sorted(model.get("versions") or [], key=lambda x: int(x.get("version") or 0)):
        k = "versions/" + num(v.get("version")) + "/"
        methods = v.get("methods") or []
        rows.append(
            f'<tr><td{fig(k + "version", v.get("version"))}>{esc(vname(v.get("version")))}</td>'
            f'<td{fig(k + "status", str(v.get("status") or ""))}>{esc(v.get("status") or DASH)}</td>'
            f'<td>{esc(outcome(v, latest))}</td>'
            f'<td>{esc(stamp(v.get("created_at")))}</td>'
            f'<td>{esc(v.get("model_type") or DASH)}</td><td>{esc(v.get("task") or DASH)}</td>'
            f'<td class="n"{fig(k + "feature_count", v.get("feature_count"))}'
            f'>{esc(count(v.get("feature_count")))}</td>'
            f'<td class="n"{fig(k + "class_count", v.get("class_count"))}'
            f'>{esc(count(v.get("class_count")))}</td>'
            f'<td>{esc(", ".join(methods) if methods else DASH)}</td>'
            f'<td class="n"{fig(k + "schema_change_count", v.get("schema_change_count") or 0)}>'
            f'{esc(count(v.get("schema_change_count") or 0))}</td>'
            f'<td class="hash">{esc(str(v.get("sha256") or "")[:12])}</td></tr>')
    head = ("<tr><th>Version</th><th>Status</th><th>Publication</th><th>Created (UTC)</th><th>Type</th>"
            "<th>Task</th><th>Features</th><th>Classes</th><th>Methods</th><th>Schema changes</th>"
            "<th>sha256</th></tr>")
    body = f'<table class="data">{head}{"".join(rows)}</table>' if rows else note("No version yet.")
    return ('<section id="versions"><h2>Versions</h2><p class="hint">Every version passed validation at '
            "publish (document checks and its test vectors re-scored); the counts are what it declares."
            f"</p>{body}</section>")


def aliases(data: dict[str, Any]) -> str:
    table = (data.get("model") or {}).get("aliases") or {}
    out = []
    for name in sorted(table):
        a = table[name]
        k = "aliases/" + name + "/"
        canary = a.get("canary") or None
        weight: Any = canary.get("weight") if canary else None
        parts = [{"name": vname(a.get("version")), "share": 1 - weight if canary else 1, "cls": "base",
                  "key": k + "base_share"}]
        if canary:
            parts.append({"name": vname(canary.get("version")) + " canary", "share": weight, "cls": "canary",
                          "key": k + "canary_weight"})
        history = [vname(h) for h in a.get("history") or []]
        out.append(
            f'<div class="alias"><h3>{esc(name)}</h3><p>'
            f'version <b{fig(k + "version", a.get("version"))}>{esc(vname(a.get("version")))}</b> · '
            f'canary <b{fig(k + "canary_version", canary.get("version") if canary else None)}>'
            f'{esc(vname(canary.get("version")) if canary else "none")}</b> · '
            f'revision <b{fig(k + "revision", a.get("revision"))}>{esc(num(a.get("revision")))}</b> · '
            f'{esc(a.get("action") or DASH)} {esc(stamp(a.get("updated_at")))} UTC</p>'
            + split(f"{name}: base and canary weights", parts)
            + f'<p class="history">history: <spa'
              f'n{fig(k + "history", ",".join(num(h) for h in a.get("history") or []))}>'
            f'{esc(" → ".join(history) if history else "none")}</span></p></div>')
    body = "".join(out) if out else note("No alias.")
    return f'<section id="aliases"><h2>Aliases</h2>{body}</section>'


def metrics(data: dict[str, Any]) -> str:
    m = data.get("metrics") or {}
    why = unavailable(m)
    if why:
        return (f'<section id="metrics"><h2>Serving per version</h2>{note("Metrics unavailable: " + why)}'
                "</section>")
    views = m.get("versions") or []
    if not views:
        return (f'<section id="metrics"><h2>Serving per version</h2>'
                f'{note("No scoring request in the window.")}</section>')
    rows = []
    bars = []
    for i, v in enumerate(views):
        k = "metrics/" + num(v.get("version")) + "/" + str(v.get("side")) + "/"
        lat = v.get("total_latency_ms") or {}
        cells = "".join(f'<td class="n"{fig(k + "total_latency_ms/" + s, lat.get(s))}'
                f'>{esc(ms(lat.get(s)))}</td>'
                        for s in ("mean", "p50", "p90", "p99", "max"))
        rows.append(f'<tr><td>{esc(vname(v.get("version")))}</td><td>{esc(v.get("side"))}</td>'
                    f'<td class="n"{fig(k + "requests", v.get("requests"))}'
                    f'>{esc(count(v.get("requests")))}</td>'
                    f'<td class="n"{fig(k + "rows", v.get("rows"))}>{esc(count(v.get("rows")))}</td>'
                    f'<td class="n"{fig(k + "errors", v.get("errors"))}>{esc(count(v.get("errors")))}</td>'
                    f'<td class="n"{fig(k + "error_rate", v.get("error_rate"))}'
                    f'>{esc(pct(v.get("error_rate")))}</td>'
                    f"{cells}</tr>")
        bars.append({"label": vname(v.get("version")) + " " + str(v.get("side")), "value": v.get("requests"),
                     "key": k + "requests", "cls": "s" + str(i % 6)})
    head = ("<tr><th>Version</th><th>Side</th><th>Requests</th><th>Rows</th><th>Errors</th><th>Error rat"
            "e</th>"
            "<th>Latency mean</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>")
    since, until, width = str(m.get("since")), str(m.get("until") or m.get("since")), m.get("bucket_seco"
                                    "nds") or 3600
    n = max(1, math.ceil((epoch(until) - epoch(since)) / width))

    def series(pick: Callable[[dict[str, Any]], Any], what: str) -> list[dict[str, Any]]:
        out = []
        for i, v in enumerate(views):
            k = "metrics/" + num(v.get("version")) + "/" + str(v.get("side")) + "/series/"
            out.append({"name": vname(v.get("version")) + " " + str(v.get("side")), "cls": "s" + str(i % 6),
                        "points": [{"i": math.floor((epoch(b["start"]) - epoch(since)) / width),
                                    "value": pick(b), "key": k + b["start"] + "/" + what}
                                   for b in v.get("series") or []]})
        return out

    first, last = stamp(since), stamp(until)
    charts = [
        "<figure>" + hbars("Requests per version and side", bars, value_text=count)
        + "<figcaption>Requests per version and rollout side</figcaption></figure>",
        "<figure>" + lines("Requests over time", series(lambda b: b.get("requests"), "request"
        "s"), n, first, last,
                           count)
        + f"<figcaption>Requests per {esc(num(width))} s bucket</figcaption></figure>",
        "<figure>" + lines("Error rate over time", series(lambda b: b.get("error_rate"), "error_rat"
        "e"), n, first,
                           last, pct)
        + "<figcaption>Error rate per bucket</figcaption></figure>"]
    for v in views:
        k = "metrics/" + num(v.get("version")) + "/" + str(v.get("side")) + "/series/"
        label = vname(v.get("version")) + " " + str(v.get("side"))
        per = [{"name": p, "cls": "s" + str(j), "points": [
            {"i": math.floor((epoch(b["start"]) - epoch(since)) / width),
             "value": (b.get("total_latency_ms") or {}).get(p), "key": k + b["start"] + "/total_latency_"
             "ms/" + p}
            for b in v.get("series") or []]} for j, p in enumerate(("p50", "p90", "p99"))]
        charts.append("<figure>" + lines("Latency of " + label, per, n, first, last, ms)
                      + f"<figcaption>Total latency percentiles of {esc(label)} per bucket</figcaption><"
                        f"/figure>")
    return (f'<section id="metrics"><h2>Serving per version</h2>{ERROR_HINT}<table class="data"'
            f'>{head}{"".join(rows)}</table>'
            f'<div class="charts">{"".join(charts)}</div></section>')


def bin_labels(d: dict[str, Any]) -> list[str]:
    if d.get("kind") == "categorical":
        return [str(b) for b in d.get("bins") or []]
    out = []
    for lo, hi in d.get("bins") or []:
        out.append("all" if lo is None and hi is None else "≤ " + short(hi) if hi is not None
                   else "> " + short(lo))
    return out


def psi_text(v: Any) -> str:
    return DASH if v is None else fixed(v, 3)


def drift(data: dict[str, Any]) -> str:
    d = data.get("drift") or {}
    why = unavailable(d)
    title = "<h2>Drift of " + esc(vname(d.get("version") if not why else data.get("version"))) + "</h2>"
    if why:
        return f'<section id="drift">{title}{note("Drift unavailable: " + why)}</section>'
    if not d.get("baseline"):
        return (f'<section id="drift">{title}'
                f'{note("This version carries no baseline (metadata.baseline).")}</section>')
    th = d.get("thresholds") or {}
    feats = d.get("features") or []
    intro = (f'<p>Status <b class="status status-{esc(d.get("status"))}'
             f'"{fig("drift/status", str(d.get("status")))}>'
             f'{esc(d.get("status"))}</b> over <b{fig("drift/rows", d.get("rows"))}'
             f'>{esc(count(d.get("rows")))}</b>'
             f' rows in <b{fig("drift/batches", d.get("batches"))}>{esc(count(d.get("batches")))}</b> ba'
             f'tches '
             f'(Score and devices). Population stability index per feature: warn from '
             f'<b{fig("drift/thresholds/warn", th.get("warn"))}>{esc(num(th.get("warn")))}</b>, alert from '
             f'<b{fig("drift/thresholds/alert", th.get("alert"))}>{esc(num(th.get("alert")))}</b>.</p>')
    bars = [{"label": feature_label(e["feature"]), "value": e.get("psi"), "key": "drift/" + e["featur"
             "e"] + "/psi",
             "cls": "status-" + str(e.get("status"))} for e in feats]
    chart = ("<figure>" + hbars("PSI per feature", bars, None, [("warn", th.get("warn") or 0.1),
                                                                  ("alert", th.get("aler"
                                                                   "t") or 0.25)], psi_text)
             + "<figcaption>PSI per feature (dashed: warn and alert thresholds)</figcaption></figure>")
    rows = "".join(
        f'<tr><td>{esc(feature_label(e["feature"]))}</td>'
        f'<td class="n"{fig("drift/" + e["feature"] + "/psi", e.get("psi"))}'
        f'>{esc(psi_text(e.get("psi")))}</td>'
        f'<td class="n"{fig("drift/" + e["feature"] + "/outside_range", e.get("outside_range"))}>'
        f'{esc(pct(e.get("outside_range")))}</td>'
        f'<td class="n"{fig("drift/" + e["feature"] + "/rows", e.get("rows"))}'
        f'>{esc(count(e.get("rows")))}</td>'
        f'<td class="status-{esc(e.get("status"))}'
        f'"{fig("drift/" + e["feature"] + "/status", str(e.get("status")))}>'
        f'{esc(e.get("status"))}</td></tr>' for e in feats)
    table = ('<table class="data"><tr><th>Feature</th><th>PSI</th><th>Outside range</th><th>Rows</th>'
             f"<th>Status</th></tr>{rows}</table>")
    ranked = sorted([e for e in feats if e.get("psi") is not None], key=lambda e: -e["psi"])[:WORST]
    dists = {x["feature"]: x for x in d.get("distributions") or []}
    figs = []
    for e in ranked:
        x = dists.get(e["feature"])
        if not x:
            continue
        k = "drift/" + e["feature"] + "/distribution/"
        label = feature_label(e["feature"])
        figs.append("<figure>" + columns("Distribution of " + label, bin_labels(x), [
            {"name": "baseline", "cls": "base", "values": x.get("baseline"), "key": k + "baseline"},
            {"name": "observed", "cls": "obs", "values": x.get("observed"), "key": k + "observed"}])
            + f"<figcaption>{esc(label)}: share of rows per bin, baseline vs observed (PSI "
            f"{esc(psi_text(e.get('psi')))})</figcaption></figure>")
    dist = (f'<h3>Worst features: baseline vs observed</h3><div class="charts">{"".join(figs)}</div>'
            if figs else "")
    return f'<section id="drift">{title}{intro}<div class="charts">{chart}</div>{table}{dist}</section>'


def devices(data: dict[str, Any]) -> str:
    t = data.get("telemetry") or {}
    why = unavailable(t)
    if why:
        return f'<section id="devices"><h2>Devices</h2>{note("Telemetry unavailable: " + why)}</section>'
    vs = t.get("versions") or []
    if not vs:
        return f'<section id="devices"><h2>Devices</h2>{note("No device telemetry in the window.")}</section>'
    bars = [{"label": vname(v.get("version")), "value": v.get("devices"),
             "key": "telemetry/" + num(v.get("version")) + "/devices", "cls": "s" + str(i % 6)}
            for i, v in enumerate(vs)]
    rows = []
    for v in vs:
        k = "telemetry/" + num(v.get("version")) + "/"
        rows.append(f'<tr><td>{esc(vname(v.get("version")))}</td>'
                    f'<td class="n"{fig(k + "devices", v.get("devices"))}>{esc(count(v.get("devices")))}</td>'
                    f'<td class="n"{fig(k + "batches", v.get("batches"))}>{esc(count(v.get("batches")))}</td>'
                    f'<td class="n"{fig(k + "rows", v.get("rows"))}>{esc(count(v.get("rows")))}</td>'
                    f'<td class="n"{fig(k + "errors", v.get("errors"))}>{esc(count(v.get("errors")))}</td>'
                    f'<td class="n"{fig(k + "error_rate", v.get("error_rate"))}'
                    f'>{esc(pct(v.get("error_rate")))}</td>'
                    f'<td{fig(k + "window_end", str(v.get("window_end") or ""))}'
                    f'>{esc(stamp(v.get("window_end")))}</td>'
                    "</tr>")
    head = ("<tr><th>Version</th><th>Devices</th><th>Batches</th><th>Rows</th><th>Errors</th><th>Error r"
            "ate</th>"
            "<th>Last seen (UTC)</th></tr>")
    return (f'<section id="devices"><h2>Devices</h2><p><b{fig("telemetry/devices", t.get("devices"))}>'
            f'{esc(count(t.get("devices")))}</b> devices reported in the window.</p><div class="charts">'
            f'<figure>'
            + hbars("Devices per version", bars, value_text=count)
            + f'<figcaption>Devices per version</figcaption></figure></div><table class="data"'
              f'>{head}{"".join(rows)}'
            "</table>" + last_seen(t) + "</section>")


def last_seen(t: dict[str, Any]) -> str:
    """Each device's newest telemetry (the API lists the most recent 100): its version and when."""
    rows = []
    for d in t.get("last_seen") or []:
        k = "telemetry/device/" + str(d.get("device_id")) + "/"
        rows.append(f'<tr><td>{esc(d.get("device_id"))}</td>'
                    f'<td{fig(k + "version", d.get("version"))}>{esc(vname(d.get("version")))}</td>'
                    f'<td{fig(k + "last_seen", str(d.get("last_seen") or ""))}'
                    f'>{esc(stamp(d.get("last_seen")))}</td></tr>')
    if not rows:
        return ""
    return ('<h3>Devices, most recently seen first</h3><table class="data"><tr><th>Device</th>'
            f'<th>Version</th><th>Last seen (UTC)</th></tr>{"".join(rows)}</table>')


def page(data: dict[str, Any]) -> str:
    """The whole self-contained HTML file."""
    css = (CONSOLE / "report.css").read_text(encoding="utf-8")
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>modelsync report: {esc(data.get('name'))}</title><style>\n{css}</style></head>\n"
            f'<body><main id="report">\n{render(data)}\n</main></body></html>\n')
