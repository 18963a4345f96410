"""Choosing mappings: strategies against brute force, and map_sites end to end (fake encoder)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from harmonize.core.errors import InputError
from harmonize.index.site_index import build_site_index
from harmonize.mapping.choose import choose_best, choose_mutual, choose_one_to_one
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.registry import add_site


def _top_k(sim: np.ndarray, k: int):
    ids = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, ids, axis=1), ids


def test_best_and_min_score_by_hand():
    scores = np.array([[0.9, 0.5], [0.4, 0.2], [0.7, 0.6]])
    ids = np.array([[1, 0], [1, 0], [0, 1]])
    assert choose_best(scores, ids, -np.inf) == [[0, 1, 0.9], [1, 1, 0.4], [2, 0, 0.7]]
    assert choose_best(scores, ids, 0.7) == [[0, 1, 0.9], [2, 0, 0.7]]


def test_mutual_keeps_only_reciprocal_pairs():
    """Source 0 and 1 both prefer target 1; target 1 prefers source 0, so only (0, 1) stays,
    and (2, 0) stays because target 0's nearest source is 2."""
    sim = np.array([[0.2, 0.9], [0.3, 0.8], [0.7, 0.1]])
    scores, ids = _top_k(sim, 2)
    _, reverse = _top_k(sim.T, 1)
    assert choose_mutual(scores, ids, reverse, -np.inf) == [[0, 1, 0.9], [2, 0, 0.7]]


@pytest.mark.parametrize("seed", range(8))
def test_one_to_one_matches_brute_force_on_small_cases(seed):
    """The assignment maximises first the number of matched sources, then total similarity,
    exactly as an exhaustive search over all injective assignments does."""
    rng = np.random.default_rng(seed)
    n_s, n_t, k = 4, 5, 3
    sim = rng.uniform(-1, 1, size=(n_s, n_t))
    scores, ids = _top_k(sim, k)
    floor = -0.2
    allowed = {(i, int(ids[i, j])) for i in range(n_s) for j in range(k) if scores[i, j] >= floor}
    best_key, best = (-1, -np.inf), None
    for targets in itertools.product([None, *range(n_t)], repeat=n_s):
        used = [t for t in targets if t is not None]
        if len(used) != len(set(used)):
            continue
        if any(t is not None and (i, t) not in allowed for i, t in enumerate(targets)):
            continue
        total = sum(sim[i, t] for i, t in enumerate(targets) if t is not None)
        key = (len(used), round(total, 9))
        if key > best_key:
            best_key, best = key, targets
    chosen = choose_one_to_one(scores, ids, floor)
    assert len(chosen) == best_key[0]
    assert sum(s for _, _, s in chosen) == pytest.approx(best_key[1])
    assert len({t for _, t, _ in chosen}) == len(chosen)
    assert best is not None or chosen == []


@pytest.fixture
def two_sites(workspace, vocab_files, fake_encoder):
    add_site(workspace, "siteA", vocab_files["a"])
    add_site(workspace, "siteB", vocab_files["b"])
    build_site_index(workspace, "siteA", "fake")
    build_site_index(workspace, "siteB", "fake")
    return workspace


def _table(ws, name):
    with ws.connect(read_only=True) as con:
        return con.execute(f"SELECT * FROM {name} ORDER BY ALL").df()


def test_map_stores_candidates_and_exact_mappings(two_sites):
    """Reordered words embed identically under the bag-of-words fake, so every siteB concept
    maps to its siteA counterpart with cosine 1; candidates hold k rows per source concept."""
    result = map_sites(two_sites, "siteB", "siteA", model="fake", k=3)
    assert (result.n_source, result.n_mapped, result.n_candidates) == (4, 4, 12)
    mappings = _table(two_sites, "mappings")
    pairs = dict(zip(mappings["source_code"], mappings["target_code"], strict=True))
    assert pairs == {"B1": "A2", "B2": "A3", "B3": "A1", "B4": "A4"}
    assert np.allclose(mappings["score"], 1.0)
    assert set(mappings["method"]) == {"fake:best"} and set(mappings["run_id"]) == {result.run_id}
    candidates = _table(two_sites, "candidates").sort_values(["source_code", "rank"])
    assert candidates.groupby("source_code")["rank"].apply(list).tolist() == [[1, 2, 3]] * 4
    first = candidates[candidates["rank"] == 1]
    assert dict(zip(first["source_code"], first["target_code"], strict=True)) == pairs
    view = _table(two_sites, "mapped_concepts")
    row = view[view["source_code"] == "B1"].iloc[0]
    assert (row["source_description"], row["target_description"]) == (
        "fever reported",
        "reported fever",
    )


