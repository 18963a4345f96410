"""Patients as sequences of concept-state texts: the study's representation.

Each event becomes the text of its concept in its state: the description when present,
``Not <description>`` when absent (missing counts as absent), and for other levels the declared
level text or ``<description>: <level>``. A site is read either in its own descriptions
(``native``) or, through a code map, in another site's (``mapped`` via stored mappings,
``oracle`` via a gold file). Distinct texts are embedded once; a patient is a row of indices.

>>> state_text("dyspnea", "A")
'Not dyspnea'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace

READINGS = ("native", "mapped", "oracle")


MISSING = ("absent", "separate")


def state_text(
    description: str, value: str, level_text: str | None = None, missing: str = "absent"
) -> str:
    """The text embedded for one concept in one state. Missing counts as absent (the study's
    choice) unless ``missing="separate"``, which embeds ``<description>: missing``. A declared
    level text wins over all of these: for a graded finding such as temperature, P/A/I are
    grades, not presence."""
    if level_text is not None:
        return level_text
    if value == "P":
        return description
    if value == "A" or (value == "M" and missing == "absent"):
        return f"Not {description}"
    if value == "M":
        return f"{description}: missing"
    return f"{description}: {value}"


def parse_state_text(text: str) -> tuple[str, str]:
    """``(description, value)`` of a state text: the inverse of :func:`state_text` (with
    ``missing="separate"``) for texts it built from a description without ``": "``. ``Not X``
    is absent (``"A"``, checked first, so ``Not X: high`` is the absent state of ``X: high``),
    ``X: missing`` missing (``"M"``), ``X: level`` the level, anything else present (``"P"``).
    A declared level text is read by its wording alike.

    >>> [parse_state_text(state_text("fever", v, missing="separate")) for v in "PAM"]
    [('fever', 'P'), ('fever', 'A'), ('fever', 'M')]
    >>> parse_state_text(state_text("temperature", "high"))
    ('temperature', 'high')
    >>> parse_state_text("Not temperature: high"), parse_state_text("")
    (('temperature: high', 'A'), ('', 'P'))
    """
    if text.startswith("Not "):
        return text[4:], "A"
    head, sep, level = text.rpartition(": ")
    if not sep:
        return text, "P"
    return head, "M" if level == "missing" else level


@dataclass
class Encounters:
    """Patients of one site as indices into ``texts``.

    ``ids[i]`` lists patient i's concept-state texts, padded by repeating its first text (a max
    over concepts is unchanged by repeats). A patient with no usable event gets text ``""``.
    """

    ids: np.ndarray  # (n_patients, max_concepts) int64
    texts: list[str]
    subjects: np.ndarray
    y: np.ndarray  # 1 = positive class
    split: np.ndarray  # 'train' / 'test'
    n_dropped_events: int = 0  # events whose code had no mapping

    def subset(self, mask: np.ndarray) -> Encounters:
        return Encounters(
            self.ids[mask],
            self.texts,
            self.subjects[mask],
            self.y[mask],
            self.split[mask],
            self.n_dropped_events,
        )

    def reindex(self, vocabulary: dict[str, int]) -> Encounters:
        """The same patients with ids into a shared text list ``vocabulary``."""
        remap = np.array([vocabulary[t] for t in self.texts], dtype=np.int64)
        return Encounters(
            remap[self.ids],
            list(vocabulary),
            self.subjects,
            self.y,
            self.split,
            self.n_dropped_events,
        )


def _task(ws: Workspace, con, site: str) -> tuple[str, str]:
    row = sql.run_internal(con, "site_task", site=site).fetchone()
    if row is None:
        raise InputError(
            f"site '{site}' has no patients with labels. Add them with 'harmonize add-site {site} "
            "--vocab FILE --patients FILE --label COLUMN=VALUE --replace'."
        )
    return row[0], row[1]


@dataclass
class SiteEvents:
    """What reading a site's patients needs from the workspace: its task's events and labels,
    the code map (None when read natively) and the concepts the texts come from."""

    positive: str
    events: pd.DataFrame
    labels: pd.DataFrame
    text_site: str
    code_map: pd.DataFrame | None
    concepts: pd.DataFrame
    levels: pd.DataFrame


def load_encounters(
    ws: Workspace,
    site: str,
    reading: str = "native",
    via: str | None = None,
    gold: pd.DataFrame | None = None,
    missing: str = "absent",
) -> Encounters:
    """A site's labelled patients, read natively or in ``via``'s concepts.

    ``mapped`` uses the stored mappings of ``site`` onto ``via``; ``oracle`` uses ``gold``
    (columns source_code = this site's code, target_code = via's code; first row per code wins).
    """
    if missing not in MISSING:
        raise InputError(f"unknown missing policy '{missing}': use {' or '.join(MISSING)}")
    if reading not in READINGS:
        raise InputError(f"unknown reading '{reading}': use one of {', '.join(READINGS)}")
    stored = read_site_events(ws, site, reading, via, gold)
    events, n_dropped = recode(stored.events, stored.code_map)
    texts = event_texts(events, stored, site, reading, via, missing)
    return _encode(
        stored.labels, events["subject_id"].to_numpy(), texts, stored.positive, n_dropped
    )


def read_site_events(
    ws: Workspace, site: str, reading: str, via: str | None, gold: pd.DataFrame | None
) -> SiteEvents:
    """The stored events, labels and concepts for one reading, in one read-only connection."""
    with ws.connect(read_only=True) as con:
        ws.require_site(con, site)
        _, positive = _task(ws, con, site)
        events = sql.run_internal(con, "task_events", site=site).df()
        labels = sql.run_internal(con, "task_labels", site=site).df()
        text_site = site
        code_map = None
        if reading != "native":
            if via is None:
                raise InputError(f"reading '{reading}' needs the site to read {site} through")
            ws.require_site(con, via)
            text_site = via
            code_map = _code_map(con, site, via, reading, gold)
        concepts = sql.run_internal(con, "site_concepts", site=text_site).df()
        levels = sql.run_internal(con, "site_levels", site=text_site).df()
    return SiteEvents(positive, events, labels, text_site, code_map, concepts, levels)


def _code_map(con, site: str, via: str, reading: str, gold: pd.DataFrame | None) -> pd.DataFrame:
    """code -> mapped_code: the stored mappings of ``site`` onto ``via``, or the gold file's."""
    if reading == "mapped":
        code_map = sql.run_internal(con, "pair_code_map", source=site, target=via).df()
        if code_map.empty:
            raise InputError(
                f"no mappings of '{site}' onto '{via}' to read it through. "
                f"Run 'harmonize map --source {site} --target {via}' first."
            )
        return code_map
    if gold is None:
        raise InputError(
            "reading 'oracle' needs {gold} FILE (source_code,target_code)", params=("gold",)
        )
    return gold.rename(
        columns={"source_code": "code", "target_code": "mapped_code"}
    ).drop_duplicates("code")[["code", "mapped_code"]]


