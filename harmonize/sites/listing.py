"""Listing a workspace's sites with their counts and the state of their indexes
(``harmonize sites``): reads the database and each index's ``meta.json``, and nothing heavier,
so the command starts quickly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harmonize.core import sql
from harmonize.core.results import TableResult
from harmonize.core.workspace import Workspace
from harmonize.index.status import IndexStatuses, site_index_statuses

if TYPE_CHECKING:
    import pandas as pd

SITE_COLUMNS = ("site", "concepts", "events", "subjects", "indexes")


@dataclass
class SiteInfo:
    """One stored site: its counts and the state of each of its indexes."""

    site: str
    n_concepts: int
    n_events: int
    n_subjects: int
    indexes: IndexStatuses

    def row(self) -> dict[str, Any]:
        """The site as ``harmonize sites`` shows it."""
        return {
            "site": self.site,
            "concepts": self.n_concepts,
            "events": self.n_events,
            "subjects": self.n_subjects,
            "indexes": ", ".join(f"{s.model} ({s.state})" for s in self.indexes) or "none",
        }


@dataclass
class SiteList(TableResult):
    """Every site of a workspace; iterates over its :class:`SiteInfo` items, and
    :meth:`to_frame` is the table ``harmonize sites`` prints."""

    sites: list[SiteInfo]

    def __iter__(self) -> Iterator[SiteInfo]:
        return iter(self.sites)

    def __len__(self) -> int:
        return len(self.sites)

    def __getitem__(self, i: int) -> SiteInfo:
        return self.sites[i]

    def to_frame(self) -> pd.DataFrame:
        """site, concepts, events, subjects and indexes (``model (state)``, or ``none``)."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(SITE_COLUMNS))

    def rows(self) -> list[dict[str, Any]]:
        """One dict a site, as ``harmonize sites`` prints it (no pandas needed)."""
        return [info.row() for info in self.sites]


def list_sites(ws: Workspace) -> SiteList:
    """Each site with its counts and the state of each of its indexes.

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.csv").write_text("code,description\\nA1,dyspnea\\n")
    >>> from harmonize.sites.registry import add_site
    >>> _ = add_site(Workspace(root), "siteA", root / "a.csv")
    >>> list_sites(Workspace(root)).rows()
    [{'site': 'siteA', 'concepts': 1, 'events': 0, 'subjects': 0, 'indexes': 'none'}]
    """
    ws.require()
    with ws.connect(read_only=True) as con:
        rows = sql.run_internal(con, "site_list").fetchall()
        return SiteList(
            [
                SiteInfo(site, n_concepts, n_events, n_subjects, site_index_statuses(ws, con, site))
                for site, n_concepts, n_events, n_subjects, *_ in rows
            ]
        )
