"""The formats other tools read mappings in: SSSOM TSV, FHIR R4 ConceptMap, OMOP
``source_to_concept_map`` CSV and OHDSI Usagi CSV; each writer turns a pair's stored mappings
(the ``pair_mappings`` query's frame) into the file's text.

Automatic embedding matches are similarity matches, not reviewed equivalences, so they are
exported as such: SSSOM ``skos:closeMatch`` with ``semapv:SemanticSimilarityThresholdMatching``,
FHIR ``relatedto``, Usagi ``UNCHECKED``/``UNREVIEWED``. A predicate someone asserted (a known
pair's, or a person's ``predicate``) is exported in each format's terms (see
:mod:`harmonize.mapping.predicates`); people's decisions are ``semapv:ManualMappingCuration``
and Usagi ``APPROVED``.

>>> cardinality(pd.Series(["a", "b", "c"]), pd.Series(["x", "x", "y"])).tolist()
['n:1', 'n:1', '1:1']
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pandas as pd

from harmonize import __version__
from harmonize.core.errors import InputError, literal
from harmonize.mapping.predicates import UNASSERTED, fhir_equivalence, usagi_equivalence

EXPORT_FORMATS = ("sssom", "fhir", "omop-stcm", "usagi")
SSSOM_JUSTIFICATION = "semapv:SemanticSimilarityThresholdMatching"
SSSOM_MANUAL = "semapv:ManualMappingCuration"  # a person's accept or set decision


def cardinality(sources: pd.Series, targets: pd.Series) -> pd.Series:
    """SSSOM mapping_cardinality of each row: 1:1, 1:n, n:1 or n:n."""
    per_source = sources.map(sources.value_counts())
    per_target = targets.map(targets.value_counts())
    left = per_target.gt(1).map({True: "n", False: "1"})
    right = per_source.gt(1).map({True: "n", False: "1"})
    return left + ":" + right


def site_prefix(site: str) -> str:
    """A CURIE prefix for a site's codes (site names are already restricted to safe characters)."""
    return site.replace(".", "_")


def to_sssom(frame: pd.DataFrame, source: str, target: str) -> str:
    """SSSOM TSV: a commented YAML metadata block, then one row per mapping."""
    sp, tp = site_prefix(source), site_prefix(target)
    header = [
        f"# mapping_set_id: urn:harmonize:mappings:{source}:{target}",
        "# license: https://creativecommons.org/publicdomain/zero/1.0/",
        f"# mapping_date: {date.today().isoformat()}",
        f"# mapping_tool: harmonize {__version__}",
        "# curie_map:",
        # Quoted: a YAML value ending in ':' would otherwise parse as a nested mapping.
        f"#   {sp}: {json.dumps(f'urn:harmonize:{source}:')}",
        f"#   {tp}: {json.dumps(f'urn:harmonize:{target}:')}",
        '#   skos: "http://www.w3.org/2004/02/skos/core#"',
        '#   semapv: "https://w3id.org/semapv/vocab/"',
    ]
    manual = frame["method"].str.startswith("manual:")
    # The stored probability of being right where there is one (calibration or --known),
    # else the cosine clipped to [0, 1].
    confidence = frame["confidence"].astype("float64").fillna(frame["score"].clip(0, 1))
    rows = pd.DataFrame(
        {
            "subject_id": sp + ":" + frame["source_code"],
            "subject_label": frame["source_description"],
            "predicate_id": frame["predicate"]
            .astype(object)
            .where(frame["predicate"].map(lambda p: isinstance(p, str)), UNASSERTED),
            "object_id": tp + ":" + frame["target_code"],
            "object_label": frame["target_description"],
            "mapping_justification": manual.map({True: SSSOM_MANUAL, False: SSSOM_JUSTIFICATION}),
            "confidence": confidence.round(6),
            "similarity_score": frame["score"].round(6),
            "similarity_measure": "cosine",
            "mapping_cardinality": cardinality(frame["source_code"], frame["target_code"]),
            "mapping_tool": f"harmonize {__version__}",
            "comment": "method " + frame["method"] + "; run " + frame["run_id"],
        }
    )
    return "\n".join(header) + "\n" + rows.to_csv(sep="\t", index=False)


