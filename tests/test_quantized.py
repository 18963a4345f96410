"""minilm-int8: its own fingerprint and cache, the agreement gate, and real agreement with fp32."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harmonize.core.errors import ModelError
from harmonize.embed.cache import EmbeddingCache, embed_texts
from harmonize.embed.quantized import RECIPE
from harmonize.embed.quantized_gate import (
    MIN_COSINE,
    MIN_TOP1_AGREEMENT,
    agreement,
    agrees,
    probe_texts,
    top1_agreement,
)
from harmonize.embed.registry import get_encoder


def test_fingerprint_and_slug_differ_from_fp32():
    fp32, int8 = get_encoder("minilm"), get_encoder("minilm-int8")
    assert int8.slug == "minilm-int8" != fp32.slug
    assert int8.fingerprint != fp32.fingerprint
    assert RECIPE in int8.fingerprint and fp32.fingerprint in int8.fingerprint


def test_cache_never_mixes_int8_and_fp32_vectors(tmp_path, fake_encoder):
    """Each encoder has its own cache file; a vector cached by one is never served to the other."""
    int8 = get_encoder("minilm-int8")
    fp32_cache = EmbeddingCache(tmp_path, get_encoder("minilm"))
    int8_cache = EmbeddingCache(tmp_path, int8)
    assert fp32_cache.path != int8_cache.path
    fp32_cache.put(["cough"], np.ones((1, 384), dtype=np.float32))
    fp32_cache.save()
    assert EmbeddingCache(tmp_path, int8).get("cough") is None
    assert EmbeddingCache(tmp_path, get_encoder("minilm")).get("cough") is not None


def test_gate_refuses_a_model_that_disagrees(tmp_path, monkeypatch):
    monkeypatch.setenv("HARMONIZE_MODEL_CACHE", str(tmp_path))
    encoder = get_encoder("minilm-int8")
    encoder.folder.mkdir(parents=True)
    report = {"min_cosine": 0.95, "top1_agreement_icd": 0.9, "top1_agreement_demo": 0.9}
    meta = {"agrees": agrees(report), "agreement": report}
    (encoder.folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ModelError, match="does not agree with its fp32 model.*fp32 model, minilm"):
        encoder.encode(["cough"])


def test_gate_thresholds():
    good = {"min_cosine": 0.991, "top1_agreement_icd": 0.99, "top1_agreement_demo": 0.9}
    assert agrees(good)
    assert not agrees({**good, "min_cosine": MIN_COSINE - 0.001})
    assert not agrees({**good, "top1_agreement_icd": MIN_TOP1_AGREEMENT - 0.01})


def test_top1_agreement_matches_a_loop():
    rng = np.random.default_rng(3)
    q, b = rng.standard_normal((20, 8)), rng.standard_normal((30, 8))
    q2, b2 = q + 0.3 * rng.standard_normal(q.shape), b + 0.3 * rng.standard_normal(b.shape)
    loop = np.mean(
        [
            np.argmax([qi @ y for y in b]) == np.argmax([qj @ y for y in b2])
            for qi, qj in zip(q, q2, strict=True)
        ]
    )
    assert top1_agreement(q, b, q2, b2) == pytest.approx(loop)


@pytest.mark.model
def test_int8_agrees_with_fp32_on_real_vocabularies():
    """cosine >= 0.99 per text and top-1 agreement >= 98 % on ICD-10 -> ICD-9 (a sample)."""
    fp32, int8 = get_encoder("minilm"), get_encoder("minilm-int8")
    probe = probe_texts()
    sample = {
        "icd_queries": probe["icd_queries"][:100],
        "icd_base": probe["icd_base"][:400],
        "demo_queries": probe["demo_queries"],
        "demo_base": probe["demo_base"],
    }
    report = agreement(fp32, int8, sample)
    assert report["min_cosine"] >= MIN_COSINE
    assert report["top1_agreement_icd"] >= MIN_TOP1_AGREEMENT
    assert report["top1_agreement_demo"] >= 0.9  # 96 short texts with near ties: reported
    assert int8.agreement["min_cosine"] >= MIN_COSINE  # the full probe, measured at build


@pytest.mark.model
def test_int8_vectors_are_unit_rows_in_input_order_through_the_cache(tmp_path):
    int8 = get_encoder("minilm-int8")
    texts = ["shortness of breath", "SOB", "cough", "shortness of breath", ""]
    cache = EmbeddingCache(tmp_path, int8)
    vecs = embed_texts(int8, texts, cache=cache)
    assert vecs.shape == (5, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vecs[0], vecs[3])
    alone = int8.encode(["cough"])[0]
    assert float(alone @ vecs[2]) > MIN_COSINE  # batch composition matters little
    assert len(EmbeddingCache(tmp_path, int8)) == 4
