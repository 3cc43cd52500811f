"""The local stack's static pages: served from their mount, typed, never outside their folder."""

from __future__ import annotations

import pathlib

from modelsync.local import static


def _mounts(tmp_path: pathlib.Path) -> dict[str, pathlib.Path]:
    site = tmp_path / "site"
    (site / "js").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hi</h1>")
    (site / "js" / "app.mjs").write_text("export const x = 1;")
    (tmp_path / "secret.txt").write_text("no")
    return {"/demo/": site}


def test_index_and_files_are_served_with_their_type(tmp_path: pathlib.Path) -> None:
    mounts = _mounts(tmp_path)
    for path in ("/demo/", "/demo/index.html"):
        page = static.lookup(path, mounts)
        assert page is not None and page.status == 200 and page.body == b"<h1>hi</h1>"
        assert page.content_type.startswith("text/html")
    js = static.lookup("/demo/js/app.mjs", mounts)
    assert js is not None and js.content_type.startswith("text/javascript")


def test_paths_outside_the_mount_are_404_and_unmounted_paths_are_not_claimed(tmp_path: pathlib.Path) -> None:
    mounts = _mounts(tmp_path)
    for path in ("/demo/../secret.txt", "/demo/%2e%2e/secret.txt", "/demo/missing.js"):
        page = static.lookup(path, mounts)
        assert page is not None and page.status == 404, path
    assert static.lookup("/models/x", mounts) is None
    assert static.lookup("/demonstration", mounts) is None


def test_the_scorer_js_sources_are_mounted() -> None:
    page = static.lookup("/scorer-js/index.js")
    assert page is not None and page.status == 200 and b"export" in page.body


def test_the_console_is_mounted() -> None:
    page = static.lookup("/console/")
    assert page is not None and page.status == 200 and b'id="report"' in page.body
    js = static.lookup("/console/console.mjs")
    assert js is not None and js.content_type.startswith("text/javascript")
    assert b"export function render" in js.body


def test_a_mount_without_its_slash_redirects_keeping_the_query() -> None:
    """``/console`` served as is would resolve ``report.css`` and ``./console.mjs`` to ``/report.css``
    (not a page: the gateway's 403) and load broken: it redirects to ``/console/``, query kept."""
    from modelsync.local.apigw import ApiGateway

    page = static.lookup("/console")
    assert page is not None and (page.status, page.location) == (308, "/console/")
    gateway = ApiGateway([], runtime=None)  # type: ignore[arg-type]  # no route: only the static pages
    for target, location in (("/console", "/console/"),
                             ("/demo?model=iris&every=5", "/demo/?model=iris&every=5")):
        reply = gateway.handle("GET", target, [], b"")
        assert reply.status == 308 and ("Location", location) in reply.headers
    reply = gateway.handle("GET", "/console/", [], b"")
    assert reply.status == 200 and b'href="report.css"' in reply.body
