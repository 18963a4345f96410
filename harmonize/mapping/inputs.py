"""What ``map`` is told and what it reads: its settings checked, and the two sites read once.

:func:`map_settings` refuses bad options before anything is read; :func:`read_pair` then reads
everything the mapping needs of the two sites (indexes, concepts, people's decisions, the
calibration, the previous mapping, known pairs and usage) in one go, so that the later stages
work on data (:class:`SitePair`) and never go back to the workspace or the index.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.config import (
    DEFAULT_K,
    DEFAULT_MODEL,
    KNOWN_DEPTH,
    KNOWN_TRAIN_MAX,
    STRATEGIES,
    ZERO_SHOT_LEVERS,
)
from harmonize.core.errors import InputError, literal
from harmonize.core.workspace import Workspace
from harmonize.embed.base import Encoder
from harmonize.embed.registry import get_encoder
from harmonize.index.faiss_index import faiss_device
from harmonize.index.site_index import load_pair_indexes
from harmonize.mapping.calibration import Calibration, load_calibration
from harmonize.mapping.learn import Learned, learn_from_decisions, merge_known, rejected_rows
from harmonize.mapping.rerank.cooccurrence import Usage, occurrence_matrix
from harmonize.mapping.rerank.known_pairs import KnownPairs, load_known_pairs
from harmonize.mapping.rerank.model import reranker_sample_size
from harmonize.mapping.retrieve import SiteTexts
from harmonize.mapping.vocabulary import Direct, code_lookup, read_site_texts

if TYPE_CHECKING:
    import duckdb
    import faiss

_PAIR = ["source_code", "target_code"]


@dataclass(frozen=True)
class MapSettings:
    """The options of one ``map`` run, as :func:`map_settings` checked them; ``train_max`` is
    the known-pairs reranker's training sample size (``reranker_concepts`` or its default);
    ``learn`` makes people's decisions known pairs (:mod:`harmonize.mapping.learn`)."""

    model: str = DEFAULT_MODEL
    k: int = DEFAULT_K
    min_score: float | None = None
    strategy: str = "best"
    output: Path | None = None
    device: str = "auto"
    min_confidence: float | None = None
    known: str | Path | None = None
    usage: bool = False
    reranker_concepts: int | None = None
    learn: bool = True
    train_max: int = KNOWN_TRAIN_MAX
    code_system: str | None = None  # look source codes up in this target vocabulary first
    # With nothing known, the levers of mapping.zeroshot (ZERO_SHOT_LEVERS); (): plain search.
    zero_shot: tuple[str, ...] = ZERO_SHOT_LEVERS

    @property
    def floor(self) -> float:
        """The lowest score a mapping may have (-inf when there is no ``min_score``)."""
        return -np.inf if self.min_score is None else float(self.min_score)

    def depth(self, reranks: bool) -> int:
        """How many candidates the search finds per concept (the reranker wants more)."""
        return max(self.k, KNOWN_DEPTH) if reranks else self.k

    @property
    def levers(self) -> tuple[str, ...]:
        """The zero-shot levers asked for: none with a known-pairs file, a fused model or a
        strategy other than best (:mod:`harmonize.mapping.zeroshot`; learned decisions also
        turn them off, see ``mapping.stages.zero_shots``)."""
        if self.known is not None or self.strategy != "best" or "+" in self.model:
            return ()
        return tuple(self.zero_shot)


def map_settings(source: str, target: str, **options) -> MapSettings:
    """``options`` (:class:`MapSettings`' fields) checked for mapping ``source`` onto
    ``target``, before anything is read.

    >>> map_settings("a", "b", k=3).depth(reranks=False)
    3
    >>> map_settings("a", "b", k=0)
    Traceback (most recent call last):
    ...
    harmonize.core.errors.InputError: k must be at least 1, got 0
    """
    settings = MapSettings(**options)
    _check_ranges(settings)
    if source == target:
        raise InputError(f"source and target are the same site '{source}': pick two sites")
    train_max = _check_known_options(settings)
    _check_levers(settings.zero_shot)
    output = _checked_output(settings.output)
    return replace(settings, output=output, train_max=train_max)


