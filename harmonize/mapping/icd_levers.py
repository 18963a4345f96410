"""Zero-shot levers for ICD-10-CM concepts, from what the ICD-10-CM tabular list itself states
(:mod:`harmonize.mapping.icd_tabular`, the package ``simple-icd-10-cm``); nothing here reads
the GEMs or any other mapping. Each lever gives a concept the texts it is searched by:

- ``icd-inclusion``: the code's inclusion terms (and its ancestors', up to the category) as
  further texts beside its description; not for codes whose 7th character is a subsequent
  encounter or a sequela (the terms name the acute condition).
- ``icd-seventh``: a 7th-character code is searched by its 7th-character definition instead of
  "<base>, <definition>": "initial encounter for closed fracture" puts "closed" before the
  base's "fracture"; "subsequent encounter for closed fracture with nonunion" becomes
  "Nonunion of closed fracture" (the condition the encounter is for); a bare "initial
  encounter" leaves the base alone.
- ``icd-notes``: the tabular's instructions "X - code to Y with 7th character Z" (under Z47,
  Z47.2, Z48, Z48.81: "aftercare for healing fracture - code to fracture with 7th character
  D") give every code they send there the text "X, <base>"; and where the tabular says that
  sequelae are late effects (the notes of E64 and O94), a sequela code gets "Late effect of
  <base>". Such a text is searched among the target concepts of its kind: those whose
  description has every word X shares with the title of the code the note stands under
  ("aftercare" of Z47 "Orthopedic aftercare"), or the words "late effect" (when no target
  has them, among all).
- ``icd-crossref`` (with ``icd-notes``): those texts also with, in place of the base, the
  terms by which the tabular's other notes point at the code's category or subcategory
  ("traumatic fracture (S12.-, ..., S92.-)" under M84.4, "fracture of lower leg and ankle
  (S82.-)" under S72), at most three, the most specific first.

A concept with lever texts is searched by those (its best text wins, texts searched among
their kind first); with ``icd-inclusion`` its description stays one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harmonize.mapping.icd_tabular import (
    Tabular,
    inclusion_terms,
    referenced_terms,
    seventh_character,
)

ICD_LEVERS = ("icd-inclusion", "icd-seventh", "icd-notes", "icd-crossref")
ICD10CM = "ICD10CM"

# "aftercare for healing fracture-code to fracture with 7th character D", "encounter for
# aftercare following injury - code to Injury, by site, with appropriate 7th character for
# subsequent encounter": (X, Y, the 7th character or what its definition starts with).
CODE_TO = re.compile(
    r"^(?P<phrase>.+?)\s*-\s*code (?:to |the )?(?P<what>[^,]+?),?(?: by site,?)? with "
    r"(?:appropriate )?7th character (?:(?P<char>[A-Z])|for (?P<kind>.+))$",
    re.IGNORECASE,
)
LATE = re.compile(r"sequelae?'? include.*\b(late effects?)\b", re.IGNORECASE)


STOPWORDS = frozenset({"a", "an", "and", "by", "for", "in", "of", "on", "or", "the", "to",
                       "with", "other", "unspecified", "specified"})  # fmt: skip


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` without STOPWORDS, in order."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]


@dataclass(frozen=True)
class LeverText:
    """A text a concept is searched by, and the words a target's description must have for
    the text to be searched among them first (() : among all targets)."""

    text: str
    kind: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeToRule:
    """One "X - code to Y with 7th character Z" instruction of the tabular, under ``code``
    (whose title shares the words ``kind`` with X)."""

    phrase: str
    what: str  # the head word of Y: "fracture", "injury"
    char: str | None  # the 7th character, or
    kind: str | None  # what the 7th character's definition starts with
    code: str
    title_words: tuple[str, ...] = ()

    def applies(self, base: str, chapter_title: str, char: str, definition: str) -> bool:
        """Whether a code (base description, chapter title, 7th character and definition) is
        one the instruction sends X to."""
        if self.char is not None and char != self.char:
            return False
        if self.kind is not None and not definition.lower().startswith(self.kind.lower()):
            return False
        word = self.what.lower()
        return word in base.lower() or chapter_title.lower().startswith(word)


def code_to_rules(table: Tabular) -> list[CodeToRule]:
    """Every "X - code to Y with 7th character Z" note of the tabular, in file order."""
    rules = []
    for code, _kind, text in table.notes:
        match = CODE_TO.match(text)
        if match is None:
            continue
        what = re.sub(r"^the ", "", match["what"].strip(), flags=re.IGNORECASE).split()[0]
        phrase = match["phrase"].strip()
        title = set(words(table.codes[code].description)) if code in table.codes else set()
        shared = tuple(dict.fromkeys(w for w in words(phrase) if w in title))
        rules.append(CodeToRule(phrase, what.strip(","), match["char"], match["kind"], code,
                                shared))  # fmt: skip
    return rules


def late_effect_term(table: Tabular) -> tuple[str | None, list[str]]:
    """("late effect", the codes whose notes say sequelae include late effects), or
    (None, []) when no note says so."""
    codes = [code for code, _kind, text in table.notes if LATE.search(text)]
    return ("late effect" if codes else None), codes


def _base(description: str, definition: str, fallback: str) -> str:
    """The description without its ", <7th-character definition>" ending (the tabular's base
    description when the stored one ends otherwise)."""
    suffix = ", " + definition
    if description.lower().endswith(suffix.lower()):
        return description[: -len(suffix)]
    return fallback or description


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def seventh_texts(base: str, definition: str) -> list[str]:
    """The base description rewritten by its 7th-character definition (see the module).

    >>> seventh_texts("Fracture of neck of right femur", "initial encounter for closed fracture")
    ['Closed fracture of neck of right femur']
    >>> seventh_texts("Displaced fracture of left patella",
    ...               "initial encounter for open fracture type IIIA, IIIB, or IIIC")
    ['Displaced open fracture of left patella']
    >>> seventh_texts("Fracture of left talus",
    ...               "subsequent encounter for open fracture type I or II with malunion")
    ['Malunion of open fracture']
    >>> seventh_texts("Open wound of scalp", "initial encounter"), seventh_texts("X", "sequela")
    (['Open wound of scalp'], [])
    """
    text = definition.lower()
    if text == "initial encounter":
        return [base]
    initial = re.match(r"initial encounter for (.+)$", text)
    if initial:
        what = re.sub(r" type [ivxabc, or]+$| nos$", "", initial[1]).split()
        head, qualifiers = what[-1], " ".join(what[:-1])
        at = base.lower().find(head)
        if at < 0 or not qualifiers:
            return [base]
        rewritten = base[:at] + qualifiers + " " + base[at:].lower()
        return [rewritten[:1].upper() + rewritten[1:]]
    later = re.match(r"subsequent encounter for (.+?) with (.+)$", text)
    if later:
        what = re.sub(r" type [ivxabc, or]+$", "", later[1])
        return [f"{later[2][:1].upper()}{later[2][1:]} of {what}"]
    return []


def seventh_text(text: str, definition: str) -> LeverText:
    """A text of :func:`seventh_texts`; one that names the condition a subsequent encounter is
    for ("Nonunion of closed fracture") is searched among the targets that name it.

    >>> seventh_text("Nonunion of closed fracture",
    ...              "subsequent encounter for closed fracture with nonunion").kind
    ('nonunion',)
    """
    later = re.match(r"subsequent encounter for .+? with (.+)$", definition.lower())
    return LeverText(text, tuple(words(later[1])) if later else ())


def concept_texts(
    codes: Sequence[str],
    descriptions: Sequence[str],
    systems: Sequence[str | None],
    levers: Sequence[str],
    table: Tabular,
) -> dict[int, list[LeverText]]:
    """Row -> the texts that row's concept is searched by, for the ICD-10-CM concepts the
    ``levers`` change (rows left out keep their description alone)."""
    rules = code_to_rules(table) if "icd-notes" in levers else []
    late = late_effect_term(table)[0] if "icd-notes" in levers else None
    out: dict[int, list[str]] = {}
    for row, (code, description, system) in enumerate(zip(codes, descriptions, systems,
                                                          strict=True)):  # fmt: skip
        if system != ICD10CM:
            continue
        texts = _lever_texts(str(code).replace(".", "").upper(), description, levers, table,
                             rules, late)  # fmt: skip
        if texts and texts != [LeverText(description)]:
            out[row] = texts
    return out


def _lever_texts(
    code: str,
    description: str,
    levers: Sequence[str],
    table: Tabular,
    rules: list[CodeToRule],
    late: str | None,
) -> list[LeverText]:
    """One concept's texts under the levers ([] : unchanged)."""
    found = seventh_character(code, table)
    later = found is not None and re.match("subsequent|sequela", found[2].lower()) is not None
    texts: list[LeverText] = []
    if found is not None:
        base_code, char, definition = found
        entry = table.codes[base_code]
        base = _base(description, definition, entry.description)
        if "icd-seventh" in levers:
            texts += [seventh_text(t, definition) for t in seventh_texts(base, definition)]
        chapter = table.chapters.get(entry.chapter, "")
        applying = [r for r in rules if r.applies(base, chapter, char, definition)]
        # the most general instructions only: those under the shortest codes (Z47 and Z48,
        # not Z47.2 and Z48.81, when several send a code there)
        shortest = min((len(r.code) for r in applying), default=0)
        bases = [base]
        if "icd-crossref" in levers and (applying or late is not None):
            bases += referenced_terms(code, table)
        for name in bases:
            texts += [
                LeverText(f"{r.phrase}, {name}", r.title_words)
                for r in applying
                if len(r.code) == shortest
            ]
            if late is not None and definition.lower().startswith("sequela"):
                text = f"{late[:1].upper()}{late[1:]} of {_lower_first(name)}"
                texts.append(LeverText(text, tuple(words(late))))
    if "icd-inclusion" in levers and not later:
        terms = [LeverText(t) for t in inclusion_terms(code, table)]
        if terms:
            texts = (texts or [LeverText(description)]) + [t for t in terms if t not in texts]
    return list(dict.fromkeys(texts))
