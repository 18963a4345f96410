"""Qualifiers that a sentence encoder blurs: negation, specificity and laterality.

Embeddings place "umbilical hernia with obstruction" next to "umbilical hernia without
obstruction", "dyspnea" next to "Not dyspnea", and "Other dyschromia" next to "Dyschromia,
unspecified". Those are exactly the distinctions that decide a mapping between two coding
systems that both draw them. This module reads them from the text with a small NegEx-style
rule set (a cue opens a negated scope that runs to the next punctuation or "with"), and
compares two texts:

- ``polarity_conflicts``: words asserted in one text and negated in the other;
- ``specificity_conflict``: one text is a residual "other ..." (or "not elsewhere classified")
  category and the other an "unspecified" (or "unknown", "NOS") one;
- ``laterality_conflict``: both name a side (left, right, bilateral) and the sides differ.

They are reranker features (harmonize.mapping.rerank), so the known pairs decide how much each
counts.

>>> conflicts("Umbilical hernia without obstruction or gangrene",
...           "Umbilical hernia with obstruction")
(1, 0, 0)
>>> conflicts("Disorder of pigmentation, unspecified", "Other dyschromia")
(0, 1, 0)
>>> conflicts("dyspnea", "Not dyspnea")
(1, 0, 0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Phrases rewritten before the cues are read: the fixed ICD idioms that contain a negation
# word without negating a finding ("not elsewhere classified" is a residual category, "site
# not specified" an unspecified one). NEG opens a scope that runs to the next break; NEG1
# (the prefix "non-") negates the next content word only ("Non-pressure chronic ulcer").
# "Absence of" is not a cue: "acquired absence of leg" is a finding.
_PHRASES = (
    (r"\bnot elsewhere classified\b", " other "),
    (r"\bnot specified as\b", " NEG "),
    (r"\bnot otherwise specified\b|\bnos\b|\bnot (elsewhere )?specified\b", " unspecified "),
    (r"\bso stated\b", " "),
    (r"\bwithout mention of\b|\bwithout\b|\bw/o\b|\bnegative for\b|\bfree of\b", " NEG "),
    (r"\bno\b|\bnot\b|\bdenies\b|\bdenied\b", " NEG "),
    (r"\bnon\b-?", " NEG1 "),
)
_BREAK = {",", ";", ":", "(", ")", "[", "]", "with", "but", "."}
_STOP = {"of", "the", "a", "an", "or", "and", "to", "in", "on", "due", "as", "for", "by", "mention"}
_UNSPECIFIED = {"unspecified", "unknown"}
_OTHER = {"other"}
_SIDES = {"left": "left", "right": "right", "bilateral": "both"}
_TOKEN = re.compile(r"NEG1|NEG|[a-z0-9]+|[,;:()\[\].]")  # cues are rewritten in upper case


def stem(word: str) -> str:
    """Plural to singular for the cases that matter here.

    >>> stem("sites"), stem("status"), stem("abscess")
    ('site', 'status', 'abscess')
    """
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class Qualifiers:
    """What a text asserts and negates (stemmed content words), its specificity (``"other"``,
    ``"unspecified"``, both or neither) and the sides it names."""

    asserted: frozenset[str]
    negated: frozenset[str]
    residual: bool
    unspecified: bool
    sides: frozenset[str]


@lru_cache(maxsize=1 << 18)
def qualifiers(text: str) -> Qualifiers:
    """Parse one concept text.

    >>> q = qualifiers("Femoral hernia with obstruction, without gangrene, unilateral")
    >>> sorted(q.negated), "obstruction" in q.asserted
    (['gangrene'], True)
    """
    lowered = text.lower()
    for pattern, replacement in _PHRASES:
        lowered = re.sub(pattern, replacement, lowered)
    asserted, negated = set(), set()
    residual = unspecified = False
    sides = set()
    negating = negate_next = False
    for token in _TOKEN.findall(lowered):
        if token == "NEG":
            negating = True
        elif token == "NEG1":
            negate_next = True
        elif token in _BREAK:
            negating = negate_next = False
        elif token in _UNSPECIFIED:
            unspecified = True
        elif token in _OTHER:
            residual = True
        elif token not in _STOP:
            (negated if negating or negate_next else asserted).add(stem(token))
            negate_next = False
            if token in _SIDES:  # a side is a side, negated scope or not
                sides.add(_SIDES[token])
    if {"left", "right"} <= sides:
        sides = (sides - {"left", "right"}) | {"both"}
    return Qualifiers(
        # A word the text both asserts and negates ("migraine, without mention of intractable
        # migraine") is left out of both.
        frozenset(asserted - negated),
        frozenset(negated - asserted),
        residual,
        unspecified,
        frozenset(sides),
    )


def conflicts(a: str, b: str) -> tuple[int, int, int]:
    """(polarity conflicts, specificity conflict, laterality conflict) between two texts."""
    qa, qb = qualifiers(a), qualifiers(b)
    polarity = len(qa.asserted & qb.negated) + len(qa.negated & qb.asserted)
    only_other = (qa.residual and not qa.unspecified, qb.residual and not qb.unspecified)
    only_unspec = (qa.unspecified and not qa.residual, qb.unspecified and not qb.residual)
    specificity = int((only_other[0] and only_unspec[1]) or (only_unspec[0] and only_other[1]))
    laterality = int(bool(qa.sides) and bool(qb.sides) and qa.sides != qb.sides)
    return polarity, specificity, laterality