def _check_ranges(settings: MapSettings) -> None:
    if settings.strategy not in STRATEGIES:
        raise InputError(
            f"unknown strategy '{settings.strategy}': use one of {', '.join(STRATEGIES)}"
        )
    if settings.k < 1:
        raise InputError(f"{{k}} must be at least 1, got {settings.k}", params=("k",))
    if settings.min_score is not None and not -1.0 <= settings.min_score <= 1.0:
        raise InputError(
            f"{{min_score}} is a cosine similarity between -1 and 1, got {settings.min_score}",
            params=("min_score",),
        )
    if settings.min_confidence is not None and not 0.0 <= settings.min_confidence <= 1.0:
        raise InputError(
            f"{{min_confidence}} is a probability between 0 and 1, got {settings.min_confidence}",
            params=("min_confidence",),
        )


def _check_known_options(settings: MapSettings) -> int:
    """The options only the known-pairs reranker reads need ``known``, and it needs strategy
    best; gives the reranker's training sample size."""
    if settings.usage and settings.known is None:
        raise InputError(
            "{usage} compares usage inside the {known} reranker: add {known} FILE",
            params=("usage", "known"),
        )
    if settings.reranker_concepts is not None and settings.known is None:
        raise InputError(
            "{reranker_concepts} sets how the {known} reranker learns: add {known} FILE",
            params=("reranker_concepts", "known"),
        )
    train_max = reranker_sample_size(settings.reranker_concepts)
    if settings.known is not None and settings.strategy != "best":
        raise InputError(
            "{known} reranks each concept's candidates: use {strategy} best, "
            f"not {settings.strategy}",
            params=("known", "strategy"),
        )
    return train_max


def _check_levers(levers: tuple[str, ...]) -> None:
    """Refuses a zero-shot lever that does not exist."""
    from harmonize.core.config import ALL_ZERO_SHOT_LEVERS

    for lever in levers:
        if lever not in ALL_ZERO_SHOT_LEVERS:
            raise InputError(
                f"unknown zero-shot lever '{literal(lever)}': use {', '.join(ALL_ZERO_SHOT_LEVERS)}"
            )


def _checked_output(output: str | Path | None) -> Path | None:
    """``output`` as a Path, refused unless it is a .csv file in an existing folder."""
    if output is None:
        return None
    output = Path(output)
    if output.suffix.lower() != ".csv":
        raise InputError(
            f"{{output}} must be a .csv file, got {literal(output)}", params=("output",)
        )
    if not output.parent.resolve().is_dir():
        raise InputError(
            f"{{output}} folder does not exist: {literal(output.parent)}", params=("output",)
        )
    return output


@dataclass
class SitePair:
    """The two sites as ``map`` reads them, once, up front: names, the model (``spec``, fused
    parts joined by "+") and the FAISS ``device``, each model part's (source, target) indexes,
    both sites' concepts (with descriptions and parents), people's decisions on the pair (the
    newest per concept, and the rejected pairs still standing), the model's calibration, the
    pair's previous mappings, what ``map`` learns from the decisions (``learned``), the known
    pairs the reranker reads (``map --known``'s and the decisions'), and with ``usage`` both
    sites' occurrences."""

    source: str
    target: str
    spec: str
    device: str
    indexes: list[tuple[faiss.Index, faiss.Index]]
    source_concepts: pd.DataFrame
    target_concepts: pd.DataFrame
    decisions: pd.DataFrame
    previous: pd.DataFrame
    calibration: Calibration | None
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_PAIR))
    learned: Learned | None = None
    known: KnownPairs | None = None
    usage: Usage | None = None
    # both sites' index rows as concepts (synonyms, 'Maps to'), and the code lookups
    texts: tuple[SiteTexts, SiteTexts] | None = None
    direct: Direct | None = None
    source_codes: np.ndarray = field(init=False)
    target_codes: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.source_codes = self.source_concepts["code"].to_numpy(dtype=object)
        self.target_codes = self.target_concepts["code"].to_numpy(dtype=object)

    @property
    def most_rejected(self) -> int:
        """The most targets rejected for one concept (0: none)."""
        return max((len(t) for t in self.rejected_rows.values()), default=0)

    @property
    def rejected_rows(self) -> dict[int, set[int]]:
        """{source row: target rows rejected}, the pairs never proposed again."""
        if self.learned is not None:
            return self.learned.rejected
        return rejected_rows(self.rejected, self.source_codes, self.target_codes)


