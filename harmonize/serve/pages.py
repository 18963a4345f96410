"""What the review page shows: the mapped pairs, one pair's rows in review order, coverage, and
a search over the target site.

Plain functions over the workspace (they serve the JSON API and any other caller); each opens
a read-only connection for as long as it reads and no longer.

>>> from harmonize.datasets.tiny import tiny_workspace
>>> ws = tiny_workspace()  # sites a and b, lexical indexes, b mapped onto a
>>> [(p["source"], p["target"], p["n_mapped"]) for p in list_pairs(ws)]
[('b', 'a', 2)]
>>> page = review_page(ws, "b", "a")
>>> [(r["code"], r["status"], r["target"]["code"]) for r in page["rows"]]
[('B1', 'undecided', 'A1'), ('B2', 'undecided', 'A2')]
>>> [hit["code"] for hit in search_concepts(ws, "a", "A1")]
['A1']
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harmonize.core import sql
from harmonize.core.config import VOCABULARY_COLUMNS
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.mapping.queue import ORDERS, coverage, occurrences, review_queue

STATUSES = {"accept": "accepted", "set": "set", "reject": "rejected"}
SEARCH_LIMIT = 20


def _value(value: Any) -> Any:
    """A DataFrame cell as JSON: NaN, NaT and NA become None, timestamps ISO text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ", timespec="seconds")
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: _value(v) for k, v in row.items()} for row in frame.astype(object).to_dict("records")
    ]


def list_pairs(ws: Workspace) -> list[dict[str, Any]]:
    """Every (source, target) pair with stored mappings, and how many are mapped."""
    ws.require()
    with ws.connect(read_only=True) as con:
        frame = sql.run_internal(con, "mapping_summary").df()
    return [
        {
            "source": row["source_site"],
            "target": row["target_site"],
            "n_mapped": row["n_mapped"],
            "n_source_concepts": row["n_source_concepts"],
        }
        for row in _records(frame)
    ]


def _read_pair(ws: Workspace, source: str, target: str) -> dict[str, pd.DataFrame]:
    """Everything one pair's page needs, read on one read-only connection."""
    with ws.connect(read_only=True) as con:
        pair = {"source": source, "target": target}
        return {
            "mappings": sql.run_internal(con, "pair_mappings", **pair).df(),
            "candidates": sql.run_internal(con, "pair_candidates", **pair).df(),
            "decisions": sql.run_internal(con, "latest_decisions", **pair).df(),
            "source_concepts": sql.run_internal(con, "review_concepts", site=source).df(),
            "target_concepts": sql.run_internal(con, "review_concepts", site=target).df(),
            "counts": sql.run_internal(con, "site_code_counts", site=source).df(),
            "source_synonyms": sql.run_internal(con, "site_synonyms", site=source).df(),
            "target_synonyms": sql.run_internal(con, "site_synonyms", site=target).df(),
        }


