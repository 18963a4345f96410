"""Zero-shot mapping (nothing known): acronyms from the pair's vocabularies, hub-corrected
search, and self-training whose pseudo-labels never include the concept being scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harmonize.core.config import DATA_DIR, HUB_NEIGHBOURS, HUB_WEIGHT
from harmonize.core.workspace import Workspace
from harmonize.index.site_index import build_site_index
from harmonize.mapping.acronyms import acronym_expansions, expand_text
from harmonize.mapping.pipeline import map_sites
from harmonize.mapping.rerank.known_pairs import KnownPairs
from harmonize.mapping.rerank.pipeline import KnownMapping
from harmonize.mapping.rerank.self_training import cross_fitted, halves, pseudo_pairs
from harmonize.sites.registry import add_site


def test_demo_acronyms_expand_from_the_other_site():
    local = pd.read_csv(DATA_DIR / "target_vocab.csv")["description"].tolist()
    study = pd.read_csv(DATA_DIR / "source_concepts.csv")["description"].tolist()
    found = acronym_expansions(local, study)
    # SOB, CXR, NP, PCR and hMPV have no written-out phrase with their initials at the
    # study's site (SOB's is written next to it, at the local site itself).
    assert found == {
        "URI": "upper respiratory infection",
        "ILI": "influenza-like illness",
        "RSV": "Respiratory Syncytial Virus",
    }
    changed = {t: expand_text(t, found) for t in local if expand_text(t, found) != t}
    assert changed == {
        "URI": "upper respiratory infection",
        "ILI": "influenza-like illness",
        "RSV test ordered": "Respiratory Syncytial Virus test ordered",
        "RSV positive": "Respiratory Syncytial Virus positive",
        "RSV-like illness": "Respiratory Syncytial Virus-like illness",
    }


def test_acronyms_are_not_matched_within_one_site_or_when_ambiguous():
    # "ALK" and "Ankylosis, left knee" at the same site: a chance match, not an expansion.
    assert acronym_expansions(["ALK positive", "Ankylosis, left knee"], ["knee pain"]) == {}
    # Two written-out phrases, neither a whole description: ambiguous.
    assert acronym_expansions(["CP"], ["chest pain at rest", "cerebral palsy in child"]) == {}
    assert acronym_expansions(["CP"], ["chest pain", "cerebral palsy in child"]) == {
        "CP": "chest pain"
    }


def test_pseudo_pairs_by_rule():
    src = ["Fever", "dry cough", "rash", "ear pain", "same text", "same text"]
    tgt = ["cough, dry", "fever", "skin rash", "otalgia", "same text", "x"]
    codes_s = np.array(["a", "b", "c", "E1", "d", "e"], dtype=object)
    codes_t = np.array(["x", "y", "z", "E1", "w", "v"], dtype=object)
    # forward: each source's two best targets; reverse: each target's two best sources
    scores = np.array([[0.9, 0.1], [0.9, 0.1], [0.80, 0.70], [0.5, 0.49], [0.9, 0.8], [0.9, 0.1]])
    ids = np.array([[1, 0], [0, 1], [2, 3], [3, 2], [4, 5], [4, 5]])
    rev_scores = np.array([[0.9, 0.1], [0.9, 0.1], [0.8, 0.1], [0.5, 0.1], [0.9, 0.9], [0.2, 0.1]])
    rev_ids = np.array([[1, 0], [0, 1], [2, 3], [3, 2], [4, 5], [0, 1]])
    pseudo = pseudo_pairs(src, tgt, codes_s, codes_t, scores, ids, rev_scores, rev_ids, 0.05)
    # 0, 1: identical once normalised; 2: mutual, margins 0.10 and 0.70; 3: the shared code
    # E1 with a mutual nearest neighbour (margin 0.01); 4, 5: "same text" names two source
    # concepts (not identical-unique), and 4's margin is 0.1 forward but 0.0 back.
    assert pseudo.rows == {0: [1], 1: [0], 2: [2], 3: [3]}
    assert pseudo.reasons == {"identical": 2, "shared code": 1, "mutual": 1}
    assert pseudo.note() == "self-trained on 4 pseudo-pairs (2 identical, 1 shared code, 1 mutual)"


def test_cross_fitting_never_scores_a_concept_with_its_own_pseudo_label():
    """Every concept's final ranking comes from a run whose pseudo-pairs exclude it."""
    n_source = 30
    pseudo_rows = {s: [s % 7] for s in range(0, n_source, 2)}  # the even rows are labelled
    runs: list[set[int]] = []

    def rerank(known: KnownPairs) -> KnownMapping:
        taught = set(known.rows)
        runs.append(taught)
        run = len(runs) - 1
        # Each run's candidates name the run (target = 100 + run) and mark the rows it knew.
        cands = pd.DataFrame(
            {
                "source": np.arange(n_source),
                "target": 100 + run,
                "rank": 1,
                "score": [1.0 if s in taught else 0.5 for s in range(n_source)],
            }
        )
        chosen = cands.drop(columns="rank").assign(confidence=np.nan)
        return KnownMapping(cands, chosen)

    from harmonize.mapping.rerank.self_training import PseudoPairs

    result = cross_fitted(PseudoPairs(pseudo_rows), rerank)
    assert len(runs) == 2 and not runs[0] & runs[1]
    assert runs[0] | runs[1] == set(pseudo_rows)
    chosen = result.chosen.set_index("source")
    assert sorted(chosen.index) == list(range(n_source))
    for s in range(n_source):
        run = int(chosen.loc[s, "target"]) - 100
        assert s not in runs[run], f"concept {s} was scored by a run that learned from it"
        assert chosen.loc[s, "score"] == 0.5  # i.e. not one of that run's own known rows
    assert halves(pseudo_rows)[0] == runs[0]


