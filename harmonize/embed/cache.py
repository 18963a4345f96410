"""The on-disk embedding cache and the one function that embeds texts through it.

A text is embedded once per model: its vector is kept under the workspace's ``cache/`` keyed by
sha256 of the text, and dropped when the model's fingerprint changes.

>>> from harmonize.embed.registry import get_encoder
>>> embed_texts(get_encoder("lexical"), ["cough", "cough"]).shape
(2, 4096)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from harmonize.core.config import ENCODE_BATCH_SIZE, ENCODE_CHUNK_SIZE
from harmonize.core.errors import ModelError
from harmonize.core.workspace import atomic_path
from harmonize.embed.base import Encoder


def progress_bar(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="text", disable=None if enabled else True)


class EmbeddingCache:
    """Vectors already computed for one encoder, keyed by sha256 of the text, in one Parquet
    file per encoder under the workspace's ``cache/``. An unchanged text is never re-embedded."""

    def __init__(self, folder: Path, encoder: Encoder):
        self.path = folder / f"{encoder.slug}.parquet"
        self.fingerprint = encoder.fingerprint
        self._keys: list[str] = []
        self._vectors: list[np.ndarray] = []
        self._index: dict[str, int] = {}
        self._dirty = False
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        try:
            table = pq.read_table(self.path)
            meta = table.schema.metadata or {}
        except (pa.ArrowException, OSError):
            return  # an unreadable cache is only a cache: start afresh, overwrite on save
        if meta.get(b"fingerprint", b"").decode() != self.fingerprint:
            return  # the model changed: old vectors are not valid any more
        keys = table.column("sha256").to_pylist()
        column = table.column("embedding").combine_chunks()
        if isinstance(column, pa.FixedSizeListArray) and column.null_count == 0:
            # no Python lists: a million cached vectors load in a second, not a minute
            matrix = column.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
            matrix = matrix.reshape(len(keys), column.type.list_size)
        else:
            matrix = np.asarray(column.to_pylist(), dtype=np.float32)
        self._keys = keys
        self._vectors = list(matrix)
        self._index = {k: i for i, k in enumerate(keys)}

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get(self, text: str) -> np.ndarray | None:
        i = self._index.get(self.key(text))
        return None if i is None else self._vectors[i]

    def put(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        for text, vector in zip(texts, vectors, strict=True):
            k = self.key(text)
            if k not in self._index:
                self._index[k] = len(self._keys)
                self._keys.append(k)
                self._vectors.append(vector)
                self._dirty = True

    def __len__(self) -> int:
        return len(self._keys)

    def save(self) -> None:
        if not self._dirty:
            return
        matrix = np.stack(self._vectors).astype(np.float32)
        dim = matrix.shape[1]
        column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), dim)
        table = pa.table({"sha256": self._keys, "embedding": column})
        table = table.replace_schema_metadata({"fingerprint": self.fingerprint})
        with atomic_path(self.path) as tmp:
            pq.write_table(table, tmp)
        self._dirty = False


def embed_texts(
    encoder: Encoder,
    texts: Sequence[str],
    cache: EmbeddingCache | None = None,
    device: str = "cpu",
    batch_size: int = ENCODE_BATCH_SIZE,
    progress: bool = False,
    desc: str = "embedding",
    save: bool = True,
) -> np.ndarray:
    """Embeds ``texts`` (one row each, in order), reusing and filling ``cache``.

    Each distinct text is embedded once; the rest are copies. Texts go to the encoder in
    chunks so progress shows and the cache is saved even if a long run is interrupted
    (``save=False`` leaves saving to the caller, who embeds many parts then saves once).
    """
    unique = list(dict.fromkeys(texts))
    vectors: dict[str, np.ndarray] = {}
    todo = []
    for text in unique:
        hit = cache.get(text) if cache is not None and encoder.cacheable else None
        if hit is None:
            todo.append(text)
        else:
            vectors[text] = hit
    try:
        with progress_bar(len(todo), desc, progress and bool(todo)) as bar:
            for start in range(0, len(todo), ENCODE_CHUNK_SIZE):
                chunk = todo[start : start + ENCODE_CHUNK_SIZE]
                out = encoder.encode(chunk, batch_size=batch_size, device=device)
                if out.shape != (len(chunk), out.shape[1] if out.ndim == 2 else -1):
                    raise ModelError(f"encoder {encoder.spec} returned shape {out.shape}")
                vectors.update(zip(chunk, out, strict=True))
                if cache is not None and encoder.cacheable:
                    cache.put(chunk, out)
                bar.update(len(chunk))
    finally:
        if cache is not None and save:
            cache.save()
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.stack([vectors[t] for t in texts]).astype(np.float32)
