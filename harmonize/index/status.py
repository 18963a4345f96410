"""Whether a site's indexes can be used: each index folder's ``meta.json`` against the site's
stored vocabulary and the encoder's fingerprint.

Nothing here loads FAISS, numpy or pandas, so ``harmonize sites`` stays quick.

>>> import pathlib, tempfile
>>> from harmonize.index.site_index import build_site_index
>>> from harmonize.sites.registry import add_site
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "a.csv").write_text("code,description\\nA1,dyspnea\\nA2,fever\\n")
>>> ws = Workspace(root)
>>> _ = add_site(ws, "siteA", root / "a.csv")
>>> _ = build_site_index(ws, "siteA", "lexical")
>>> with ws.connect(read_only=True) as con:
...     [(s.model, s.state) for s in site_index_statuses(ws, con, "siteA")]
[('lexical', 'fresh')]
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmonize.core.config import INDEX_FILENAME, META_FILENAME
from harmonize.core.errors import HarmonizeError
from harmonize.core.results import TableResult
from harmonize.core.workspace import Workspace
from harmonize.embed.registry import get_encoder

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from harmonize.embed.base import Encoder

# What meta.json must hold, and of which type, for its index to be used.
META_REQUIRED = {
    "model": str,
    "model_fingerprint": str,
    "vocab_sha256": str,
    "dim": int,
    "count": int,
    "index_bytes": int,
    "index_sha256": str,
}


def read_meta(folder: Path) -> dict[str, Any] | None:
    path = folder / META_FILENAME
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"corrupt": True}
    return meta if isinstance(meta, dict) else {"corrupt": True}


@dataclass
class IndexStatus:
    """Whether a site's index for one model can be used, and if not, why."""

    site: str
    model: str
    folder: Path
    state: str  # "fresh", "stale" or "missing"
    reason: str
    meta: dict[str, Any] | None

    @property
    def rebuild_command(self) -> str:
        return f"harmonize build-index --site {self.site} --model {self.model} --force"


@dataclass
class IndexStatuses(TableResult):
    """The indexes of one site; iterates over its :class:`IndexStatus` items."""

    statuses: list[IndexStatus]

    def __iter__(self) -> Iterator[IndexStatus]:
        return iter(self.statuses)

    def __len__(self) -> int:
        return len(self.statuses)

    def __getitem__(self, i: int) -> IndexStatus:
        return self.statuses[i]

    def to_frame(self) -> pd.DataFrame:
        """site, model, state, reason and folder of each index."""
        import pandas as pd

        columns = ["site", "model", "state", "reason", "folder"]
        return pd.DataFrame(
            [[s.site, s.model, s.state, s.reason, str(s.folder)] for s in self], columns=columns
        )


def index_status(
    ws: Workspace, con: duckdb.DuckDBPyConnection, site: str, encoder: Encoder
) -> IndexStatus:
    """Compares an index's meta.json with the site's stored vocabulary and the encoder."""
    info = ws.require_site(con, site)
    folder = ws.index_dir(site, encoder.slug)
    meta = read_meta(folder)

    def status(state: str, reason: str) -> IndexStatus:
        return IndexStatus(site, encoder.spec, folder, state, reason, meta)

    if meta is None or not (folder / INDEX_FILENAME).is_file():
        return status("missing", "no index built yet")
    if meta.get("corrupt"):
        return status("stale", "meta.json is unreadable")
    for key, kind in META_REQUIRED.items():
        if not isinstance(meta.get(key), kind) or isinstance(meta.get(key), bool):
            return status("stale", f"meta.json has no valid '{key}'")
    if meta["model"] != encoder.spec:
        return status("stale", f"meta.json says the index holds model {meta['model']}")
    if meta.get("vocab_sha256") != info["vocab_sha256"]:
        return status("stale", "the site's vocabulary changed since the index was built")
    if meta.get("model_fingerprint") != encoder.fingerprint:
        return status("stale", "the model's weights or file changed since the index was built")
    return status("fresh", "up to date")


def site_index_statuses(ws: Workspace, con: duckdb.DuckDBPyConnection, site: str) -> IndexStatuses:
    """Every index folder of a site, with its state (for ``harmonize sites``)."""
    root = ws.index_root / site
    out: list[IndexStatus] = []
    if not root.is_dir():
        return IndexStatuses(out)
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        meta = read_meta(folder)
        if meta is None or meta.get("corrupt") or not isinstance(meta.get("model"), str):
            out.append(
                IndexStatus(site, folder.name, folder, "stale", "meta.json unreadable", meta)
            )
            continue
        try:
            encoder = get_encoder(meta["model"])
            out.append(index_status(ws, con, site, encoder))
        except HarmonizeError as exc:
            out.append(IndexStatus(site, meta["model"], folder, "stale", str(exc), meta))
    return IndexStatuses(out)
