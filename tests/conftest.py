"""Shared fixtures: a deterministic fake encoder and small two-site workspaces."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from harmonize.core.workspace import Workspace
from harmonize.embed.base import l2_normalize
from harmonize.embed.registry import register_encoder

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


class FakeEncoder:
    """Bag of words: each lower-cased word is a fixed random vector (seeded by its hash), a text
    is their sum. Texts sharing words are close; no model needed. Counts its calls."""

    spec = "fake"
    slug = "fake"
    cacheable = True
    dim = 32
    fingerprint = "fake-v1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @staticmethod
    def word_vector(word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(FakeEncoder.dim)

    def encode(self, texts, batch_size=64, device="cpu"):
        self.calls.append(list(texts))
        rows = [
            sum((self.word_vector(w) for w in t.lower().split()), np.zeros(self.dim)) for t in texts
        ]
        return l2_normalize(np.array(rows).reshape(len(texts), self.dim))


FAKE = FakeEncoder()
register_encoder("fake", lambda: FAKE)


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    FAKE.calls.clear()
    return FAKE


SITE_A = """code,description,system
A1,acute dyspnea,local
A2,reported fever,local
A3,dry cough,local
A4,sore throat,local
A5,muscle pain,local
"""

SITE_B = """code,description,parent_code,frequency,note
B1,fever reported,RESP,10,x
B2,cough dry,RESP,5,y
B3,dyspnea acute,RESP,7,z
B4,throat sore,ENT,1,w
"""


@pytest.fixture
def vocab_files(tmp_path: Path) -> dict[str, Path]:
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text(SITE_A, encoding="utf-8")
    b.write_text(SITE_B, encoding="utf-8")
    return {"a": a, "b": b}


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def indexed(runner, workspace, vocab_files, fake_encoder) -> Workspace:
    """siteA and siteB added and indexed with the fake encoder, through the CLI."""
    from tests.helpers import run

    for site, key in (("siteA", "a"), ("siteB", "b")):
        assert (
            run(runner, workspace, "add-site", site, "--vocab", str(vocab_files[key])).exit_code
            == 0
        )
        assert (
            run(runner, workspace, "build-index", "--site", site, "--model", "fake").exit_code == 0
        )
    return workspace


@pytest.fixture
def known_ws(workspace, tmp_path):
    """Sites 'local' (families under parents) and 'standard', lexical indexes, and the files of
    :func:`tests.helpers.known_vocab_files`."""
    from harmonize.index.site_index import build_site_index
    from harmonize.sites.registry import add_site
    from tests.helpers import known_vocab_files

    paths = known_vocab_files(tmp_path)
    add_site(workspace, "local", paths["local"])
    add_site(workspace, "standard", paths["standard"])
    build_site_index(workspace, "local", "lexical")
    build_site_index(workspace, "standard", "lexical")
    return workspace, paths


@pytest.fixture
def mapped_ba(indexed):
    """``indexed`` with siteB mapped onto siteA (fake encoder, k=3)."""
    from harmonize.mapping.pipeline import map_sites

    map_sites(indexed, "siteB", "siteA", model="fake", k=3)
    return indexed
