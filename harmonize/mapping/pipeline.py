"""``map`` as named stages: read the two sites, search, choose, tabulate, store.

:func:`map_sites` checks its options (:func:`~harmonize.mapping.inputs.map_settings`), reads
what it needs of both sites once (:func:`~harmonize.mapping.inputs.read_pair`), then passes that
data down: the nearest-neighbour search, the choice of one target per concept (a strategy, or
the known-pairs reranker of :mod:`harmonize.mapping.rerank`), the candidates and mappings
tables with their confidence and people's decisions, and one transaction that stores the run.

The options of :func:`map_sites`:

- ``known`` (a CSV of source_code,target_code pairs already mapped) switches on the hierarchy
  votes and the learned reranker of :mod:`harmonize.mapping.rerank`; its calibrated score is then
  each mapping's confidence. The reranker learns from at most ``reranker_concepts`` known
  concepts (default KNOWN_TRAIN_MAX; more is better and slower); ``usage`` adds both sites'
  usage signals when both have events (:mod:`harmonize.mapping.rerank.cooccurrence`).
- ``learn`` (the default) makes the pair's accepted and set decisions known pairs of that
  reranker for the concepts nobody has decided (:mod:`harmonize.mapping.learn`); a rejected
  pair is never proposed again.
- ``code_system`` looks every source code up in that target vocabulary before the search
  (:mod:`harmonize.mapping.vocabulary`).
- ``zero_shot``: with nothing known (strategy best, one model, one text per concept) these
  levers of :mod:`harmonize.mapping.zeroshot` apply (acronyms expanded from both vocabularies,
  hub-corrected search, optionally self-training); () is plain search.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harmonize import __version__
from harmonize.core import sql
from harmonize.core.config import DEFAULT_K, DEFAULT_MODEL, ZERO_SHOT_LEVERS
from harmonize.core.results import TableResult
from harmonize.core.timing import Stages
from harmonize.core.workspace import Workspace, atomic_path
from harmonize.mapping.calibration import confidence
from harmonize.mapping.inputs import MapSettings, SitePair, map_settings, read_pair
from harmonize.mapping.review import apply_decisions
from harmonize.mapping.stages import (
    Chosen,
    Found,
    apply_vocabulary,
    choose_mappings,
    run_method,
    search_pair,
    zero_shot_found,
    zero_shots,
)
from harmonize.mapping.vocabulary import MAPS_TO

if TYPE_CHECKING:
    pass


@dataclass
class MapResult(TableResult):
    """What one ``map`` run did; :meth:`to_frame` is its mappings table."""

    run_id: str
    source: str
    target: str
    model: str
    strategy: str
    k: int
    min_score: float | None
    n_source: int
    n_mapped: int
    n_candidates: int
    seconds: float
    # source_code, source_description, target_code, target_description, score
    mappings: pd.DataFrame
    changes: dict[str, int] | None = None  # against the pair's previous mappings
    n_known: int | None = None  # source concepts with known targets (map --known)
    used_usage: bool = False  # the reranker also compared both sites' usage
    note: str = ""  # what map --known adds to the summary (the equivalence model)
    learned: str = ""  # what the summary says of people's decisions (mapping.learn)
    zero_shot: str = ""  # the zero-shot levers used (mapping.zeroshot), "" for none

    def to_frame(self) -> pd.DataFrame:
        """The mappings: one row per mapped source concept, as stored."""
        return self.mappings.copy()

    @property
    def summary(self) -> str:
        floor = "none" if self.min_score is None else f"{self.min_score:g}"
        changed = ""
        if self.changes is not None:
            changed = (
                "; against the previous mapping: {remapped} remapped, {new} new, "
                "{dropped} dropped, {kept} unchanged".format(**self.changes)
            )
        if self.n_known is not None:
            changed += (
                f"; {self.n_known} concepts kept their known targets, the rest were reranked "
                "by a reranker learned from them"
                + (" (with both sites' usage signals)" if self.used_usage else "")
            )
        changed += self.learned + self.note
        return (
            f"mapped {self.n_mapped} of {self.n_source} '{self.source}' concepts onto "
            f"'{self.target}' (model {self.model}, strategy {self.strategy}, k={self.k}, "
            f"min-score {floor}{', ' + self.zero_shot if self.zero_shot else ''}) in "
            f"{self.seconds:.1f}s; run {self.run_id}{changed}"
        )


def compare_mappings(previous: pd.DataFrame, current: pd.DataFrame) -> dict[str, int] | None:
    """How a pair's mapping changed: None when there was none before.

    >>> old = pd.DataFrame({"source_code": ["a", "b"], "target_code": ["x", "y"]})
    >>> new = pd.DataFrame({"source_code": ["a", "c"], "target_code": ["z", "y"]})
    >>> compare_mappings(old, new)
    {'remapped': 1, 'new': 1, 'dropped': 1, 'kept': 0}
    """
    if previous.empty:
        return None
    before = dict(zip(previous["source_code"], previous["target_code"], strict=True))
    after = dict(zip(current["source_code"], current["target_code"], strict=True))
    both = before.keys() & after.keys()
    return {
        "remapped": sum(before[c] != after[c] for c in both),
        "new": len(after.keys() - before.keys()),
        "dropped": len(before.keys() - after.keys()),
        "kept": sum(before[c] == after[c] for c in both),
    }


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def map_sites(
    ws: Workspace,
    source: str,
    target: str,
    model: str = DEFAULT_MODEL,
    k: int = DEFAULT_K,
    min_score: float | None = None,
    strategy: str = "best",
    output: str | Path | None = None,
    device: str = "auto",
    min_confidence: float | None = None,
    known: str | Path | None = None,
    usage: bool = False,
    reranker_concepts: int | None = None,
    code_system: str | None = None,
    learn: bool = True,
    zero_shot: tuple[str, ...] = ZERO_SHOT_LEVERS,
) -> MapResult:
    """Maps every concept of ``source`` onto ``target`` and stores candidates and mappings.

    Re-running a pair replaces that pair's candidates and mappings in one transaction; the
    options are described in this module's docstring.

    >>> import tempfile
    >>> from harmonize.index.site_index import build_site_index
    >>> from harmonize.sites.registry import add_site
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("code,description\\nA1,reported fever\\nA2,dry cough\\n")
    >>> _ = (folder / "b.csv").write_text("code,description\\nB1,fever\\nB2,coughing dry\\n")
    >>> ws = Workspace(folder / "ws")
    >>> for site in ("a", "b"):
    ...     _ = add_site(ws, site, folder / f"{site}.csv")
    ...     _ = build_site_index(ws, site, "lexical", device="cpu")
    >>> result = map_sites(ws, "b", "a", model="lexical", k=2, device="cpu")
    >>> frame = result.to_frame()
    >>> sorted(zip(frame["source_code"], frame["target_code"]))
    [('B1', 'A1'), ('B2', 'A2')]
    """
    settings = map_settings(
        source, target, model=model, k=k, min_score=min_score, strategy=strategy, output=output,
        device=device, min_confidence=min_confidence, known=known, usage=usage,
        reranker_concepts=reranker_concepts, code_system=code_system, learn=learn,
        zero_shot=tuple(zero_shot),
    )  # fmt: skip
    started = time.perf_counter()
    clock = Stages("map", ("read", "search", "choose", "store"))
    pair = read_pair(ws, source, target, settings)
    clock.done("read")
    found = zero_shot_found(ws, pair, settings) if zero_shots(pair, settings) else None
    found = found or search_pair(pair, settings)
    clock.done("search")
    chosen = apply_vocabulary(pair, settings, found, choose_mappings(pair, settings, found))
    tables = run_tables(pair, settings, found, chosen, new_run_id())
    clock.done("choose")
    preview = store_run(ws, pair, tables)
    if settings.output is not None:
        write_output(settings.output, preview, tables)
    clock.done("store")
    return map_result(pair, settings, chosen, tables, preview, time.perf_counter() - started)


def map_result(
    pair: SitePair,
    settings: MapSettings,
    chosen: Chosen,
    tables: RunTables,
    preview: pd.DataFrame,
    seconds: float,
) -> MapResult:
    """What :func:`map_sites` tells its caller about the stored run."""
    return MapResult(
        **tables.run,
        changes=compare_mappings(pair.previous, tables.mappings),
        n_known=None if settings.known is None else len(pair.known.rows),
        used_usage=pair.usage is not None,
        note=chosen.note,
        zero_shot=chosen.zero_shot,
        learned=pair.learned.note if pair.learned is not None else "",
        n_candidates=len(tables.candidates),
        seconds=seconds,
        mappings=preview,
    )


@dataclass
class RunTables:
    """What one run stores: its ``run`` row, the ``method`` it records, the candidates and
    the mappings (with people's decisions applied) in the stored tables' columns."""

    run: dict[str, Any]
    method: str
    candidates: pd.DataFrame
    mappings: pd.DataFrame
    matches: pd.DataFrame | None = None


def run_tables(
    pair: SitePair, settings: MapSettings, found: Found, chosen: Chosen, run_id: str
) -> RunTables:
    """The candidates and mappings tables of the run ``run_id``, and its run row."""
    method = run_method(pair, settings)
    long = chosen.candidates
    candidates = pd.DataFrame(
        {
            "source_site": pair.source,
            "source_code": pair.source_codes[long["source"].to_numpy(dtype=np.int64)],
            "target_site": pair.target,
            "target_code": pair.target_codes[long["target"].to_numpy(dtype=np.int64)],
            "rank": long["rank"].to_numpy(dtype=np.int32),
            "score": long["score"].to_numpy(dtype=np.float64),
            "method": method,
            "run_id": run_id,
        }
    )
    mappings = mapping_table(pair, settings, chosen, method)
    # Site and run columns are the same on every row, people's decisions included.
    mappings = apply_decisions(pair.decisions, mappings, candidates).assign(
        source_site=pair.source, target_site=pair.target, run_id=run_id
    )
    run = {
        "run_id": run_id,
        "source": pair.source,
        "target": pair.target,
        "model": pair.spec,
        "strategy": settings.strategy,
        "k": settings.k,
        "min_score": settings.min_score,
        "n_source": int(found.scores.shape[0]),
        "n_mapped": len(mappings),
    }
    matches = None
    if chosen.matches is not None and len(chosen.matches):
        matches = chosen.matches.assign(source_site=pair.source, target_site=pair.target,
                                        run_id=run_id)  # fmt: skip
        via = candidates.merge(matches, on=["source_code", "target_code"], how="left")["via_code"]
        candidates["method"] = np.where(via.notna().to_numpy(), method + MAPS_TO, method)
    return RunTables(run, method, candidates, mappings, matches)


def mapping_table(
    pair: SitePair, settings: MapSettings, chosen: Chosen, method: str
) -> pd.DataFrame:
    """The chosen mappings with their confidence (the reranker's, or the calibration's of the
    score; below ``min_confidence`` left out) and the predicate the known pairs assert."""
    rows = np.array(chosen.rows, dtype=object).reshape(-1, 3)
    mappings = pd.DataFrame(
        {
            "source_code": pair.source_codes[rows[:, 0].astype(int)],
            "target_code": pair.target_codes[rows[:, 1].astype(int)],
            "score": rows[:, 2].astype(np.float64),
            "method": chosen.methods if chosen.methods is not None else method,
        }
    )
    if chosen.confidence is not None:
        mappings["confidence"] = chosen.confidence
    elif pair.calibration is not None:
        mappings["confidence"] = confidence(pair.calibration, mappings["score"].to_numpy(float))
    else:
        mappings["confidence"] = np.nan
    if settings.min_confidence is not None:  # read_pair refused it without a confidence
        mappings = mappings[mappings["confidence"] >= settings.min_confidence]
    asserted = pair.known.asserted if pair.known is not None else {}
    pairs_chosen = zip(mappings["source_code"], mappings["target_code"], strict=True)
    mappings["predicate"] = pd.Series([asserted.get(p) for p in pairs_chosen], dtype=object)
    return mappings


def write_output(path: Path, preview: pd.DataFrame, tables: RunTables) -> None:
    """The stored mappings as a CSV file, with the run's method and id."""
    with atomic_path(path) as tmp:
        preview.assign(method=tables.method, run_id=tables.run["run_id"]).to_csv(tmp, index=False)


def store_run(ws: Workspace, pair: SitePair, tables: RunTables) -> pd.DataFrame:
    """Replaces the pair's candidates and mappings with the run's, in one transaction; gives
    the stored mappings as :data:`MapResult.mappings` shows them."""
    source, target = pair.source, pair.target
    with ws.transaction() as con:
        sql.run_internal(con, "delete_pair_candidates", source=source, target=target)
        sql.run_internal(con, "delete_pair_mappings", source=source, target=target)
        sql.run_internal(con, "delete_pair_matches", source=source, target=target)
        if tables.matches is not None:
            con.register("new_matches", tables.matches)
            sql.run_internal(con, "insert_matches")
            con.unregister("new_matches")
        con.register("new_candidates", tables.candidates)
        sql.run_internal(con, "insert_candidates")
        con.unregister("new_candidates")
        con.register("new_mappings", tables.mappings)
        sql.run_internal(con, "insert_mappings")
        con.unregister("new_mappings")
        sql.run_internal(con, "insert_run", **tables.run, version=__version__)
        return sql.run_internal(con, "mapping_preview", source=source, target=target).df()
