"""OHDSI Usagi's reader, re-stated from its Java source for tests (github.com/OHDSI/Usagi:
``ReadCodeMappingsFromFile``, ``utilities/files/ReadCSVFile``, ``StringUtilities.safeSplit``,
``Row.getInt/getLong/getDouble``, the enums in ``CodeMapping`` and ``MappingTarget``).

Independent of harmonize's own Usagi reader: written from the Java, rule by rule, so that a
test can say "Usagi reads this file as ..." without trusting harmonize's code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# WriteCodeMappingsToFile.write: SourceCode.toRow() then these, in this order.
WRITER_COLUMNS = [
    "sourceCode", "sourceName", "sourceFrequency", "sourceAutoAssignedConceptIds",
    "matchScore", "mappingStatus", "equivalence", "statusSetBy", "statusSetOn", "conceptId",
    "conceptName", "domainId", "mappingType", "comment", "createdBy", "createdOn",
    "assignedReviewer",
]  # fmt: skip
MAPPING_STATUS = {
    "APPROVED", "UNCHECKED", "AUTO_MAPPED", "AUTO_MAPPED_TO_1", "INVALID_TARGET", "FLAGGED",
    "IGNORED",
}  # fmt: skip
EQUIVALENCE = {"EQUAL", "EQUIVALENT", "WIDER", "NARROWER", "INEXACT", "UNMATCHED", "UNREVIEWED"}
MAPPING_TYPE = {
    "MAPS_TO", "MAPS_TO_VALUE", "MAPS_TO_UNIT", "MAPS_TO_OPERATOR", "MAPS_TO_TYPE",
    "MAPS_TO_NUMBER", "EVENT", "VALUE", "UNIT",
}  # fmt: skip
_JAVA_INT = re.compile(r"[+-]?\d+")
_JAVA_DOUBLE = re.compile(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?")


class UsagiRejects(ValueError):
    """What would be an exception in Usagi's reader (NumberFormatException, valueOf, ...)."""


def read_lines(text: str) -> list[str]:
    """BufferedReader.readLine: a line ends at \\n, \\r or \\r\\n."""
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def safe_split(line: str, delimiter: str = ",") -> list[str]:
    result, start, literal, escape = [], 0, False, False
    if line == "":
        return [""]
    for i, char in enumerate(line):
        if char == '"' and not escape:
            literal = not literal
        if not literal and char == delimiter and not escape:
            result.append(line[start:i])
            start = i + 1
        escape = (not escape) if char == "\\" else False
    result.append(line[start:])
    return result


def line_to_columns(line: str) -> list[str]:
    columns = []
    for column in safe_split(line):
        if column.startswith('"') and column.endswith('"') and len(column) > 1:
            column = column[1:-1]
        column = column.replace('""', '"').replace('\\"', '"').replace("\\\\", "\\")
        columns.append(column)
    return columns


def java_int(text: str) -> int:
    text = text.strip()  # Row.getInt trims
    if not _JAVA_INT.fullmatch(text) or not -(2**31) <= int(text) < 2**31:
        raise UsagiRejects(f"Integer.parseInt({text!r})")
    return int(text)


def java_long(text: str) -> int:
    if not _JAVA_INT.fullmatch(text) or not -(2**63) <= int(text) < 2**63:
        raise UsagiRejects(f"Long.parseLong({text!r})")
    return int(text)


def java_double(text: str) -> float:
    if not _JAVA_DOUBLE.fullmatch(text.strip()):
        raise UsagiRejects(f"Double.parseDouble({text!r})")
    return float(text.strip().rstrip("fFdD"))


@dataclass
class CodeMapping:
    source_code: str
    source_name: str
    source_frequency: int
    match_score: float
    status: str
    equivalence: str
    status_set_by: str
    status_set_on: int
    comment: str
    targets: list[tuple[int, str, str, int]] = field(default_factory=list)  # id, type, by, on


class _Row:
    def __init__(self, cells: list[str], index: dict[str, int]):
        self.cells, self.index = cells, index

    def get(self, name: str, default: str | None = None) -> str:
        if name not in self.index:
            if default is None:
                raise UsagiRejects(f'Field "{name}" not found')
            return default
        i = self.index[name]
        value = self.cells[i] if i < len(self.cells) else ""
        return default if value == "" and default is not None else value


def read_code_mappings(text: str) -> list[CodeMapping]:
    """ReadCodeMappingsFromFile: consecutive rows with the same sourceCode and sourceName are
    one CodeMapping; its status etc. come from the first, a target from each nonzero conceptId
    (concepts looked up in Usagi's index are not checked here)."""
    lines = read_lines(text)
    header = line_to_columns(lines[0])
    index = {name: i for i, name in enumerate(header)}
    rows = [_Row(line_to_columns(line), index) for line in lines[1:]]
    mappings: list[CodeMapping] = []
    for row in rows:
        status = row.get("mappingStatus")
        equivalence = row.get("equivalence", "UNREVIEWED")
        if status not in MAPPING_STATUS or equivalence not in EQUIVALENCE:
            raise UsagiRejects(f"valueOf({status!r}) / valueOf({equivalence!r})")
        key = (row.get("sourceCode"), row.get("sourceName"))
        if not mappings or (mappings[-1].source_code, mappings[-1].source_name) != key:
            mappings.append(
                CodeMapping(
                    source_code=key[0],
                    source_name=key[1],
                    source_frequency=java_int(row.get("sourceFrequency")),
                    match_score=java_double(row.get("matchScore", "0")),
                    status=status,
                    equivalence=equivalence,
                    status_set_by=row.get("statusSetBy", ""),
                    status_set_on=java_long(row.get("statusSetOn", "0")),
                    comment=row.get("comment", ""),
                )
            )
        auto = row.get("sourceAutoAssignedConceptIds")
        for cid in auto.split(";") if auto else []:
            java_int(cid)
        concept_id = java_int(row.get("conceptId"))
        if concept_id != 0:
            mapping_type = row.get("mappingType", "MAPS_TO")
            if mapping_type not in MAPPING_TYPE:
                raise UsagiRejects(f"Type.valueOf({mapping_type!r})")
            mappings[-1].targets.append(
                (
                    concept_id,
                    mapping_type,
                    row.get("createdBy", ""),
                    java_long(row.get("createdOn", "0")),
                )
            )
    return mappings
