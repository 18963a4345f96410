"""Storing a site's vocabulary (and events) in the workspace, and listing sites.

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "a.csv").write_text("code,description\\nC1,dyspnea\\n")
>>> add_site(Workspace(root), "siteA", root / "a.csv").n_concepts
1
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harmonize import sql
from harmonize.errors import WorkspaceError
from harmonize.index import IndexStatus, site_index_statuses
from harmonize.vocab import read_events, read_vocab, vocab_sha256
from harmonize.workspace import Workspace, check_site_name


@dataclass
class AddSiteResult:
    site: str
    n_concepts: int
    n_events: int
    replaced: bool

    @property
    def message(self) -> str:
        verb = "replaced" if self.replaced else "added"
        events = f" and {self.n_events} events" if self.n_events else ""
        return f"{verb} site '{self.site}': {self.n_concepts} concepts{events}"


def add_site(
    ws: Workspace,
    name: str,
    vocab_path: str | Path,
    events_path: str | Path | None = None,
    replace: bool = False,
    events: pd.DataFrame | None = None,
    labels: pd.DataFrame | None = None,
) -> AddSiteResult:
    """Validates the files completely, then stores the site in one transaction.

    ``events``/``labels`` frames (subject_id, time, code, value / subject_id, label, value)
    may be passed directly instead of an events file, as the demo does.
    """
    check_site_name(name)
    vocab = read_vocab(vocab_path)
    if events_path is not None:
        events = read_events(events_path, set(vocab["code"]))
    if ws.exists():
        with ws.connect(read_only=True) as con:
            exists = name in ws.site_names(con)
        if exists and not replace:
            raise WorkspaceError(
                f"site '{name}' already exists in {ws.root}. "
                f"Use 'harmonize add-site {name} --vocab FILE --replace' to replace it."
            )
    else:
        exists = False
    with ws.transaction() as con:
        for table in ("sites", "concepts", "events", "labels"):
            sql.run_internal(con, f"delete_site_{table}", site=name)
        sql.run_internal(
            con,
            "insert_site",
            site=name,
            vocab_file=str(Path(vocab_path).resolve()),
            vocab_sha256=vocab_sha256(vocab),
            n_concepts=len(vocab),
        )
        con.register("new_concepts", vocab)
        sql.run_internal(con, "insert_concepts", site=name)
        con.unregister("new_concepts")
        if events is not None and len(events):
            con.register("new_events", events)
            sql.run_internal(con, "insert_events", site=name)
            con.unregister("new_events")
        if labels is not None and len(labels):
            con.register("new_labels", labels)
            sql.run_internal(con, "insert_labels", site=name)
            con.unregister("new_labels")
    return AddSiteResult(name, len(vocab), 0 if events is None else len(events), exists)


@dataclass
class SiteInfo:
    site: str
    n_concepts: int
    n_events: int
    n_subjects: int
    indexes: list[IndexStatus]


def list_sites(ws: Workspace) -> list[SiteInfo]:
    """Each site with its counts and the state of each of its indexes."""
    ws.require()
    with ws.connect(read_only=True) as con:
        rows = sql.run_internal(con, "site_list").fetchall()
        return [
            SiteInfo(site, n_concepts, n_events, n_subjects, site_index_statuses(ws, con, site))
            for site, n_concepts, n_events, n_subjects, *_ in rows
        ]
