"""Encoders: unit-length float32 rows, the precomputed and lexical paths, the cache; the real
MiniLM model in tests marked ``model``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harmonize.core.errors import ModelError
from harmonize.embed.base import l2_normalize, slugify
from harmonize.embed.cache import EmbeddingCache, embed_texts
from harmonize.embed.registry import get_encoder, minilm_path
from harmonize.index.site_index import build_site_index
from harmonize.mapping.pipeline import map_sites
from harmonize.sites.registry import add_site

PAPER = Path(__file__).resolve().parents[2] / "shared" / "data" / "paper-embeddings"
SOURCE_VOCAB = Path(__file__).resolve().parents[1] / "harmonize" / "data" / "source_concepts.csv"


def test_l2_normalize_keeps_zero_rows():
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_lexical_is_unit_length_and_prefers_shared_spelling():
    enc = get_encoder("lexical")
    vecs = enc.encode(["dyspnea", "dyspnoea", "headache"])
    assert vecs.dtype == np.float32 and vecs.shape == (3, enc.dim)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    assert vecs[0] @ vecs[1] > 0.5 > vecs[0] @ vecs[2]
    # Stateless: the same text gives the same vector whatever else is in the batch.
    np.testing.assert_array_equal(enc.encode(["dyspnea"])[0], vecs[0])


def test_slugify_is_readable_and_unique():
    assert slugify("minilm") == "minilm"
    a, b = slugify("precomputed:/x/bert.parquet"), slugify("precomputed:/y/bert.parquet")
    assert a.startswith("precomputed-bert-") and a != b


def test_precomputed_lookup_and_missing_text(tmp_path):
    path = tmp_path / "vecs.parquet"
    pd.DataFrame({"text": ["fever", "cough"], "embedding": [[3.0, 4.0], [1.0, 0.0]]}).to_parquet(
        path
    )
    enc = get_encoder(f"precomputed:{path}")
    np.testing.assert_allclose(enc.encode(["cough", "fever"]), [[1.0, 0.0], [0.6, 0.8]])
    with pytest.raises(ModelError) as err:
        enc.encode(["fever", "rash", "ear pain"])
    assert str(err.value) == (
        f"2 text(s) have no vector in {path}, e.g. 'rash', 'ear pain'. "
        "Precomputed embeddings must cover every description exactly."
    )


def test_cache_round_trip_and_invalidation(tmp_path, fake_encoder):
    cache = EmbeddingCache(tmp_path, fake_encoder)
    first = embed_texts(fake_encoder, ["a b", "c", "a b"], cache=cache)
    assert fake_encoder.calls == [["a b", "c"]]  # duplicates embedded once
    np.testing.assert_array_equal(first[0], first[2])
    fake_encoder.calls.clear()
    reopened = EmbeddingCache(tmp_path, fake_encoder)
    again = embed_texts(fake_encoder, ["c", "a b", "d"], cache=reopened)
    assert fake_encoder.calls == [["d"]]
    np.testing.assert_array_equal(again[:2], first[[1, 0]])
    fake_encoder.fingerprint = "fake-v2"  # new weights: the old cache must not be used
    try:
        assert len(EmbeddingCache(tmp_path, fake_encoder)) == 0
    finally:
        fake_encoder.fingerprint = "fake-v1"


@pytest.mark.skipif(not PAPER.is_dir(), reason="needs ../shared/data/paper-embeddings")
def test_paper_vectors_index_the_papers_concept_texts(workspace, tmp_path):
    """The study's present-state texts all have released BERT vectors; an index built from them
    returns each concept as its own nearest neighbour. (The released texts spell '-' and '/' as
    spaces, so the short names in concepts.csv do not all match them exactly.)"""
    paper = pd.read_parquet(PAPER / "bert.parquet", columns=["code", "state", "text"])
    vocab = paper[paper["state"] == "present"].rename(columns={"text": "description"})
    path = tmp_path / "paper.csv"
    vocab[["code", "description"]].to_csv(path, index=False)
    add_site(workspace, "source", path)
    model = f"precomputed:{PAPER / 'bert.parquet'}"
    result = build_site_index(workspace, "source", model)
    assert (result.count, result.dim) == (92, 768)
    add_site(workspace, "copy", path)
    build_site_index(workspace, "copy", model)
    mapped = map_sites(workspace, "copy", "source", model=model, k=1)
    assert (mapped.mappings["source_code"] == mapped.mappings["target_code"]).all()


@pytest.mark.model
def test_minilm_maps_a_dozen_synonyms(workspace, tmp_path):
    """all-MiniLM-L6-v2, offline from its PyPI package, maps lay and clinical synonyms."""
    pairs = [
        ("dyspnea", "shortness of breath"),
        ("myalgia", "muscle aches"),
        ("rhinorrhea", "runny nose"),
        ("emesis", "vomiting"),
        ("pyrexia", "fever"),
        ("cephalgia", "headache"),
        ("arthralgia", "joint pain"),
        ("pharyngitis", "sore throat"),
        ("hemoptysis", "coughing up blood"),
        ("tachypnea", "rapid breathing"),
        ("anorexia", "loss of appetite"),
        ("diarrhea", "loose stools"),
    ]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    pd.DataFrame(
        {"code": [f"A{i}" for i in range(12)], "description": [p[0] for p in pairs]}
    ).to_csv(a, index=False)
    pd.DataFrame(
        {"code": [f"B{i}" for i in range(12)], "description": [p[1] for p in pairs]}
    ).to_csv(b, index=False)
    add_site(workspace, "a", a)
    add_site(workspace, "b", b)
    build_site_index(workspace, "a", "minilm")
    build_site_index(workspace, "b", "minilm")
    correct = {}
    for strategy in ("best", "one-to-one"):
        result = map_sites(workspace, "b", "a", model="minilm", k=5, strategy=strategy)
        got = dict(zip(result.mappings["source_code"], result.mappings["target_code"], strict=True))
        correct[strategy] = sum(got.get(f"B{i}") == f"A{i}" for i in range(12))
    # Jargon against lay terms is hard for a small general model: nearest neighbour alone gets
    # 7 of 12; the global one-to-one assignment resolves most of the collisions.
    assert correct["best"] >= 7 and correct["one-to-one"] >= 10, correct
    assert correct["one-to-one"] > correct["best"], correct


@pytest.mark.model
def test_hf_mean_pooling_reproduces_the_sentence_transformer():
    """MiniLM's own pipeline is mean pooling + normalisation, so hf-mean on the same folder
    gives the same vectors: a differential check of the plain-transformers encoder."""
    texts = ["reported fever", "Not dyspnea", "lab positive influenza"]
    st = get_encoder("minilm").encode(texts)
    hf = get_encoder(f"hf-mean:{minilm_path()}").encode(texts)
    np.testing.assert_allclose(st, hf, atol=1e-5)
    cls = get_encoder(f"hf-cls:{minilm_path()}").encode(texts)
    assert cls.shape == st.shape and not np.allclose(cls, st, atol=1e-3)
