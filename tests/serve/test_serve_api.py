"""The review page's JSON API, over a real server on the demo: every route, its answers and its
refusals (4xx with a clear message, nothing written)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("starlette", reason="the serve extra is not installed")

from harmonize.mapping.review import review_queue  # noqa: E402
from harmonize.serve.server import serve_in_thread  # noqa: E402
from tests.helpers import snapshot  # noqa: E402
from tests.serve.conftest import Client, copy_workspace, decisions  # noqa: E402

PAIR = {"source": "target", "target": "source"}


@pytest.fixture
def served(demo_ws):
    """A server on a fresh copy of the demo: for tests that write."""
    with serve_in_thread(demo_ws, reviewer="ana", token="t0ken") as running:
        yield demo_ws, Client(running.url, running.token)


@pytest.fixture(scope="module")
def shared(demo_template, tmp_path_factory):
    """One server for the tests that read or are refused (each checks nothing was written)."""
    ws = copy_workspace(demo_template, tmp_path_factory.mktemp("api"))
    with serve_in_thread(ws, reviewer="ana", token="t0ken") as running:
        yield ws, Client(running.url, running.token)


def _refused(ws, client, method, path, body, status, error):
    """The call answers ``status`` with exactly ``error`` and leaves the workspace's files as
    they were."""
    before = snapshot(ws)
    answer = client.call(method, path, body)
    assert (answer.status, answer.body) == (status, {"error": error})
    assert snapshot(ws) == before


def test_page_needs_the_token_then_keeps_it_in_a_cookie(shared):
    ws, client = shared
    assert client.get("/", token=False).status == 401
    page = client.get("/?token=t0ken", token=False)
    assert page.status == 200
    assert '<meta name="harmonize-token" content="t0ken">' in page.body
    assert '<meta name="harmonize-reviewer" content="ana">' in page.body
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "harmonize_token=t0ken" in page.headers["set-cookie"]
    assert "samesite=strict" in page.headers["set-cookie"].lower()
    cookie = {"Cookie": "harmonize_token=t0ken"}
    assert client.get("/", headers=cookie, token=False).status == 200
    assert client.get("/api/pairs", headers=cookie, token=False).status == 200
    assert client.get("/?token=wrong", token=False).status == 401


def test_static_files_are_served_by_the_package(shared):
    _, client = shared
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        answer = client.get(f"/static/{name}", token=False)
        assert answer.status == 200 and kind in answer.headers["content-type"]
    assert client.get("/static/missing.js", token=False).status == 404


def test_pairs(shared):
    _, client = shared
    assert client.get("/api/pairs").body == {
        "pairs": [
            {"source": "evil", "target": "source", "n_mapped": 2, "n_source_concepts": 2},
            {"source": "source", "target": "evil", "n_mapped": 92, "n_source_concepts": 92},
            {"source": "target", "target": "source", "n_mapped": 96, "n_source_concepts": 96},
        ]
    }
    answer = client.get("/api/pairs", token=False)
    assert answer.status == 401
    assert answer.body == {"error": "missing or wrong token: send the token printed at start"}


def test_review_is_in_the_review_queue_order_with_candidates(shared):
    ws, client = shared
    page = client.get("/api/review?source=target&target=source").body
    queue = review_queue(ws, "target", "source").to_frame()
    assert [r["code"] for r in page["rows"]] == list(queue["source_code"])
    first = page["rows"][0]
    assert first["target"]["code"] == queue["target_code"].iloc[0]
    assert first["description"] == queue["source_description"].iloc[0]
    assert first["candidates"][0]["code"] == first["target"]["code"]
    assert [c["rank"] for c in first["candidates"]] == [1, 2, 3, 4, 5]
    statuses = page["coverage"]["statuses"]
    assert {k: v["concepts"] for k, v in statuses.items()} == {
        "approved": 0, "rejected": 0, "undecided": 96, "unmapped": 0,
    }  # fmt: skip
    # occurrences: the events whose value is not A or M (absent, missing), counted here
    import duckdb

    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        n = con.execute(
            "SELECT count(*) FROM events WHERE site = 'target' AND value NOT IN ('A', 'M')"
        ).fetchone()[0]
    assert page["coverage"]["counted"] is True
    assert statuses["undecided"]["occurrences"] == n
    assert sum(r["occurrences"] for r in page["rows"]) == n
    assert page["coverage"]["mapped_share"] == 1.0


def test_review_orders(shared):
    ws, client = shared
    for order in ("informative", "frequency", "confidence", "code"):
        page = client.get(f"/api/review?source=target&target=source&order={order}").body
        queue = review_queue(ws, "target", "source", order=order).to_frame()
        assert [r["code"] for r in page["rows"]] == list(queue["source_code"]), order
        assert page["order"] == order
    error = "unknown order 'abc': use one of informative, frequency, confidence, code"
    _refused(ws, client, "GET", "/api/review?source=target&target=source&order=abc", None, 400,
             error)  # fmt: skip


def test_review_refusals(shared):
    ws, client = shared
    _refused(ws, client, "GET", "/api/review?source=nope&target=source", None, 404,
             "unknown site 'nope'. Known sites: evil, source, target. "
             "Run 'harmonize add-site nope --vocab FILE' first.")  # fmt: skip
    _refused(ws, client, "GET", "/api/review?source=target", None, 400,
             "missing query parameter 'target' (needs: source, target)")  # fmt: skip
    _refused(ws, client, "GET", "/api/review?source=source&target=target", None, 400,
             "no mappings of 'source' onto 'target'. "
             "Run 'harmonize map --source source --target target' first.")  # fmt: skip


def test_search(shared):
    ws, client = shared
    hits = client.get("/api/search?site=source&q=FEVER&limit=2").body["hits"]
    assert hits == [
        {"code": "C2055125", "description": "reported fever", "matched_synonym": None},
        {
            "code": "OC0003419",
            "description": "poor response of fever to antipyretics",
            "matched_synonym": None,
        },
    ]
    # a synonym matches too, and says which
    assert client.get("/api/search?site=evil&q=PYREX").body["hits"] == [
        {
            "code": "EVIL1",
            "description": "<script>window.__pwned = 1</script>fever",
            "matched_synonym": "<b>pyrexia</b>",
        }
    ]
    assert client.get("/api/search?site=source&q=c2055125").body["hits"][0]["code"] == "C2055125"
    # '%' is a character, not a LIKE wildcard: only the one description holding it
    assert client.get("/api/search?site=source&q=%25").body["hits"] == [
        {
            "code": "C0700292",
            "description": "hypoxemia (sp02 on room air < 90%)",
            "matched_synonym": None,
        }
    ]
    _refused(ws, client, "GET", "/api/search?site=nope&q=x", None, 404,
             "unknown site 'nope'. Known sites: evil, source, target. "
             "Run 'harmonize add-site nope --vocab FILE' first.")  # fmt: skip
    _refused(ws, client, "GET", "/api/search?site=source&q=x&limit=0", None, 400,
             "limit must be between 1 and 200, got 0")  # fmt: skip
    _refused(ws, client, "GET", "/api/search?site=source", None, 400,
             "missing query parameter 'q' (needs: site, q)")  # fmt: skip


def test_decisions_accept_set_reject_land_in_the_decisions_table(served):
    ws, client = served
    rows = client.get("/api/review?source=target&target=source").body["rows"]
    a, b, c = rows[0], rows[1], rows[2]
    answer = client.post("/api/decisions", {**PAIR, "code": a["code"], "action": "accept",
                                            "predicate": "exact", "note": "same"})  # fmt: skip
    assert answer.status == 201
    assert answer.body["message"] == (
        f"accepted target:{a['code']} -> source:{a['target']['code']} as skos:exactMatch (by ana)"
    )
    assert answer.body["row"]["status"] == "accepted"
    assert answer.body["row"]["decision"]["reviewer"] == "ana"
    assert answer.body["coverage"]["statuses"]["approved"]["concepts"] == 1
    body = {"code": b["code"], "action": "set", "target_code": "C2055125", "reviewer": "bo"}
    answer = client.post("/api/decisions", {**PAIR, **body})
    assert answer.status == 201 and answer.body["row"]["target"]["code"] == "C2055125"
    answer = client.post("/api/decisions", {**PAIR, "code": c["code"], "action": "reject"})
    assert answer.status == 201 and answer.body["row"]["target"] is None
    assert answer.body["row"]["status"] == "rejected"
    assert decisions(ws) == [
        ("target", a["code"], "source", a["target"]["code"], "accept", "ana", "same",
         "skos:exactMatch"),
        ("target", b["code"], "source", "C2055125", "set", "bo", None, None),
        ("target", c["code"], "source", c["target"]["code"], "reject", "ana", None, None),
    ]  # fmt: skip
    after = client.get("/api/review?source=target&target=source").body["coverage"]["statuses"]
    assert {k: v["concepts"] for k, v in after.items()} == {
        "approved": 2, "rejected": 1, "undecided": 93, "unmapped": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"code": "SX-110", "action": "approve"}, 400,
         "unknown action 'approve': use accept, reject, set"),
        ({"code": "NOPE", "action": "accept"}, 404, "site 'target' has no concept 'NOPE'"),
        ({"code": "SX-110", "action": "set", "target_code": "NOPE"}, 404,
         "site 'source' has no concept 'NOPE'"),
        ({"code": "SX-110", "action": "set"}, 400,
         "'set' needs a target code; 'accept' and 'reject' take none"),
        ({"code": "SX-110", "action": "reject", "predicate": "exact"}, 400,
         "'reject' takes no predicate: a rejected mapping relates nothing"),
        ({"code": "SX-110", "action": "accept", "predicate": "same"}, 400,
         "unknown mapping predicate 'same': use exact, close, broad, narrow, related (or "
         "skos:exactMatch, skos:closeMatch, skos:broadMatch, skos:narrowMatch, "
         "skos:relatedMatch)"),
        ({"code": "SX-110", "action": "accept", "colour": "red"}, 400,
         "unknown field 'colour' (fields: source, target, code, action, target_code, "
         "predicate, note, reviewer)"),
        ({"code": 7, "action": "accept"}, 400, "field 'code' must be a string, got int"),
        ({"action": "accept"}, 400, "field 'code' is required"),
        ({"code": "SX-110", "action": "accept", "source": "nope"}, 404,
         "unknown site 'nope'. Known sites: evil, source, target. "
         "Run 'harmonize add-site nope --vocab FILE' first."),
    ],
)  # fmt: skip
def test_decision_refusals_write_nothing(shared, body, status, error):
    ws, client = shared
    before = snapshot(ws)
    answer = client.post("/api/decisions", {**PAIR, **body})
    assert (answer.status, answer.body) == (status, {"error": error})
    assert snapshot(ws) == before


def test_writes_need_the_header_token(shared):
    ws, client = shared
    body = {**PAIR, "code": "SX-110", "action": "accept"}
    error = "missing or wrong token: send the X-Harmonize-Token header printed at start"
    _refused(ws, Client(client.url, "wrong"), "POST", "/api/decisions", body, 401, error)
    # the page's cookie is not enough for a write: another site's form could send it
    before = snapshot(ws)
    answer = client.post("/api/decisions", body, token=False,
                         headers={"Cookie": "harmonize_token=t0ken"})  # fmt: skip
    assert answer.status == 401 and snapshot(ws) == before
    answer = client.call("POST", "/api/decisions", raw=b"{not json")
    assert answer.status == 400 and answer.body["error"].startswith("the request body is not JSON")
    answer = client.call("POST", "/api/decisions", raw=b"[1]")
    assert answer.body == {"error": "the request body must be a JSON object"}
    assert client.get("/api/decisions").status == 405
    assert decisions(ws) == []


def test_a_foreign_host_header_is_refused(shared):
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 cannot talk to the server."""
    _, client = shared
    answer = client.get("/api/pairs", headers={"Host": "evil.example:8765"})
    assert answer.status == 403
    assert answer.body == {
        "error": "host 'evil.example:8765' is not this machine's loopback address"
    }
    assert client.get("/api/pairs", headers={"Host": "localhost:1"}).status == 200