def _lexical_pair(tmp_path, source_rows, target_rows) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    for site, rows in (("s", source_rows), ("t", target_rows)):
        path = tmp_path / f"{site}.csv"
        pd.DataFrame(rows, columns=["code", "description"]).to_csv(path, index=False)
        add_site(ws, site, path)
        build_site_index(ws, site, "lexical", device="cpu")
    return ws


def test_hub_correction_matches_an_independent_computation(tmp_path):
    rng = np.random.default_rng(3)
    words = ["fever", "cough", "pain", "rash", "chest", "ear", "throat", "nose", "acute", "left"]
    texts = [" ".join(rng.choice(words, 3, replace=False)) for _ in range(50)]
    source = [(f"s{i}", t) for i, t in enumerate(texts[:25])]
    target = [(f"t{i}", t) for i, t in enumerate(texts[25:])] + [("hub", " ".join(words))]
    ws = _lexical_pair(tmp_path, source, target)
    result = map_sites(ws, "s", "t", model="lexical", k=3, device="cpu")
    assert "min-score none, zero-shot: hub-corrected ranking) in " in result.summary
    from harmonize.embed.registry import get_encoder

    encoder = get_encoder("lexical")
    s_vec = encoder.encode([t for _, t in source])
    t_vec = encoder.encode([t for _, t in target])
    cos = s_vec @ t_vec.T
    hub = np.sort(cos, axis=0)[::-1][:HUB_NEIGHBOURS].mean(axis=0)
    want = np.array([c for c, _ in target])[np.argmax(cos - HUB_WEIGHT * hub, axis=1)]
    got = result.mappings.set_index("source_code")["target_code"]
    adjusted = cos - HUB_WEIGHT * hub
    top2 = np.sort(adjusted, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5  # leave exact ties to the search's order
    assert clear.sum() >= 20
    assert [got[c] for c, _ in np.array(source)[clear]] == list(want[clear])
    # and the stored score is the chosen pair's cosine, not the corrected one
    chosen = [int(np.flatnonzero(np.array([c for c, _ in target]) == got[c])[0]) for c, _ in source]
    assert np.allclose(
        result.mappings.set_index("source_code").loc[[c for c, _ in source], "score"],
        cos[np.arange(len(source)), chosen],
        atol=1e-5,
    )
    plain = map_sites(ws, "s", "t", model="lexical", k=3, device="cpu", zero_shot=())
    assert "zero-shot" not in plain.summary
    plain_got = plain.mappings.set_index("source_code")["target_code"]
    plain_clear = np.diff(np.sort(cos, axis=1)[:, -2:], axis=1).ravel() > 1e-5
    targets = np.array([c for c, _ in target])
    assert [plain_got[c] for c, _ in np.array(source)[plain_clear]] == list(
        targets[np.argmax(cos, axis=1)][plain_clear]
    )


def test_map_says_which_acronyms_it_expanded(tmp_path):
    ws = _lexical_pair(
        tmp_path,
        [("L1", "URI"), ("L2", "cough")],
        [
            ("S1", "upper respiratory infection"),
            ("S2", "uterine rupture injury x"),
            ("S3", "cough"),
        ],
    )
    result = map_sites(ws, "s", "t", model="lexical", k=2, device="cpu")
    # (three target concepts: too few for the hub correction, HUB_MIN_CONCEPTS)
    assert "zero-shot: 1 acronyms expanded (1 descriptions rewritten))" in result.summary
    assert result.mappings.set_index("source_code").loc["L1", "target_code"] == "S1"
    plain = map_sites(ws, "s", "t", model="lexical", k=2, device="cpu", zero_shot=())
    assert plain.mappings.set_index("source_code").loc["L1", "target_code"] != "S1"


def test_unknown_lever_is_refused(tmp_path):
    from harmonize.core.errors import InputError

    with pytest.raises(InputError, match="unknown zero-shot lever 'magic'"):
        map_sites(Workspace(tmp_path / "ws"), "s", "t", zero_shot=("magic",))


def test_self_training_runs_through_map_and_keeps_every_concept(tmp_path, monkeypatch):
    """map --self-train: pseudo-pairs found, both halves' rerankers run, each concept ranked by
    the run that did not learn from it, every concept mapped with its stored candidates."""
    from harmonize.mapping import zeroshot

    words = ["fever", "cough", "pain", "rash", "chest", "ear", "throat", "nose", "acute", "dry"]
    words += ["left", "right", "upper", "lower", "mild", "severe", "chronic", "viral", "eye"]
    rng = np.random.default_rng(5)
    texts = sorted({" ".join(rng.choice(words, 3, replace=False)) for _ in range(120)})[:90]
    source = [(f"s{i}", t) for i, t in enumerate(texts)]
    target = [(f"t{i}", " ".join(reversed(t.split()))) for i, t in enumerate(texts[:70])]
    target += [(f"u{i}", t.split()[0] + " finding") for i, t in enumerate(texts[70:])]
    ws = _lexical_pair(tmp_path, source, target)
    seen: list[tuple[set[int], set[int]]] = []
    real = zeroshot.cross_fitted

    def spy(pseudo, rerank):
        def recording(known):
            mapping = rerank(known)
            ranked = set(mapping.chosen["source"].tolist()) - set(known.rows)
            seen.append((set(known.rows), ranked))
            return mapping

        return real(pseudo, recording)

    monkeypatch.setattr(zeroshot, "cross_fitted", spy)
    levers = ("acronyms", "hubs", "self-training")
    result = map_sites(ws, "s", "t", model="lexical", k=3, device="cpu", zero_shot=levers)
    assert ", self-trained on " in result.summary and " identical" in result.summary
    assert len(seen) == 2 and not seen[0][0] & seen[1][0]
    assert seen[1][1] >= seen[0][0]  # the second run ranks the first half it did not see
    assert result.n_mapped == len(source)
    stored = result.mappings.set_index("source_code")["target_code"]
    # the identical texts (reversed word order) map onto their twins
    assert sum(stored[f"s{i}"] == f"t{i}" for i in range(70)) >= 65
