"""One exception tree for everything a user can get wrong.

The CLI turns any :class:`HarmonizeError` into ``Error: <message>`` and exit code 1;
any other exception is a bug and keeps its traceback.

Library messages name the values a caller passed (``k``), not the command-line flags: a
message template marks each parameter name as ``{name}`` and lists it in ``params``; the CLI
renders those names as its own flags (``--k``).

>>> str(UnknownSiteError("siteC", ["siteA"]))
"unknown site 'siteC'. Known sites: siteA. Run 'harmonize add-site siteC --vocab FILE' first."
>>> error = InputError("{k} must be at least 1, got 0", params=("k",))
>>> str(error), error.render({"k": "--k"})
('k must be at least 1, got 0', '--k must be at least 1, got 0')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def literal(value: object) -> str:
    """``value`` (a path, a site name) as text inside a message template: braces in it are not
    parameter marks.

    >>> InputError(f"{{k}} is too big for {literal('a{b}')}", params=("k",)).render({"k": "--k"})
    '--k is too big for a{b}'
    """
    return str(value).replace("{", "{{").replace("}", "}}")


class HarmonizeError(Exception):
    """Base class: a problem with the user's input or workspace, saying what to do next."""

    def __init__(self, message: str = "", *, params: Sequence[str] = ()):
        self.template = message
        self.params = tuple(params)
        super().__init__(self.render({}))

    def render(self, names: Mapping[str, str]) -> str:
        """The message with each parameter called what ``names`` calls it (default: itself)."""
        if not self.params:
            return self.template
        return self.template.format(**{p: names.get(p, p) for p in self.params})


class InputError(HarmonizeError):
    """A file or value the user gave is unreadable or invalid."""


class WorkspaceError(HarmonizeError):
    """The workspace is missing, locked, or inconsistent."""


class WorkspaceBusyError(WorkspaceError):
    """Another process holds the workspace's DuckDB file (one writer at a time)."""


class UnknownSiteError(HarmonizeError):
    """A site name that was never added to the workspace."""

    def __init__(self, site: str, known: list[str]):
        known_text = ", ".join(known) if known else "none yet"
        HarmonizeError.__init__(
            self,
            f"unknown site '{site}'. Known sites: {known_text}. "
            f"Run 'harmonize add-site {site} --vocab FILE' first.",
        )


class IndexStateError(HarmonizeError):
    """An index that is missing, stale or corrupt."""


class ModelError(HarmonizeError):
    """An encoder that cannot be loaded or cannot embed the given texts."""


class QueryError(HarmonizeError):
    """A named query or ad-hoc SQL that cannot run as asked."""
