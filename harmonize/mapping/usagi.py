r'''OHDSI Usagi's mapping CSV, written and read by Usagi's own rules.

Usagi (github.com/OHDSI/Usagi, ``WriteCodeMappingsToFile`` / ``ReadCodeMappingsFromFile``)
reads its file one line per row, so a field never holds a line break. Its writer doubles each
backslash, doubles quotes (and then quotes the field), drops carriage returns, writes a line
feed as the two characters ``\n``, and quotes a field holding a comma; its reader splits on
commas outside quotes, strips the outer quotes and undoes the doubling (a ``\n`` stays two
characters). Rows of one source code follow each other; Usagi takes status, equivalence,
reviewer and comment from the first and one target concept from each.

>>> print(usagi_line(['say "hi"', "a,b", "back\\slash", "two\nlines"]))
"say ""hi""","a,b",back\\slash,two\nlines
>>> values = ['say "hi"', "a,b", "back\\slash"]
>>> split_usagi_line(usagi_line(values)) == values
True
'''

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harmonize.core.errors import InputError, literal

# The columns in the order Usagi's writer puts them.
COLUMNS = (
    "sourceCode",
    "sourceName",
    "sourceFrequency",
    "sourceAutoAssignedConceptIds",
    "matchScore",
    "mappingStatus",
    "equivalence",
    "statusSetBy",
    "statusSetOn",
    "conceptId",
    "conceptName",
    "domainId",
    "mappingType",
    "comment",
    "createdBy",
    "createdOn",
    "assignedReviewer",
)
# Usagi's enums (CodeMapping.MappingStatus, CodeMapping.Equivalence, MappingTarget.Type).
STATUSES = (
    "APPROVED",
    "UNCHECKED",
    "AUTO_MAPPED",
    "AUTO_MAPPED_TO_1",
    "INVALID_TARGET",
    "FLAGGED",
    "IGNORED",
)
EQUIVALENCES = ("EQUAL", "EQUIVALENT", "WIDER", "NARROWER", "INEXACT", "UNMATCHED", "UNREVIEWED")
MAPPING_TYPES = (
    "MAPS_TO",
    "MAPS_TO_VALUE",
    "MAPS_TO_UNIT",
    "MAPS_TO_OPERATOR",
    "MAPS_TO_TYPE",
    "MAPS_TO_NUMBER",
)
# Usagi reads these with Integer.parseInt / Long.parseLong: Java int and long ranges.
INT_MAX = 2**31 - 1
_NUMERIC = {
    "sourceFrequency": "int",
    "conceptId": "int",
    "statusSetOn": "long",
    "createdOn": "long",
}
# Defaults Usagi's reader uses for an empty field.
_DEFAULTS = {"statusSetOn": "0", "createdOn": "0", "equivalence": "UNREVIEWED"}


def usagi_field(value: str) -> str:
    """One field as Usagi's ``WriteCSVFile`` writes it (never a line break)."""
    quoted = '"' in value
    value = value.replace("\\", "\\\\")
    if quoted:
        value = value.replace('"', '""')
    value = value.replace("\r", "").replace("\n", "\\n")
    return f'"{value}"' if quoted or "," in value else value


def usagi_line(values: list[str]) -> str:
    """One row of fields as a line (without its line feed)."""
    return ",".join(usagi_field(v) for v in values)


def split_usagi_line(line: str) -> list[str]:
    """One line split into fields as Usagi's ``ReadCSVFile`` does: a quote not escaped by a
    backslash toggles quoting, a comma outside quotes splits; each field loses its outer
    quotes and doubled quotes, escaped quotes and doubled backslashes become single."""
    fields, start, quoted, escape = [], 0, False, False
    for i, char in enumerate(line):
        if char == '"' and not escape:
            quoted = not quoted
        if not quoted and char == "," and not escape:
            fields.append(line[start:i])
            start = i + 1
        escape = not escape if char == "\\" else False
    fields.append(line[start:])
    return [_unquote(f) for f in fields]


def _unquote(field: str) -> str:
    if len(field) > 1 and field.startswith('"') and field.endswith('"'):
        field = field[1:-1]
    return field.replace('""', '"').replace('\\"', '"').replace("\\\\", "\\")


def write_usagi(rows: pd.DataFrame) -> str:
    """The file's text: the header and one line per row of ``rows`` (columns :data:`COLUMNS`,
    any values; they are written as text)."""
    lines = [usagi_line(list(COLUMNS))]
    for values in rows[list(COLUMNS)].itertuples(index=False):
        lines.append(usagi_line(["" if pd.isna(v) else str(v) for v in values]))
    return "\n".join(lines) + "\n"


def _check_row(row: dict[str, str], where: str) -> None:
    """The checks Usagi's reader makes (its enums and Java number parsing), as errors."""
    for column, allowed in (("mappingStatus", STATUSES), ("equivalence", EQUIVALENCES)):
        if row[column] not in allowed:
            raise InputError(
                f"{where}: {column} '{literal(row[column])}' is not one of {', '.join(allowed)}"
            )
    if row["mappingType"] not in MAPPING_TYPES + ("EVENT", "VALUE", "UNIT"):
        raise InputError(f"{where}: mappingType '{literal(row['mappingType'])}' is not Usagi's")
    for column, kind in _NUMERIC.items():
        value = row[column].strip() if kind == "int" else row[column]
        limit = INT_MAX if kind == "int" else 2**63 - 1
        if not value.lstrip("-").isdigit() or not -limit - 1 <= int(value) <= limit:
            raise InputError(
                f"{where}: {column} '{literal(row[column])}' is not a Java {kind} as Usagi needs"
            )


def read_usagi(path: str | Path) -> pd.DataFrame:
    """A Usagi mapping CSV as a frame of text columns (:data:`COLUMNS` that the file has, plus
    ``line``), read line by line as Usagi reads it; a row Usagi would refuse is an error.

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.csv"
    >>> _ = path.write_text("sourceCode,sourceName,sourceFrequency,mappingStatus,conceptId\\n"
    ...                     'B1,"fever, reported",3,APPROVED,437663\\n')
    >>> read_usagi(path)[["sourceName", "conceptId", "equivalence", "line"]].values.tolist()
    [['fever, reported', '437663', 'UNREVIEWED', 2]]
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read Usagi file {literal(path)}: {exc}") from exc
    if not lines:
        raise InputError(f"{literal(path)} is empty: a Usagi file starts with its header")
    header = split_usagi_line(lines[0])
    missing = [
        c for c in ("sourceCode", "sourceName", "mappingStatus", "conceptId") if c not in header
    ]
    if missing:
        raise InputError(
            f"{literal(path)}: no column {', '.join(missing)}; is it a Usagi mapping file "
            "(File > Save in Usagi)?"
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = split_usagi_line(line)
        row = {c: (cells[i] if i < len(cells) else "") for i, c in enumerate(header)}
        row = {c: row.get(c, "") or _DEFAULTS.get(c, "") for c in COLUMNS}
        row["mappingType"] = row["mappingType"] or "MAPS_TO"
        row["sourceFrequency"] = row["sourceFrequency"] or "-1"
        _check_row(row, f"{literal(path)} line {number}")
        rows.append({**row, "line": number})
    return pd.DataFrame(rows, columns=[*COLUMNS, "line"])