def to_fhir(frame: pd.DataFrame, source: str, target: str) -> str:
    """A FHIR R4 ConceptMap with one group from the source site's system to the target's."""
    elements = [
        {
            "code": row.source_code,
            "display": row.source_description,
            "target": [
                {
                    "code": row.target_code,
                    "display": row.target_description,
                    "equivalence": fhir_equivalence(row.predicate),
                    "comment": f"cosine similarity {row.score:.4f} ({row.method})",
                }
            ],
        }
        for row in frame.itertuples()
    ]
    resource = {
        "resourceType": "ConceptMap",
        "id": f"harmonize-{site_prefix(source)}-to-{site_prefix(target)}".replace("_", "-"),
        "url": f"urn:harmonize:conceptmap:{source}:{target}",
        "name": f"harmonize_{site_prefix(source)}_to_{site_prefix(target)}",
        "status": "draft",
        "experimental": True,
        "date": date.today().isoformat(),
        "publisher": f"harmonize {__version__}",
        "sourceUri": f"urn:harmonize:{source}",
        "targetUri": f"urn:harmonize:{target}",
        "group": [
            {
                "source": f"urn:harmonize:{source}",
                "target": f"urn:harmonize:{target}",
                "element": elements,
            }
        ],
    }
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def _concept_ids(codes: pd.Series, site: str, fmt: str) -> pd.Series:
    ids = pd.to_numeric(codes, errors="coerce")
    if ids.isna().any() or (ids % 1 != 0).any():
        bad = codes[ids.isna() | (ids % 1 != 0)].iloc[0]
        raise InputError(
            f"{{fmt}} {fmt} needs OMOP concept_ids (integers) as target codes, but site "
            f"'{literal(site)}' has code '{literal(bad)}'. Map onto a site built from the "
            "OMOP concept table.",
            params=("fmt",),
        )
    return ids.astype("int64")


def to_omop_stcm(frame: pd.DataFrame, source: str, target: str) -> str:
    """OMOP CDM ``source_to_concept_map`` rows; the target site's codes must be concept_ids."""
    vocabulary = frame["source_system"].fillna(source).str.slice(0, 20)
    rows = pd.DataFrame(
        {
            "source_code": frame["source_code"],
            "source_concept_id": 0,
            "source_vocabulary_id": vocabulary,
            "source_code_description": frame["source_description"].str.slice(0, 255),
            "target_concept_id": _concept_ids(frame["target_code"], target, "omop-stcm"),
            "target_vocabulary_id": frame["target_system"].fillna(target).str.slice(0, 20),
            "valid_start_date": "1970-01-01",
            "valid_end_date": "2099-12-31",
            "invalid_reason": "",
        }
    )
    return rows.to_csv(index=False)


def to_usagi(frame: pd.DataFrame, source: str, target: str) -> str:
    """An OHDSI Usagi mapping CSV: people's decisions APPROVED, the rest UNCHECKED for review."""
    numeric = pd.to_numeric(frame["target_code"], errors="coerce")
    concept_id = numeric.where(numeric.notna() & (numeric % 1 == 0), 0).astype("int64")
    rows = pd.DataFrame(
        {
            "sourceCode": frame["source_code"],
            "sourceName": frame["source_description"],
            "sourceFrequency": frame["source_frequency"].fillna(-1).astype("int64"),
            "sourceAutoAssignedConceptIds": "",
            "matchScore": frame["score"].round(6),
            "mappingStatus": frame["method"]
            .str.startswith("manual:")
            .map({True: "APPROVED", False: "UNCHECKED"}),
            "equivalence": frame["predicate"].map(usagi_equivalence),
            "statusSetBy": "",
            "statusSetOn": 0,
            "conceptId": concept_id,
            "conceptName": frame["target_description"],
            "domainId": "",
            "mappingType": "MAPS_TO",
            "comment": f"{target}:" + frame["target_code"],
            "createdBy": f"harmonize {__version__}",
            "createdOn": 0,
            "assignedReviewer": "",
        }
    )
    return rows.to_csv(index=False)


# Format name -> writer(frame, source site, target site) -> the file's text.
WRITERS: dict[str, Callable[[pd.DataFrame, str, str], str]] = {
    "sssom": to_sssom,
    "fhir": to_fhir,
    "omop-stcm": to_omop_stcm,
    "usagi": to_usagi,
}
