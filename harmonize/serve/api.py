"""The API's writes: a JSON decision checked field by field, then recorded by
:func:`harmonize.mapping.review.decide` into the same ``decisions`` table as the CLI's.

>>> from harmonize.datasets.tiny import tiny_workspace
>>> ws = tiny_workspace()  # sites a and b, lexical indexes, b mapped onto a
>>> body = {"source": "b", "target": "a", "code": "B1", "action": "accept", "reviewer": "ana"}
>>> decision(ws, decision_fields(body, None))["message"]
'accepted b:B1 -> a:A1 (by ana)'
>>> decision_fields({**body, "action": "approve"}, None)
Traceback (most recent call last):
...
harmonize.core.errors.InputError: unknown action 'approve': use accept, reject, set
"""

from __future__ import annotations

from typing import Any

from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace
from harmonize.mapping.review import DECISIONS, decide, decide_many
from harmonize.serve import pages

REQUIRED = ("source", "target", "code", "action")
OPTIONAL = ("target_code", "predicate", "note", "reviewer")
BULK_REQUIRED = ("source", "target")
BULK_OPTIONAL = ("predicate", "note", "reviewer", "order")
MAX_LIMIT = 200


def _text_fields(
    body: dict[str, Any], required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, Any]:
    """The body's fields: every required one a non-empty string, optional ones a string or
    null (empty is null), nothing else."""
    known = required + optional
    unknown = [k for k in body if k not in known]
    if unknown:
        raise InputError(f"unknown field '{unknown[0]}' (fields: {', '.join(known)})")
    out: dict[str, Any] = {}
    for name in known:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise InputError(f"field '{name}' must be a string, got {type(value).__name__}")
        value = value.strip() if isinstance(value, str) else None
        if not value and name in required:
            raise InputError(f"field '{name}' is required")
        out[name] = value or None
    return out


def decision_fields(body: dict[str, Any], reviewer: str | None) -> dict[str, Any]:
    """A decision request's fields, checked; the server's reviewer when the body names none."""
    fields = _text_fields(body, REQUIRED, OPTIONAL)
    if fields["action"] not in DECISIONS:
        raise InputError(f"unknown action '{fields['action']}': use {', '.join(DECISIONS)}")
    fields["reviewer"] = fields["reviewer"] or reviewer
    return fields


def bulk_fields(body: dict[str, Any], reviewer: str | None) -> dict[str, Any]:
    """A bulk accept's fields: ``codes`` a non-empty list of distinct strings."""
    codes = body.get("codes")
    fields = _text_fields(
        {k: v for k, v in body.items() if k != "codes"}, BULK_REQUIRED, BULK_OPTIONAL
    )
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        raise InputError("field 'codes' must be a non-empty list of source codes")
    if len(set(codes)) != len(codes):
        raise InputError("field 'codes' names a code twice")
    fields["codes"] = codes
    fields["reviewer"] = fields["reviewer"] or reviewer
    return fields


def parse_limit(text: str | None) -> int:
    """The ``limit`` query parameter: 1 to MAX_LIMIT, default pages.SEARCH_LIMIT."""
    if text is None or not text.strip():
        return pages.SEARCH_LIMIT
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"limit must be a whole number, got '{text}'") from None
    if not 1 <= value <= MAX_LIMIT:
        raise InputError(f"limit must be between 1 and {MAX_LIMIT}, got {value}")
    return value


def decision(ws: Workspace, fields: dict[str, Any]) -> dict[str, Any]:
    """Records one decision; answers it, the code's new row and the pair's coverage."""
    made = decide(
        ws,
        fields["source"],
        fields["target"],
        fields["code"],
        fields["action"],
        target_code=fields["target_code"],
        reviewer=fields["reviewer"],
        note=fields["note"],
        predicate=fields["predicate"],
    )
    after = pages.review_row(ws, made.source, made.target, made.code)
    return {"message": made.message, "reviewer": made.reviewer, **after}


def bulk_accept(ws: Workspace, fields: dict[str, Any]) -> dict[str, Any]:
    """Accepts the stored mapping of every code in ``fields["codes"]`` in one transaction
    (:func:`~harmonize.mapping.review.decide_many`): all of them, or none if one is refused."""
    source, target = fields["source"], fields["target"]
    asked = [
        {
            "code": code,
            "decision": "accept",
            "predicate": fields["predicate"],
            "note": fields["note"],
        }
        for code in fields["codes"]
    ]
    made = decide_many(ws, source, target, asked, reviewer=fields["reviewer"])
    page = pages.review_page(ws, source, target, fields.get("order") or pages.ORDERS[0])
    return {"accepted": len(made), "messages": [m.message for m in made], **page}
