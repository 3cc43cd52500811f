"""Number formatting and inline SVG charts for the report, in plain string building.

Written to be ported line by line to JavaScript (``console/console.mjs``): only + - * /, ``floor`` and
comparisons on floats (no log or pow, whose last bits may differ between libm and V8), numbers printed as
JavaScript prints them (:func:`num`), so both renderers give byte-identical markup for the same data.
Colours are CSS classes (``report.css``), so the page prints and themes without touching the charts.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence
from typing import Any

DASH = "–"  # shown for a missing figure


def num(x: Any) -> str:
    """A number as JavaScript's ``String(x)`` writes it (the shortest round-trip digits); "" for None."""
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    t = decimal.Decimal(repr(abs(x))).as_tuple()  # repr: the shortest round-trip digits, as JS
    digits = "".join(str(d) for d in t.digits)
    stripped = digits.rstrip("0")
    exp = int(t.exponent) + len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = exp + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return sign + mantissa + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def fixed(x: float, d: int) -> str:
    """``x`` with ``d`` decimals, halves away from zero."""
    scale = [1, 10, 100, 1000, 10000, 100000, 1000000][d]
    n = math.floor(abs(x) * scale + 0.5)
    s = num(float(n))  # as JavaScript prints it (exact below 2**53)
    if d > 0:
        s = "0" * max(0, d + 1 - len(s)) + s
        s = s[:len(s) - d] + "." + s[len(s) - d:]
    return ("-" if x < 0 and n != 0 else "") + s


def trim(s: str) -> str:
    """Drop trailing decimal zeros (and a trailing point)."""
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def short(x: float | None) -> str:
    """About three significant digits, for axis and bin labels."""
    if x is None:
        return DASH
    a = abs(x)
    d = 0 if a >= 100 else 1 if a >= 10 else 2 if a >= 1 else 3
    return trim(fixed(x, d))


def count(n: Any) -> str:
    """An integer with thousands separators."""
    if n is None:
        return DASH
    s = str(int(n)) if not isinstance(n, str) else n
    neg = s.startswith("-")
    s = s[1:] if neg else s
    out = ""
    while len(s) > 3:
        out = "," + s[len(s) - 3:] + out
        s = s[:len(s) - 3]
    return ("-" if neg else "") + s + out


def pct(x: float | None) -> str:
    return DASH if x is None else fixed(x * 100, 1) + " %"


def ms(x: float | None) -> str:
    if x is None:
        return DASH
    return fixed(x, 2 if x < 10 else 1 if x < 100 else 0) + " ms"


def esc(s: Any) -> str:
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def fig(key: str, value: Any) -> str:
    """The attributes every figure carries, so tests (and readers) compare it with the API's number."""
    v = value if isinstance(value, str) else num(value)
    return f' data-figure="{esc(key)}" data-value="{esc(v)}"'


