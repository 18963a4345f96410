"""Bringing earlier mapping work into a workspace: an OHDSI Usagi mapping CSV or an OMOP
``source_to_concept_map`` CSV, imported as people's decisions or written out as known pairs,
so that it carries over to a new vocabulary version (a new target site, a re-map).

Which rows count: Usagi rows with ``mappingStatus`` APPROVED (status, equivalence, reviewer and
comment taken from a source code's first row, as Usagi does), and STCM rows whose
``invalid_reason`` is empty. A row without a target concept (conceptId or target_concept_id
0), an APPROVED row whose equivalence is UNMATCHED, a source code the source site lacks, a
target concept the target site lacks (retired in the new version, or filtered out) and, as
decisions, a source code that already has a decision here are left out and counted.

As decisions, each row becomes a ``set`` decision and the pair's stored mapping of its code
(several rows of one code: several targets): the reviewer and time from Usagi's
``statusSetBy`` / ``statusSetOn`` (epoch milliseconds), else ``createdOn``, else the importing
user and now; the predicate from the equivalence (EQUAL and EQUIVALENT exact, WIDER broad,
NARROWER narrow, INEXACT close; UNREVIEWED none); the comment as the note. As known pairs,
the rows are written as a ``source_code,target_code,predicate`` CSV for ``map --known``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harmonize.core import sql
from harmonize.core.errors import InputError, literal
from harmonize.core.workspace import Workspace, atomic_write_text
from harmonize.mapping.predicates import USAGI_PREDICATES
from harmonize.mapping.review import _reviewer as default_reviewer

IMPORT_FORMATS = ("usagi", "stcm")
IMPORT_AS = ("decisions", "known")
_SHOWN = 5  # codes named in a message


@dataclass(frozen=True)
class MappingsImport:
    """What :func:`import_mappings` did: ``n`` rows imported of ``n_rows``, and why the others
    were left out (``left_out``: reason -> count; ``unknown_*``: the codes)."""

    source: str
    target: str
    path: Path
    fmt: str
    as_: str
    n_rows: int
    n: int
    left_out: dict[str, int] = field(default_factory=dict)
    unknown_source: tuple[str, ...] = ()
    unknown_target: tuple[str, ...] = ()
    output: Path | None = None

    @property
    def message(self) -> str:
        what = f"as decisions on '{self.source}' -> '{self.target}'"
        if self.as_ == "known":
            what = f"as known pairs to {self.output}"
        head = f"imported {self.n} of {self.n_rows} rows of {self.path} {what}"
        lines = [head] + [f"  left out: {n} {reason}" for reason, n in self.left_out.items() if n]
        for codes, site, kind in (
            (self.unknown_source, self.source, "source"),
            (self.unknown_target, self.target, "target"),
        ):
            if codes:
                lines.append(f"  {kind} codes not in site '{site}': {_named(codes)}")
        return "\n".join(lines)


def _named(codes: tuple[str, ...]) -> str:
    shown = ", ".join(codes[:_SHOWN])
    return shown if len(codes) <= _SHOWN else f"{shown} and {len(codes) - _SHOWN} more"


def _usagi_rows(path: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """The APPROVED rows with a target, as (source_code, target_code, predicate, reviewer,
    decided_ms, note), and the count of the others by reason."""
    from harmonize.mapping.usagi import read_usagi

    rows = read_usagi(path)
    # Usagi reads a code mapping's status, equivalence, reviewer and comment from its first
    # row; the following rows of the same source code and name only add targets.
    group = rows[["sourceCode", "sourceName"]] != rows[["sourceCode", "sourceName"]].shift()
    group = group.any(axis=1).cumsum()
    shared = ["mappingStatus", "equivalence", "statusSetBy", "statusSetOn", "comment"]
    rows[shared] = rows.groupby(group)[shared].transform("first")
    approved = rows["mappingStatus"] == "APPROVED"
    no_target = approved & (rows["conceptId"].str.strip().astype("int64") == 0)
    unmatched = approved & ~no_target & (rows["equivalence"] == "UNMATCHED")
    keep = rows[approved & ~no_target & ~unmatched]
    set_on = keep["statusSetOn"].astype("int64")
    decided = set_on.where(set_on > 0, keep["createdOn"].astype("int64"))
    frame = pd.DataFrame(
        {
            "source_code": keep["sourceCode"],
            "target_code": keep["conceptId"].str.strip().astype("int64").astype(str),
            "predicate": keep["equivalence"].map(USAGI_PREDICATES),
            "reviewer": keep["statusSetBy"].where(keep["statusSetBy"] != "", None),
            "decided_ms": decided.where(decided > 0, None),
            "note": keep["comment"].where(keep["comment"] != "", None),
        }
    )
    left_out = {
        "not APPROVED": int((~approved).sum()),
        "without a target concept (conceptId 0)": int(no_target.sum()),
        "APPROVED as UNMATCHED": int(unmatched.sum()),
    }
    return frame, left_out


STCM_REQUIRED = ("source_code", "target_concept_id")


def _stcm_rows(path: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """The valid STCM rows with a target (no reviewer, time or predicate: STCM has none)."""
    try:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {literal(path)} as CSV: {exc}") from exc
    rows.columns = [c.strip().lower() for c in rows.columns]
    missing = [c for c in STCM_REQUIRED if c not in rows.columns]
    if missing:
        raise InputError(
            f"{literal(path)}: no column {', '.join(missing)}; is it an OMOP "
            "source_to_concept_map CSV?"
        )
    target = pd.to_numeric(rows["target_concept_id"].str.strip(), errors="coerce")
    if target.isna().any() or (target % 1 != 0).any():
        bad = rows.loc[target.isna() | (target % 1 != 0), "target_concept_id"].iloc[0]
        raise InputError(f"{literal(path)}: target_concept_id '{literal(bad)}' is not an integer")
    invalid = rows.get("invalid_reason", pd.Series("", index=rows.index)).str.strip() != ""
    no_target = ~invalid & (target == 0)
    keep = ~invalid & ~no_target
    frame = pd.DataFrame(
        {
            "source_code": rows.loc[keep, "source_code"],
            "target_code": target[keep].astype("int64").astype(str),
            "predicate": None,
            "reviewer": None,
            "decided_ms": None,
            "note": None,
        }
    )
    left_out = {
        "with an invalid_reason": int(invalid.sum()),
        "without a target concept (target_concept_id 0)": int(no_target.sum()),
    }
    return frame, left_out


def _known_codes(ws: Workspace, site: str, codes: pd.Series) -> pd.Series:
    """Which of ``codes`` the site has."""
    with ws.connect(read_only=True) as con:
        ws.require_site(con, site)
        wanted = [str(c) for c in codes.unique()]
        present = sql.run_internal(con, "codes_present", site=site, codes=wanted)
        have = {r[0] for r in present.fetchall()}
    return codes.isin(have)


def _decided_codes(ws: Workspace, source: str, target: str) -> set[str]:
    with ws.connect(read_only=True) as con:
        rows = sql.run_internal(con, "latest_decisions", source=source, target=target)
        return {r[0] for r in rows.fetchall()}


def _read_rows(path: Path, fmt: str) -> tuple[pd.DataFrame, int, dict[str, int]]:
    if fmt not in IMPORT_FORMATS:
        raise InputError(f"unknown import format '{fmt}': use {' or '.join(IMPORT_FORMATS)}")
    if not path.is_file():
        raise InputError(f"file not found: {literal(path)}")
    frame, left_out = (_usagi_rows if fmt == "usagi" else _stcm_rows)(path)
    n_rows = len(frame) + sum(left_out.values())
    duplicated = frame.duplicated(["source_code", "target_code"])
    left_out["repeating a row above"] = int(duplicated.sum())
    return frame[~duplicated].reset_index(drop=True), n_rows, left_out


def _check_codes(
    ws: Workspace, source: str, target: str, frame: pd.DataFrame, left_out: dict[str, int]
) -> tuple[pd.DataFrame, tuple[str, ...], tuple[str, ...]]:
    """Drops (and names) the rows whose source or target code a site lacks."""
    has_source = _known_codes(ws, source, frame["source_code"])
    has_target = _known_codes(ws, target, frame["target_code"])
    unknown_source = tuple(sorted(set(frame.loc[~has_source, "source_code"])))
    unknown_target = tuple(sorted(set(frame.loc[has_source & ~has_target, "target_code"])))
    left_out[f"with a source code not in site '{source}'"] = int((~has_source).sum())
    left_out[f"with a target concept not in site '{target}'"] = int(
        (has_source & ~has_target).sum()
    )
    return frame[has_source & has_target], unknown_source, unknown_target


def _as_decisions(
    ws: Workspace, source: str, target: str, frame: pd.DataFrame, reviewer: str | None
) -> None:
    """Stores each row as a ``set`` decision and as the pair's mapping of its code, in one
    transaction; a code's score is kept where its target is the one the model had chosen."""
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    decided = pd.to_datetime(frame["decided_ms"].astype("Int64"), unit="ms").fillna(now)
    rows = pd.DataFrame(
        {
            "source_code": frame["source_code"],
            "target_code": frame["target_code"],
            "reviewer": frame["reviewer"].fillna(default_reviewer(reviewer)),
            "note": frame["note"],
            "decided_at": decided.astype("datetime64[us]"),
            "predicate": frame["predicate"],
        }
    )
    with ws.transaction() as con:
        con.register("imported", rows)
        # One call per statement, so the packaging test can see which SQL files ship.
        sql.run_internal(con, "import_decisions", source=source, target=target)
        sql.run_internal(con, "import_scores", source=source, target=target)
        sql.run_internal(con, "import_delete_mappings", source=source, target=target)
        sql.run_internal(con, "import_insert_mappings", source=source, target=target)
        con.unregister("imported")


