"""Scale generators (perturbed vocabularies, chunked events) and streamed index building."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from harmonize.core.errors import InputError
from harmonize.datasets.icd import icd_vocab
from harmonize.datasets.synthetic import PERTURBATIONS, perturb, perturbed_vocab, write_events
from harmonize.embed.cache import EmbeddingCache, embed_texts
from harmonize.embed.registry import get_encoder
from harmonize.index.faiss_index import build_faiss, search, vectors_of
from harmonize.index.site_index import build_site_index, build_streamed
from harmonize.sites.registry import add_site


def test_perturbed_vocab_keeps_the_truth_and_is_seeded():
    vocab, truth = perturbed_vocab(500, random_state=4)
    again, _ = perturbed_vocab(500, random_state=4)
    assert vocab.equals(again)
    assert vocab["code"].is_unique and (vocab["code"] == truth["code"]).all()
    base = icd_vocab("icd10").set_index("code")["description"]
    assert truth["source_code"].isin(base.index).all()
    assert set(truth["perturbation"]) <= set(PERTURBATIONS)
    changed = (vocab["description"].to_numpy() != base.loc[truth["source_code"]].to_numpy()).mean()
    assert changed > 0.8  # a perturbation with nothing to act on leaves the text as it was


def test_perturbations_by_hand():
    rng = np.random.default_rng(0)
    assert perturb("Left femur", "abbreviation", rng) == "lt femur"
    assert perturb("Fracture, left femur", "word_order", rng) == "left femur, Fracture"
    assert perturb("Renal", "synonym", rng) == "kidney"
    typo = perturb("dyspnea", "typo", rng)
    assert typo != "dyspnea" and len(typo) in (6, 7) and sorted(typo) <= sorted("dyspnea")
    with pytest.raises(InputError, match="unknown perturbation 'x'"):
        perturb("a", "x", rng)


def test_vocab_past_the_real_descriptions_repeats_sources_perturbed_again(monkeypatch):
    import harmonize.datasets.icd

    small = icd_vocab("icd10").head(50)
    monkeypatch.setattr(harmonize.datasets.icd, "icd_vocab", lambda system: small)
    vocab, truth = perturbed_vocab(120, random_state=1)
    assert len(vocab) == 120 and truth["source_code"].value_counts().max() == 3
    assert truth["perturbation"].iloc[100:].str.count(r"\+").eq(2).all()


@pytest.mark.parametrize("site", ["source", "target"])
def test_events_are_written_in_chunks_exactly(tmp_path, site):
    path = tmp_path / "events.parquet"
    info = write_events(path, 2500, site=site, chunk_patients=10, random_state=2)
    table = pq.read_table(path)
    assert info["n_events"] == table.num_rows == 2500
    assert pq.ParquetFile(path).metadata.num_row_groups > 1  # one row group per chunk
    assert table.column_names == ["subject_id", "time", "code", "value"]
    assert set(table.column("value").to_pylist()) <= {"P", "A"}
    again = tmp_path / "again.parquet"
    write_events(again, 2500, site=site, chunk_patients=10, random_state=2)
    assert pq.read_table(again).equals(table)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_streamed_index_equals_the_one_go_index(tmp_path, fake_encoder, kind, chunk):
    texts = [f"word{i % 7} other{i % 5} thing{i}" for i in range(40)] + ["word1 other1 thing1"]
    cache = EmbeddingCache(tmp_path, fake_encoder)
    index = build_streamed(fake_encoder, texts, kind, cache=cache, chunk=chunk)
    one_go = build_faiss(embed_texts(fake_encoder, texts), kind)
    np.testing.assert_allclose(vectors_of(index), vectors_of(one_go), atol=1e-6)
    q = embed_texts(fake_encoder, texts[:5])
    if kind == "flat":
        np.testing.assert_array_equal(search(index, q, 5)[1], search(one_go, q, 5)[1])
    assert len(EmbeddingCache(tmp_path, fake_encoder)) == len(set(texts))  # saved at the end


def test_build_index_streams_in_chunks(workspace, vocab_files, fake_encoder, monkeypatch):
    import harmonize.index.site_index

    monkeypatch.setattr(harmonize.index.site_index, "BUILD_CHUNK_SIZE", 2)
    add_site(workspace, "a", vocab_files["a"])
    result = build_site_index(workspace, "a", "fake", device="cpu")
    assert result.count == 5 and result.n_embedded == 5
    assert [len(c) for c in fake_encoder.calls] == [2, 2, 1]


def test_lexical_stream_builds_without_a_cache():
    index = build_streamed(get_encoder("lexical"), ["a b", "b c", "c d"], chunk=2)
    assert (index.ntotal, index.d) == (3, 4096)
