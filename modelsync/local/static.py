"""Static pages the local stack serves beside the API (``/demo/``, ``/console/``, the JS scorer).

``sam local start-api`` serves only the API; these pages are a developer convenience on the same origin,
so a page's ``fetch('/models/...')`` reaches the local API without CORS. They are public files (no data:
every figure a page shows comes from the API, through its auth). Each mount maps a URL prefix to a
folder of the repository; a mount whose folder is absent (an installed wheel) answers 404.
"""

from __future__ import annotations

import mimetypes
import pathlib
import urllib.parse
from dataclasses import dataclass

REPO = pathlib.Path(__file__).resolve().parents[2]

# URL prefix (with trailing slash) -> folder. Add a page by adding a line here.
MOUNTS: dict[str, pathlib.Path] = {
    "/scorer-js/": REPO / "scorer-js",
    "/demo/": REPO / "scorer-js" / "demo",  # the JS sync client in a browser, offline (scorer-js/demo/)
    "/console/": REPO / "modelsync" / "report" / "console",
}

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ts": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class StaticFile:
    status: int
    content_type: str
    body: bytes
    location: str | None = None  # a redirect's target (the query string is the caller's to add)


NOT_FOUND = StaticFile(404, "application/json", b'{"message": "Not Found"}')


def lookup(path: str, mounts: dict[str, pathlib.Path] | None = None) -> StaticFile | None:
    """The file a GET of ``path`` names under a mount; ``None`` when no mount claims the path.

    ``/demo`` is a 308 redirect to ``/demo/``: served as is, its relative links (``report.css``,
    ``./console.mjs``) would resolve outside the mount and the page would load broken. Paths that leave
    the mount's folder are 404.
    """
    table = MOUNTS if mounts is None else mounts
    path = urllib.parse.unquote(path)
    for prefix, folder in table.items():
        if path == prefix.rstrip("/"):
            return StaticFile(308, "text/plain; charset=utf-8", f"moved to {prefix}\n".encode(), prefix)
        if path.startswith(prefix):
            return _read(folder, path[len(prefix):] or "index.html")
    return None


def _read(folder: pathlib.Path, rest: str) -> StaticFile:
    root = folder.resolve()
    target = (root / rest).resolve()
    if root not in target.parents and target != root:
        return NOT_FOUND
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return NOT_FOUND
    content_type = CONTENT_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
    return StaticFile(200, content_type or "application/octet-stream", target.read_bytes())
