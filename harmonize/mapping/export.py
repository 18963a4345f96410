"""Exporting for other tools: a pair's mappings in one of :data:`EXPORT_FORMATS` (SSSOM,
FHIR, OMOP, Usagi; written by :mod:`harmonize.mapping.export_formats`) and a site's events
recoded into another site's codes, as MEDS (:mod:`harmonize.mapping.export_meds`) or Parquet.

Every file appears complete or not at all: each is written beside its final path and
renamed into place, with the permissions the umask gives new files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError
from harmonize.core.workspace import Workspace, atomic_path, atomic_write_text
from harmonize.mapping.export_formats import EXPORT_FORMATS, WRITERS

EVENT_FORMATS = ("meds", "parquet")


@dataclass(frozen=True)
class MappingsExport:
    """What :func:`export_mappings` wrote: ``n`` mappings of ``source`` onto ``target``."""

    source: str
    target: str
    fmt: str
    output: Path
    n: int

    @property
    def message(self) -> str:
        return (
            f"wrote {self.n} mappings of '{self.source}' onto '{self.target}' as {self.fmt} "
            f"to {self.output}"
        )


def export_mappings(
    ws: Workspace, source: str, target: str, fmt: str, output: str | Path
) -> MappingsExport:
    """Writes the stored mappings of ``source`` onto ``target`` to ``output`` in ``fmt``.

    >>> from harmonize.datasets.tiny import tiny_workspace
    >>> ws = tiny_workspace()  # sites a and b, lexical indexes, b mapped onto a
    >>> root = ws.root.parent
    >>> export_mappings(ws, "b", "a", "sssom", root / "b_to_a.sssom.tsv").n
    2
    >>> (root / "b_to_a.sssom.tsv").read_text().splitlines()[-1].split("\\t")[:4]
    ['b:B2', 'coughing dry', 'skos:closeMatch', 'a:A2']
    """
    if fmt not in WRITERS:
        raise InputError(f"unknown export format '{fmt}': use one of {', '.join(EXPORT_FORMATS)}")
    output = Path(output)
    if not output.parent.resolve().is_dir():
        raise InputError(f"output folder does not exist: {output.parent}")
    frame = ws.read_pair(source, target, "export_mappings", missing="mappings")
    atomic_write_text(output, WRITERS[fmt](frame, source, target))
    return MappingsExport(source, target, fmt, output, len(frame))


@dataclass(frozen=True)
class EventsExport:
    """What :func:`export_events` wrote: ``n_events`` events of ``source`` in ``target``'s
    codes; ``n_skipped`` events had a code with no mapping and were left out."""

    source: str
    target: str
    fmt: str
    output: Path
    n_events: int
    n_skipped: int

    @property
    def message(self) -> str:
        return (
            f"wrote {self.n_events} events of '{self.source}' in '{self.target}' codes as "
            f"{self.fmt} to {self.output} ({self.n_skipped} events without a mapping left out)"
        )


def _check_events_output(output: Path, fmt: str) -> None:
    if fmt not in EVENT_FORMATS:
        raise InputError(f"unknown events format '{fmt}': use {' or '.join(EVENT_FORMATS)}")
    if output.exists() and (output.is_dir() != (fmt == "meds")):
        want = "a new folder" if fmt == "meds" else "a .parquet file name"
        raise InputError(f"{output} is a {'folder' if output.is_dir() else 'file'}: give {want}")
    if output.exists() and fmt == "meds" and any(output.iterdir()):
        raise InputError(f"{output} exists and is not empty: choose a new folder")


def _read_recoded(
    ws: Workspace, source: str, target: str
) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """``source``'s events in ``target``'s codes, how many have no mapping, and ``target``'s
    concepts (for the MEDS code metadata)."""
    ws.require()
    with ws.connect(read_only=True) as con:
        ws.require_site(con, source)
        ws.require_site(con, target)
        events = sql.run_internal(con, "recode_for_export", source=source, target=target).df()
        skipped = sql.run_internal(con, "count_unmapped_events", source=source, target=target)
        skipped = skipped.fetchone()[0]
        codes = sql.run_internal(con, "site_hierarchy", site=target).df()
    if events.empty:
        raise InputError(
            f"no events of '{source}' map onto '{target}'. "
            f"Run 'harmonize map --source {source} --target {target}' first."
        )
    return events, skipped, codes


def events_table(events: pd.DataFrame) -> pd.DataFrame:
    """Recoded events (subject_id, time, code, value) as MEDS data rows: a value that reads as
    a number is ``numeric_value``, any other is ``text_value``.

    >>> events = pd.DataFrame({"subject_id": ["p1", "p1"], "time": [None, None],
    ...                        "code": ["A1", "A2"], "value": ["38.5", "P"]})
    >>> events_table(events)[["numeric_value", "text_value"]].values.tolist()
    [[38.5, nan], [nan, 'P']]
    """
    numeric = pd.to_numeric(events["value"], errors="coerce")
    return pd.DataFrame(
        {
            "subject_id": events["subject_id"],
            "time": events["time"],
            "code": events["code"],
            "numeric_value": numeric.astype("float32"),
            "text_value": events["value"].where(numeric.isna()),
        }
    )


def export_events(
    ws: Workspace, source: str, target: str, fmt: str, output: str | Path
) -> EventsExport:
    """Writes ``source``'s events recoded into ``target``'s codes (through the stored mappings)
    for downstream tools: a MEDS folder (``data/0.parquet``, ``metadata/codes.parquet``,
    ``metadata/dataset.json``, and ``metadata/subject_ids.parquet`` where subject ids are not
    integers) or one Parquet file. Events whose code has no mapping are left out and counted.

    >>> import pathlib, tempfile
    >>> from harmonize.index.site_index import build_site_index
    >>> from harmonize.mapping.pipeline import map_sites
    >>> from harmonize.sites.registry import add_site
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.csv").write_text("code,description\\nA1,reported fever\\nA2,dry cough\\n")
    >>> _ = (root / "b.csv").write_text("code,description\\nB1,fever\\nB2,coughing dry\\n")
    >>> _ = (root / "e.csv").write_text("subject_id,code,value\\np1,B1,38.5\\np2,B2,P\\n")
    >>> ws = Workspace(root / "ws")
    >>> _ = add_site(ws, "a", root / "a.csv")
    >>> _ = add_site(ws, "b", root / "b.csv", root / "e.csv")
    >>> for site in ("a", "b"):
    ...     _ = build_site_index(ws, site, "lexical", device="cpu")
    >>> _ = map_sites(ws, "b", "a", model="lexical", k=2)
    >>> written = export_events(ws, "b", "a", "parquet", root / "b_in_a.parquet")
    >>> written.n_events, written.n_skipped
    (2, 0)
    >>> sorted(pd.read_parquet(root / "b_in_a.parquet")["code"])
    ['A1', 'A2']
    """
    output = Path(output)
    _check_events_output(output, fmt)
    events, skipped, codes = _read_recoded(ws, source, target)
    table = events_table(events)
    if fmt == "parquet":
        with atomic_path(output) as tmp:
            table.to_parquet(tmp, index=False)
    else:
        from harmonize.mapping.export_meds import write_meds

        write_meds(table, codes, output, source, target)
    return EventsExport(source, target, fmt, output, len(table), skipped)
