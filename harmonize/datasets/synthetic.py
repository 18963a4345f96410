"""Scale data from generators, never committed: large vocabularies and event tables.

- :func:`perturbed_vocab`: ``n`` concepts made by perturbing real ICD-10-CM descriptions
  (synonyms, word order, abbreviations, typos), with the true source code of each kept;
- :func:`write_events`: events sampled from the demo's Bayesian networks, written to Parquet
  chunk by chunk, so tens of millions of rows never sit in memory at once.

>>> vocab, truth = perturbed_vocab(3, random_state=0)
>>> len(vocab), list(truth.columns)
(3, ['code', 'source_code', 'perturbation'])
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harmonize.core.errors import InputError

# Clinical synonyms and abbreviations as charts write them (whole words, lower case).
SYNONYMS = {
    "fracture": "break",
    "unspecified": "not specified",
    "disorder": "disease",
    "neoplasm": "tumor",
    "malignant": "cancerous",
    "injury": "trauma",
    "pain": "ache",
    "acute": "sudden",
    "chronic": "long-standing",
    "infection": "infectious disease",
    "hemorrhage": "bleeding",
    "laceration": "cut",
    "contusion": "bruise",
    "abdominal": "belly",
    "cardiac": "heart",
    "pulmonary": "lung",
    "renal": "kidney",
    "hepatic": "liver",
    "cutaneous": "skin",
    "pregnancy": "gestation",
}
ABBREVIATIONS = {
    "left": "lt",
    "right": "rt",
    "fracture": "fx",
    "with": "w/",
    "without": "w/o",
    "unspecified": "unsp",
    "history": "hx",
    "subsequent": "subs",
    "encounter": "enc",
    "initial": "init",
    "bilateral": "bilat",
    "diabetes": "dm",
    "disease": "dz",
    "syndrome": "synd",
    "chronic": "chr",
    "acute": "ac",
    "and": "&",
}
PERTURBATIONS = ("synonym", "word_order", "abbreviation", "typo")
_WORD = re.compile(r"[A-Za-z]+")


def _swap_words(text: str, table: dict[str, str], rng: np.random.Generator) -> str:
    words = text.split(" ")
    hits = [i for i, w in enumerate(words) if w.lower().strip(",") in table]
    if not hits:
        return text
    for i in rng.choice(hits, size=max(1, len(hits) // 2), replace=False):
        word = words[i]
        tail = "," if word.endswith(",") else ""
        words[i] = table[word.lower().strip(",")] + tail
    return " ".join(words)


def _word_order(text: str, rng: np.random.Generator) -> str:
    """'X of Y, Z' -> 'Z, X of Y' (comma parts rotated), else two words swapped."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) > 1:
        k = int(rng.integers(1, len(parts)))
        return ", ".join(parts[k:] + parts[:k])
    words = text.split(" ")
    if len(words) < 2:
        return text
    i = int(rng.integers(0, len(words) - 1))
    words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def _typo(text: str, rng: np.random.Generator) -> str:
    """One adjacent-letter swap or one dropped letter in a word of four letters or more."""
    words = [m for m in _WORD.finditer(text) if len(m.group()) >= 4]
    if not words:
        return text
    m = words[int(rng.integers(0, len(words)))]
    w = m.group()
    i = int(rng.integers(1, len(w) - 1))
    w = w[:i] + w[i + 1] + w[i] + w[i + 2 :] if rng.random() < 0.5 else w[:i] + w[i + 1 :]
    return text[: m.start()] + w + text[m.end() :]


def perturb(text: str, kind: str, rng: np.random.Generator) -> str:
    """``text`` perturbed one way (one of :data:`PERTURBATIONS`).

    >>> perturb("Left femur", "abbreviation", np.random.default_rng(0))
    'lt femur'
    """
    if kind == "synonym":
        return _swap_words(text, SYNONYMS, rng)
    if kind == "abbreviation":
        return _swap_words(text, ABBREVIATIONS, rng)
    if kind == "word_order":
        return _word_order(text, rng)
    if kind == "typo":
        return _typo(text, rng)
    raise InputError(f"unknown perturbation '{kind}': use {', '.join(PERTURBATIONS)}")


