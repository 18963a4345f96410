"""A site's index for one model: building it from the stored descriptions, checking it is fresh,
loading it for a search.

Each index lives in ``indexes/<site>/<model-slug>/`` (:mod:`harmonize.index.faiss_index` holds
the FAISS side). Its ``meta.json`` records the model's fingerprint, the vocabulary's hash and the
index file's checksum, so an index built from another vocabulary or model, or a damaged file, is
refused with the command that rebuilds it.

>>> import pathlib, tempfile
>>> from harmonize.index.status import site_index_statuses
>>> from harmonize.sites.registry import add_site
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "a.csv").write_text("code,description\\nA1,dyspnea\\nA2,fever\\n")
>>> ws = Workspace(root)
>>> _ = add_site(ws, "siteA", root / "a.csv")
>>> _ = build_site_index(ws, "siteA", "lexical")
>>> with ws.connect(read_only=True) as con:
...     site_index_statuses(ws, con, "siteA").rows()[0]["state"]
'fresh'
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from harmonize import __version__
from harmonize.core import sql
from harmonize.core.config import (
    BUILD_CHUNK_SIZE,
    INDEX_FILENAME,
    INDEX_TYPES,
    META_FILENAME,
)
from harmonize.core.errors import IndexStateError, InputError
from harmonize.core.timing import Stages
from harmonize.core.workspace import Workspace, atomic_path, atomic_write_json
from harmonize.embed.base import Encoder, resolve_device
from harmonize.embed.cache import EmbeddingCache, embed_texts, progress_bar
from harmonize.embed.registry import get_encoder
from harmonize.index.faiss_index import build_faiss, empty_index, faiss_device
from harmonize.index.status import (
    IndexStatus,
    index_status,
)

if TYPE_CHECKING:
    import faiss


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_index(folder: Path, index: faiss.Index, meta: dict[str, Any]) -> None:
    """Writes index.faiss then meta.json, each atomically; meta.json last, so a crash between
    leaves an index whose meta no longer matches it, which load refuses."""
    import faiss

    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / INDEX_FILENAME) as tmp:
        faiss.write_index(index, str(tmp))
        meta = {**meta, "index_bytes": tmp.stat().st_size, "index_sha256": _file_sha256(tmp)}
    atomic_write_json(folder / META_FILENAME, meta)


def read_index(folder: Path, meta: dict[str, Any]) -> faiss.Index:
    """Loads index.faiss and checks it is the file meta.json describes."""
    import faiss

    path = folder / INDEX_FILENAME
    if not path.is_file() or path.stat().st_size != meta.get("index_bytes"):
        raise IndexStateError(f"{path} is missing or does not match {folder / META_FILENAME}")
    if _file_sha256(path) != meta.get("index_sha256"):
        raise IndexStateError(f"{path} does not match the checksum in {folder / META_FILENAME}")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexStateError(f"{path} is corrupt: {exc}") from exc
    if index.ntotal != meta.get("count") or index.d != meta.get("dim"):
        raise IndexStateError(f"{path} holds {index.ntotal}x{index.d}, meta.json says otherwise")
    return index


def build_streamed(
    encoder: Encoder,
    texts: list[str],
    kind: str = "flat",
    cache: EmbeddingCache | None = None,
    device: str = "cpu",
    progress: bool = False,
    site: str = "",
    chunk: int | None = None,
) -> faiss.Index:
    """A CPU index of ``texts`` embedded ``chunk`` at a time, each chunk added to the index as
    it comes, so memory holds the index plus one chunk of vectors, never a second full copy
    (``chunk``: default ``config.BUILD_CHUNK_SIZE``).
    The cache is saved once, at the end (or when interrupted).

    >>> from harmonize.embed.registry import get_encoder
    >>> build_streamed(get_encoder("lexical"), ["a b", "b c", "c d"], chunk=2).ntotal
    3
    """
    if kind not in INDEX_TYPES:
        raise InputError(f"unknown index type '{kind}': use {' or '.join(INDEX_TYPES)}")
    chunk = chunk or BUILD_CHUNK_SIZE
    index: faiss.Index | None = None
    try:
        with progress_bar(len(texts), f"embedding {site}".strip(), progress) as bar:
            for start in range(0, len(texts), chunk):
                part = texts[start : start + chunk]
                vectors = embed_texts(encoder, part, cache=cache, device=device, save=False)
                if index is None:
                    index = empty_index(vectors.shape[1], kind)
                index.add(np.ascontiguousarray(vectors, dtype=np.float32))
                bar.update(len(part))
    finally:
        if cache is not None:
            cache.save()
    return index if index is not None else empty_index(encoder.dim, kind)


@dataclass
class BuildResult:
    """What ``build-index`` did: ``built`` is False when the index was already up to date."""

    site: str
    model: str
    folder: Path
    built: bool
    count: int
    dim: int
    index_type: str
    device: str
    seconds: float
    n_embedded: int
    message: str


@dataclass
class BuildPlan:
    """How an index is built: the encoder, and where FAISS and the encoder run."""

    encoder: Encoder
    index_type: str
    index_device: str  # "cpu" or "gpu" (FAISS)
    torch_device: str  # "cpu" or "cuda" (the encoder)


def build_site_index(
    ws: Workspace,
    site: str,
    model: str,
    device: str = "auto",
    index_type: str = "flat",
    force: bool = False,
    progress: bool = False,
) -> BuildResult:
    """Embeds a site's descriptions, then its synonyms (through the cache) and writes its
    FAISS index; an index that is up to date is kept unless ``force``.

    >>> import pathlib, tempfile
    >>> from harmonize.sites.registry import add_site
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.csv").write_text("code,description\\nA1,dyspnea\\nA2,fever\\n")
    >>> _ = add_site(Workspace(root), "siteA", root / "a.csv")
    >>> result = build_site_index(Workspace(root), "siteA", "lexical")
    >>> result.built, result.count, result.dim
    (True, 2, 4096)
    >>> build_site_index(Workspace(root), "siteA", "lexical").built
    False
    """
    started = time.perf_counter()
    plan = plan_build(model, device, index_type)
    clock = Stages("build-index", ("read", "embed", "index", "store"))
    with ws.connect(read_only=True) as con:
        status = index_status(ws, con, site, plan.encoder)
        # names, then synonyms: rows 0..n-1 of the index are the concepts
        rows = sql.run_internal(con, "site_texts", site=site).df()
        texts = rows["text"].tolist()
        n_concepts = int(rows["concept_id"].nunique())
        info = ws.require_site(con, site)
    if status.state == "fresh" and not force and status.meta.get("index_type") == index_type:
        return _up_to_date(status, plan)
    clock.done("read")
    index, n_embedded = embed_and_index(ws, plan, texts, site, progress, clock)
    clock.done("index")
    meta = index_meta(site, plan, index, info["vocab_sha256"])
    write_index(status.folder, index, meta)
    clock.done("store")
    seconds = time.perf_counter() - started
    return BuildResult(
        site,
        plan.encoder.spec,
        status.folder,
        True,
        meta["count"],
        meta["dim"],
        index_type,
        plan.index_device,
        seconds,
        n_embedded,
        f"built {index_type} index for site '{site}' with model {plan.encoder.spec}: "
        f"{n_concepts} concepts"
        + (f" ({meta['count']} texts with synonyms)" if meta["count"] != n_concepts else "")
        + f", dim {meta['dim']}, {n_embedded} newly embedded, "
        f"{seconds:.1f}s on {plan.index_device}",
    )


def plan_build(model: str, device: str, index_type: str) -> BuildPlan:
    """The encoder and devices, checked before anything else, even when there is nothing to
    build: a bad index type, model or device is reported first."""
    if index_type not in INDEX_TYPES:
        raise InputError(f"unknown index type '{index_type}': use {' or '.join(INDEX_TYPES)}")
    encoder = get_encoder(model)
    index_device = faiss_device(device)
    torch_device = resolve_device(device) if encoder.cacheable else "cpu"
    return BuildPlan(encoder, index_type, index_device, torch_device)


def _up_to_date(status: IndexStatus, plan: BuildPlan) -> BuildResult:
    spec = plan.encoder.spec
    return BuildResult(
        status.site,
        spec,
        status.folder,
        False,
        int(status.meta["count"]),
        int(status.meta["dim"]),
        plan.index_type,
        status.meta.get("device", "cpu"),
        0.0,
        0,
        f"index for site '{status.site}' (model {spec}) is up to date; "
        "nothing to do (use --force to rebuild)",
    )


def embed_and_index(
    ws: Workspace, plan: BuildPlan, texts: list[str], site: str, progress: bool, clock: Stages
) -> tuple[faiss.Index, int]:
    """(the index of ``texts``, how many texts were newly embedded). On the GPU the vectors
    are embedded in one go and then added; on the CPU they are streamed chunk by chunk."""
    encoder = plan.encoder
    cache = EmbeddingCache(ws.cache_dir, encoder) if encoder.cacheable else None
    before = len(cache) if cache is not None else 0
    if plan.index_device == "gpu":  # filled on the GPU in one go
        vectors = embed_texts(
            encoder,
            texts,
            cache=cache,
            device=plan.torch_device,
            progress=progress,
            desc=f"embedding {site}",
        )
        clock.done("embed")
        index = build_faiss(vectors, plan.index_type, plan.index_device)
        del vectors
    else:
        index = build_streamed(
            encoder, texts, plan.index_type, cache, plan.torch_device, progress, site
        )
        clock.done("embed")  # embedding and adding to the index alternate, chunk by chunk
    n_embedded = (len(cache) - before) if cache is not None else len(set(texts))
    return index, n_embedded


def index_meta(site: str, plan: BuildPlan, index: faiss.Index, vocab_hash: str) -> dict[str, Any]:
    """What meta.json records of a new index (write_index adds its size and checksum)."""
    import faiss

    return {
        "site": site,
        "model": plan.encoder.spec,
        "model_fingerprint": plan.encoder.fingerprint,
        "dim": int(index.d),
        "count": int(index.ntotal),
        "index_type": plan.index_type,
        "metric": "inner_product",
        "normalized": True,
        "vocab_sha256": vocab_hash,
        "harmonize_version": __version__,
        "faiss_version": faiss.__version__,
        "device": plan.index_device,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def load_site_index(
    ws: Workspace, con: duckdb.DuckDBPyConnection, site: str, encoder: Encoder
) -> tuple[faiss.Index, dict[str, Any]]:
    """A site's index for ``encoder``, refusing one that is missing or stale."""
    status = index_status(ws, con, site, encoder)
    if status.state == "missing":
        raise IndexStateError(
            f"no index for site '{site}' with model {encoder.spec}. "
            f"Run 'harmonize build-index --site {site} --model {encoder.spec}' first."
        )
    if status.state == "stale":
        raise IndexStateError(
            f"index for site '{site}' (model {encoder.spec}) is stale: {status.reason}. "
            f"Run '{status.rebuild_command}'."
        )
    try:
        return read_index(status.folder, status.meta), status.meta
    except IndexStateError as exc:
        raise IndexStateError(
            f"index for site '{site}' (model {encoder.spec}) cannot be used: {exc}. "
            f"Run '{status.rebuild_command}'."
        ) from exc


def load_pair_indexes(
    ws: Workspace, con: duckdb.DuckDBPyConnection, source: str, target: str, encoder: Encoder
) -> tuple[faiss.Index, faiss.Index]:
    """The source and target indexes for ``encoder``, refused unless their dimensions agree
    (an index built with another model's dimension would crash or mislead the search)."""
    pair = (
        load_site_index(ws, con, source, encoder)[0],
        load_site_index(ws, con, target, encoder)[0],
    )
    if pair[0].d == pair[1].d:
        return pair
    # Only on this error path is the model's own dimension worth loading the model for.
    sites = [(s, index.d) for s, index in zip((source, target), pair, strict=True)]
    wrong = [s for s, d in sites if d != encoder.dim] or [source, target]
    rebuild = " and ".join(
        f"'harmonize build-index --site {s} --model {encoder.spec} --force'" for s in wrong
    )
    raise IndexStateError(
        f"the indexes of '{source}' (dim {pair[0].d}) and '{target}' (dim {pair[1].d}) for "
        f"model {encoder.spec} differ in dimension; the model gives dim {encoder.dim}. "
        f"Run {rebuild}."
    )
