"""The embedded two-site influenza world that ``harmonize demo`` builds.

Site ``source`` codes the study's findings by UMLS CUI with the paper's short names; site
``target`` records the same findings the way another hospital might: local codes, abbreviations,
lay and clinical synonyms, reordered words, two concepts split, two merged, four of its own.
Patients for both are sampled from the study's Bayesian networks (a shifted source setting and
the target setting) and stored as events in each site's own codes.

>>> world = demo_world(n_patients=5, random_state=0)
>>> sorted(world)
['source_events', 'source_labels', 'target_events', 'target_labels', 'truth']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harmonize.core import sql
from harmonize.core.config import DATA_DIR
from harmonize.core.results import TableResult
from harmonize.core.workspace import Workspace
from harmonize.datasets.networks import Network
from harmonize.index.site_index import build_site_index
from harmonize.mapping.metrics import mapping_metrics
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.patients import LabelSpec, stratified_split
from harmonize.sites.registry import add_site

SOURCE_VOCAB = DATA_DIR / "source_concepts.csv"
TARGET_VOCAB = DATA_DIR / "target_vocab.csv"
TARGET_TRUTH = DATA_DIR / "target_truth.csv"
SOURCE_NETWORK = DATA_DIR / "networks" / "source.bif"
TARGET_NETWORK = DATA_DIR / "networks" / "target.bif"
LABEL = "diagnosis"
POSITIVE = "I"  # influenza
# The target keeps half its patients for testing; the source trains on most of its own.
TEST_FRACTION = {"source": 0.2, "target": 0.5}
# Variables whose outcome names a separate concept (C0424781_P, agegroup_ls5, ...).
LEVEL_VARIABLES = ("C0424781", "agegroup")
TARGET_ONLY_PREVALENCE = 0.05


def _source_wide(sample: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each source concept's P/A column for the sampled patients."""
    columns: dict[str, np.ndarray] = {}
    for var in sample.columns:
        if var == LABEL:
            continue
        values = sample[var].to_numpy()
        if var in LEVEL_VARIABLES:
            for level in sorted(set(values)):
                columns[f"{var}_{level}"] = np.where(values == level, "P", "A")
        else:
            columns[var] = values
    return columns


