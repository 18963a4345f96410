"""Naive Bayes whose source prior is trusted concept by concept (``nb-eb``): empirical Bayes.

A patient holds one state text per concept (``fever`` / ``Not fever``, or a level such as
``temperature: high``), so a concept is a categorical variable. Its class-conditional
distribution at the target gets a Dirichlet prior, one of

- ``Dir(f, ..., f)``, ``f`` in ``FLATS``: the source says nothing (a concept whose
  distribution shifted), or
- ``Dir(m p)``, ``p`` the source's (smoothed) distribution, ``m`` in ``STRENGTHS``: the source
  is worth ``m`` target patients.

How often each prior fits is learnt from the target's training patients alone: the
Dirichlet-multinomial evidence of every concept's counts under every prior (closed form),
and mixing weights shared by all concepts and both classes that maximise the total evidence
(EM). Each concept's distribution is then its posterior mean under that mixture: a concept
whose target counts look like the source's follows the source, one that contradicts it
follows its own counts. No cross-validation; one fit costs a few milliseconds.

A concept the source never recorded gets the flat prior only, or with ``borrow`` the
distributions of the source concept whose state texts' embeddings are most alike as its source
prior (:func:`borrow`; off by default: on the heterogeneous sites' tuning seeds it did not
pay). Texts are grouped into concepts by their wording (:func:`concept_of`) and, for levels
whose wording shares nothing, by the patients (:func:`merge_levels`); a group that some
patient holds twice is split into single texts.

>>> concept_of("Not fever"), concept_of("temperature: high"), concept_of("cough")
('fever', 'temperature', 'cough')
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmonize.transfer.prior import text_counts

FLATS = (0.5,)  # flat priors' pseudo-counts per category (0.5: nb-local's m = 1); more did not pay
STRENGTHS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0)
SOURCE_SMOOTHING = 0.5  # pseudo-count per category of the source's own distributions
EM_ITERATIONS = 200
MAX_LEVEL_TEXTS = 2000  # single texts merge_levels compares pairwise


def concept_of(text: str) -> str:
    """The concept a state text belongs to: ``Not X`` and ``X: level`` are states of ``X``
    (:func:`harmonize.transfer.encounters.parse_state_text`)."""
    from harmonize.transfer.encounters import parse_state_text  # encounters imports pandas

    return parse_state_text(text)[0]


def concept_groups(texts: list[str], *patients: np.ndarray) -> list[np.ndarray]:
    """Text indices grouped by concept: by wording, then single texts that the first of
    ``patients`` (id matrices) shows to be levels of one concept (:func:`merge_levels`); a
    group that one of ``patients`` holds more than one text of is split into its texts.

    >>> [g.tolist() for g in concept_groups(["a", "Not a", "b"], np.array([[0, 2], [1, 2]]))]
    [[0, 1], [2]]
    >>> [g.tolist() for g in concept_groups(["a", "Not a"], np.array([[0, 1]]))]
    [[0], [1]]
    >>> [g.tolist() for g in concept_groups(["hot", "cold", "b"], np.array([[0, 2], [1, 2]]))]
    [[2], [0, 1]]
    """
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(concept_of(text), []).append(i)
    out = [np.array(g, dtype=np.int64) for g in groups.values()]
    if patients:
        out = merge_levels(out, patients[0], len(texts))
    for ids in patients:
        out = split_clashes(out, ids, len(texts))
    return out


def merge_levels(groups: list[np.ndarray], ids: np.ndarray, n_texts: int) -> list[np.ndarray]:
    """Single texts merged into one concept where every patient of ``ids`` holds exactly one
    of them (levels such as an age group's, whose wording shares nothing): from the most
    frequent, a candidate group takes each next text that no patient holds with a member,
    and is kept only if it covers every patient once. Other groups are unchanged."""
    single = [int(g[0]) for g in groups if len(g) == 1]
    if len(single) > MAX_LEVEL_TEXTS:  # the pairwise table would be large; keep them single
        return groups
    X = text_counts(ids, n_texts)[:, single].tocsc()
    held = np.asarray(X.sum(axis=0)).ravel()
    together = (X.T @ X).toarray() > 0
    order = [i for i in np.argsort(-held, kind="stable") if held[i] > 0]
    free, merged = set(order), []
    for i in order:
        if i not in free:
            continue
        members = [i]
        for j in order:
            if j in free and j != i and not together[j, members].any():
                members.append(j)
        if len(members) > 1 and np.all(np.asarray(X[:, members].sum(axis=1)).ravel() == 1):
            merged.append(np.array(sorted(single[m] for m in members), dtype=np.int64))
            free -= set(members)
    taken = {t for g in merged for t in g.tolist()}
    return [g for g in groups if len(g) > 1 or int(g[0]) not in taken] + merged


def split_clashes(groups: list[np.ndarray], ids: np.ndarray, n_texts: int) -> list[np.ndarray]:
    """``groups`` with each group some patient of ``ids`` holds two texts of split into its
    single texts."""
    owner = np.full(n_texts, -1, dtype=np.int64)
    for g, members in enumerate(groups):
        owner[members] = g
    held = text_counts(ids, n_texts).tocoo()
    keep = owner[held.col] >= 0
    per = np.zeros((held.shape[0], len(groups)))
    np.add.at(per, (held.row[keep], owner[held.col[keep]]), 1.0)
    clash = (per > 1).any(axis=0)
    out: list[np.ndarray] = []
    for g, members in enumerate(groups):
        out += [members[i : i + 1] for i in range(len(members))] if clash[g] else [members]
    return out


def dm_log_evidence(counts: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """log P(counts | Dir(alpha)) of one sequence of draws (no multinomial coefficient),
    over the last axis; categories with ``alpha`` 0 are absent (their counts must be 0).

    >>> float(np.exp(dm_log_evidence(np.array([1.0, 0.0]), np.array([1.0, 1.0]))))
    0.5
    """
    from scipy.special import gammaln

    valid = alpha > 0
    a = np.where(valid, alpha, 1.0)
    terms = np.where(valid, gammaln(counts + a) - gammaln(a), 0.0)
    total = alpha.sum(axis=-1)
    return gammaln(total) - gammaln(counts.sum(axis=-1) + total) + terms.sum(axis=-1)


@dataclass
class Layout:
    """Concepts as rows of categories: ``slots[g, c]`` the text of category ``c`` (-1: none),
    the last column "no text of the concept" where some patient has none."""

    slots: np.ndarray  # (G, C) text index or -1
    has_none: np.ndarray  # (G,) whether the last column is a category

    @classmethod
    def of(cls, groups: list[np.ndarray]) -> Layout:
        width = max((len(g) for g in groups), default=0) + 1
        slots = np.full((len(groups), width), -1, dtype=np.int64)
        for g, members in enumerate(groups):
            slots[g, : len(members)] = members
        return cls(slots, np.zeros(len(groups), dtype=bool))

    def counts(self, text_totals: np.ndarray, patients: np.ndarray) -> np.ndarray:
        """(..., G, C) category counts from per-text counts (..., n_texts) and patient totals
        (...): the last column is the patients with none of the concept's texts."""
        real = self.slots >= 0
        out = np.where(real, text_totals[..., np.maximum(self.slots, 0)], 0.0)
        out[..., -1] = np.maximum(patients[..., None] - out.sum(axis=-1), 0.0)
        return out

    def mask(self) -> np.ndarray:
        """(G, C): which columns are categories."""
        mask = self.slots >= 0
        mask[:, -1] = self.has_none
        return mask


def class_text_counts(
    ids: np.ndarray, y: np.ndarray, n_texts: int
) -> tuple[np.ndarray, np.ndarray]:
    """((2, n_texts) patients of each class holding each text, (2,) patients of each class)."""
    X = text_counts(ids, n_texts)
    counts = np.vstack([np.asarray(X[y == c].sum(axis=0)).ravel() for c in (0, 1)])
    return counts, np.array([np.sum(y == 0), np.sum(y == 1)], dtype=np.float64)


def mixture_weights(evidence: np.ndarray, iterations: int = EM_ITERATIONS) -> np.ndarray:
    """The prior weights over candidates (columns) maximising ``sum_rows log sum_s w_s
    exp(evidence[row, s])`` (EM; rows of -inf where a candidate does not apply).

    >>> mixture_weights(np.log(np.array([[1.0, 0.0], [1.0, 0.0]]) + 1e-300)).round(3).tolist()
    [1.0, 0.0]
    """
    from scipy.special import logsumexp

    weights = np.full(evidence.shape[1], 1.0 / evidence.shape[1])
    for _ in range(iterations):
        joint = evidence + np.log(np.maximum(weights, 1e-300))
        resp = np.exp(joint - logsumexp(joint, axis=1, keepdims=True))
        weights = resp.mean(axis=0)
    return weights


def borrow(
    layout: Layout, p: np.ndarray, seen: np.ndarray, vectors: np.ndarray, similarity: float
) -> tuple[np.ndarray, np.ndarray]:
    """``p`` (2, G, C) with each concept the source never recorded given the distributions of
    the recorded concept whose texts are most alike (mean cosine of the texts matched state
    to state, at least ``similarity``; one-hot texts are alike to none): a prior that the
    evidence may still reject."""
    from itertools import permutations

    norms = np.linalg.norm(vectors, axis=1)
    unit = np.divide(vectors, norms[:, None], out=np.zeros(vectors.shape), where=norms[:, None] > 0)
    real = layout.slots >= 0
    p, seen = p.copy(), seen.copy()
    donors = np.flatnonzero(seen)
    for g in np.flatnonzero(~seen):
        k = int(real[g].sum())
        if k > 5:
            continue
        best, choice = similarity, None
        for h in donors[real[donors].sum(axis=1) == k]:
            for order in permutations(range(k)):
                sims = unit[layout.slots[g, :k]] @ unit[layout.slots[h, list(order)]].T
                score = float(np.mean(np.diag(sims)))
                if score >= best:
                    best, choice = score, (h, list(order))
        if choice is not None:
            h, order = choice
            p[:, g, :k] = p[:, h, order]
            p[:, g, -1] = np.where(layout.has_none[g], p[:, h, -1], 0.0)
            p[:, g] /= p[:, g].sum(axis=-1, keepdims=True)
            seen[g] = True
    return p, seen


class EBNaiveBayes:
    """Categorical naive Bayes over concepts with the source's distributions as an
    empirical-Bayes prior (see the module docstring). ``source_counts`` (2, n_texts) and
    ``source_totals`` (2,) are the source's class-wise text counts; ``groups`` the concepts."""

    def __init__(
        self,
        groups: list[np.ndarray],
        source_counts: np.ndarray | None,
        source_totals: np.ndarray | None,
        strengths: tuple[float, ...] = STRENGTHS,
        flats: tuple[float, ...] = FLATS,
        borrow: float | None = None,
    ):
        self.groups, self.strengths, self.flats = groups, strengths, flats
        self.borrow = borrow  # the least similarity of texts for a prior to be lent; None: none
        self.source_counts, self.source_totals = source_counts, source_totals

    def candidate_priors(
        self, layout: Layout, vectors: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """((2, G, S, C) the Dirichlet parameters of every candidate prior, the flat ones first;
        (G,) whether the source recorded the concept, or one whose texts' ``vectors`` are
        alike (:func:`borrow`), at all)."""
        mask = layout.mask()
        flat = np.stack([np.where(mask, f, 0.0) for f in self.flats], axis=1)  # (G, F, C)
        flat = np.broadcast_to(flat, (2, *flat.shape))
        if self.source_counts is None:
            return flat, np.zeros(len(mask), bool)
        src = layout.counts(self.source_counts, self.source_totals)  # (2, G, C)
        seen = (np.where(layout.slots >= 0, src, 0.0).sum(axis=(0, 2))) > 0
        smoothed = np.where(mask, src + SOURCE_SMOOTHING, 0.0)
        p = smoothed / smoothed.sum(axis=-1, keepdims=True)
        if self.borrow is not None and vectors is not None and not seen.all():
            p, seen = borrow(layout, p, seen, vectors, self.borrow)
        strengths = np.asarray(self.strengths)[None, None, :, None]
        return np.concatenate([flat, strengths * p[:, :, None, :]], axis=2), seen

    def fit(self, vectors: np.ndarray, ids: np.ndarray, y: np.ndarray) -> EBNaiveBayes:
        n_texts = len(vectors)
        layout = Layout.of(split_clashes(self.groups, ids, n_texts))
        counts_t, totals = class_text_counts(ids, y, n_texts)
        counts = layout.counts(counts_t, totals)  # (2, G, C)
        none = counts[..., -1].sum(axis=0)
        if self.source_counts is not None:
            none = none + layout.counts(self.source_counts, self.source_totals)[..., -1].sum(0)
        layout.has_none = none > 0
        counts[..., -1] = np.where(layout.has_none, counts[..., -1], 0.0)
        alphas, seen = self.candidate_priors(layout, vectors)
        evidence = dm_log_evidence(counts[:, :, None, :], alphas)  # (2, G, S)
        n_flat = len(self.flats)
        evidence[:, ~seen, n_flat:] = -np.inf  # an unrecorded concept: flat priors only
        # Two mixtures: of every prior for the recorded concepts, of the flat ones for the rest
        self.weights_ = np.zeros(alphas.shape[2])
        self.flat_weights_ = np.zeros(n_flat)
        if seen.any():
            self.weights_ = mixture_weights(evidence[:, seen].reshape(-1, alphas.shape[2]))
        if not seen.all():
            self.flat_weights_ = mixture_weights(evidence[:, ~seen, :n_flat].reshape(-1, n_flat))
        theta = self._posterior(counts, alphas, evidence, seen)
        self.layout_ = layout
        self.w_, self.b_ = self._linear(layout, theta, y, n_texts)
        return self

    def _posterior(self, counts, alphas, evidence, seen) -> np.ndarray:
        """(2, G, C) each concept's posterior-mean distribution under the learnt mixture."""
        from scipy.special import logsumexp

        weights = np.where(seen[:, None], self.weights_, 0.0)
        weights[~seen, : len(self.flats)] = self.flat_weights_
        joint = evidence + np.log(np.maximum(weights, 1e-300))
        resp = np.exp(joint - logsumexp(joint, axis=-1, keepdims=True))  # (2, G, S)
        means = (counts[:, :, None, :] + alphas) / (
            counts.sum(axis=-1)[:, :, None, None] + alphas.sum(axis=-1)[..., None]
        )
        return np.einsum("kgs,kgsc->kgc", resp, means)

    @staticmethod
    def _linear(layout: Layout, theta: np.ndarray, y: np.ndarray, n_texts: int):
        """Text weights and intercept: the log-likelihood ratio of each category, measured
        from the "none" category, whose ratio goes into the intercept."""
        ratio = np.log(np.maximum(theta[1], 1e-12)) - np.log(np.maximum(theta[0], 1e-12))
        base = np.where(layout.has_none, ratio[:, -1], 0.0)
        w = np.zeros(n_texts)
        real = layout.slots >= 0
        w[layout.slots[real]] = (ratio - base[:, None])[real]
        n_pos = float(np.sum(y == 1))
        b = float(np.log((n_pos + 0.5) / (len(y) - n_pos + 0.5)) + base.sum())
        return w, b

    def decision(self, vectors: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return text_counts(ids, len(vectors)) @ self.w_ + self.b_