def perturbed_vocab(n: int, random_state: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` concepts (codes ``P0000001``...) whose descriptions perturb ICD-10-CM ones, and the
    truth: each code's ICD-10-CM source code and how it was perturbed. Past the 74k real
    descriptions the sources repeat, each time perturbed afresh (two or three ways)."""
    from harmonize.datasets.icd import icd_vocab

    if n < 1:
        raise InputError(f"a vocabulary needs at least one concept, got {n}")
    base = icd_vocab("icd10")
    rng = np.random.default_rng(random_state)
    order = np.concatenate([rng.permutation(len(base)) for _ in range(-(-n // len(base)))])[:n]
    codes, descriptions, sources, kinds = [], [], [], []
    base_codes = base["code"].to_numpy()
    base_texts = base["description"].to_numpy()
    for i, j in enumerate(order):
        rounds = 1 + i // len(base)  # repeats get more perturbations, so they stay distinct
        chosen = rng.choice(len(PERTURBATIONS), size=min(rounds, 3), replace=False)
        text = str(base_texts[j])
        for k in chosen:
            text = perturb(text, PERTURBATIONS[k], rng)
        codes.append(f"P{i + 1:07d}")
        descriptions.append(text)
        sources.append(base_codes[j])
        kinds.append("+".join(PERTURBATIONS[k] for k in chosen))
    vocab = pd.DataFrame({"code": codes, "description": descriptions})
    truth = pd.DataFrame({"code": codes, "source_code": sources, "perturbation": kinds})
    return vocab, truth


def write_events(
    path: str | Path,
    n_events: int,
    site: str = "source",
    chunk_patients: int = 20_000,
    random_state: int = 0,
) -> dict[str, int]:
    """Writes exactly ``n_events`` events (subject_id, time, code, value) of the demo's
    ``site`` network to one Parquet file, sampling ``chunk_patients`` patients at a time (a
    row group each): memory stays at one chunk, whatever ``n_events`` is.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "e.parquet"
    >>> write_events(out, 1000, chunk_patients=7)["n_events"]
    1000
    """
    from harmonize.datasets.demo import (
        SOURCE_NETWORK,
        TARGET_NETWORK,
        TARGET_TRUTH,
        TARGET_VOCAB,
        _long,
        _source_wide,
        _target_wide,
    )
    from harmonize.datasets.networks import Network

    if site not in ("source", "target"):
        raise InputError(f"unknown demo site '{site}': use source or target")
    network = Network.from_file(SOURCE_NETWORK if site == "source" else TARGET_NETWORK)
    truth = pd.read_csv(TARGET_TRUTH, dtype=str)
    target_codes = pd.read_csv(TARGET_VOCAB, dtype=str)["code"].tolist()
    rng = np.random.default_rng(random_state)
    prefix = "S" if site == "source" else "T"
    schema = pa.schema(
        [("subject_id", pa.string()), ("time", pa.timestamp("us")), ("code", pa.string()),
         ("value", pa.string())]
    )  # fmt: skip
    written, patients = 0, 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        while written < n_events:
            sample = network.sample(chunk_patients, int(rng.integers(2**31)))
            wide = _source_wide(sample)
            if site == "target":
                wide = _target_wide(wide, truth, target_codes, rng)
            subjects = np.array(
                [f"{prefix}{i:09d}" for i in range(patients + 1, patients + chunk_patients + 1)],
                dtype=object,
            )
            events = _long(wide, subjects).iloc[: n_events - written]
            writer.write_table(pa.Table.from_pandas(events, schema=schema, preserve_index=False))
            written += len(events)
            patients += chunk_patients
    tmp.replace(path)
    return {"n_events": written, "n_patients_sampled": patients}
