"""`make screenshot`: docs/report.png, the report of the demo's data (README's "See it at a glance").

Reads the API answers `modelsync demo` saved (running the tour first when there are none), renders the
page with modelsync.report.build and photographs it in Debian's Chromium (Playwright, no download).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modelsync.report import build  # noqa: E402
from modelsync.report.command import saved_path  # noqa: E402

CHROMIUM = os.environ.get("MODELSYNC_CHROMIUM", "/usr/bin/chromium")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output", nargs="?", default=str(REPO / "docs" / "report.png"))
    parser.add_argument("--name", default="wine", help="the demo's model (default wine)")
    parser.add_argument("--width", type=int, default=1100, help="viewport width in CSS pixels")
    args = parser.parse_args()
    path = saved_path(args.name)
    if not path.exists():
        sys.stderr.write(f"no saved demo data at {path}: running `modelsync demo` first\n")
        subprocess.run([sys.executable, "-m", "modelsync.cli", "demo"], cwd=REPO, check=True)
    data = json.loads(path.read_text(encoding="utf-8"))
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        page_path = pathlib.Path(tmp) / "report.html"
        page_path.write_text(build.page(data), encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-gpu"])
            try:
                context = browser.new_context(viewport={"width": args.width, "height": 900},
                                              java_script_enabled=False)
                page = context.new_page()
                page.goto(page_path.as_uri())
                page.screenshot(path=args.output, full_page=True)
            finally:
                browser.close()
    sys.stderr.write(f"wrote {args.output} from {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
