"""Reading a report's figures back (every element with ``data-figure``) and what the API's answers say
they must be: shared by the unit, e2e and browser tests of ``modelsync report`` and ``/console/``."""

from __future__ import annotations

import html.parser
from typing import Any

from modelsync.report import build


class Figures(html.parser.HTMLParser):
    """Every element carrying data-figure: key -> values (a figure may be shown twice: table and chart),
    plus what a self-contained page must not have."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, list[str]] = {}
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if "data-figure" in a:
            self.figures.setdefault(str(a["data-figure"]), []).append(str(a.get("data-value")))


def parse(text: str) -> Figures:
    p = Figures()
    p.feed(text)
    return p


def expected_figures(data: dict[str, Any]) -> dict[str, Any]:
    """What the API's answers say each figure must be (the keys the page uses)."""
    out: dict[str, Any] = {"name": data["name"], "version": data["version"]}
    for v in data["model"]["versions"]:
        k = f"versions/{v['version']}/"
        out.update({k + "version": v["version"], k + "status": v["status"], k + "feature_count": v["feat"
                        "ure_count"],
                    k + "class_count": v["class_count"], k + "schema_change_count": v["schema_change_cou"
                        "nt"] or 0})
    for name, a in data["model"]["aliases"].items():
        k = f"aliases/{name}/"
        out.update({k + "version": a["version"], k + "revision": a["revision"],
                    k + "history": ",".join(str(h) for h in a["history"]),
                    k + "canary_version": a["canary"]["version"] if a["canary"] else None})
        if a["canary"]:
            out[k + "canary_weight"] = a["canary"]["weight"]
            out[k + "base_share"] = 1 - a["canary"]["weight"]
        else:
            out[k + "base_share"] = 1
    for v in data["metrics"]["versions"]:
        k = f"metrics/{v['version']}/{v['side']}/"
        for f in ("requests", "rows", "errors", "error_rate"):
            out[k + f] = v[f]
        for s in ("mean", "p50", "p90", "p99", "max"):
            out[k + "total_latency_ms/" + s] = v["total_latency_ms"][s]
        for b in v["series"]:
            out[k + f"series/{b['start']}/requests"] = b["requests"]
            out[k + f"series/{b['start']}/error_rate"] = b["error_rate"]
            for s in ("p50", "p90", "p99"):
                out[k + f"series/{b['start']}/total_latency_ms/{s}"] = b["total_latency_ms"][s]
    d = data["drift"]
    out.update({"drift/status": d["status"], "drift/rows": d["rows"], "drift/batches": d["batches"],
                "drift/thresholds/warn": d["thresholds"]["warn"], "drift/thresholds/alert": d["threshold"
                "s"]["alert"],
                "threshold/warn": d["thresholds"]["warn"], "threshold/alert": d["thresholds"]["alert"]})
    for e in d["features"]:
        for f in ("psi", "outside_range", "rows", "status"):
            out[f"drift/{e['feature']}/{f}"] = e[f]
    worst = sorted([e for e in d["features"] if e["psi"] is not None], key=lambda e: -e["psi"])[:build.WORST]
    for e in worst:
        x = next(x for x in d["distributions"] if x["feature"] == e["feature"])
        for side in ("baseline", "observed"):
            for i, share in enumerate(x[side] or []):
                out[f"drift/{e['feature']}/distribution/{side}/{i}"] = share
    t = data["telemetry"]
    out["telemetry/devices"] = t["devices"]
    for v in t["versions"]:
        for f in ("devices", "batches", "rows", "errors", "error_rate", "window_end"):
            out[f"telemetry/{v['version']}/{f}"] = v[f]
    for dev in t.get("last_seen") or []:
        out[f"telemetry/device/{dev['device_id']}/version"] = dev["version"]
        out[f"telemetry/device/{dev['device_id']}/last_seen"] = dev["last_seen"]
    out.update({"summary/versions": len(data["model"]["versions"]),
                "summary/latest": data["model"]["aliases"]["latest"]["version"],
                "summary/requests": sum(v["requests"] for v in data["metrics"]["versions"]),
                "summary/drift": d["status"], "summary/devices": t["devices"]})
    return out


def assert_figures_match(shown: dict[str, list[str]], expected: dict[str, Any]) -> None:
    """Every figure shown equals the API's value (numbers exactly: data-value round-trips), and every
    expected figure is shown."""
    assert set(shown) == set(expected), (set(shown) ^ set(expected))
    for key, values in shown.items():
        want = expected[key]
        for got in values:
            if want is None:
                assert got == "", key
            elif isinstance(want, str):
                assert got == want, (key, got, want)
            else:
                assert float(got) == float(want), (key, got, want)