def _as_known(frame: pd.DataFrame, output: Path) -> None:
    if not output.parent.resolve().is_dir():
        raise InputError(f"output folder does not exist: {output.parent}")
    known = frame[["source_code", "target_code", "predicate"]].sort_values(
        ["source_code", "target_code"]
    )
    atomic_write_text(output, known.to_csv(index=False))


def import_mappings(
    ws: Workspace,
    source: str,
    target: str,
    path: str | Path,
    fmt: str,
    as_: str = "decisions",
    output: str | Path | None = None,
    reviewer: str | None = None,
) -> MappingsImport:
    """Imports the Usagi or STCM file at ``path`` (``fmt`` usagi or stcm) for the pair
    ``source`` -> ``target``: as decisions (``as_="decisions"``) or as a known-pairs CSV
    written to ``output`` (``as_="known"``). ``reviewer`` names whoever decided where the file
    does not say (default: $HARMONIZE_REVIEWER or the login name). Nothing is stored unless
    some row is imported. The rules are in the module docstring.

    >>> from harmonize.datasets.tiny import tiny_workspace
    >>> ws = tiny_workspace()  # sites a and b (codes A1.., B1..), b mapped onto a
    >>> stcm = ws.root.parent / "stcm.csv"
    >>> _ = stcm.write_text("source_code,target_concept_id,invalid_reason\\nB1,7,\\nB2,0,\\n")
    >>> try:
    ...     import_mappings(ws, "b", "a", stcm, "stcm", "known", ws.root.parent / "k.csv")
    ... except InputError as err:
    ...     print(str(err).split("\\n", 1)[1])
      left out: 1 without a target concept (target_concept_id 0)
      left out: 1 with a target concept not in site 'a'
      target codes not in site 'a': 7
    """
    path, as_ = Path(path), as_.lower()
    if as_ not in IMPORT_AS:
        raise InputError(f"unknown import target '{as_}': use {' or '.join(IMPORT_AS)}")
    if (as_ == "known") != (output is not None):
        raise InputError(
            "{as_} known writes a known-pairs file: give {output} FILE (and only then)",
            params=("as_", "output"),
        )
    ws.require()
    frame, n_rows, left_out = _read_rows(path, fmt)
    frame, unknown_source, unknown_target = _check_codes(ws, source, target, frame, left_out)
    if as_ == "decisions":
        decided = frame["source_code"].isin(_decided_codes(ws, source, target))
        left_out["whose source code already has a decision here"] = int(decided.sum())
        frame = frame[~decided]
    result = MappingsImport(
        source, target, path, fmt, as_, n_rows, len(frame), left_out,
        unknown_source, unknown_target, Path(output) if output is not None else None,
    )  # fmt: skip
    if frame.empty:
        reasons = result.message.split("\n", 1)[1] if "\n" in result.message else "no rows"
        raise InputError(f"no row of {literal(path)} can be imported:\n{reasons}")
    if as_ == "decisions":
        _as_decisions(ws, source, target, frame, reviewer)
    else:
        _as_known(frame, Path(output))
    return result
