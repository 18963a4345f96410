"""Two sites whose finding sets differ, sampled from the study group's networks: a shippable
stand-in for real sites that share only some findings.

Site ``source`` records 14 findings by UMLS CUI with the paper's names; site ``target`` records
14 findings of its own, of which only 6 are the source's (same code, same name). The other 8:

- 3 **renamed**: the same finding under the target's code and words (``tachypnea`` is
  ``HX-103 rapid breathing``);
- 2 **merged**: one target finding for two source findings, present when either is
  (``HX-201 retractions or nasal flaring``);
- 3 **target-only**: findings the source does not record (``HX-301 nauseated``).

One source finding (``arthralgia``) is **dropped** at the target. Source patients come from the
shifted source network (``ita16``), target patients from the target network, as in the demo;
influenza (``diagnosis=I``) against the rest is the task. The true target -> source mapping
(renamed and merged findings; target-only ones have none) ships with the world.

>>> world = heterogeneous_world(n_source=10, n_target=10, random_state=0)
>>> len(world.source_vocab), len(world.target_vocab), len(set(SHARED))
(14, 14, 6)
>>> world.truth[world.truth["target_code"] == "HX-201"]["source_code"].tolist()
['C2077320', 'C0277873']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harmonize.core.workspace import Workspace
from harmonize.datasets.demo import LABEL, POSITIVE, SOURCE_NETWORK, SOURCE_VOCAB, TARGET_NETWORK
from harmonize.datasets.networks import Network
from harmonize.sites.patients import LabelSpec, stratified_split
from harmonize.sites.registry import add_site

SHARED = ("C0231528", "C0018681", "C0242429", "C0085593", "C0013404", "C0043144")
RENAMED = {  # source code: (target code, target description)
    "C0521839": ("HX-101", "flu-like illness"),
    "C0006271": ("HX-102", "wheezy bronchiolitis"),
    "C0231835": ("HX-103", "rapid breathing"),
}
MERGED = {  # target code: (target description, the source codes it merges)
    "HX-201": ("retractions or nasal flaring", ("C2077320", "C0277873")),
    "HX-202": ("crackles or rhonchi", ("C0425545", "C0035508")),
}
DROPPED = ("C0003862",)  # recorded at the source only
TARGET_ONLY = {  # network variable: (target code, target description); the source lacks them
    "C0027497": ("HX-301", "nauseated"),
    "C0010520": ("HX-302", "bluish skin or lips"),
    "C0000737": ("HX-303", "belly pain"),
}
SOURCE_CODES = (*SHARED, *RENAMED, *(c for _, parts in MERGED.values() for c in parts), *DROPPED)
TEST_FRACTION = 0.5  # of the target's patients


@dataclass
class HeterogeneousWorld:
    """Both sites' vocabularies, events and labels, and the true target -> source mapping."""

    source_vocab: pd.DataFrame
    target_vocab: pd.DataFrame
    source_events: pd.DataFrame
    target_events: pd.DataFrame
    source_labels: pd.DataFrame
    target_labels: pd.DataFrame
    truth: pd.DataFrame  # target_code, source_code, relation


def vocabularies() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(source vocabulary, target vocabulary, truth): the construction above, exactly."""
    names = pd.read_csv(SOURCE_VOCAB, dtype=str).set_index("code")["description"]
    source = pd.DataFrame({"code": SOURCE_CODES, "description": [names[c] for c in SOURCE_CODES]})
    target = [(c, names[c]) for c in SHARED]
    target += list(RENAMED.values())
    target += [(code, text) for code, (text, _) in MERGED.items()]
    target += list(TARGET_ONLY.values())
    truth = [(c, c, "exact") for c in SHARED]
    truth += [(t, s, "exact") for s, (t, _) in RENAMED.items()]
    truth += [(t, s, "broader") for t, (_, parts) in MERGED.items() for s in parts]
    return (
        source,
        pd.DataFrame(target, columns=["code", "description"]),
        pd.DataFrame(truth, columns=["target_code", "source_code", "relation"]),
    )


def target_columns(sample: pd.DataFrame) -> dict[str, np.ndarray]:
    """The target's P/A columns from a network sample: shared and renamed findings as they are,
    merged ones present when any part is, target-only ones from their own network variable."""
    present = {c: sample[c].to_numpy() == "P" for c in sample.columns if c != LABEL}
    columns = {c: present[c] for c in SHARED}
    columns |= {t: present[s] for s, (t, _) in RENAMED.items()}
    columns |= {
        t: np.logical_or.reduce([present[s] for s in parts]) for t, (_, parts) in MERGED.items()
    }
    columns |= {t: present[v] for v, (t, _) in TARGET_ONLY.items()}
    return {code: np.where(p, "P", "A") for code, p in columns.items()}


def _events(columns: dict[str, np.ndarray], subjects: np.ndarray) -> pd.DataFrame:
    codes = list(columns)
    events = pd.DataFrame(
        {
            "subject_id": np.tile(subjects, len(codes)),
            "time": pd.Series(
                pd.NaT, index=range(len(codes) * len(subjects)), dtype="datetime64[us]"
            ),
            "code": np.repeat(np.array(codes, dtype=object), len(subjects)),
            "value": np.concatenate([columns[c] for c in codes]),
        }
    )
    return events.sort_values(["subject_id", "code"], kind="stable").reset_index(drop=True)


def heterogeneous_world(
    n_source: int = 8000, n_target: int = 12000, random_state: int = 0
) -> HeterogeneousWorld:
    """Samples both sites: ``n_source`` source patients (all for training), ``n_target``
    target patients (half held out for testing)."""
    rng = np.random.default_rng(random_state)
    source_vocab, target_vocab, truth = vocabularies()
    frames = {}
    for site, network, n, prefix in (
        ("source", SOURCE_NETWORK, n_source, "A"),
        ("target", TARGET_NETWORK, n_target, "B"),
    ):
        sample = Network.from_file(network).sample(n, int(rng.integers(2**31)))
        subjects = np.array([f"{prefix}{i:06d}" for i in range(1, n + 1)], dtype=object)
        if site == "source":
            columns = {c: sample[c].to_numpy() for c in SOURCE_CODES}
        else:
            columns = target_columns(sample)
        labels = pd.DataFrame({"subject_id": subjects, "label": LABEL, "value": sample[LABEL]})
        fraction = TEST_FRACTION if site == "target" else None
        split = (
            stratified_split(labels, POSITIVE, fraction, random_state)
            if fraction
            else np.full(n, "train", dtype=object)
        )
        frames[site] = (_events(columns, subjects), labels.assign(split=split))
    return HeterogeneousWorld(
        source_vocab,
        target_vocab,
        frames["source"][0],
        frames["target"][0],
        frames["source"][1],
        frames["target"][1],
        truth,
    )


def add_heterogeneous_sites(ws: Workspace, world: HeterogeneousWorld, folder) -> list[str]:
    """Stores both sites (``source``, ``target``) in ``ws``; vocabularies are written to
    ``folder`` (add-site reads them from files). Returns add-site's messages."""
    from pathlib import Path

    messages = []
    for site, vocab, events, labels in (
        ("source", world.source_vocab, world.source_events, world.source_labels),
        ("target", world.target_vocab, world.target_events, world.target_labels),
    ):
        path = Path(folder) / f"{site}_vocab.csv"
        vocab.to_csv(path, index=False)
        result = add_site(
            ws,
            site,
            path,
            replace=True,
            events=events,
            labels=labels,
            task=LabelSpec(LABEL, POSITIVE),
        )
        messages.append(result.message)
    return messages
