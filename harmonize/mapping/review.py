"""People's decisions on mappings: accept, reject or set, with who and when; a review queue.

Decisions live in table ``decisions`` and outlive re-mapping: ``map`` re-applies the newest
decision for each source concept (an accepted or set target is kept whatever the model now
says; a rejected target is never chosen again for that concept).

:func:`decide` records one (its example shows a whole round), :func:`decide_many` several in
one transaction; :func:`review_queue` lists what nobody has decided on yet.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.mapping.predicates import parse_predicate
from harmonize.mapping.queue import ReviewQueue, review_queue

__all__ = ["DECISIONS", "Decision", "ReviewQueue", "apply_decisions", "decide", "decide_many",
           "review_queue"]  # fmt: skip

if TYPE_CHECKING:
    import duckdb

DECISIONS = ("accept", "reject", "set")


def _reviewer(reviewer: str | None) -> str:
    if reviewer:
        return reviewer
    try:
        return os.environ.get("HARMONIZE_REVIEWER") or getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


@dataclass(frozen=True)
class Decision:
    """One recorded decision: ``source:code -> target:target_code`` (for a reject, the target
    rejected), the predicate it asserts (None: none) and who made it."""

    source: str
    target: str
    code: str
    decision: str
    target_code: str
    predicate: str | None
    reviewer: str
    note: str | None = None

    @property
    def message(self) -> str:
        verb = {"accept": "accepted", "reject": "rejected", "set": "set"}[self.decision]
        relation = "" if self.predicate is None else f" as {self.predicate}"
        return (
            f"{verb} {self.source}:{self.code} -> {self.target}:{self.target_code}{relation} "
            f"(by {self.reviewer})"
        )


def _check_decision(decision: str, target_code: str | None, predicate: str | None) -> None:
    if decision not in DECISIONS:
        raise InputError(f"unknown decision '{decision}': use {', '.join(DECISIONS)}")
    if (decision == "set") != (target_code is not None):
        raise InputError("'set' needs a target code; 'accept' and 'reject' take none")
    if decision == "reject" and predicate is not None:
        raise InputError(
            "'reject' takes no {predicate}: a rejected mapping relates nothing",
            params=("predicate",),
        )


def _resolve(
    con: duckdb.DuckDBPyConnection, source: str, target: str, code: str, decision: str,
    target_code: str | None, predicate: str | None,
) -> tuple[str, str | None, tuple | None]:  # fmt: skip
    """The decision's target code and predicate (an accept or reject is about the stored
    mapping; an accept without a predicate keeps the mapping's), and the stored mapping
    (target_code, score, predicate) or None. ``con`` is read-only, so a refused decision
    leaves the file untouched."""
    if not sql.run_internal(con, "concept_exists", site=source, code=code).fetchall():
        raise InputError(f"site '{source}' has no concept '{code}'")
    current = sql.run_internal(
        con, "current_mapping", source=source, target=target, code=code
    ).fetchone()
    if decision == "set":
        if not sql.run_internal(con, "concept_exists", site=target, code=target_code).fetchall():
            raise InputError(f"site '{target}' has no concept '{target_code}'")
        return target_code, predicate, current
    if current is None:
        raise InputError(
            f"'{code}' has no mapping onto '{target}' to {decision}. "
            f"Use 'harmonize set --source {source} --target {target} {code} TARGET_CODE'."
        )
    if predicate is None and isinstance(current[2], str):
        predicate = current[2]
    return current[0], predicate, current


def _store(con: duckdb.DuckDBPyConnection, made: Decision, current: tuple | None) -> None:
    """Records ``made`` and replaces the pair's stored mapping of its code (inside the
    caller's transaction); the score is kept when the target is the one the model had chosen."""
    where = {"source": made.source, "target": made.target, "code": made.code}
    sql.run_internal(
        con, "insert_decision", **where, target_code=made.target_code,
        decision=made.decision, reviewer=made.reviewer, note=made.note,
        predicate=made.predicate,
    )  # fmt: skip
    sql.run_internal(con, "delete_mapping", **where)
    if made.decision != "reject":
        same = current is not None and current[0] == made.target_code
        sql.run_internal(
            con, "insert_manual_mapping", **where, target_code=made.target_code,
            score=current[1] if same else None, method=f"manual:{made.decision}",
            predicate=made.predicate,
        )  # fmt: skip


