"""The smallest useful workspace, for docstring examples and first steps from Python: two sites
of two concepts, ``a`` (reported fever, dry cough) and ``b`` (fever, coughing dry), with
lexical indexes (no model needed) and ``b`` mapped onto ``a``.

>>> ws = tiny_workspace()
>>> import harmonize
>>> [s.site for s in harmonize.list_sites(ws)]
['a', 'b']
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harmonize.core.workspace import Workspace

TINY_SITES = {
    "a": "code,description\nA1,reported fever\nA2,dry cough\n",
    "b": "code,description\nB1,fever\nB2,coughing dry\n",
}


def tiny_workspace(root: str | Path | None = None, mapped: bool = True) -> Workspace:
    """A workspace in ``root`` (default: a new temporary folder) holding :data:`TINY_SITES`,
    indexed with the lexical encoder and, if ``mapped``, ``b`` mapped onto ``a`` (k = 2)."""
    from harmonize.index.site_index import build_site_index
    from harmonize.mapping.pipeline import map_sites
    from harmonize.sites.registry import add_site

    folder = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="harmonize-"))
    folder.mkdir(parents=True, exist_ok=True)
    ws = Workspace(folder / "ws")
    for site, text in TINY_SITES.items():
        vocab = folder / f"{site}.csv"
        vocab.write_text(text, encoding="utf-8")
        add_site(ws, site, vocab)
        build_site_index(ws, site, "lexical", device="cpu")
    if mapped:
        map_sites(ws, "b", "a", model="lexical", k=2)
    return ws