def test_rerun_replaces_the_pair_and_min_score_leaves_no_row(two_sites):
    """A second run replaces the pair's rows; a source with no candidate at or above
    --min-score gets no mapping but keeps its candidates."""
    map_sites(two_sites, "siteB", "siteA", model="fake", k=2)
    result = map_sites(two_sites, "siteB", "siteA", model="fake", k=2, min_score=0.99)
    mappings = _table(two_sites, "mappings")
    assert set(mappings["run_id"]) == {result.run_id}
    assert len(mappings) == 4  # all four have cosine 1.0 >= 0.99
    result = map_sites(two_sites, "siteA", "siteB", model="fake", k=2, min_score=0.99)
    unmapped = {"A5"}  # "muscle pain" shares no word with siteB
    assert result.n_mapped == 4 and result.n_source == 5
    with two_sites.connect(read_only=True) as con:
        got = con.execute("SELECT source_code FROM mappings WHERE source_site = 'siteA'").df()[
            "source_code"
        ]
        n_cand = con.execute("SELECT count(*) FROM candidates WHERE source_site = 'siteA'")
        assert n_cand.fetchone()[0] == 10
    assert unmapped.isdisjoint(got)


def test_output_csv_matches_the_store(two_sites, tmp_path):
    out = tmp_path / "m.csv"
    result = map_sites(two_sites, "siteB", "siteA", model="fake", output=out)
    written = pd.read_csv(out)
    assert list(written.columns) == [
        "source_code",
        "source_description",
        "target_code",
        "target_description",
        "score",
        "confidence",
        "predicate",
        "method",
        "run_id",
    ]
    assert sorted(written["source_code"]) == ["B1", "B2", "B3", "B4"]
    assert set(written["run_id"]) == {result.run_id}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "greedy"}, "unknown strategy 'greedy': use one of best, mutual, one-to-one"),
        ({"k": 0}, "{k} must be at least 1, got 0"),
        ({"min_score": 2.0}, "{min_score} is a cosine similarity between -1 and 1, got 2.0"),
        ({"output": "m.txt"}, "{output} must be a .csv file, got m.txt"),
    ],
)
def test_bad_arguments_fail_before_touching_the_store(two_sites, kwargs, message):
    """Messages name the parameter; the CLI renders it as its flag."""
    before = _table(two_sites, "mappings")
    with pytest.raises(InputError) as err:
        map_sites(two_sites, "siteB", "siteA", model="fake", **kwargs)
    flags = {"k": "--k", "min_score": "--min-score", "output": "--output"}
    assert str(err.value) == message.format(**{p: p for p in flags})
    assert err.value.render(flags) == message.format(**flags)
    pd.testing.assert_frame_equal(_table(two_sites, "mappings"), before)


def test_fused_search_equals_reciprocal_rank_fusion_by_hand():
    """Two models' rankings fused by 1/(60 + rank), ties by id; scores are mean cosines."""
    from harmonize.embed.base import l2_normalize
    from harmonize.index.faiss_index import build_faiss
    from harmonize.mapping.retrieve import fused_search

    rng = np.random.default_rng(3)
    models = []
    for dim in (8, 5):
        base = l2_normalize(rng.standard_normal((70, dim)))
        queries = l2_normalize(rng.standard_normal((6, dim)))
        models.append((queries, base))
    scores, ids = fused_search([(q, build_faiss(b)) for q, b in models], k=4)
    for i in range(6):
        fused = {}
        for q, b in models:
            order = np.argsort(-(b @ q[i]), kind="stable")[:50]
            for rank, t in enumerate(order, start=1):
                fused[int(t)] = fused.get(int(t), 0.0) + 1 / (60 + rank)
        expected = sorted(fused, key=lambda t: (-fused[t], t))[:4]
        assert ids[i].tolist() == expected
        cos = np.mean([b[expected] @ q[i] for q, b in models], axis=0)
        np.testing.assert_allclose(scores[i], cos, atol=1e-5)
    # One model: plain search, unchanged.
    q, b = models[0]
    single_scores, single_ids = fused_search([(q, build_faiss(b))], k=4)
    assert single_ids.tolist() == np.argsort(-(q @ b.T), axis=1, kind="stable")[:, :4].tolist()


def test_map_with_a_fused_model(two_sites):
    """--model fake+lexical needs both indexes and records the fused method."""
    build_site_index(two_sites, "siteA", "lexical")
    build_site_index(two_sites, "siteB", "lexical")
    result = map_sites(two_sites, "siteB", "siteA", model="fake+lexical", k=2)
    assert result.model == "fake+lexical"
    mappings = _table(two_sites, "mappings")
    assert set(mappings["method"]) == {"fake+lexical:best"}
    pairs = dict(zip(mappings["source_code"], mappings["target_code"], strict=True))
    assert pairs == {"B1": "A2", "B2": "A3", "B3": "A1", "B4": "A4"}