def test_bulk_accept(served):
    ws, client = served
    rows = client.get("/api/review?source=target&target=source").body["rows"]
    codes = [r["code"] for r in rows[-3:]]
    answer = client.post("/api/decisions/bulk", {**PAIR, "codes": codes, "reviewer": "cy"})
    assert answer.status == 201 and answer.body["accepted"] == 3
    made = sorted((d[1], d[4], d[5]) for d in decisions(ws))  # one transaction: one time
    assert made == sorted((c, "accept", "cy") for c in codes)
    assert answer.body["coverage"]["statuses"]["approved"]["concepts"] == 3


@pytest.mark.parametrize(
    ("codes", "status", "error"),
    [
        (["SX-110", "NOPE"], 404, "site 'target' has no concept 'NOPE'"),
        (["SX-110", "SX-110"], 400, "field 'codes' names a code twice"),
        ([], 400, "field 'codes' must be a non-empty list of source codes"),
        ("SX-110", 400, "field 'codes' must be a non-empty list of source codes"),
    ],
)
def test_bulk_refusals_write_nothing(shared, codes, status, error):
    """All or nothing: one code refused, none recorded."""
    ws, client = shared
    _refused(ws, client, "POST", "/api/decisions/bulk", {**PAIR, "codes": codes}, status, error)


def test_a_busy_workspace_answers_503_and_writes_nothing(served, monkeypatch):
    """Another process holds the DuckDB file past the lock wait: a clear 503, nothing lost."""
    ws, client = served
    monkeypatch.setenv("HARMONIZE_LOCK_WAIT", "0.2")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ok', flush=True); time.sleep(30)", str(ws.db_path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ok"
        answer = client.post("/api/decisions", {**PAIR, "code": "SX-110", "action": "accept"})
    finally:
        holder.kill()
        holder.wait()
    assert answer.status == 503 and answer.headers["retry-after"] == "1"
    assert answer.body == {
        "error": f"workspace {ws.root} is in use by another harmonize process; "
        "wait for it to finish and try again"
    }
    assert decisions(ws) == []
    assert (
        client.post("/api/decisions", {**PAIR, "code": "SX-110", "action": "accept"}).status == 201
    )
