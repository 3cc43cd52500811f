"""The browser fixtures themselves: Chromium starts headless, runs a script, and IndexedDB works."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_page_runs_script_and_indexeddb(page: Any) -> None:
    # GIVEN a page on an http origin (IndexedDB is denied to about:blank), answered in-process
    page.route(
        "http://probe.test/", lambda route: route.fulfill(content_type="text/html", body="<title>t</title>")
    )
    page.goto("http://probe.test/")
    # WHEN a script stores and reads a value in IndexedDB THEN it reads it back
    value = page.evaluate(
        """() => new Promise((resolve, reject) => {
             const open = indexedDB.open('probe', 1);
             open.onupgradeneeded = () => open.result.createObjectStore('kv');
             open.onerror = () => reject(open.error);
             open.onsuccess = () => {
               const tx = open.result.transaction('kv', 'readwrite');
               tx.objectStore('kv').put(41 + 1, 'answer');
               tx.oncomplete = () => {
                 const get = open.result.transaction('kv').objectStore('kv').get('answer');
                 get.onsuccess = () => resolve(get.result);
               };
             };
           })"""
    )
    assert value == 42
    assert page.title() == "t"
