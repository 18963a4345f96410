"""Writes docs/review-page.png: the review page on the demo, after a few decisions, in headless
Chromium (Playwright pointed at the system's chromium; `make browser` installs it).

    python scripts/review_screenshot.py [--output docs/review-page.png] [--model minilm]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from harmonize.core.workspace import Workspace
from harmonize.datasets.demo import run_demo
from harmonize.mapping.review import decide
from harmonize.serve.pages import review_page
from harmonize.serve.server import serve_in_thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("docs/review-page.png"))
    parser.add_argument("--model", action="append", default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    ws = Workspace(Path(tempfile.mkdtemp()) / "demo-workspace")
    run_demo(ws, n_patients=100, models=tuple(args.model or ("lexical", "minilm")),
             echo=lambda _: None)  # fmt: skip
    rows = review_page(ws, "target", "source")["rows"]
    codes = [r["code"] for r in rows]
    decide(ws, "target", "source", codes[0], "reject", reviewer="ana", note="no counterpart")
    second = rows[1]["candidates"][1]["code"]
    decide(ws, "target", "source", codes[1], "set", target_code=second, reviewer="ana")
    decide(ws, "target", "source", codes[-1], "accept", reviewer="bo", predicate="exact")
    with serve_in_thread(ws, reviewer="ana") as running, sync_playwright() as playwright:
        no_sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=chromium, args=no_sandbox)
        page = browser.new_page(viewport={"width": 1500, "height": 860})
        page.goto(running.page_url)
        page.wait_for_selector("#queue tbody tr")
        page.locator(f'#queue tbody tr[data-code="{codes[2]}"] td.code').click()
        page.keyboard.press("s")
        page.keyboard.type("fever")
        page.wait_for_selector("#hits li")
        args.output.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.output))
        browser.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
