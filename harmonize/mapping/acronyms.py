"""Acronyms expanded from the pair's own vocabularies: ``URI`` at one site is "upper
respiratory infection" when that phrase (initials U, R, I) is written out in some description
of either site, and no other phrase with those initials is.

An encoder that never saw a local acronym places it near any short code-like text; the
expansion gives it the words it stands for. Nothing is looked up outside the two sites.

>>> found = acronym_expansions(["URI", "RSV positive"],
...     ["upper respiratory infection", "lab positive Respiratory Syncytial Virus Infection"])
>>> found
{'URI': 'upper respiratory infection', 'RSV': 'Respiratory Syncytial Virus'}
>>> expand_text("RSV-like illness", found)
'Respiratory Syncytial Virus-like illness'
"""

from __future__ import annotations

import re
from collections import defaultdict

# A token with at least two capitals and nothing but letters (hMPV, RSV, URI; not "Fever").
_ACRONYM = re.compile(r"\b(?=(?:[a-z]*[A-Z]){2})[A-Za-z]{2,6}\b")
_WORDS = re.compile(r"[A-Za-z]+")
_ROMAN = re.compile(r"(?=[IVX])X{0,3}(?:IX|IV|V?I{0,3})[a-d]?", re.IGNORECASE)
_STOP = frozenset({"of", "and", "or", "the", "with", "without", "in", "on", "to", "for", "a"})


def acronyms_in(texts: list[str]) -> set[str]:
    """The acronym-like tokens of ``texts``.

    >>> sorted(acronyms_in(["SOB (shortness of breath)", "Fever", "hMPV detected"]))
    ['SOB', 'hMPV']
    """
    return {m.group(0) for text in texts for m in _ACRONYM.finditer(str(text))}


def _phrases(texts: list[str]) -> dict[str, set[str]]:
    """{initials: written-out phrases} of every run of 2-6 content words in ``texts``
    (hyphenated words count as words: "influenza-like illness" has initials ILI)."""
    found: dict[str, set[str]] = defaultdict(set)
    for text in texts:
        words = _WORDS.findall(str(text))
        for start in range(len(words)):
            if words[start].lower() in _STOP:
                continue
            for end in range(start + 2, min(start + 6, len(words)) + 1):
                run = words[start:end]
                if run[-1].lower() in _STOP or any(w.isupper() and len(w) > 1 for w in run):
                    continue
                initials = "".join(w[0] for w in run).upper()
                found[initials].add(" ".join(run))
    return found


def acronym_expansions(source_texts: list[str], target_texts: list[str]) -> dict[str, str]:
    """{acronym: the one phrase it stands for}: an acronym written at one site only, whose
    initials match exactly one written-out phrase (compared case-insensitively) of the other
    site, or several of which exactly one is a whole description there ("influenza-like
    illness" rather than the "Infection-like illness" inside a longer one). Within one large
    vocabulary initials match by chance ("ALK", "Ankylosis, left knee"), so a phrase is only
    looked for across the pair, and must be a whole description there or a name written in
    capitals ("Respiratory Syncytial Virus"); Roman numerals are no acronyms.

    >>> acronym_expansions(["ILI", "MMR"], ["influenza-like illness", "Infection-like illness, X",
    ...                                    "medial meniscus, right knee"])
    {'ILI': 'influenza-like illness'}
    """
    sites = (list(source_texts), list(target_texts))
    found = [acronyms_in(texts) for texts in sites]
    out = {}
    for here, there in ((0, 1), (1, 0)):
        phrases = _phrases(sites[there])
        whole = {" ".join(_WORDS.findall(str(t))).lower() for t in sites[there]}
        for acronym in sorted(found[here] - found[there], key=lambda a: _first(a, sites[here])):
            if _ROMAN.fullmatch(acronym):
                continue
            written = {p.lower(): p for p in sorted(phrases.get(acronym.upper(), ()))}
            if len(written) > 1:
                written = {k: p for k, p in written.items() if k in whole}
            # A phrase that is a whole description, or a name in capitals, not a chance run.
            named = all(w[0].isupper() for w in next(iter(written.values()), "").split())
            if len(written) == 1 and (named or next(iter(written)) in whole):
                out[acronym] = _as_written(next(iter(written.values())), sites[there])
    return out


def _first(acronym: str, texts: list[str]) -> int:
    """Where ``acronym`` first occurs (keeps the expansions in reading order)."""
    return next(i for i, t in enumerate(texts) if acronym in str(t))


def _as_written(phrase: str, texts: list[str]) -> str:
    """``phrase`` as a description writes it (with its hyphens), else with spaces."""
    pattern = re.compile(r"[\s-]+".join(map(re.escape, phrase.split())), re.IGNORECASE)
    for text in texts:
        match = pattern.search(str(text))
        if match:
            return match.group(0)
    return phrase


def expand_text(text: str, expansions: dict[str, str]) -> str:
    """``text`` with each acronym of ``expansions`` replaced by its phrase; one whose phrase is
    already written out next to it (``SOB (shortness of breath)``) is left as it is."""
    if not expansions:
        return text

    def replace(match: re.Match) -> str:
        acronym = match.group(0)
        phrase = expansions.get(acronym)
        if phrase is None or phrase.lower() in text.lower():
            return acronym
        return phrase

    return _ACRONYM.sub(replace, text)


_TOKEN = re.compile(r"[A-Za-z0-9]+")


def contrast_words(
    source_texts: list[str], target_texts: list[str], min_share: float = 0.02, ratio: float = 0.02
) -> set[str]:
    """Lower-case words of the source descriptions that the target vocabulary all but never
    uses: in at least ``min_share`` of the source descriptions (and 20 of them), and in a share
    of the target's under ``ratio`` times that ("initial encounter", "left" and "right" in
    ICD-10-CM against ICD-9-CM). They cannot match anything there.

    >>> sorted(contrast_words(["fever, left"] * 20 + ["cough"], ["fever", "cough"] * 10))
    ['left']
    """

    def shares(texts: list[str]) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for text in texts:
            for word in {w.lower() for w in _TOKEN.findall(str(text))}:
                counts[word] += 1
        return counts

    source, target = shares(source_texts), shares(target_texts)
    n_source, n_target = max(len(source_texts), 1), max(len(target_texts), 1)
    return {
        w
        for w, n in source.items()
        if n >= max(20, min_share * n_source) and target.get(w, 0) / n_target < ratio * n / n_source
    }


def strip_words(text: str, words: set[str]) -> str:
    """``text`` without ``words`` (and the commas they leave), or unchanged if nothing would
    remain.

    >>> strip_words("Fracture of rib, left side, initial encounter", {"left", "initial"})
    'Fracture of rib side encounter'
    """
    if not words:
        return text
    kept = [t for t in re.split(r"[\s,]+", str(text)) if t and t.lower().strip("()[]") not in words]
    return " ".join(kept) if kept else text
