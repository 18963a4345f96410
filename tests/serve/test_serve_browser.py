"""The review page in a real browser (headless Chromium driven by Playwright) on the demo: every
action the page offers, each checked in table ``decisions``; hostile text shows as text.

One server and one browser serve the whole module; each test decides on its own rows.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed: pip install -e '.[dev]'"
)

from harmonize.mapping.review import review_queue  # noqa: E402
from harmonize.serve.pages import review_page  # noqa: E402
from harmonize.serve.server import serve_in_thread  # noqa: E402
from tests.serve.conftest import copy_workspace, decisions  # noqa: E402

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed: run 'make browser' (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def served(demo_template, tmp_path_factory):
    ws = copy_workspace(demo_template, tmp_path_factory.mktemp("browser"))
    with serve_in_thread(ws, reviewer="ana") as running:
        yield ws, running


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium's sandbox refuses root
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served):
    _, running = served
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(running.page_url)
    tab.wait_for_selector("#queue tbody tr")
    yield tab
    context.close()
    assert errors == []


def _codes(page) -> list[str]:
    return page.locator("#queue tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)")


def _selected(page) -> str:
    return page.locator("#queue tbody tr.selected").get_attribute("data-code")


def _undecided(ws) -> list[dict]:
    return [r for r in review_page(ws, "target", "source")["rows"] if r["status"] == "undecided"]


def _pick(page, code: str) -> None:
    page.locator(f'#queue tbody tr[data-code="{code}"] td.code').click()
    page.wait_for_selector(f'#detail h2:has-text("{code}")')


def _wait_status(page, code: str, status: str) -> None:
    page.wait_for_selector(f'#queue tbody tr[data-code="{code}"][data-status="{status}"]')


def _last(ws) -> tuple:
    return decisions(ws)[-1]


def test_the_queue_is_in_review_order_with_coverage(page, served):
    ws, _ = served
    queue = list(review_queue(ws, "target", "source").to_frame()["source_code"])
    codes = _codes(page)
    assert len(codes) == 96 and codes[: len(queue)] == queue
    decided = len({d[1] for d in decisions(ws) if d[0] == "target"})
    concepts = page.locator('#coverage .cov[data-unit="concepts"]').inner_text()
    assert concepts.startswith("concepts") and "96 · " in concepts
    assert f"{96 - decided} undecided" in concepts
    assert page.locator('#coverage .cov[data-unit="occurrences"]').is_visible()
    first = queue[0]
    row = review_page(ws, "target", "source")["rows"][0]
    detail = page.locator("#detail").inner_text()
    assert first in detail and row["target"]["code"] in detail
    assert all(c["code"] in detail for c in row["candidates"])  # the next candidates


def test_accept_with_the_keyboard(page, served):
    ws, _ = served
    row, after = _undecided(ws)[:2]
    _pick(page, row["code"])
    page.keyboard.press("a")
    _wait_status(page, row["code"], "accepted")
    assert _last(ws) == (
        "target", row["code"], "source", row["target"]["code"], "accept", "ana", None, None,
    )  # fmt: skip
    assert _selected(page) == after["code"]  # moved on to the next row
    assert "ana" in page.locator(f'tr[data-code="{row["code"]}"]').inner_text()


def test_set_another_target_through_the_search_box(page, served):
    ws, _ = served
    row = next(r for r in _undecided(ws) if r["target"]["code"] != "C2055125")
    _pick(page, row["code"])
    page.keyboard.press("s")
    page.keyboard.type("reported fev")
    page.wait_for_selector('#hits button.set[data-code="C2055125"]')
    assert page.locator("#hits li").first.inner_text().endswith("C2055125 reported fever")
    page.keyboard.press("Enter")  # sets the first hit
    _wait_status(page, row["code"], "set")
    assert _last(ws) == ("target", row["code"], "source", "C2055125", "set", "ana", None, None)
    shown = page.locator(f'tr[data-code="{row["code"]}"] td.target').inner_text()
    assert shown == "C2055125 reported fever"


def test_set_a_candidate_with_a_predicate_and_a_note(page, served):
    ws, _ = served
    row = _undecided(ws)[0]
    second = row["candidates"][1]["code"]
    _pick(page, row["code"])
    page.select_option("#predicate", "broad")
    page.fill("#note", "the target is wider")
    page.locator(f'#detail ul.hits button.set[data-code="{second}"]').first.click()
    _wait_status(page, row["code"], "set")
    assert _last(ws) == (
        "target", row["code"], "source", second, "set", "ana", "the target is wider",
        "skos:broadMatch",
    )  # fmt: skip


def test_set_a_candidate_by_its_rank_key(page, served):
    ws, _ = served
    row = _undecided(ws)[0]
    third = row["candidates"][2]["code"]
    _pick(page, row["code"])
    page.keyboard.press("3")
    _wait_status(page, row["code"], "set")
    assert _last(ws) == ("target", row["code"], "source", third, "set", "ana", None, None)


def test_reject_with_the_keyboard_and_the_button(page, served):
    ws, _ = served
    first, second = _undecided(ws)[:2]
    _pick(page, first["code"])
    page.keyboard.press("r")
    _wait_status(page, first["code"], "rejected")
    assert _last(ws)[1:6] == (first["code"], "source", first["target"]["code"], "reject", "ana")
    _pick(page, second["code"])
    page.fill("#note", "no counterpart")
    page.click("#reject")
    _wait_status(page, second["code"], "rejected")
    assert _last(ws)[1:7] == (
        second["code"], "source", second["target"]["code"], "reject", "ana", "no counterpart",
    )  # fmt: skip
    assert "no mapping" in page.locator(f'tr[data-code="{second["code"]}"]').inner_text()


def test_accept_with_the_button_a_predicate_and_another_reviewer(page, served):
    ws, _ = served
    row = _undecided(ws)[0]
    page.fill("#reviewer", "bo")
    _pick(page, row["code"])
    page.select_option("#predicate", "exact")
    page.click("#accept")
    _wait_status(page, row["code"], "accepted")
    assert _last(ws) == (
        "target", row["code"], "source", row["target"]["code"], "accept", "bo", None,
        "skos:exactMatch",
    )  # fmt: skip


def test_the_order_select(page, served):
    ws, _ = served
    for order in ("code", "frequency", "informative"):
        page.select_option("#order", order)
        queue = list(review_queue(ws, "target", "source", order=order).to_frame()["source_code"])
        page.wait_for_function(
            "(codes) => [...document.querySelectorAll('#queue tbody tr')]"
            ".slice(0, codes.length).map(r => r.dataset.code).join() === codes.join()",
            arg=queue,
            timeout=10_000,
        )
        assert _codes(page)[: len(queue)] == queue, order


def test_next_and_previous(page):
    codes = _codes(page)
    assert _selected(page) == codes[0]
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    assert _selected(page) == codes[2]
    page.keyboard.press("k")
    assert _selected(page) == codes[1]
    page.keyboard.press("ArrowUp")
    assert _selected(page) == codes[0]
    page.click("#next")
    assert _selected(page) == codes[1]


def test_filters_and_text_search(page, served):
    ws, _ = served
    rows = review_page(ws, "target", "source")["rows"]
    by_status = {
        "undecided": {r["code"] for r in rows if r["status"] == "undecided"},
        "decided": {r["code"] for r in rows if r["status"] in ("accepted", "set", "rejected")},
        "rejected": {r["code"] for r in rows if r["status"] == "rejected"},
        # mapped, with a score below the threshold (no confidence: the demo is not calibrated)
        "low": {
            r["code"] for r in rows if r["target"] is not None and (r["target"]["score"] or 1) < 0.3
        },
    }
    assert all(by_status.values())  # earlier tests decided, set and rejected some
    page.fill("#threshold", "0.3")
    for name, expected in by_status.items():
        button = page.locator(f'#filters button[data-filter="{name}"]')
        button.click()
        assert set(_codes(page)) == expected, name
        assert button.inner_text().endswith(f"({len(expected)})")
    page.click('#filters button[data-filter="all"]')
    page.keyboard.press("/")
    page.keyboard.type("FEVER")

    def text(row: dict) -> str:
        target = (
            [] if row["target"] is None else [row["target"]["code"], row["target"]["description"]]
        )
        return " ".join([row["code"], row["description"], *row["synonyms"], *target]).lower()

    texts = [text(r) for r in rows]
    expected = [r["code"] for r, t in zip(rows, texts, strict=True) if "fever" in t]
    assert _codes(page) == expected and expected


def test_bulk_accept_of_the_visible_rows_above_the_confidence(page, served):
    ws, _ = served
    page.fill("#filter-text", "pain")
    visible = set(_codes(page))
    scores = {r["code"]: r["target"]["score"] for r in _undecided(ws) if r["code"] in visible}
    cut = math.floor(sorted(scores.values())[len(scores) // 2] * 100) / 100
    page.fill("#threshold", str(cut))
    expected = sorted(code for code, score in scores.items() if score >= cut)
    assert expected and len(expected) < len(visible)  # the threshold leaves some out
    assert page.locator("#bulk-accept").inner_text() == f"Accept {len(expected)} visible ≥ {cut}"
    before = len(decisions(ws))
    page.click("#bulk-accept")
    page.wait_for_selector("#message.ok")
    made = decisions(ws)[before:]
    assert sorted(d[1] for d in made) == expected
    assert {(d[4], d[5]) for d in made} == {("accept", "ana")}


def test_a_hostile_description_shows_as_text(page, served):
    page.select_option("#pair", label="evil → source (2 mapped)")
    page.wait_for_selector('#queue tbody tr[data-code="EVIL1"]')
    cell = page.locator('#queue tbody tr[data-code="EVIL1"] td').nth(2)
    assert cell.inner_text() == (
        "<script>window.__pwned = 1</script>fever\nsynonyms: <b>pyrexia</b>; hot"
    )
    other = page.locator('#queue tbody tr[data-code="EVIL2"] td').nth(2)
    assert other.inner_text() == '<img src=x onerror="window.__pwned = 2">cough'
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#queue img, #detail img, #queue script, #queue b").count() == 0
    # as a target: the search box over site 'evil' (pair source -> evil)
    page.select_option("#pair", label="source → evil (92 mapped)")
    page.wait_for_selector('#queue tbody tr[data-code="C2055125"]')
    page.keyboard.press("s")
    page.keyboard.type("pyrex")
    page.wait_for_selector("#hits li")
    hit = page.locator("#hits li").inner_text().removesuffix(" · chosen")
    assert hit == "Set EVIL1 <script>window.__pwned = 1</script>fever (synonym “<b>pyrexia</b>”)"
    assert page.evaluate("window.__pwned") is None


def test_a_busy_workspace_is_retried_by_the_page(page, served, monkeypatch):
    """Another process holds the workspace for 1.5 s: the page says so, retries, and the
    decision lands once."""
    ws, _ = served
    monkeypatch.setenv("HARMONIZE_LOCK_WAIT", "0.1")
    row = _undecided(ws)[0]
    _pick(page, row["code"])
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ok', flush=True); time.sleep(1.5)", str(ws.db_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        page.keyboard.press("a")
        page.wait_for_selector("#message.warn:has-text('Workspace busy')")
    finally:
        holder.wait(timeout=30)
    _wait_status(page, row["code"], "accepted")
    assert [d[1] for d in decisions(ws)].count(row["code"]) == 1


def test_every_mapping_can_be_reviewed_from_the_page(page, served):
    """Done means: all 96 of the demo's mappings decided from the page alone (the keyboard for
    a few, then a bulk accept of the rest)."""
    ws, _ = served
    page.click('#filters button[data-filter="undecided"]')
    for _ in range(3):
        left = len(_codes(page))
        page.keyboard.press("a")
        page.wait_for_function(
            "(n) => document.querySelectorAll('#queue tbody tr').length < n", arg=left
        )
    page.fill("#threshold", "0")
    page.click("#bulk-accept")
    page.wait_for_function(
        "() => document.querySelectorAll('#queue tbody tr').length === 0", timeout=180_000
    )
    codes = {r["code"] for r in review_page(ws, "target", "source")["rows"]}
    assert len(codes) == 96
    assert {d[1] for d in decisions(ws) if d[0] == "target"} == codes
    assert "0 undecided" in page.locator('#coverage .cov[data-unit="concepts"]').inner_text()
