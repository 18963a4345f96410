"""The formats other tools read mappings in: SSSOM TSV, FHIR R4 ConceptMap, OMOP
``source_to_concept_map`` CSV and OHDSI Usagi CSV; each writer turns a pair's stored mappings
(the ``export_mappings`` query's frame) into the file's text. Each is checked in the tests by
its consumer: sssom-py's parse and convert, ``fhir.resources``, the CDM 5.4 DDL, Usagi's
reader rules.

Automatic embedding matches are similarity matches, not reviewed equivalences, so they are
exported as such: SSSOM ``skos:closeMatch`` with ``semapv:SemanticSimilarityThresholdMatching``,
FHIR ``relatedto``, Usagi ``UNCHECKED``/``UNREVIEWED``. A predicate someone asserted (a known
pair's, or a person's ``predicate``) is exported in each format's terms (see
:mod:`harmonize.mapping.predicates`); people's decisions are ``semapv:ManualMappingCuration``
and Usagi ``APPROVED`` (with ``EQUAL`` when the person asserted no predicate: Usagi's own
default, and Usagi never writes APPROVED without an equivalence), with who decided and when.
A value a format cannot hold (a code longer than the CDM's varchar, a target code that is not
an OMOP concept_id) is refused with an error, never cut or replaced.

>>> cardinality(pd.Series(["a", "b", "c"]), pd.Series(["x", "x", "y"])).tolist()
['n:1', 'n:1', '1:1']
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import date

import pandas as pd

from harmonize import __version__
from harmonize.core.errors import InputError, literal
from harmonize.mapping import usagi
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


# Prefixes every SSSOM export declares; "urn" so that the set's own urn: identifier reads as
# a declared CURIE (sssom-py checks every metadata value that looks like one).
_SSSOM_PREFIXES = {
    "urn": "urn:",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "semapv": "https://w3id.org/semapv/vocab/",
}


def _sssom_header(source: str, target: str) -> list[str]:
    sp, tp = site_prefix(source), site_prefix(target)
    for prefix in (sp, tp):
        if prefix in _SSSOM_PREFIXES:
            raise InputError(
                f"site '{literal(prefix)}' has the name of a prefix every SSSOM export declares "
                f"({', '.join(_SSSOM_PREFIXES)}): copy it to a site of another name to export it"
            )
    prefixes = {sp: f"urn:harmonize:{source}:", tp: f"urn:harmonize:{target}:", **_SSSOM_PREFIXES}
    return [
        f"# mapping_set_id: urn:harmonize:mappings:{source}:{target}",
        "# license: https://creativecommons.org/publicdomain/zero/1.0/",
        f"# mapping_date: {date.today().isoformat()}",
        f"# mapping_tool: harmonize {__version__}",
        "# curie_map:",
        # Quoted: a YAML value ending in ':' would otherwise parse as a nested mapping.
        *(f"#   {prefix}: {json.dumps(iri)}" for prefix, iri in prefixes.items()),
    ]


def to_sssom(frame: pd.DataFrame, source: str, target: str) -> str:
    """SSSOM TSV: a commented YAML metadata block, then one row per mapping. The cosine is
    ``similarity_score`` clipped to [0, 1] (SSSOM's range); a person's mapping the model never
    scored has neither a score nor a similarity measure."""
    manual = frame["method"].str.startswith("manual:")
    similarity = frame["score"].astype("float64").clip(0, 1)
    # The stored probability of being right where there is one (calibration or --known),
    # else the clipped cosine.
    confidence = frame["confidence"].astype("float64").fillna(similarity)
    rows = pd.DataFrame(
        {
            "subject_id": site_prefix(source) + ":" + frame["source_code"],
            "subject_label": frame["source_description"],
            "predicate_id": frame["predicate"]
            .astype(object)
            .where(frame["predicate"].map(lambda p: isinstance(p, str)), UNASSERTED),
            "object_id": site_prefix(target) + ":" + frame["target_code"],
            "object_label": frame["target_description"],
            "mapping_justification": manual.map({True: SSSOM_MANUAL, False: SSSOM_JUSTIFICATION}),
            "author_label": frame["reviewer"],
            "confidence": confidence.round(6),
            "similarity_score": similarity.round(6),
            "similarity_measure": similarity.notna().map({True: "cosine", False: None}),
            "mapping_cardinality": cardinality(frame["source_code"], frame["target_code"]),
            "mapping_tool": f"harmonize {__version__}",
            "comment": "method " + frame["method"] + "; run " + frame["run_id"],
        }
    )
    if rows["author_label"].isna().all():
        rows = rows.drop(columns="author_label")
    return "\n".join(_sssom_header(source, target)) + "\n" + rows.to_csv(sep="\t", index=False)


def fhir_name(source: str, target: str) -> str:
    """A ConceptMap.name R4 accepts (constraint cmd-0: ``[A-Z]([A-Za-z0-9_]){0,254}``).

    >>> fhir_name("site-b.v2", "omop")
    'Harmonize_site_b_v2_to_omop'
    """
    return re.sub(r"[^A-Za-z0-9_]", "_", f"Harmonize_{source}_to_{target}")[:255]


def fhir_id(source: str, target: str) -> str:
    """A resource id R4 accepts (``[A-Za-z0-9\\-\\.]{1,64}``): a hash ends a too long one."""
    full = f"harmonize-{source}-to-{target}".replace("_", "-")
    if len(full) <= 64:
        return full
    digest = hashlib.sha256(f"{source}\0{target}".encode()).hexdigest()[:12]
    return f"{full[:51]}-{digest}"


def _fhir_comment(row) -> str:
    how = row.method if not isinstance(row.reviewer, str) else f"{row.method} by {row.reviewer}"
    if pd.isna(row.score):
        return f"{how}; no similarity score"
    return f"{how}; cosine similarity {row.score:.4f}"


def _fhir_elements(frame: pd.DataFrame) -> list[dict]:
    """One element per source code, one target per mapping of it."""
    elements: dict[str, dict] = {}
    for row in frame.itertuples():
        element = elements.setdefault(
            row.source_code,
            {"code": row.source_code, "display": row.source_description, "target": []},
        )
        element["target"].append(
            {
                "code": row.target_code,
                "display": row.target_description,
                "equivalence": fhir_equivalence(row.predicate),
                "comment": _fhir_comment(row),
            }
        )
    return list(elements.values())


def to_fhir(frame: pd.DataFrame, source: str, target: str) -> str:
    """A FHIR R4 ConceptMap with one group from the source site's system to the target's."""
    resource = {
        "resourceType": "ConceptMap",
        "id": fhir_id(source, target),
        "url": f"urn:harmonize:conceptmap:{source}:{target}",
        "name": fhir_name(source, target),
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
                "element": _fhir_elements(frame),
            }
        ],
    }
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def concept_ids(codes: pd.Series, site: str, fmt: str) -> pd.Series:
    """``codes`` as OMOP concept_ids (CDM ``integer``: 32 bits), or an error naming the first
    code that is not one."""
    ids = pd.to_numeric(codes, errors="coerce")
    bad = ids.isna() | (ids % 1 != 0) | (ids.abs() > usagi.INT_MAX)
    if bad.any():
        raise InputError(
            f"{{fmt}} {fmt} needs OMOP concept_ids (integers) as target codes, but site "
            f"'{literal(site)}' has code '{literal(codes[bad].iloc[0])}'. Map onto a site built "
            "from OMOP concepts (add-site --omop or --athena).",
            params=("fmt",),
        )
    return ids.astype("int64")


# CDM 5.4 DDL of source_to_concept_map: the varchar columns whose values are identifiers.
STCM_LENGTHS = {"source_code": 50, "source_vocabulary_id": 20, "target_vocabulary_id": 20}
STCM_DESCRIPTION_LENGTH = 255


def _check_lengths(rows: pd.DataFrame) -> None:
    for column, limit in STCM_LENGTHS.items():
        long = rows[column].str.len() > limit
        if long.any():
            value = rows.loc[long, column].iloc[0]
            raise InputError(
                f"omop-stcm: {column} '{literal(value)}' has {len(value)} characters; the OMOP "
                f"CDM 5.4 source_to_concept_map allows {limit} ({long.sum()} rows too long). "
                + (
                    "Give the site's concepts a shorter 'system' (the vocabulary_id), or "
                    "add the site under a shorter name."
                    if column != "source_code"
                    else "Recode them before exporting."
                )
            )


def to_omop_stcm(frame: pd.DataFrame, source: str, target: str) -> str:
    """OMOP CDM ``source_to_concept_map`` rows; the target site's codes must be concept_ids.
    Codes and vocabulary ids longer than the CDM 5.4 columns are refused; a description
    longer than its varchar(255) is cut there (it is free text, not a key)."""
    rows = pd.DataFrame(
        {
            "source_code": frame["source_code"],
            "source_concept_id": 0,
            "source_vocabulary_id": frame["source_system"].fillna(source),
            "source_code_description": frame["source_description"].str.slice(
                0, STCM_DESCRIPTION_LENGTH
            ),
            "target_concept_id": concept_ids(frame["target_code"], target, "omop-stcm"),
            "target_vocabulary_id": frame["target_system"].fillna(target),
            "valid_start_date": "1970-01-01",
            "valid_end_date": "2099-12-31",
            "invalid_reason": "",
        }
    )
    _check_lengths(rows)
    return rows.to_csv(index=False)


def _epoch_ms(times: pd.Series) -> pd.Series:
    """Stored (UTC, naive) timestamps as Unix milliseconds, as Usagi keeps times; 0 if none."""
    stamps = pd.to_datetime(times)
    ms = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta(milliseconds=1)
    return ms.fillna(0).astype("int64")


def to_usagi(frame: pd.DataFrame, source: str, target: str) -> str:
    """An OHDSI Usagi mapping CSV (Usagi's columns, order and quoting; see
    :mod:`harmonize.mapping.usagi`): people's decisions APPROVED, with the reviewer as
    statusSetBy and createdBy and the decision's time (Unix milliseconds, as Usagi keeps
    them) as statusSetOn and createdOn; the model's matches UNCHECKED for review, created by
    harmonize at time 0 (unknown, Usagi's reader default), so that exporting what
    ``harmonize import`` read gives the same file. A source with several targets has one row
    per target."""
    manual = frame["method"].str.startswith("manual:")
    reviewer = frame["reviewer"].where(manual, None)
    decided = _epoch_ms(frame["decided_at"].where(manual, None))
    rows = pd.DataFrame(
        {
            "sourceCode": frame["source_code"],
            "sourceName": frame["source_description"],
            "sourceFrequency": frame["source_frequency"].fillna(-1).clip(upper=usagi.INT_MAX),
            "sourceAutoAssignedConceptIds": "",
            "matchScore": frame["score"].round(6),
            "mappingStatus": manual.map({True: "APPROVED", False: "UNCHECKED"}),
            "equivalence": [
                usagi_equivalence(p, approved=m)
                for p, m in zip(frame["predicate"], manual, strict=True)
            ],
            "statusSetBy": reviewer.fillna(""),
            "statusSetOn": decided,
            "conceptId": concept_ids(frame["target_code"], target, "usagi"),
            "conceptName": frame["target_description"],
            "domainId": frame["target_domain"].fillna(""),
            "mappingType": "MAPS_TO",
            "comment": frame["note"].where(manual, "harmonize " + frame["method"]),
            "createdBy": reviewer.fillna(f"harmonize {__version__}"),
            "createdOn": decided,
            "assignedReviewer": "",
        }
    )
    rows["sourceFrequency"] = rows["sourceFrequency"].astype("int64")
    # Usagi reads status, equivalence, reviewer and comment from a source's first row only.
    per_source = ["mappingStatus", "equivalence", "statusSetBy", "statusSetOn", "comment"]
    rows[per_source] = rows.groupby("sourceCode", sort=False)[per_source].transform("first")
    return usagi.write_usagi(rows)


# Format name -> writer(frame, source site, target site) -> the file's text.
WRITERS: dict[str, Callable[[pd.DataFrame, str, str], str]] = {
    "sssom": to_sssom,
    "fhir": to_fhir,
    "omop-stcm": to_omop_stcm,
    "usagi": to_usagi,
}