def _target_wide(
    source_wide: dict[str, np.ndarray],
    truth: pd.DataFrame,
    target_codes: list[str],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The same patients' findings in target codes: merged codes are present when any of their
    source concepts is; a present split concept is recorded under one of its target codes."""
    n = len(next(iter(source_wide.values())))
    present = {code: np.zeros(n, dtype=bool) for code in target_codes}
    by_source = truth.groupby("source_code")["target_code"].apply(list)
    for source_code, targets in by_source.items():
        if source_code not in source_wide:
            continue  # a concept the networks do not model has no events
        is_present = source_wide[source_code] == "P"
        pick = rng.integers(0, len(targets), size=n)
        for j, target_code in enumerate(targets):
            present[target_code] |= is_present & (pick == j)
    modelled = {t for s, ts in by_source.items() if s in source_wide for t in ts}
    unmapped = [c for c in target_codes if c not in set(truth["target_code"])]
    for code in unmapped:
        present[code] = rng.random(n) < TARGET_ONLY_PREVALENCE
    keep = [c for c in target_codes if c in modelled or c in unmapped]
    return {c: np.where(present[c], "P", "A") for c in keep}


def _long(wide: dict[str, np.ndarray], subjects: np.ndarray) -> pd.DataFrame:
    """Long events from the wide columns, built in one frame (one per code was most of the
    demo's sampling time)."""
    codes = list(wide)
    events = pd.DataFrame(
        {
            "subject_id": np.tile(subjects, len(codes)),
            "code": np.repeat(np.array(codes, dtype=object), len(subjects)),
            "value": np.concatenate([np.asarray(wide[code]) for code in codes]),
        }
    )
    events = events.sort_values(["subject_id", "code"], kind="stable").reset_index(drop=True)
    events.insert(1, "time", pd.Series(pd.NaT, index=events.index, dtype="datetime64[us]"))
    return events[["subject_id", "time", "code", "value"]]


def demo_world(n_patients: int = 1000, random_state: int = 0) -> dict[str, pd.DataFrame]:
    """Sampled events and labels for both sites plus the true target-to-source mapping."""
    rng = np.random.default_rng(random_state)
    truth = pd.read_csv(TARGET_TRUTH, dtype=str)
    target_codes = pd.read_csv(TARGET_VOCAB, dtype=str)["code"].tolist()
    out: dict[str, pd.DataFrame] = {"truth": truth}
    for site, network_path, prefix in (
        ("source", SOURCE_NETWORK, "S"),
        ("target", TARGET_NETWORK, "T"),
    ):
        sample = Network.from_file(network_path).sample(n_patients, int(rng.integers(2**31)))
        subjects = np.array([f"{prefix}{i:06d}" for i in range(1, n_patients + 1)], dtype=object)
        wide = _source_wide(sample)
        if site == "target":
            wide = _target_wide(wide, truth, target_codes, rng)
        out[f"{site}_events"] = _long(wide, subjects)
        out[f"{site}_labels"] = pd.DataFrame(
            {"subject_id": subjects, "label": LABEL, "value": sample[LABEL].to_numpy()}
        )
    return out


@dataclass
class DemoResult(TableResult):
    """What the demo built: each model's mapping metrics against the truth (:meth:`to_frame`)
    and the target's events recoded into source codes."""

    workspace: Workspace
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    recoded: pd.DataFrame | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per model: n, top1, top5 and mrr of target -> source."""
        return pd.DataFrame(
            [
                {
                    "model": m,
                    "n": int(v["n"]),
                    "top1": v["top1"],
                    "top5": v["top5"],
                    "mrr": v["mrr"],
                }
                for m, v in self.metrics.items()
            ]
        )


def run_demo(
    ws: Workspace,
    n_patients: int = 1000,
    models: tuple[str, ...] = ("lexical", "minilm"),
    random_state: int = 0,
    echo: Callable[[str], None] = print,
    progress: bool = False,
) -> DemoResult:
    """Builds the two-site world in ``ws``, maps target onto source with each model, scores the
    mapping against the truth and recodes target events into source codes.

    >>> import tempfile
    >>> result = run_demo(Workspace(tempfile.mkdtemp()), n_patients=20, models=("lexical",),
    ...                   echo=lambda _: None)
    >>> result.to_frame()[["model", "n"]].values.tolist()
    [['lexical', 92]]
    >>> sorted(result.recoded["subject_id"].unique())[:2]
    ['T000001', 'T000002']
    """
    echo(f"Workspace: {ws.root}")
    world = demo_world(n_patients, random_state)
    echo(f"Sampled {n_patients} patients per site from the study's Bayesian networks.")
    for site, vocab in (("source", SOURCE_VOCAB), ("target", TARGET_VOCAB)):
        labels = world[f"{site}_labels"]
        fraction = TEST_FRACTION[site]
        labels = labels.assign(split=stratified_split(labels, POSITIVE, fraction, random_state))
        result = add_site(
            ws,
            site,
            vocab,
            replace=True,
            events=world[f"{site}_events"],
            labels=labels,
            task=LabelSpec(LABEL, POSITIVE),
        )
        echo(f"  {result.message}")
    truth = world["truth"]
    # The map runs target -> source, so the gold's source side is the target's code.
    gold = pd.DataFrame({"source_code": truth["target_code"], "target_code": truth["source_code"]})
    result = DemoResult(ws)
    for model in models:
        echo(f"Model {model}:")
        for site in ("source", "target"):
            built = build_site_index(ws, site, model, progress=progress)
            echo(f"  {built.message}")
        mapped = map_sites(ws, "target", "source", model=model, k=5)
        echo(f"  {mapped.summary}")
        with ws.connect(read_only=True) as con:
            candidates = sql.run_internal(con, "run_candidates", run_id=mapped.run_id).df()
            chosen = sql.run_internal(con, "run_mappings", run_id=mapped.run_id).df()
        result.metrics[model] = mapping_metrics(candidates, gold, chosen, ks=(1, 5))
    with ws.connect(read_only=True) as con:
        recoded = sql.execute(
            con, sql.load_query("recode_events"), {"source": "target", "target": "source"}
        ).df()
    result.recoded = recoded
    return result
