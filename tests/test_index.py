"""FAISS indexes: exact agreement with numpy brute force, caching, meta.json and staleness."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harmonize.core.errors import IndexStateError
from harmonize.embed.base import l2_normalize
from harmonize.embed.registry import get_encoder
from harmonize.index.faiss_index import build_faiss, search, vectors_of
from harmonize.index.site_index import build_site_index, load_site_index, read_index
from harmonize.index.status import index_status, read_meta
from harmonize.sites.registry import add_site


def _vectors(n: int, d: int, seed: int) -> np.ndarray:
    return l2_normalize(np.random.default_rng(seed).standard_normal((n, d)))


def _brute_force(base: np.ndarray, queries: np.ndarray, k: int):
    sims = queries @ base.T
    ids = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, ids, axis=1), ids


def test_flat_search_equals_brute_force():
    """Flat inner-product search returns exactly numpy's top-k ids and cosines."""
    base, queries = _vectors(500, 24, 1), _vectors(60, 24, 2)
    scores, ids = search(build_faiss(base, "flat"), queries, k=7)
    ref_scores, ref_ids = _brute_force(base, queries, 7)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_hnsw_search_recall_against_brute_force():
    """HNSW is approximate: on 2,000 seeded vectors its recall@10 against exact search is high
    and every returned score is the true cosine of the returned id."""
    base, queries = _vectors(2000, 16, 3), _vectors(100, 16, 4)
    scores, ids = search(build_faiss(base, "hnsw"), queries, k=10)
    _, ref_ids = _brute_force(base, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, ref_ids, strict=True)])
    assert recall >= 0.95
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", queries, base[ids]), atol=1e-5)


def test_k_larger_than_index_is_capped():
    """Asking for more neighbours than rows returns every row once and no -1 ids."""
    base = _vectors(3, 8, 5)
    scores, ids = search(build_faiss(base, "flat"), base, k=10)
    assert ids.shape == (3, 3)
    assert sorted(ids[0].tolist()) == [0, 1, 2]


def test_vectors_round_trip_in_row_order():
    base = _vectors(50, 12, 6)
    for kind in ("flat", "hnsw"):
        np.testing.assert_allclose(vectors_of(build_faiss(base, kind)), base, atol=1e-6)


def test_build_site_index_writes_meta_and_rows_in_vocab_order(workspace, vocab_files, fake_encoder):
    """meta.json records model, dim, count, type and vocabulary hash; row i is concept_id i."""
    add_site(workspace, "siteA", vocab_files["a"])
    result = build_site_index(workspace, "siteA", "fake")
    assert result.built and result.count == 5 and result.dim == 32
    meta = read_meta(result.folder)
    assert meta["model"] == "fake" and meta["index_type"] == "flat" and meta["count"] == 5
    assert meta["dim"] == 32 and meta["harmonize_version"] and len(meta["vocab_sha256"]) == 64
    index = read_index(result.folder, meta)
    expected = fake_encoder.encode(
        ["acute dyspnea", "reported fever", "dry cough", "sore throat", "muscle pain"]
    )
    np.testing.assert_allclose(vectors_of(index), expected, atol=1e-6)


def test_unchanged_texts_are_never_embedded_twice(workspace, vocab_files, tmp_path, fake_encoder):
    """--force rebuilds from the cache; after a vocabulary edit only the new text is embedded."""
    add_site(workspace, "siteA", vocab_files["a"])
    build_site_index(workspace, "siteA", "fake")
    assert sum(len(c) for c in fake_encoder.calls) == 5
    fake_encoder.calls.clear()
    again = build_site_index(workspace, "siteA", "fake", force=True)
    assert again.built and fake_encoder.calls == []
    edited = tmp_path / "a2.csv"
    edited.write_text(vocab_files["a"].read_text().replace("muscle pain", "myalgia"))
    add_site(workspace, "siteA", edited, replace=True)
    build_site_index(workspace, "siteA", "fake")
    assert fake_encoder.calls == [["myalgia"]]


def test_up_to_date_index_is_left_alone(workspace, vocab_files, fake_encoder):
    add_site(workspace, "siteA", vocab_files["a"])
    first = build_site_index(workspace, "siteA", "fake")
    mtime = (first.folder / "index.faiss").stat().st_mtime_ns
    second = build_site_index(workspace, "siteA", "fake")
    assert not second.built
    assert second.message == (
        "index for site 'siteA' (model fake) is up to date; nothing to do (use --force to rebuild)"
    )
    assert (first.folder / "index.faiss").stat().st_mtime_ns == mtime


def test_vocabulary_change_makes_index_stale(workspace, vocab_files, tmp_path, fake_encoder):
    """A replaced vocabulary makes the index stale and loading it names the rebuild command."""
    add_site(workspace, "siteA", vocab_files["a"])
    build_site_index(workspace, "siteA", "fake")
    edited = tmp_path / "a2.csv"
    edited.write_text(vocab_files["a"].read_text().replace("dry cough", "nonproductive cough"))
    add_site(workspace, "siteA", edited, replace=True)
    with workspace.connect(read_only=True) as con:
        status = index_status(workspace, con, "siteA", get_encoder("fake"))
        assert status.state == "stale"
        with pytest.raises(IndexStateError) as err:
            load_site_index(workspace, con, "siteA", get_encoder("fake"))
    assert str(err.value) == (
        "index for site 'siteA' (model fake) is stale: the site's vocabulary changed since the "
        "index was built. Run 'harmonize build-index --site siteA --model fake --force'."
    )


def test_truncated_index_file_is_refused(workspace, vocab_files, fake_encoder):
    add_site(workspace, "siteA", vocab_files["a"])
    result = build_site_index(workspace, "siteA", "fake")
    path = result.folder / "index.faiss"
    path.write_bytes(path.read_bytes()[:100])
    with workspace.connect(read_only=True) as con, pytest.raises(IndexStateError) as err:
        load_site_index(workspace, con, "siteA", get_encoder("fake"))
    assert "does not match" in str(err.value)


def test_meta_json_is_valid_json_with_sorted_keys(workspace, vocab_files, fake_encoder):
    add_site(workspace, "siteA", vocab_files["a"])
    result = build_site_index(workspace, "siteA", "fake", index_type="hnsw")
    meta = json.loads((result.folder / "meta.json").read_text())
    assert list(meta) == sorted(meta) and meta["index_type"] == "hnsw"
