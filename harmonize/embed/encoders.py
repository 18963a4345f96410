"""The encoders themselves: a sentence-transformers folder, a plain transformers model with CLS
or mean pooling, precomputed vectors from Parquet, and the lexical (character n-gram) encoder.

Each follows :class:`harmonize.embed.base.Encoder`: float32 rows of unit length, and a
fingerprint that changes whenever its vectors would. Models load on first use, offline.

>>> enc = LexicalEncoder()
>>> vecs = enc.encode(["shortness of breath", "breath shortness", "fever"])
>>> bool(vecs[0] @ vecs[1] > vecs[0] @ vecs[2])
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harmonize.core.config import ENCODE_BATCH_SIZE, LEXICAL_DIM, LEXICAL_NGRAMS
from harmonize.core.errors import ModelError
from harmonize.embed.base import dir_fingerprint, l2_normalize, quiet_transformers, slugify


class SentenceTransformerEncoder:
    """A sentence-transformers model from a local folder (the model's own pooling)."""

    cacheable = True

    def __init__(self, spec: str, path: Path):
        self.spec = spec
        self.slug = slugify(spec)
        self.path = path
        self._model = None
        self._device: str | None = None

    def _load(self, device: str):
        if self._model is None or self._device != device:
            quiet_transformers()
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(
                    str(self.path), device=device, local_files_only=True
                )
            except Exception as exc:  # any loader failure is a user-facing model problem
                raise ModelError(
                    f"cannot load sentence-transformers model {self.path}: {exc}"
                ) from exc
            self._device = device
        return self._model

    @property
    def dim(self) -> int:
        model = self._load(self._device or "cpu")
        return int(model.get_embedding_dimension())

    @property
    def fingerprint(self) -> str:
        return dir_fingerprint(self.path)

    def encode(self, texts, batch_size=ENCODE_BATCH_SIZE, device="cpu"):
        model = self._load(device)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return l2_normalize(vectors)


class HFPoolingEncoder:
    """A plain transformers encoder with CLS or attention-masked mean pooling (as the paper's
    BERT-family embeddings were made)."""

    cacheable = True

    def __init__(self, spec: str, path: Path, pooling: str):
        self.spec = spec
        self.slug = slugify(spec)
        self.path = path
        self.pooling = pooling
        self._parts = None
        self._device: str | None = None

    def _load(self, device: str):
        if self._parts is None or self._device != device:
            quiet_transformers()
            from transformers import AutoModel, AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
                model = AutoModel.from_pretrained(str(self.path), local_files_only=True)
            except Exception as exc:
                raise ModelError(f"cannot load transformers model {self.path}: {exc}") from exc
            model.eval().to(device)
            self._parts = (tokenizer, model)
            self._device = device
        return self._parts

    @property
    def dim(self) -> int:
        _, model = self._load(self._device or "cpu")
        return int(model.config.hidden_size)

    @property
    def fingerprint(self) -> str:
        return f"{self.pooling}-{dir_fingerprint(self.path)}"

    def encode(self, texts, batch_size=ENCODE_BATCH_SIZE, device="cpu"):
        import torch

        tokenizer, model = self._load(device)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = tokenizer(
                    list(texts[start : start + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=512,
                    return_tensors="pt",
                ).to(device)
                hidden = model(**batch).last_hidden_state
                if self.pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(pooled.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalize(np.concatenate(out))


class PrecomputedEncoder:
    """Vectors looked up by exact text in a Parquet file with columns ``text`` and ``embedding``."""

    cacheable = False

    def __init__(self, spec: str, path: Path):
        self.spec = spec
        self.slug = slugify(spec)
        self.path = path
        self._table: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._table is None:
            if not self.path.is_file():
                raise ModelError(f"precomputed embeddings file not found: {self.path}")
            try:
                table = pq.read_table(self.path, columns=["text", "embedding"])
            except (pa.ArrowException, OSError, KeyError) as exc:
                raise ModelError(
                    f"cannot read {self.path}: need a Parquet file with columns 'text' and "
                    f"'embedding' ({exc})"
                ) from exc
            texts = table.column("text").to_pylist()
            matrix = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
            if matrix.ndim != 2:
                raise ModelError(f"{self.path}: column 'embedding' must hold equal-length vectors")
            matrix = l2_normalize(matrix)
            self._table = {}
            for text, row in zip(texts, matrix, strict=True):
                self._table.setdefault(text, row)
        return self._table

    @property
    def dim(self) -> int:
        return int(next(iter(self._load().values())).shape[0])

    @property
    def fingerprint(self) -> str:
        if not self.path.is_file():
            raise ModelError(f"precomputed embeddings file not found: {self.path}")
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def encode(self, texts, batch_size=ENCODE_BATCH_SIZE, device="cpu"):
        table = self._load()
        missing = [t for t in texts if t not in table]
        if missing:
            shown = ", ".join(repr(t) for t in missing[:5])
            raise ModelError(
                f"{len(missing)} text(s) have no vector in {self.path}, e.g. {shown}. "
                "Precomputed embeddings must cover every description exactly."
            )
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([table[t] for t in texts]).astype(np.float32)


class LexicalEncoder:
    """Character n-grams (within word boundaries) hashed into a fixed space, sublinear TF,
    unit length: cosine then measures shared spelling, like OHDSI Usagi's string matching.
    Stateless, so two sites' vectors are comparable without a shared fit."""

    cacheable = False
    spec = "lexical"
    slug = "lexical"
    dim = LEXICAL_DIM
    fingerprint = f"hash-char_wb{LEXICAL_NGRAMS}-{LEXICAL_DIM}"

    def encode(self, texts, batch_size=ENCODE_BATCH_SIZE, device="cpu"):
        return lexical_sparse(texts).toarray()


def lexical_sparse(texts: Sequence[str], n_features: int = LEXICAL_DIM):
    """The lexical encoder's vectors as a sparse CSR matrix (unit rows): the same character
    n-gram counts, sublinear, for callers that need many more dimensions than fit dense.

    >>> m = lexical_sparse(["fever", "fever"])
    >>> round(float((m @ m.T).toarray()[0, 1]), 6)
    1.0
    """
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.preprocessing import normalize

    vectorizer = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=LEXICAL_NGRAMS,
        n_features=n_features,
        alternate_sign=False,
        norm=None,
        lowercase=True,
    )
    counts = vectorizer.transform(list(texts)).astype(np.float32)
    counts.data = np.log1p(counts.data)
    return normalize(counts, norm="l2", copy=False)