def nice_max(v: float | None) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``v`` (1 for nothing)."""
    if v is None or v <= 0:
        return 1.0
    p = 1.0
    while p * 10 <= v:
        p = p * 10
    while p > v:
        p = p / 10
    for m in (1, 2, 2.5, 5):
        if m * p >= v:
            return m * p
    return 10 * p


def _svg(w: int, h: int, label: str, body: list[str]) -> str:
    return (f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(label)}" '
            f'xmlns="http://www.w3.org/2000/svg"><title>{esc(label)}</title>' + "".join(body) + "</svg>")


def hbars(label: str, rows: Sequence[dict[str, Any]], top: float | None = None,
          thresholds: Sequence[tuple[str, float]] = (), value_text: Any = short) -> str:
    """Horizontal bars: ``rows`` of ``{"label", "value", "key", "cls"}``; ``thresholds`` as dashed
    vertical lines ``(name, value)`` (PSI warn/alert)."""
    values = [r["value"] for r in rows if r["value"] is not None]
    hi = nice_max(max([*values, *(t for _, t in thresholds)]) if values or thresholds else None)
    if top is not None:
        hi = top
    x0, width, row = 170, 400, 24
    h = 30 + row * len(rows) + 20
    body = []
    for i in range(5):
        x = x0 + width * i / 4
        body.append(f'<line class="grid" x1="{fixed(x, 1)}" y1="20" x2="{fixed(x, 1)}" '
                    f'y2="{h - 20}"/><text class="tick" x="{fixed(x, 1)}" y="{h - 6}" '
                    f'text-anchor="middle">{esc(short(hi * i / 4))}</text>')
    for i, r in enumerate(rows):
        y = 24 + row * i
        v = r["value"]
        w = 0.0 if v is None else width * min(v, hi) / hi
        body.append(f'<g class="bar {esc(r.get("cls") or "s0")}"{fig(r["key"], v)}>'
                    f'<text class="label" x="{x0 - 8}" y="{y + 14}" text-anchor="end">{esc(r["label"])}<'
                    f'/text>'
                    f'<rect x="{x0}" y="{y + 3}" width="{fixed(w, 1)}" height="{row - 8}"/>'
                    f'<text class="value" x="{fixed(x0 + w + 6, 1)}" y="{y + 14}">{esc(value_text(v))}</text>'
                    "</g>")
    for j, (name, t) in enumerate(thresholds):  # labels left of the first line, right of the others
        x = x0 + width * min(t, hi) / hi
        tx, anchor = (x - 3, "end") if j == 0 else (x + 3, "start")
        body.append(f'<g class="threshold {esc(name)}"{fig("threshold/" + name, t)}>'
                    f'<line x1="{fixed(x, 1)}" y1="14" x2="{fixed(x, 1)}" y2="{h - 20}"/>'
                    f'<text x="{fixed(tx, 1)}" y="12" text-anchor="{anchor}">{esc(name)} {esc(short(t))}'
                    f'</text>'
                    "</g>")
    return _svg(620, h, label, body)


def lines(label: str, series: Sequence[dict[str, Any]], buckets: int, first: str, last: str,
          value_text: Any = short) -> str:
    """Lines over ``buckets`` time buckets: ``series`` of ``{"name", "cls", "points": [{"i", "value",
    "key"}]}``; ``first``/``last`` label the time axis' ends."""
    values = [p["value"] for s in series for p in s["points"] if p["value"] is not None]
    hi = nice_max(max(values) if values else None)
    x0, y0, width, height = 60, 16, 540, 150
    body = []
    for i in range(5):
        y = y0 + height - height * i / 4
        body.append(f'<line class="grid" x1="{x0}" y1="{fixed(y, 1)}" x2="{x0 + width}" y2="{fixed(y, 1)}"/>'
                    f'<text class="tick" x="{x0 - 6}" y="{fixed(y + 4, 1)}" text-anchor="end">'
                    f'{esc(value_text(hi * i / 4))}</text>')
    axis = y0 + height + 16
    body.append(f'<text class="tick" x="{x0}" y="{axis}">{esc(first)}</text>'
                f'<text class="tick" x="{x0 + width}" y="{axis}" text-anchor="end">{esc(last)}</text>')
    for j, s in enumerate(series):
        pts = [p for p in s["points"] if p["value"] is not None]
        coords = [(x0 + width * (p["i"] + 0.5) / buckets, y0 + height - height * min(p["value"], hi) / hi)
                  for p in pts]
        body.append(f'<g class="series {esc(s["cls"])}">')
        if len(coords) > 1:
            body.append('<polyline points="' + " ".join(f"{fixed(x, 1)},{fixed(y, 1)}" for x, y in coords)
                        + '"/>')
        for p, (x, y) in zip(pts, coords, strict=True):
            body.append(f'<circle cx="{fixed(x, 1)}" cy="{fixed(y, 1)}" r="3.5"{fig(p["key"], p["value"])}>'
                        f'<title>{esc(s["name"])}: {esc(value_text(p["value"]))}</title></circle>')
        ly = axis + 18 + 16 * (j // 3)
        lx = x0 + 180 * (j % 3)
        body.append(f'<rect class="swatch" x="{lx}" y="{ly - 9}" width="10" height="10"/>'
                    f'<text class="legend" x="{lx + 14}" y="{ly}">{esc(s["name"])}</text></g>')
    h = axis + 18 + 16 * ((len(series) + 2) // 3)
    return _svg(620, h, label, body)


def columns(label: str, bins: Sequence[str], groups: Sequence[dict[str, Any]]) -> str:
    """Grouped vertical bars of shares (0..1) per bin: ``groups`` of ``{"name", "cls", "values",
    "key"}`` (baseline, observed); ``values`` may be None (no data)."""
    values = [v for g in groups for v in (g["values"] or [])]
    hi = nice_max(max(values) if values else None)
    x0, y0, width, height = 50, 12, 550, 120
    n = max(1, len(bins))
    slot = width / n
    bar = slot * 0.8 / max(1, len(groups))
    body = []
    for i in range(5):
        y = y0 + height - height * i / 4
        body.append(f'<line class="grid" x1="{x0}" y1="{fixed(y, 1)}" x2="{x0 + width}" y2="{fixed(y, 1)}"/>'
                    f'<text class="tick" x="{x0 - 6}" y="{fixed(y + 4, 1)}" text-anchor="end">'
                    f'{esc(pct(hi * i / 4))}</text>')
    for i, name in enumerate(bins):
        body.append(f'<text class="tick bin" x="{fixed(x0 + slot * (i + 0.5), 1)}" y="{y0 + height + 14}" '
                    f'text-anchor="middle">{esc(name)}</text>')
    for j, g in enumerate(groups):
        body.append(f'<g class="series {esc(g["cls"])}">')
        for i, v in enumerate(g["values"] or []):
            bh = height * min(v, hi) / hi
            x = x0 + slot * i + slot * 0.1 + bar * j
            body.append(f'<rect x="{fixed(x, 1)}" y="{fixed(y0 + height - bh, 1)}" width="{fixed(bar, 1)}" '
                        f'height="{fixed(bh, 1)}"{fig(g["key"] + "/" + str(i), v)}>'
                        f'<title>{esc(g["name"])} {esc(bins[i])}: {esc(pct(v))}</title></rect>')
        lx = x0 + 140 * j
        ly = y0 + height + 34
        body.append(f'<rect class="swatch" x="{lx}" y="{ly - 9}" width="10" height="10"/>'
                    f'<text class="legend" x="{lx + 14}" y="{ly}">{esc(g["name"])}</text></g>')
    return _svg(620, y0 + height + 44, label, body)


def split(label: str, parts: Sequence[dict[str, Any]]) -> str:
    """One bar split in shares (an alias's base and canary weights): ``parts`` of ``{"name", "share",
    "cls", "key"}``."""
    x, width = 0.0, 600
    body = []
    for p in parts:
        w = width * p["share"]
        body.append(f'<g class="part {esc(p["cls"])}"{fig(p["key"], p["share"])}>'
                    f'<rect x="{fixed(10 + x, 1)}" y="4" width="{fixed(w, 1)}" height="22"/>'
                    f'<text x="{fixed(10 + x + w / 2, 1)}" y="19" text-anchor="middle">'
                    f'{esc(p["name"])} {esc(pct(p["share"]))}</text></g>')
        x = x + w
    return _svg(620, 30, label, body)