def _order(queue: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> list[str]:
    """Source codes in review order: the review queue's first, then the decided and unmapped
    ones, least confident first as the queue is."""
    first = list(queue["source_code"])
    seen = set(first)
    scores = dict(zip(tables["mappings"]["source_code"], tables["mappings"]["score"], strict=True))
    best = tables["candidates"].groupby("source_code")["score"].max().to_dict()
    rest = set(tables["mappings"]["source_code"]) | set(tables["candidates"]["source_code"])
    rest |= set(tables["decisions"]["source_code"])
    rest -= seen

    def key(code: str) -> tuple[float, str]:
        score = scores.get(code)
        if score is None or score != score:
            score = best.get(code, -1.0)
        return (float(score), code)

    return first + sorted(rest, key=key)


def _status(code: str, decision: Any, target: Any, queue: dict[str, Any]) -> str:
    """undecided (in the review queue: nobody decided, or a rejected concept's new proposal),
    else the newest decision's (accepted, set, rejected), else unmapped."""
    if code in queue or (decision is None and target is not None):
        return "undecided"
    return STATUSES[decision["decision"]] if decision is not None else "unmapped"


def _row(code: str, look: dict[str, Any]) -> dict[str, Any]:
    """One source concept's row of the page."""
    concept = look["source"].get(code, {})
    parent = concept.get("parent_code")
    mapping = look["mappings"].get(code)
    decision = look["decisions"].get(code)
    target = None
    if mapping is not None:
        queued = look["queue"].get(code, {})
        target = {
            "code": mapping["target_code"],
            "description": mapping["target_description"],
            "score": mapping["score"],
            "confidence": mapping["confidence"],
            "predicate": mapping["predicate"],
            "method": mapping["method"],
            "synonyms": look["target_synonyms"].get(mapping["target_code"], []),
            # what the review queue adds for a vocabulary target (undecided rows)
            **{k: queued.get(k) for k in VOCABULARY_COLUMNS},
        }
    candidates = [
        {**c, "description": look["target"].get(c["code"], {}).get("description")}
        for c in look["candidates"].get(code, [])
    ]
    return {
        "code": code,
        "description": concept.get("description"),
        "frequency": concept.get("frequency"),
        "occurrences": look["occurrences"].get(code),
        "parent": None
        if parent is None
        else {"code": parent, "description": look["source"].get(parent, {}).get("description")},
        "synonyms": look["source_synonyms"].get(code, []),
        "target": target,
        "candidates": candidates,
        "decision": decision,
        "status": _status(code, decision, target, look["queue"]),
    }


def _synonyms(synonyms: pd.DataFrame, concepts: pd.DataFrame) -> dict[str, list[str]]:
    """Code -> its synonyms in order (table concept_synonyms is keyed by concept row)."""
    codes = dict(zip(concepts["concept_id"], concepts["code"], strict=True))
    out: dict[str, list[str]] = {}
    for concept_id, text in zip(synonyms["concept_id"], synonyms["text"], strict=True):
        out.setdefault(codes[concept_id], []).append(text)
    return out


def _lookups(tables: dict[str, pd.DataFrame], queue: pd.DataFrame | None) -> dict[str, Any]:
    candidates: dict[str, list[dict[str, Any]]] = {}
    ranked = tables["candidates"].sort_values(["source_code", "rank"])
    for row in _records(ranked):
        candidates.setdefault(row["source_code"], []).append(
            {"code": row["target_code"], "rank": row["rank"], "score": row["score"]}
        )
    decisions = {
        row.pop("source_code"): row for row in _records(tables["decisions"])
    }  # code -> target_code, decision, reviewer, note, decided_at, predicate
    return {
        "source": {r["code"]: r for r in _records(tables["source_concepts"])},
        "target": {r["code"]: r for r in _records(tables["target_concepts"])},
        "mappings": {r["source_code"]: r for r in _records(tables["mappings"])},
        "candidates": candidates,
        "decisions": decisions,
        "occurrences": occurrences(tables["counts"]).dropna().to_dict(),
        "source_synonyms": _synonyms(tables["source_synonyms"], tables["source_concepts"]),
        "target_synonyms": _synonyms(tables["target_synonyms"], tables["target_concepts"]),
        "queue": {} if queue is None else {r["source_code"]: r for r in _records(queue)},
    }


def pair_coverage(ws: Workspace, source: str, target: str) -> dict[str, Any]:
    """:func:`harmonize.mapping.queue.coverage` as JSON: per status (approved, rejected,
    undecided, unmapped) the concepts and occurrences (None where the site counts none)."""
    result = coverage(ws, source, target)
    return {
        "counted": result.counted,
        "mapped_share": result.mapped_share,
        "statuses": {row.pop("status"): row for row in _records(result.to_frame())},
    }


def _pair_rows(
    ws: Workspace, source: str, target: str, queue: pd.DataFrame | None
) -> dict[str, Any]:
    """The pair's rows (in review order when ``queue`` is given) and its coverage."""
    tables = _read_pair(ws, source, target)
    if tables["mappings"].empty and tables["candidates"].empty and tables["decisions"].empty:
        raise InputError(
            f"no mappings of '{source}' onto '{target}'. "
            f"Run 'harmonize map --source {source} --target {target}' first."
        )
    look = _lookups(tables, queue)
    order = _order(queue if queue is not None else tables["mappings"].iloc[:0], tables)
    return {
        "source": source,
        "target": target,
        "rows": [_row(code, look) for code in order],
        "coverage": pair_coverage(ws, source, target),
    }


def review_page(ws: Workspace, source: str, target: str, order: str = ORDERS[0]) -> dict[str, Any]:
    """One pair's rows: the undecided in the order of
    :func:`~harmonize.mapping.queue.review_queue` (``order``: one of its ORDERS), then the
    rest, with the pair's coverage."""
    queue = review_queue(ws, source, target, order=order)  # checks the workspace and sites
    page = _pair_rows(ws, source, target, queue.to_frame())
    return {**page, "order": order}


def review_row(ws: Workspace, source: str, target: str, code: str) -> dict[str, Any]:
    """One source concept's row and the pair's coverage (after a decision)."""
    page = _pair_rows(ws, source, target, None)
    for row in page["rows"]:
        if row["code"] == code:
            return {"row": row, "coverage": page["coverage"]}
    raise InputError(f"'{code}' has no mapping or candidates of '{source}' onto '{target}'")


def search_concepts(
    ws: Workspace, site: str, text: str, limit: int = SEARCH_LIMIT
) -> list[dict[str, Any]]:
    """Concepts of ``site`` whose code or description contains ``text`` (any case), best
    first: the exact code, codes starting with it, then the earliest description match."""
    text = text.strip()
    if not text:
        return []
    ws.require()
    with ws.connect(read_only=True) as con:
        ws.require_site(con, site)
        frame = sql.run_internal(con, "search_concepts", site=site, text=text, n=limit).df()
    return _records(frame)
