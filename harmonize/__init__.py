"""harmonize: map clinical concept codes across hospital sites with embeddings, FAISS and DuckDB.

The whole flow in a few lines: a workspace, two sites, an index each, a mapping.
``model="lexical"`` (character n-grams) needs no model download; ``minilm`` is the default.

>>> import pathlib, tempfile
>>> import harmonize
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "a.csv").write_text("code,description\\nA1,dyspnea\\nA2,fever\\nA3,dry cough\\n")
>>> _ = (root / "b.csv").write_text("code,description\\nB1,dyspnoea\\nB2,fevers\\nB3,cough\\n")
>>> ws = harmonize.Workspace(root)
>>> for site, vocab in (("siteA", "a.csv"), ("siteB", "b.csv")):
...     _ = harmonize.add_site(ws, site, root / vocab)
...     _ = harmonize.build_site_index(ws, site, "lexical")
>>> mapped = harmonize.map_sites(ws, "siteB", "siteA", model="lexical", k=2)
>>> table = mapped.to_frame()
>>> sorted(zip(table["source_code"], table["target_code"]))
[('B1', 'A1'), ('B2', 'A2'), ('B3', 'A3')]
>>> harmonize.list_sites(ws).to_frame()["concepts"].tolist()
[3, 3]

Every name in ``__all__`` is imported on first use, so ``import harmonize`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name -> the module that defines it (imported when the name is first used).
_ENTRY_POINTS = {
    # the workspace and its sites
    "Workspace": "harmonize.core.workspace",
    "add_site": "harmonize.sites.registry",
    "list_sites": "harmonize.sites.listing",
    # embedding and indexing
    "get_encoder": "harmonize.embed.registry",
    "build_site_index": "harmonize.index.site_index",
    # mapping, review and export
    "map_sites": "harmonize.mapping.pipeline",
    "review_queue": "harmonize.mapping.queue",
    "decide": "harmonize.mapping.review",
    "export_mappings": "harmonize.mapping.export",
    "export_events": "harmonize.mapping.export",
    "import_mappings": "harmonize.mapping.import_mappings",
    # how good a mapping is, and how far its confidence can be trusted
    "evaluate_mapping": "harmonize.mapping.metrics",
    "calibrate": "harmonize.mapping.calibration",
    "fine_tune": "harmonize.mapping.finetune",
    # what a mapping is worth to a transferred model
    "EvalConfig": "harmonize.transfer.experiment",
    "run_evaluation": "harmonize.transfer.experiment",
    # the two-site demo world
    "run_demo": "harmonize.datasets.demo",
}

__all__ = [
    "Workspace",
    "add_site",
    "list_sites",
    "get_encoder",
    "build_site_index",
    "map_sites",
    "review_queue",
    "decide",
    "export_mappings",
    "export_events",
    "import_mappings",
    "evaluate_mapping",
    "calibrate",
    "fine_tune",
    "EvalConfig",
    "run_evaluation",
    "run_demo",
]

if TYPE_CHECKING:
    from harmonize.core.workspace import Workspace
    from harmonize.datasets.demo import run_demo
    from harmonize.embed.registry import get_encoder
    from harmonize.index.site_index import build_site_index
    from harmonize.mapping.calibration import calibrate
    from harmonize.mapping.export import export_events, export_mappings
    from harmonize.mapping.finetune import fine_tune
    from harmonize.mapping.import_mappings import import_mappings
    from harmonize.mapping.metrics import evaluate_mapping
    from harmonize.mapping.pipeline import map_sites
    from harmonize.mapping.queue import review_queue
    from harmonize.mapping.review import decide
    from harmonize.sites.listing import list_sites
    from harmonize.sites.registry import add_site
    from harmonize.transfer.experiment import EvalConfig, run_evaluation


def __getattr__(name: str) -> Any:
    """PEP 562: a public name's module is imported the first time the name is used."""
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module 'harmonize' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
