"""Usage signals: how often each code occurs at its site, and what it occurs with, compared
across two sites that both have patients.

Two codes that mean the same finding should be about as common at both hospitals, and should
keep the same company: a patient with "reported fever" also tends to have "myalgia", whatever
each hospital calls them. The company is measured against *anchors*, the pairs already known
(``map --known``): a code's co-occurrence profile is P(anchor present | code present) over the
anchors' codes at its own site. A source code and a candidate target are compared by

- ``prevalence_gap``: |log prevalence at the source - log prevalence at the target|;
- ``cooccurrence``: the Pearson correlation of their two profiles, the anchors lined up
  through the known pairs.

Both are missing (NaN, which the reranker handles) where a code never occurs. An event counts
as an occurrence unless its value says the finding was absent or missing (``A``, ``M``: the
study's patient-table convention).

>>> import scipy.sparse as sp
>>> m = Usage(sp.csr_matrix(np.array([[1, 1], [1, 0]])), sp.csr_matrix(np.array([[1, 1], [0, 1]])))
>>> m.prevalence_source.tolist(), m.prevalence_target.tolist()
([1.0, 0.5], [0.5, 1.0])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import scipy.sparse as sp

# Values of an event that mean the finding was not there.
NOT_PRESENT = ("A", "M")


def occurrence_matrix(events: pd.DataFrame, codes: np.ndarray) -> sp.csr_matrix:
    """Subjects x codes (in ``codes`` order): 1 where the subject has the code at least once.
    ``events`` has columns subject_id and code; codes not in ``codes`` are ignored.

    >>> ev = pd.DataFrame({"subject_id": ["p1", "p1", "p2"], "code": ["b", "x", "b"]})
    >>> occurrence_matrix(ev, np.array(["a", "b"], dtype=object)).toarray().tolist()
    [[0.0, 1.0], [0.0, 1.0]]
    """
    import scipy.sparse as sp

    column = {c: i for i, c in enumerate(codes.tolist())}
    cols = events["code"].map(column)
    keep = cols.notna().to_numpy()
    subjects, rows = np.unique(
        events["subject_id"].to_numpy(dtype=object)[keep], return_inverse=True
    )
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows, cols[keep].to_numpy(dtype=np.int64))),
        shape=(len(subjects), len(codes)),
    )
    matrix.data[:] = 1.0  # a code seen twice by one subject is one occurrence
    return matrix


@dataclass
class Usage:
    """Occurrence matrices of the two sites (subjects x codes, in site concept order), kept by
    column: every feature reads whole codes."""

    source: sp.spmatrix
    target: sp.spmatrix
    prevalence_source: np.ndarray = field(init=False)
    prevalence_target: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        import scipy.sparse as sp

        self.source = sp.csc_matrix(self.source, dtype=np.float32)
        self.target = sp.csc_matrix(self.target, dtype=np.float32)
        self.prevalence_source = _prevalence(self.source)
        self.prevalence_target = _prevalence(self.target)

    def features(
        self, source_rows: np.ndarray, target_rows: np.ndarray, known: dict[int, list[int]]
    ) -> np.ndarray:
        """(prevalence_gap, cooccurrence) per (source row, target row) pair, anchored on the
        ``known`` pairs given (for training, without the queries' own pairs)."""
        ps = self.prevalence_source[source_rows]
        pt = self.prevalence_target[target_rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.abs(np.log(ps) - np.log(pt))
        gap[(ps == 0) | (pt == 0)] = np.nan
        anchors = [(s, ts[0]) for s, ts in sorted(known.items())]
        corr = np.full(len(source_rows), np.nan)
        if len(anchors) >= 2:
            a_s = np.array([a for a, _ in anchors])
            a_t = np.array([b for _, b in anchors])
            us, inv_s = np.unique(source_rows, return_inverse=True)
            ut, inv_t = np.unique(target_rows, return_inverse=True)
            prof_s = _centred_profiles(self.source, us, a_s)
            prof_t = _centred_profiles(self.target, ut, a_t)
            num = np.einsum("ij,ij->i", prof_s[inv_s], prof_t[inv_t])
            norm = np.linalg.norm(prof_s, axis=1)[inv_s] * np.linalg.norm(prof_t, axis=1)[inv_t]
            with np.errstate(divide="ignore", invalid="ignore"):
                corr = np.where(norm > 0, num / norm, np.nan)
        return np.column_stack([gap, corr])


def _prevalence(matrix: sp.csc_matrix) -> np.ndarray:
    n = max(matrix.shape[0], 1)
    return np.asarray(matrix.sum(axis=0)).ravel() / n


def _centred_profiles(matrix: sp.csc_matrix, rows: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """P(anchor | code) for each code of ``rows`` (NaN rows become zero), minus its row mean."""
    codes = matrix[:, rows]
    together = (codes.T @ matrix[:, anchors]).toarray()
    counts = np.asarray(codes.sum(axis=0)).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        profiles = np.where(counts[:, None] > 0, together / counts[:, None], 0.0)
    return profiles - profiles.mean(axis=1, keepdims=True)
