"""People's decisions on mappings: accept, reject or set, with who and when; a review queue.

Decisions live in table ``decisions`` and outlive re-mapping: ``map`` re-applies the newest
decision for each source concept (an accepted or set target is kept whatever the model now
says; a rejected target is never chosen again for that concept).

>>> # decide(Workspace("."), "siteB", "siteA", "RESP_017", "set", target_code="C0013404")
"""

from __future__ import annotations

import getpass
import os

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.mapping.predicates import parse_predicate

DECISIONS = ("accept", "reject", "set")


def _reviewer(reviewer: str | None) -> str:
    if reviewer:
        return reviewer
    try:
        return os.environ.get("HARMONIZE_REVIEWER") or getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "unknown"


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
) -> str:
    """Records one decision and applies it to the stored mapping at once; returns a message.
    ``predicate`` (exact, close, broad, narrow, related) says how the target relates; an
    accept without one keeps the predicate the mapping already had."""
    if decision not in DECISIONS:
        raise InputError(f"unknown decision '{decision}': use {', '.join(DECISIONS)}")
    if (decision == "set") != (target_code is not None):
        raise InputError("'set' needs a target code; 'accept' and 'reject' take none")
    if decision == "reject" and predicate is not None:
        raise InputError("'reject' takes no --predicate: a rejected mapping relates nothing")
    predicate = parse_predicate(predicate)
    ws.require()
    # Every check runs on a read-only connection: a refused decision leaves the file untouched.
    with ws.connect(read_only=True) as con:
        ws.require_site(con, source)
        ws.require_site(con, target)
        if not sql.run_internal(con, "concept_exists", site=source, code=code).fetchall():
            raise InputError(f"site '{source}' has no concept '{code}'")
        current = sql.run_internal(
            con, "current_mapping", source=source, target=target, code=code
        ).fetchone()
        if decision == "set":
            if not sql.run_internal(
                con, "concept_exists", site=target, code=target_code
            ).fetchall():
                raise InputError(f"site '{target}' has no concept '{target_code}'")
        elif current is None:
            raise InputError(
                f"'{code}' has no mapping onto '{target}' to {decision}. "
                f"Use 'harmonize set --source {source} --target {target} {code} TARGET_CODE'."
            )
        else:
            target_code = current[0]
            if predicate is None and isinstance(current[2], str):
                predicate = current[2]
    who = _reviewer(reviewer)
    with ws.transaction() as con:
        sql.run_internal(
            con,
            "insert_decision",
            source=source,
            code=code,
            target=target,
            target_code=target_code,
            decision=decision,
            reviewer=who,
            note=note,
            predicate=predicate,
        )
        sql.run_internal(con, "delete_mapping", source=source, target=target, code=code)
        if decision != "reject":
            score = current[1] if current is not None and current[0] == target_code else None
            sql.run_internal(
                con,
                "insert_manual_mapping",
                source=source,
                code=code,
                target=target,
                target_code=target_code,
                score=score,
                method=f"manual:{decision}",
                predicate=predicate,
            )
    verb = {"accept": "accepted", "reject": "rejected", "set": "set"}[decision]
    relation = "" if predicate is None else f" as {predicate}"
    return f"{verb} {source}:{code} -> {target}:{target_code}{relation} (by {who})"


def apply_decisions(
    decisions: pd.DataFrame, mappings: pd.DataFrame, candidates: pd.DataFrame
) -> pd.DataFrame:
    """The chosen ``mappings`` (source_code, target_code, score, method, confidence, predicate) with
    people's newest ``decisions`` applied: accepted and set targets replace the model's choice;
    a rejected target is dropped (the concept stays unmapped rather than silently re-mapped to
    it). The caller adds the columns that are the same on every row (sites, run)."""
    if decisions.empty:
        return mappings
    latest = decisions.set_index("source_code")
    keep = []
    for row in mappings.itertuples(index=False):
        d = latest.loc[row.source_code] if row.source_code in latest.index else None
        if d is not None and d["decision"] == "reject" and d["target_code"] == row.target_code:
            continue
        if d is None or d["decision"] == "reject":
            keep.append(row._asdict())
    scores = {
        (s, t): sc
        for s, t, sc in zip(
            candidates["source_code"], candidates["target_code"], candidates["score"], strict=True
        )
    }
    for code, d in latest.iterrows():
        if d["decision"] in ("accept", "set"):
            keep.append(
                {
                    "source_code": code,
                    "target_code": d["target_code"],
                    "score": scores.get((code, d["target_code"]), np.nan),
                    "method": f"manual:{d['decision']}",
                    "confidence": np.nan,
                    "predicate": d["predicate"] if isinstance(d["predicate"], str) else None,
                }
            )
    return pd.DataFrame(keep, columns=mappings.columns)


def review_queue(ws: Workspace, source: str, target: str) -> pd.DataFrame:
    """Mappings nobody has decided on yet, least confident first."""
    return ws.read_pair(source, target, "review")
