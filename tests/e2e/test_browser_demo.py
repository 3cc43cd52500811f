"""The /demo/ page in headless Chromium: sync a model from the local stack into IndexedDB with the
JavaScript client, go offline, score typed rows with the API's answers; reload offline (the service worker
serves the page, IndexedDB the model) and score again.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from browser import screenshot
from e2e_support import Stack, api_answers, assert_same_answers, publish_model

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MODEL = "browser-iris"
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [4.9, 2.5, 4.5, 1.7]]


def _score(page: Any, rows: list[list[float]], n: int) -> dict[str, Any]:
    """Type the rows into the form, press Score, read the page's answers (the JSON it shows)."""
    page.fill("#rows", "\n".join(",".join(map(str, r)) for r in rows))
    page.click("#score")
    page.wait_for_function(f"document.body.dataset.scored === '{n}'")
    return dict(json.loads(page.text_content("#output")))


def test_demo_page_syncs_then_scores_offline(stack: Stack, iris: tuple[Any, Any], iris_model: Any,
                                            browser_context: Any, page: Any) -> None:
    from modelsync.export import export_model

    X, _ = iris
    version = publish_model(stack, export_model(iris_model, X.iloc[::10], name=MODEL), MODEL)
    api = api_answers(stack, MODEL, ROWS, version)  # online, before the browser goes offline
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(stack.api))

    page.goto(f"{origin}/demo/?model={MODEL}")
    page.wait_for_function("document.body.dataset.ready === '1' && document.body.dataset.sw === 'ready'")
    page.click("#sync")
    page.wait_for_function("['synced', 'refused', 'offline', 'unauthorized', 'error']"
                           ".includes(document.body.dataset.state)")
    status = page.text_content("#status")
    assert page.evaluate("document.body.dataset.state") == "synced", status
    assert f"version {version}" in status and "updated" in status
    with page.expect_response(lambda r: "/manifest?" in r.url) as manifest:
        page.click("#sync")  # again: If-None-Match, and the browser hands the registry's 304 to the client
    assert manifest.value.status == 304
    page.wait_for_function("document.body.dataset.state === 'synced' && "
                           "document.getElementById('status').textContent.includes('unchanged')")

    browser_context.set_offline(True)
    assert_same_answers(_score(page, ROWS, 1), api)
    page.click("#sync")  # the network really is gone: the client says so and keeps the model
    page.wait_for_function("document.body.dataset.state === 'offline'")
    assert f"version {version}" in page.text_content("#status")

    page.reload()  # offline: the service worker serves the page and the scorer, IndexedDB the model
    page.wait_for_function("document.body.dataset.ready === '1'")
    assert page.evaluate("document.body.dataset.state") == "loaded", page.text_content("#status")
    assert f"version {version}" in page.text_content("#status")
    assert_same_answers(_score(page, ROWS, 1), api)
    screenshot(page, "demo-offline")


IDB_ROUND_TRIP = """async () => {
  const { IndexedDBStorage } = await import("/scorer-js/sync.js");
  const s = new IndexedDBStorage("modelsync-round-trip");
  await s.put("m", "versions/1-abc.json", new Uint8Array([1, 2, 3]));
  await s.put("m", "state.json", new TextEncoder().encode("{}"));
  await s.put("other", "versions/9-x.json", new Uint8Array([9]));
  const got = Array.from(await s.get("m", "versions/1-abc.json"));
  const listed = await s.list("m", "versions/");
  await s.delete("m", "versions/1-abc.json");
  return {got, listed, after: await s.get("m", "versions/1-abc.json"), all: await s.list("m")};
}"""


def test_indexeddb_storage_round_trip(stack: Stack, page: Any) -> None:
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(stack.api))
    page.goto(f"{origin}/demo/")
    got = page.evaluate(IDB_ROUND_TRIP)
    assert got == {"got": [1, 2, 3], "listed": ["versions/1-abc.json"], "after": None, "all": ["state.json"]}