def recode(events: pd.DataFrame, code_map: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """(events in the mapped codes, how many events were dropped for an unmapped code)."""
    if code_map is None:
        return events, 0
    mapped = dict(zip(code_map["code"], code_map["mapped_code"], strict=True))
    codes = events["code"].map(mapped)
    return events.assign(code=codes).dropna(subset=["code"]), int(codes.isna().sum())


def event_texts(
    events: pd.DataFrame,
    stored: SiteEvents,
    site: str,
    reading: str,
    via: str | None,
    missing: str,
) -> pd.Series:
    """Each event's concept-state text in ``stored.text_site``'s descriptions; a mapped code
    that is not a concept there is refused."""
    descriptions = dict(zip(stored.concepts["code"], stored.concepts["description"], strict=True))
    unknown = sorted(set(events["code"]) - set(descriptions))
    if unknown:
        where = "the gold file" if reading == "oracle" else "the stored mappings"
        fix = (
            "Fix the gold file"
            if reading == "oracle"
            else f"Re-run 'harmonize map --source {site} --target {via}'"
        )
        raise InputError(
            f"{where} map {site}'s codes onto '{unknown[0]}', which is not a concept of site "
            f"'{stored.text_site}'. {fix}."
        )
    level_texts = {(c, v): t for c, v, t in stored.levels.itertuples(index=False)}
    # Few distinct (code, value) pairs exist, so each text is built once, then looked up.
    keys = events["code"].astype(str) + "\x1f" + events["value"].astype(str)
    text_of = {}
    for key in pd.unique(keys):
        code, value = key.split("\x1f", 1)
        level = level_texts.get((code, value))
        text_of[key] = state_text(descriptions[code], value, level, missing)
    return keys.map(text_of)


def _encode(
    labels: pd.DataFrame,
    event_subjects: np.ndarray,
    texts: pd.Series,
    positive: str,
    n_dropped: int,
) -> Encounters:
    codes, uniques = pd.factorize(texts, sort=False)
    vocabulary = {t: i for i, t in enumerate(uniques)}
    subjects = labels["subject_id"].to_numpy()
    rows = pd.Index(subjects).get_indexer(event_subjects).astype(np.int64)
    text_ids = codes.astype(np.int64)
    counts = np.bincount(rows, minlength=len(subjects))
    if (counts == 0).any():
        vocabulary.setdefault("", len(vocabulary))
    width = max(int(counts.max()) if len(counts) else 0, 1)
    first = np.full(len(subjects), vocabulary.get("", 0), dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    rows, text_ids = rows[order], text_ids[order]
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    positions = np.arange(len(rows)) - starts[rows]
    has = counts > 0
    first[has] = text_ids[starts[has]]
    ids = np.repeat(first[:, None], width, axis=1)
    ids[rows, positions] = text_ids
    return Encounters(
        ids=ids,
        texts=list(vocabulary),
        subjects=subjects,
        y=(labels["label_value"].to_numpy() == positive).astype(np.int64),
        split=labels["split"].to_numpy(),
        n_dropped_events=n_dropped,
    )