def read_pair(ws: Workspace, source: str, target: str, settings: MapSettings) -> SitePair:
    """Everything mapping ``source`` onto ``target`` needs, refusing what is missing (a site,
    an index, events for ``usage``, a calibration for ``min_confidence``)."""
    # "a+b" fuses the rankings of several models (each needs its own index).
    encoders = [get_encoder(spec) for spec in settings.model.split("+")]
    ws.require()
    device = faiss_device(settings.device)
    with ws.connect(read_only=True) as con:
        pair = _read_stored(ws, con, source, target, encoders, settings, device)
        occurrences = (
            [sql.run_internal(con, "site_occurrences", site=s).df() for s in (source, target)]
            if settings.known is not None and settings.usage
            else None
        )
    if settings.known is not None:
        pair.known = load_known_pairs(settings.known, pair.source_codes, pair.target_codes)
    if settings.learn:
        _learn(pair, settings)
    if occurrences is not None:
        pair.usage = _usage(pair, occurrences)
    if pair.known is not None:
        pair.calibration = None  # the reranker's calibrated score is the confidence
    elif settings.min_confidence is not None and pair.calibration is None:
        raise InputError(
            f"{{min_confidence}} needs a calibration of model {literal(pair.spec)}. Run "
            "'harmonize calibrate --source S --target T --gold FILE' on a mapped pair with "
            "known answers first.",
            params=("min_confidence",),
        )
    return pair


def _learn(pair: SitePair, settings: MapSettings) -> None:
    """The decisions as known pairs (with a ``map --known`` file's, decisions first) when there
    are enough of them and the strategy is best."""
    learned = learn_from_decisions(
        pair.decisions, pair.rejected, pair.source_codes, pair.target_codes
    )
    if learned.active and settings.strategy != "best":
        learned.active = False
        learned.skipped = (
            f"not learned from (the reranker needs strategy best, not {settings.strategy})"
        )
    pair.learned = learned
    if learned.active or (pair.known is not None and learned.n_decisions):
        pair.known = merge_known(pair.known, learned)


def _read_stored(
    ws: Workspace,
    con: duckdb.DuckDBPyConnection,
    source: str,
    target: str,
    encoders: list[Encoder],
    settings: MapSettings,
    device: str,
) -> SitePair:
    ws.require_site(con, source)
    ws.require_site(con, target)
    indexes = [load_pair_indexes(ws, con, source, target, e) for e in encoders]
    spec = "+".join(e.spec for e in encoders)
    pair = SitePair(
        source=source,
        target=target,
        spec=spec,
        device=device,
        indexes=indexes,
        source_concepts=sql.run_internal(con, "site_hierarchy", site=source).df(),
        target_concepts=sql.run_internal(con, "site_hierarchy", site=target).df(),
        decisions=sql.run_internal(con, "latest_decisions", source=source, target=target).df(),
        rejected=sql.run_internal(con, "pair_rejections", source=source, target=target).df(),
        calibration=load_calibration(con, spec),
        previous=sql.run_internal(con, "pair_mappings", source=source, target=target).df(),
    )
    pair.texts = (
        read_site_texts(con, source, len(pair.source_concepts)),
        read_site_texts(con, target, len(pair.target_concepts)),
    )
    pair.direct = code_lookup(con, source, target, settings.code_system, pair.texts[1])
    return pair


def _usage(pair: SitePair, occurrences: list[pd.DataFrame]) -> Usage:
    """Both sites' occurrence matrices, refused when a site has no events."""
    for site, occ in zip((pair.source, pair.target), occurrences, strict=True):
        if occ.empty:
            raise InputError(
                f"{{usage}} needs events at both sites; site '{literal(site)}' has none "
                "(add-site --events, --patients, --omop or --meds)",
                params=("usage",),
            )
    return Usage(
        occurrence_matrix(occurrences[0], pair.source_codes),
        occurrence_matrix(occurrences[1], pair.target_codes),
    )