def decide(
    ws: Workspace,
    source: str,
    target: str,
    code: str,
    decision: str,
    target_code: str | None = None,
    reviewer: str | None = None,
    note: str | None = None,
    predicate: str | None = None,
) -> Decision:
    """Records one decision and applies it to the stored mapping at once.
    ``predicate`` (exact, close, broad, narrow, related) says how the target relates; an
    accept without one keeps the predicate the mapping already had.

    >>> from harmonize.datasets.tiny import tiny_workspace
    >>> ws = tiny_workspace()  # sites a and b, lexical indexes, b mapped onto a
    >>> decide(ws, "b", "a", "B1", "accept", reviewer="ana", predicate="exact").message
    'accepted b:B1 -> a:A1 as skos:exactMatch (by ana)'
    >>> decide(ws, "b", "a", "B2", "set", target_code="A1", reviewer="ana").target_code
    'A1'
    """
    asked = {"code": code, "decision": decision, "target_code": target_code, "note": note,
             "predicate": predicate}  # fmt: skip
    return decide_many(ws, source, target, [asked], reviewer=reviewer)[0]


def decide_many(
    ws: Workspace,
    source: str,
    target: str,
    decisions: Iterable[Mapping[str, str | None]],
    reviewer: str | None = None,
) -> list[Decision]:
    """Records several decisions on one pair in one transaction, all or none: each a mapping
    with ``code`` and ``decision`` and optionally ``target_code``, ``predicate``, ``note``
    (as :func:`decide` takes them). A refused one refuses them all and changes nothing.

    >>> from harmonize.datasets.tiny import tiny_workspace
    >>> ws = tiny_workspace()
    >>> made = decide_many(ws, "b", "a", [{"code": "B1", "decision": "accept"},
    ...                                   {"code": "B2", "decision": "reject"}], reviewer="bo")
    >>> [m.message for m in made]
    ['accepted b:B1 -> a:A1 (by bo)', 'rejected b:B2 -> a:A2 (by bo)']
    """
    asked = [dict(d) for d in decisions]
    seen: set[str] = set()
    for d in asked:
        if d["code"] in seen:
            raise InputError(f"two decisions on '{d['code']}' at once: decide it once")
        seen.add(d["code"])
        _check_decision(d["decision"], d.get("target_code"), d.get("predicate"))
        d["predicate"] = parse_predicate(d.get("predicate"))
    ws.require()
    who = _reviewer(reviewer)
    resolved = []
    with ws.connect(read_only=True) as con:
        ws.require_site(con, source)
        ws.require_site(con, target)
        for d in asked:
            target_code, predicate, current = _resolve(
                con, source, target, d["code"], d["decision"], d.get("target_code"),
                d["predicate"],
            )  # fmt: skip
            made = Decision(
                source, target, d["code"], d["decision"], target_code, predicate, who,
                d.get("note"),
            )  # fmt: skip
            resolved.append((made, current))
    with ws.transaction() as con:
        for made, current in resolved:
            _store(con, made, current)
    return [made for made, _ in resolved]


def apply_decisions(
    decisions: pd.DataFrame, mappings: pd.DataFrame, candidates: pd.DataFrame
) -> pd.DataFrame:
    """The chosen ``mappings`` (source_code, target_code, score, method, confidence, predicate) with
    people's newest ``decisions`` applied: accepted and set targets replace the model's choice;
    a rejected target is dropped (the concept stays unmapped rather than silently re-mapped to
    it). The caller adds the columns that are the same on every row (sites, run)."""
    if decisions.empty:
        return mappings
    # A code's newest decisions: several when they share the newest time (an imported code
    # with several targets).
    latest = {code: group for code, group in decisions.groupby("source_code", sort=False)}
    keep = []
    for row in mappings.itertuples(index=False):
        group = latest.get(row.source_code)
        rejected = set() if group is None else set(group["target_code"])
        undecided = group is None or (
            (group["decision"] == "reject").all() and row.target_code not in rejected
        )
        if undecided:  # no decision, or only rejections of other targets
            keep.append(row._asdict())
    scores = {
        (s, t): sc
        for s, t, sc in zip(
            candidates["source_code"], candidates["target_code"], candidates["score"], strict=True
        )
    }
    for d in decisions.itertuples(index=False):
        if d.decision in ("accept", "set"):
            keep.append(
                {
                    "source_code": d.source_code,
                    "target_code": d.target_code,
                    "score": scores.get((d.source_code, d.target_code), np.nan),
                    "method": f"manual:{d.decision}",
                    "confidence": np.nan,
                    "predicate": d.predicate if isinstance(d.predicate, str) else None,
                }
            )
    return pd.DataFrame(keep, columns=mappings.columns)
