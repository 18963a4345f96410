"""Mapping predicates: how a source concept relates to its target, where someone knows.

A nearest neighbour is only "similar"; whether the target means exactly the same, something
broader or something narrower is knowledge a person or a curated crosswalk brings. It comes
in through a ``predicate`` column of ``map --known`` files and through ``accept``/``set
--predicate``, is stored as a SKOS mapping property in ``mappings.predicate`` (NULL when
nobody asserted one), and is written by every export in that format's own terms.

Direction follows SKOS and SSSOM: ``S skos:broadMatch T`` says T is broader than S, so a
specific local code mapped onto a general standard concept is ``broad``.

>>> parse_predicate("narrow"), parse_predicate("skos:exactMatch")
('skos:narrowMatch', 'skos:exactMatch')
>>> fhir_equivalence("skos:broadMatch"), usagi_equivalence(None)
('wider', 'UNREVIEWED')
"""

from __future__ import annotations

import pandas as pd

from harmonize.core.errors import InputError

# Short name -> SKOS mapping property (the CURIE stored and exported).
PREDICATES = {
    "exact": "skos:exactMatch",
    "close": "skos:closeMatch",
    "broad": "skos:broadMatch",
    "narrow": "skos:narrowMatch",
    "related": "skos:relatedMatch",
}
# What an automatic similarity match is when nobody asserted more: close, not exact.
UNASSERTED = "skos:closeMatch"

# FHIR R4 ConceptMap.group.element.target.equivalence: "wider" = the target is wider in meaning
# than the source, i.e. SKOS broadMatch. R4 has no close match; relatedto is its loosest term.
_FHIR = {
    "skos:exactMatch": "equivalent",
    "skos:closeMatch": "relatedto",
    "skos:broadMatch": "wider",
    "skos:narrowMatch": "narrower",
    "skos:relatedMatch": "relatedto",
}
# OHDSI Usagi's equivalence column, read the same way as FHIR's.
_USAGI = {
    "skos:exactMatch": "EQUAL",
    "skos:closeMatch": "INEXACT",
    "skos:broadMatch": "WIDER",
    "skos:narrowMatch": "NARROWER",
    "skos:relatedMatch": "INEXACT",
}


def parse_predicate(value: object) -> str | None:
    """A predicate given as a short name or a SKOS CURIE, as the stored CURIE; empty is None."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.lower() in PREDICATES:
        return PREDICATES[text.lower()]
    if text in PREDICATES.values():
        return text
    allowed = ", ".join(PREDICATES) + " (or " + ", ".join(PREDICATES.values()) + ")"
    raise InputError(f"unknown mapping predicate '{text}': use {allowed}")


def parse_predicates(values: pd.Series, where: str) -> pd.Series:
    """A column of predicates as stored CURIEs (None where empty); errors name ``where``."""
    try:
        # Built as object, not via Series.map: on a string column map() turns None into NaN.
        parsed = [parse_predicate(v) for v in values.tolist()]
        return pd.Series(parsed, index=values.index, dtype=object)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def fhir_equivalence(predicate: object) -> str:
    """FHIR R4 equivalence of a stored predicate (None or NaN: nobody asserted one)."""
    return _FHIR[predicate] if isinstance(predicate, str) else _FHIR[UNASSERTED]


def usagi_equivalence(predicate: object, approved: bool = False) -> str:
    """Usagi equivalence of a stored predicate. With none asserted: UNREVIEWED for a model's
    match, EQUAL for a person's (``approved``): Usagi's approve button applies the equivalence
    its chooser shows, which starts at EQUAL, so an APPROVED row always has one.

    >>> usagi_equivalence(None, approved=True), usagi_equivalence("skos:broadMatch", True)
    ('EQUAL', 'WIDER')
    """
    if isinstance(predicate, str):
        return _USAGI[predicate]
    return "EQUAL" if approved else "UNREVIEWED"


# Usagi equivalence -> stored predicate, for importing Usagi files. INEXACT is read as close
# (the export writes both close and related as INEXACT); UNREVIEWED asserts nothing.
# UNMATCHED (the target does not match) is a rejection, not a predicate.
USAGI_PREDICATES = {
    "EQUAL": "skos:exactMatch",
    "EQUIVALENT": "skos:exactMatch",
    "WIDER": "skos:broadMatch",
    "NARROWER": "skos:narrowMatch",
    "INEXACT": "skos:closeMatch",
    "UNREVIEWED": None,
}
