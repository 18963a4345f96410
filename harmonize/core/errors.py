"""One exception tree for everything a user can get wrong.

The CLI turns any :class:`HarmonizeError` into ``Error: <message>`` and exit code 1;
any other exception is a bug and keeps its traceback.

>>> str(UnknownSiteError("siteC", ["siteA"]))
"unknown site 'siteC'. Known sites: siteA. Run 'harmonize add-site siteC --vocab FILE' first."
"""

from __future__ import annotations


class HarmonizeError(Exception):
    """Base class: a problem with the user's input or workspace, saying what to do next."""


class InputError(HarmonizeError):
    """A file or value the user gave is unreadable or invalid."""


class WorkspaceError(HarmonizeError):
    """The workspace is missing, locked, or inconsistent."""


class UnknownSiteError(HarmonizeError):
    """A site name that was never added to the workspace."""

    def __init__(self, site: str, known: list[str]):
        known_text = ", ".join(known) if known else "none yet"
        super().__init__(
            f"unknown site '{site}'. Known sites: {known_text}. "
            f"Run 'harmonize add-site {site} --vocab FILE' first."
        )


class IndexStateError(HarmonizeError):
    """An index that is missing, stale or corrupt."""


class ModelError(HarmonizeError):
    """An encoder that cannot be loaded or cannot embed the given texts."""


class QueryError(HarmonizeError):
    """A named query or ad-hoc SQL that cannot run as asked."""
