"""FAISS indexes per site and model: build, save, load, search (CPU or GPU), meta.json, staleness.

An index lives in ``indexes/<site>/<model-slug>/`` as ``index.faiss`` plus ``meta.json``.
Row ``i`` of the index is the site's concept with ``concept_id = i``; the vocabulary hash in
meta.json proves the rows still match the stored vocabulary.

>>> import numpy as np
>>> vecs = np.eye(3, dtype="float32")
>>> scores, ids = search(build_faiss(vecs, "flat"), vecs[:1], k=2)
>>> ids[0].tolist(), scores[0].round(3).tolist()
([0, 1], [1.0, 0.0])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harmonize.core.config import (
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    INDEX_TYPES,
)
from harmonize.core.errors import HarmonizeError, InputError

if TYPE_CHECKING:
    import faiss


def gpu_available() -> bool:
    """True when this faiss build has GPU support and sees at least one GPU."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def faiss_device(device: str) -> str:
    """``auto`` becomes ``gpu`` only with faiss-gpu and a visible GPU."""
    if device == "gpu" and not gpu_available():
        raise HarmonizeError(
            "{device} gpu: this FAISS has no GPU support or sees no GPU. Install the GPU extra "
            "(pip install -e '.[gpu]', which replaces faiss-cpu) or use {device} cpu.",
            params=("device",),
        )
    if device == "auto":
        return "gpu" if gpu_available() else "cpu"
    return device


_GPU_RESOURCES = None


def _to_gpu(index: faiss.Index) -> faiss.Index:
    import faiss

    global _GPU_RESOURCES
    if _GPU_RESOURCES is None:
        _GPU_RESOURCES = faiss.StandardGpuResources()
    return faiss.index_cpu_to_gpu(_GPU_RESOURCES, 0, index)


def build_faiss(vectors: np.ndarray, kind: str = "flat", device: str = "cpu") -> faiss.Index:
    """A cosine index (inner product over unit vectors) holding ``vectors`` as rows 0..n-1.

    Flat is exact. HNSW is approximate and built on the CPU (FAISS has no GPU HNSW); a flat
    index is filled on the GPU when ``device='gpu'`` and returned as a CPU index for saving.
    """
    import faiss

    if kind not in INDEX_TYPES:
        raise InputError(f"unknown index type '{kind}': use {' or '.join(INDEX_TYPES)}")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = empty_index(vectors.shape[1], kind)
    if kind == "flat" and device == "gpu":
        gpu_index = _to_gpu(index)
        gpu_index.add(vectors)
        return faiss.index_gpu_to_cpu(gpu_index)
    index.add(vectors)
    return index


def search(
    index: faiss.Index, queries: np.ndarray, k: int, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows for each query: (scores, ids), best first; k is capped at the
    index size so no ``-1`` ids come back."""
    import faiss

    k = min(k, index.ntotal)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if k == 0 or len(queries) == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    if isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
    elif device == "gpu":
        index = _to_gpu(index)
    scores, ids = index.search(queries, k)
    return scores, ids


def vectors_of(index: faiss.Index) -> np.ndarray:
    """All stored vectors in row order (flat and HNSW both keep them)."""
    return index.reconstruct_n(0, index.ntotal)


def empty_index(dim: int, kind: str) -> faiss.Index:
    import faiss

    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return index
    return faiss.IndexFlatIP(dim)
